package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveSystemPluginHint: plugin remove without --system of a plugin
// the tenant runs system-wide (a built-in step) is not found in the
// tenant, and the hint says how an operator removes it. Before, it was a
// bare "not found" for a plugin the tenant can list and run.
func TestRemoveSystemPluginHint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	h.ok("plugin", "install", "--system", filepath.Join(root, "testplugins", "upper"))
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	r := h.want(exitNotFound, append([]string{"plugin", "remove", "upper"}, u...)...)
	if !strings.Contains(r.stderr, "hint: upper is a system-wide plugin") || !strings.Contains(r.stderr, "docex plugin remove --system upper") {
		t.Fatalf("stderr %q: want the hint naming plugin remove --system", r.stderr)
	}
	// A name nothing has keeps the plain not found.
	if r := h.want(exitNotFound, append([]string{"plugin", "remove", "nothing"}, u...)...); strings.Contains(r.stderr, "system-wide") {
		t.Fatalf("stderr %q", r.stderr)
	}
}
