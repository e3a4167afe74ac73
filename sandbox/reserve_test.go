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
// with ErrHostMemory (and, for compatibility, ErrPluginMemory), saying the
// host could not reserve memory and naming the plugin and its limit.
// Before, the instance fell back to Go memory, which a grow allocates and
// copies in one step (and which, where the reservation failed for want of
// address space, a grow to the limit could not get either: the process
// died, TestReservationFailureDoesNotKill); and then, until 2026-12-07, the
// error was only ErrPluginMemory, "plugin exceeded its memory limit",
// which blamed the plugin for the host's condition.
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
	r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
	want := `sandbox: the host could not reserve memory: plugin "growbomb": cannot reserve its memory limit of 4096 pages: `
	if !errors.Is(err, pluginapi.ErrHostMemory) || !errors.Is(err, pluginapi.ErrPluginMemory) || !strings.HasPrefix(err.Error(), want) ||
		strings.Contains(err.Error(), "exceeded") || r != nil {
		t.Fatalf("err = %v (result %v), want %v and %v starting %q, no result", err, r, pluginapi.ErrHostMemory, pluginapi.ErrPluginMemory, want)
	}
}

// A reservation that fails while the sandbox keeps idle instances or
// snapshots is retried after closing them, least recently used first:
// here the host has room only once no instance is idle, and the run of
// another plugin succeeds where it failed before (ErrPluginMemory: the
// idle instance of the first plugin kept its reservation).
func TestReserveFreesIdle(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	m, mod := readPlugin(t, "echo")
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	in := func() pluginapi.Document {
		return pluginapi.Document{ContentType: "text/plain", Content: strings.NewReader("x"), Size: 1}
	}
	if _, err := runWithin(t, p, pluginapi.Call{TenantID: "a", Input: in()}); err != nil {
		t.Fatal(err)
	}
	if n, _ := sb.idle.stats(); n == 0 {
		t.Fatal("no idle instance after a run")
	}
	calls := 0
	sb.reserve = func(limit uint64) ([]byte, error) {
		calls++
		if n, _ := sb.idle.stats(); n > 0 {
			return nil, syscall.ENOMEM
		}
		return reserve(limit)
	}
	m2, mod2 := readPlugin(t, "upper")
	p2, err := sb.Load(ctx, m2, mod2)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	if _, err := runWithin(t, p2, pluginapi.Call{TenantID: "a", Input: in()}); err != nil {
		t.Fatalf("run with the host's room behind an idle instance: %v", err)
	}
	if calls < 2 {
		t.Fatalf("%d reservations, want the failed one and its retry", calls)
	}
}
