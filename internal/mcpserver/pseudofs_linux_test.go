package mcpserver

import (
	"strings"
	"testing"
)

// TestAddRefusesKernelFiles: with /proc inside the allowed directory
// (--allow-path /, say), add_document added /proc/self/environ, docex's
// own environment with its database DSN and password, for any reader to
// read back. A file of a kernel filesystem that describes the running
// system (proc, sysfs) is refused now, as docex's own files are, and
// nothing is added.
func TestAddRefusesKernelFiles(t *testing.T) {
	e := newEnv(t)
	before, err := e.admin.Basket(t.Context(), e.basket.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("will", "writer"), Config{AllowPath: "/proc"})
	for _, p := range []string{"self/environ", "/proc/self/environ", "self/cmdline", "meminfo"} {
		msg := callErr(t, cs, "add_document", map[string]any{"basket": "in", "path": p})
		if !strings.HasPrefix(msg, "denied: path "+`"`+p+`"`+" is in the kernel's proc filesystem") {
			t.Errorf("%s: %s", p, msg)
		}
	}
	_, cs = e.connect(t, user("will", "writer"), Config{AllowPath: "/sys"})
	msg := callErr(t, cs, "add_document", map[string]any{"basket": "in", "path": "kernel/uevent_seqnum"})
	if !strings.HasPrefix(msg, `denied: path "kernel/uevent_seqnum" is in the kernel's sysfs`) {
		t.Errorf("sysfs: %s", msg)
	}
	if d, err := e.admin.Basket(t.Context(), e.basket.ID); err != nil || d.DocumentCount != before.DocumentCount {
		t.Errorf("basket after the refusals: %+v, %v", d, err)
	}
}
