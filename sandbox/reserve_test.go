package sandbox

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// A grow to the memory limit in one instruction (growbomb's docex_run:
// 4095 pages, to 256 MiB, on a new instance per call) commits pages of
// the instance's reservation: it allocates no Go memory, zeroes and
// copies nothing, and is charged its 1024 units a page. Before, where
// instances used Go memory (every system but Linux), the grow allocated,
// zeroed and copied 256 MiB in that one instruction, which no timeout
// could stop.
func TestGrowToLimitCommitsReservation(t *testing.T) {
	ctx := context.Background()
	m, mod := readPlugin(t, "growbomb")
	m.Limits.TimeoutMS = 60_000
	p, err := sharedSandbox(t).Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if r.Report.PeakMemoryBytes != 4096*pageSize || r.Report.Instructions < 4095*1024 {
		t.Fatalf("report = %+v, want the memory at its limit and the grow's 4,193,280 units", r.Report)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 32<<20 {
		t.Fatalf("the run allocated %d bytes of Go memory, want the grow's 256 MiB not among them", d)
	}
}

// An instance whose memory cannot be reserved is not made: the run fails
// with ErrPluginMemory, naming the plugin and its limit. Before, the
// instance fell back to Go memory, which a grow allocates and copies in
// one step (and which, where the reservation failed for want of address
// space, a grow to the limit could not get either: the process died,
// TestReservationFailureDoesNotKill).
func TestReserveFails(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	sb.reserve = func(uint64) ([]byte, error) { return nil, syscall.ENOMEM }
	m, mod := readPlugin(t, "growbomb")
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	_, err = runWithin(t, p, pluginapi.Call{TenantID: "a"})
	want := `plugin "growbomb": cannot reserve its memory limit of 4096 pages`
	if !errors.Is(err, pluginapi.ErrPluginMemory) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrPluginMemory, want)
	}
}
