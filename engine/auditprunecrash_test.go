package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// crashSystemPrune is a hookBackend whose second PruneSystemAudit call
// panics before it runs: a process killed after the first chunk of a
// prune of the system log committed.
type crashSystemPrune struct {
	*hookBackend
	calls atomic.Int64
}

type pruneCrash struct{}

func (b *crashSystemPrune) PruneSystemAudit(ctx context.Context, p driver.AuditPrune, final func(driver.AuditPruned) (docex.AuditEntry, bool)) (driver.AuditPruned, error) {
	if b.calls.Add(1) == 2 {
		panic(pruneCrash{})
	}
	return b.hookBackend.PruneSystemAudit(ctx, p, final)
}

// clockedEngine bootstraps and opens an engine on be (its content in
// dir) whose clock is clock, set to start: tests move it to age entries.
func clockedEngine(t *testing.T, be driver.Backend, dir string, clock *atomic.Int64, start time.Time) *Engine {
	t.Helper()
	ctx := context.Background()
	clock.Store(start.UnixMicro())
	cfg := Config{MultiTenancy: true, ContentDir: dir + "/content", Now: func() time.Time { return time.UnixMicro(clock.Load()) }}
	if _, err := Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// crashed runs f and reports whether it panicked with pruneCrash: the
// prune stops there, its error path (which audits an interrupted prune)
// never runs, as when the process is killed.
func crashed(f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok = r.(pruneCrash); !ok {
				panic(r)
			}
		}
	}()
	f()
	return false
}

