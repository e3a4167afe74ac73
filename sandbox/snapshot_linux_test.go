package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// heldBytes is what this process holds in memory for snapshots and
// instances, as the kernel counts it: its anonymous and shared resident
// pages (/proc/self/status RssAnon + RssShmem) and the pages of its
// snapshot memfds, mapped or not.
func heldBytes(tb testing.TB) (rss, memfds int64) {
	tb.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == "RssAnon" || k == "RssShmem" {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			rss += kb << 10
		}
	}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, _ := os.Readlink(fd); strings.HasPrefix(l, "/memfd:docex-snapshot") {
			if fi, err := os.Stat(fd); err == nil {
				memfds += fi.Sys().(*syscall.Stat_t).Blocks * 512
			}
		}
	}
	return rss, memfds
}

// TestSnapshotMemoryHeld measures, as the kernel counts it, what plugins
// whose memory initialisation leaves zero (64 MiB each) hold after a run
// with their instances idle: a few pages, not the memory. Before, each
// held 64 MiB of Go copy plus 64 MiB of memfd (the probe's 4096-page
// module: 512 MiB per plugin, outside MaxIdleBytes).
func TestSnapshotMemoryHeld(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	if sb.pm == nil {
		t.Skip("no pagemap: no memfd images")
	}
	rss0, fds0 := heldBytes(t)
	for i := range 3 {
		p := loadHex(t, sb, fmt.Sprint("zero", i), zeroHex, 2048)
		for j := range 2 {
			if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "x")}); err != nil {
				t.Fatalf("plugin %d run %d: %v", i, j, err)
			}
		}
	}
	rss, fds := heldBytes(t)
	t.Logf("3 plugins of 64 MiB zero memory: RssAnon+RssShmem %+d bytes, snapshot memfds %+d bytes", rss-rss0, fds-fds0)
	// Generous slack for the runtime's own allocations; the old code
	// held 384 MiB here.
	if rss-rss0 > 48<<20 || fds-fds0 > 1<<20 {
		t.Fatalf("3 plugins of 64 MiB zero memory hold %d bytes resident and %d in memfds", rss-rss0, fds-fds0)
	}
}

// TestSnapshotImagesWithinIdleBudget: eight plugins with 1 MiB of non-zero
// memory each under a 4 MiB MaxIdleBytes: their snapshot memfds stay
// within the budget (before, each kept its 1 MiB image, uncounted).
func TestSnapshotImagesWithinIdleBudget(t *testing.T) {
	ctx := context.Background()
	const budget = 4 << 20
	sb := newSandbox(t, Config{MaxIdleBytes: budget})
	if sb.pm == nil {
		t.Skip("no pagemap: no memfd images")
	}
	_, fds0 := heldBytes(t)
	for i := range 8 {
		p := loadHex(t, sb, fmt.Sprint("sevens", i), sevensHex, 0)
		if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "x")}); err != nil {
			t.Fatalf("sevens %d: %v", i, err)
		}
	}
	_, fds := heldBytes(t)
	t.Logf("8 plugins of 1 MiB non-zero memory, MaxIdleBytes 4 MiB: snapshot memfds %+d bytes", fds-fds0)
	if fds-fds0 > budget {
		t.Fatalf("snapshot memfds hold %d bytes, over MaxIdleBytes %d", fds-fds0, budget)
	}
}

// snapshotFDs counts the process's open snapshot memfds.
func snapshotFDs(tb testing.TB) int {
	tb.Helper()
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, _ := os.Readlink(fd); strings.HasPrefix(l, "/memfd:docex-snapshot") {
			n++
		}
	}
	return n
}

// The snapshots' memfds are bounded by the process's open-file limit:
// with RLIMIT_NOFILE at 256 when the Sandbox is made, at most 256 / 16 =
// 16 (DefaultMaxSnapshotFiles), however many plugins take a snapshot (20
// here); the least recently used is evicted for a new one, and every
// plugin still runs from a fresh state. Before, every loaded plugin's
// snapshot held a descriptor until the plugin closed (or its snapshot was
// evicted for memory): 20 here, the engine's 128 loaded plugins 128, and
// plugins enough could take every descriptor of the process.
func TestSnapshotFilesBounded(t *testing.T) {
	ctx := context.Background()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(t, Config{})
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if sb.pm == nil {
		t.Skip("no copy-on-write reset here: snapshots hold no memfd")
	}
	before := snapshotFDs(t)
	var ps []*Plugin
	for i := range 20 {
		ps = append(ps, loadHex(t, sb, fmt.Sprintf("sevens%d", i), sevensHex, 16))
	}
	for round := range 2 {
		for i, p := range ps {
			for _, tenant := range []string{"a", "b"} {
				r, err := p.Run(ctx, pluginapi.Call{TenantID: tenant})
				if err != nil || r.Status != pluginapi.StatusOK {
					t.Fatalf("round %d, plugin %d, tenant %s: %v %+v", round, i, tenant, err, r)
				}
			}
			if n := snapshotFDs(t) - before; n > 16 {
				t.Fatalf("round %d, after plugin %d: %d snapshot memfds open, want at most 16", round, i, n)
			}
		}
	}
	if n := snapshotFDs(t) - before; n != 16 {
		t.Fatalf("%d snapshot memfds open, want the budget's 16 in use", n)
	}
	if DefaultMaxSnapshotFiles(256) != 16 || DefaultMaxSnapshotFiles(1024) != 64 || DefaultMaxSnapshotFiles(0) != 256 || DefaultMaxSnapshotFiles(1<<20) != 256 || DefaultMaxSnapshotFiles(8) != 1 {
		t.Fatal("DefaultMaxSnapshotFiles is not as documented")
	}
	for _, p := range ps {
		p.Close(ctx)
	}
	if n := snapshotFDs(t) - before; n != 0 {
		t.Fatalf("%d snapshot memfds open after the plugins closed", n)
	}
}