// TestAuditPruneKilledIsRecorded: a prune of an audit log killed after
// its first chunk committed (kill -9, a crash: neither the last chunk nor
// the interrupted prune's error path runs) leaves its audit.prune entry,
// written in the first chunk's transaction, covering every entry deleted:
// the count, the cutoff and the newest entry it set out to delete. For a
// tenant's log and for the system log.
func TestAuditPruneKilledIsRecorded(t *testing.T) {
	ctx := context.Background()
	sqlBE, dir := OpenTestSQLite(t)
	be := &crashSystemPrune{hookBackend: &hookBackend{Backend: sqlBE}}
	clock, now := &atomic.Int64{}, time.Now().UTC().Truncate(time.Microsecond)
	e := clockedEngine(t, be, dir, clock, now.Add(-72*time.Hour))
	op := e.Provisioner("ops")
	for _, id := range []string{"acme", "beta", "gamma"} {
		if _, err := op.Create(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	s := e.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	for i := range 5 {
		if _, err := s.CreateBasket(ctx, fmt.Sprintf("b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Store(now.UnixMicro())
	// A recent entry in each log: the newest entry is never pruned.
	if _, err := s.CreateBasket(ctx, "recent"); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Create(ctx, "delta", ""); err != nil {
		t.Fatal(err)
	}
	cutoff := now.Add(-36 * time.Hour)
	cut := cutoff.UTC().Format(time.RFC3339Nano)

	// wantRecord checks that log holds an audit.prune entry covering the
	// old entries of before (newest first), and that what is left of
	// them is a suffix of them.
	wantRecord := func(t *testing.T, what, user string, before, log []docex.AuditEntry) *docex.AuditEntry {
		t.Helper()
		var old []docex.AuditEntry
		for _, a := range before {
			if a.Time.Before(cutoff) {
				old = append(old, a)
			}
		}
		kept := 0
		for _, a := range old {
			if hasAuditEntry(log, a.ID) {
				kept++
			}
		}
		if kept == 0 || kept == len(old) {
			t.Fatalf("%s: %d of the %d old entries left, want the prune stopped part-way", what, kept, len(old))
		}
		var rec *docex.AuditEntry
		for i, a := range log {
			if a.Operation == "audit.prune" && a.UserID == user {
				rec = &log[i]
			}
		}
		if rec == nil {
			t.Fatalf("%s: %d entries deleted, no audit.prune entry records them: %+v", what, len(old)-kept, log)
		}
		d := rec.Detail
		if fmt.Sprint(d["entries"]) != fmt.Sprint(len(old)) || d["before"] != cut || d["last_id"] != old[0].ID || rec.Outcome != docex.OutcomeOK {
			t.Fatalf("%s: audit.prune entry %+v, want %d entries before %s up to %s", what, rec, len(old), cut, old[0].ID)
		}
		return rec
	}

	// A tenant's log: the third chunk's write never comes.
	before, err := s.Audit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	be.armNextWrite(func() { be.armNextWrite(func() { panic(pruneCrash{}) }) })
	if !crashed(func() { _, _ = s.PruneAudit(ctx, PruneAuditOptions{Before: cutoff, Chunk: 2}) }) {
		t.Fatal("the tenant's prune did not reach its second chunk")
	}
	log, err := s.Audit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rec := wantRecord(t, "tenant log", "ann", before, log)
	// Its copy in the system log, out of the tenant admin's reach, was
	// written before the first chunk (before 2026-12-08, at the end: a
	// killed prune left none).
	sysAfter, err := be.SystemAudit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var cp *docex.AuditEntry
	for i, a := range sysAfter {
		if a.Operation == "audit.prune" && a.TenantID == "acme" {
			cp = &sysAfter[i]
		}
	}
	if cp == nil || cp.UserID != "ann" || cp.Outcome != docex.OutcomeOK || fmt.Sprint(cp.Detail) != fmt.Sprint(rec.Detail) {
		t.Fatalf("system log: copy of the tenant's prune %+v, want one with the tenant entry's detail %v", cp, rec.Detail)
	}

	// The system log: the second chunk never comes.
	sysBefore, err := be.SystemAudit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !crashed(func() { _, _ = op.PruneSystemAudit(ctx, PruneAuditOptions{Before: cutoff, Chunk: 1}) }) {
		t.Fatal("the system prune did not reach its second chunk")
	}
	sysLog, err := be.SystemAudit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "system log", "ops", sysBefore, sysLog)
}

// hasAuditEntry reports whether log holds the entry with the id.
func hasAuditEntry(log []docex.AuditEntry, id string) bool {
	for _, a := range log {
		if a.ID == id {
			return true
		}
	}
	return false
}

var errSystemLogDown = errors.New("system log unreachable")

// failSystemAppend is a hookBackend whose system log refuses appends
// while fail is set.
type failSystemAppend struct {
	*hookBackend
	fail atomic.Bool
}

func (b *failSystemAppend) AppendSystemAudit(ctx context.Context, e docex.AuditEntry) error {
	if b.fail.Load() {
		return errSystemLogDown
	}
	return b.hookBackend.AppendSystemAudit(ctx, e)
}

// TestAuditPruneNeedsItsSystemCopy: a prune of a tenant's log whose copy
// cannot be written to the system log deletes nothing.
func TestAuditPruneNeedsItsSystemCopy(t *testing.T) {
	ctx := context.Background()
	sqlBE, dir := OpenTestSQLite(t)
	be := &failSystemAppend{hookBackend: &hookBackend{Backend: sqlBE}}
	clock, now := &atomic.Int64{}, time.Now().UTC().Truncate(time.Microsecond)
	e := clockedEngine(t, be, dir, clock, now.Add(-72*time.Hour))
	if _, err := e.Provisioner("ops").Create(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	s := e.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	for i := range 3 {
		if _, err := s.CreateBasket(ctx, fmt.Sprintf("b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Store(now.UnixMicro())
	if _, err := s.CreateBasket(ctx, "recent"); err != nil {
		t.Fatal(err)
	}
	before, err := s.Audit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	be.fail.Store(true)
	res, err := s.PruneAudit(ctx, PruneAuditOptions{Before: now.Add(-36 * time.Hour)})
	be.fail.Store(false)
	if !errors.Is(err, errSystemLogDown) || res.Entries != 0 {
		t.Fatalf("prune without its system copy: %+v, %v; want nothing deleted, the append's error", res, err)
	}
	after, err := s.Audit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range before {
		if !hasAuditEntry(after, a.ID) {
			t.Fatalf("entry %s (%s) deleted although the prune failed", a.ID, a.Operation)
		}
	}
}
