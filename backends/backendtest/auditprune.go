package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
)

// testAuditPrune: Session.PruneAudit deletes the entries of the tenant's
// log recorded before its cutoff, a prefix in sequence order, in chunks,
// and nothing else: not an entry at or after the cutoff, not an old entry
// recorded after a newer one, not the newest entry, not another tenant's
// log. One audit.prune entry, written with the first chunk, records the
// count, the cutoff and the newest entry it deletes, in the tenant's log
// and in the system log. A refused
// prune (role, cutoff under engine.MinAuditRetention, chunk) and a dry
// run delete nothing. TenantProvisioner.PruneSystemAudit does the same for
// the system log.
func (f *fixture) testAuditPrune(t *testing.T) {
	be, cfg := f.config(t, true)
	var clock atomic.Int64 // unix microseconds
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock.Store(now.Add(-72 * time.Hour).UnixMicro())
	cfg.Now = func() time.Time { return time.UnixMicro(clock.Load()) }
	if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	eng, err := engine.New(bg, be, cfg)
	must(t, err)
	t.Cleanup(func() { eng.Close() })
	e := &env{t: t, be: be, cfg: cfg, eng: eng}
	e.tenant("acme")
	e.tenant("other")
	admin, other := e.as("acme", "admin"), e.as("other", "admin")

	// Old: five entries 72 hours ago, three 48 hours ago (the other
	// tenant: three 72 hours ago); recent: two entries now.
	basket := func(s *engine.Session, n int) {
		for range n {
			e.basket(s, "b-"+uuid.NewString()[:8])
		}
	}
	basket(admin, 5)
	basket(other, 3)
	clock.Store(now.Add(-48 * time.Hour).UnixMicro())
	basket(admin, 3)
	clock.Store(now.UnixMicro())
	basket(admin, 2)
	cutoff := now.Add(-36 * time.Hour)

	log := func(s *engine.Session) []docex.AuditEntry {
		t.Helper()
		l, err := s.Audit(bg, docex.Page{Limit: 1000})
		must(t, err)
		return l
	}
	before := log(admin)
	if len(before) != 10 {
		t.Fatalf("acme's log has %d entries, want 10", len(before))
	}
	oldIDs := map[string]bool{}
	for _, a := range before {
		if a.Time.Before(cutoff) {
			oldIDs[a.ID] = true
		}
	}
	if len(oldIDs) != 8 {
		t.Fatalf("%d entries before the cutoff, want 8", len(oldIDs))
	}
	newestOld := before[2] // newest first: two recent, then the newest old one
	if !oldIDs[newestOld.ID] {
		t.Fatalf("entry %+v is not old", newestOld)
	}

	// Refused: nothing deleted.
	for _, roles := range [][]string{{"reader"}, {"writer"}} {
		_, err := e.as("acme", roles...).PruneAudit(bg, engine.PruneAuditOptions{Before: cutoff})
		wantErr(t, err, docex.ErrForbidden)
	}
	for _, o := range []engine.PruneAuditOptions{
		{},
		{Before: now.Add(time.Hour)},
		{Before: now.Add(-engine.MinAuditRetention + time.Minute)},
		{Before: cutoff, Chunk: -1},
		{Before: cutoff, Chunk: engine.MaxPruneChunk + 1},
	} {
		_, err := admin.PruneAudit(bg, o)
		wantErr(t, err, docex.ErrInvalid)
	}
	// A dry run counts, deleting nothing.
	dry, err := admin.PruneAudit(bg, engine.PruneAuditOptions{Before: cutoff, DryRun: true})
	must(t, err)
	if dry.Entries != 8 || !dry.DryRun || dry.Transactions != 0 || dry.System {
		t.Fatalf("dry run: %+v, want 8 entries", dry)
	}
	if got := log(admin); len(got) != 10+7 { // the seven refusals recorded
		t.Fatalf("after the refusals and the dry run: %d entries, want 17", len(got))
	}

	// An old entry recorded after newer ones (a clock set back): the
	// prefix ends before it, so it stays.
	st, err := be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	late := docex.AuditEntry{ID: uuid.NewString(), Time: now.Add(-60 * time.Hour), TenantID: "acme", UserID: "u-acme", Roles: []string{}, Operation: "test.late", Outcome: docex.OutcomeOK}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.AppendAudit(bg, late) }))

	// The prune, three entries per transaction.
	res, err := admin.PruneAudit(bg, engine.PruneAuditOptions{Before: cutoff, Chunk: 3})
	must(t, err)
	if res.Entries != 8 || res.Transactions != 3 || res.LastID != newestOld.ID || res.LastSeq <= 0 || res.DryRun || res.System || !res.Before.Equal(cutoff) {
		t.Fatalf("prune: %+v, want 8 entries in 3 transactions, the newest %s", res, newestOld.ID)
	}
	after := log(admin)
	var prunes []docex.AuditEntry
	for _, a := range after {
		if oldIDs[a.ID] {
			t.Fatalf("entry %+v older than the cutoff is still there", a)
		}
		if a.Operation == "audit.prune" && a.Outcome == docex.OutcomeOK {
			prunes = append(prunes, a)
		}
	}
	if len(after) != 17+1-8+1 { // the late entry in, eight out, the prune's own in
		t.Fatalf("after the prune: %d entries, want 11", len(after))
	}
	if !hasEntry(after, late.ID) {
		t.Fatal("the old entry recorded after newer ones was deleted: not a prefix")
	}
	if len(prunes) != 1 {
		t.Fatalf("%d audit.prune entries, want 1: %+v", len(prunes), prunes)
	}
	wantPruneDetail(t, prunes[0], 8, res)
	sys, err := be.SystemAudit(bg, docex.Page{Limit: 1000})
	must(t, err)
	var copies []docex.AuditEntry
	for _, a := range sys {
		if a.Operation == "audit.prune" && a.TenantID == "acme" {
			copies = append(copies, a)
		}
	}
	if len(copies) != 1 || copies[0].UserID != "u-acme" {
		t.Fatalf("system log copies of the prune: %+v, want 1", copies)
	}
	wantPruneDetail(t, copies[0], 8, res)
	if got := log(other); len(got) != 3 {
		t.Fatalf("other tenant's log: %d entries, want 3", len(got))
	}

	// Again: nothing before the cutoff is left in the prefix.
	res, err = admin.PruneAudit(bg, engine.PruneAuditOptions{Before: cutoff})
	must(t, err)
	if res.Entries != 0 || res.Transactions != 1 || !hasEntry(log(admin), late.ID) {
		t.Fatalf("second prune: %+v", res)
	}

	// Every entry old: the newest stays.
	otherLog := log(other)
	res, err = other.PruneAudit(bg, engine.PruneAuditOptions{Before: cutoff})
	must(t, err)
	if res.Entries != 2 || res.LastID != otherLog[1].ID {
		t.Fatalf("other tenant's prune: %+v, want 2 entries, the newest %s", res, otherLog[1].ID)
	}
	if got := log(other); len(got) != 2 || got[1].ID != otherLog[0].ID || got[0].Operation != "audit.prune" {
		t.Fatalf("other tenant's log after the prune: %+v", got)
	}
	if got := log(admin); len(got) != 12 {
		t.Fatalf("acme's log after the other tenant's prune: %d entries, want 12", len(got))
	}

	// The system log, by the operator.
	op := eng.Provisioner("ops")
	var sysOld int
	for _, a := range sys {
		if a.Time.Before(cutoff) {
			sysOld++
		}
	}
	if sysOld < 2 { // the two tenant.create entries at least
		t.Fatalf("%d system entries before the cutoff, want 2 or more", sysOld)
	}
	_, err = op.PruneSystemAudit(bg, engine.PruneAuditOptions{Before: now})
	wantErr(t, err, docex.ErrInvalid)
	sdry, err := op.PruneSystemAudit(bg, engine.PruneAuditOptions{Before: cutoff, DryRun: true})
	must(t, err)
	if sdry.Entries != sysOld || !sdry.System || !sdry.DryRun {
		t.Fatalf("system dry run: %+v, want %d entries", sdry, sysOld)
	}
	sres, err := op.PruneSystemAudit(bg, engine.PruneAuditOptions{Before: cutoff, Chunk: 1})
	must(t, err)
	if sres.Entries != sysOld || sres.Transactions != sysOld+1 || !sres.System {
		t.Fatalf("system prune: %+v, want %d entries", sres, sysOld)
	}
	sysAfter, err := be.SystemAudit(bg, docex.Page{Limit: 1000})
	must(t, err)
	if len(sysAfter) != len(sys)-sysOld+4 { // the refusal, the dry run, the prune, the other tenant's copy
		t.Fatalf("system log: %d entries after the prune, want %d", len(sysAfter), len(sys)-sysOld+4)
	}
	for _, a := range sysAfter {
		if a.Time.Before(cutoff) {
			t.Fatalf("system entry %+v older than the cutoff is still there", a)
		}
	}
	if a := sysAfter[0]; a.Operation != "audit.prune" || a.UserID != "ops" || a.TenantID != "" {
		t.Fatalf("newest system entry %+v, want the operator's audit.prune", a)
	}
	wantPruneDetail(t, sysAfter[0], sysOld, sres)
	if got := log(admin); len(got) != 12 {
		t.Fatalf("acme's log after the system prune: %d entries, want 12", len(got))
	}

	// Interrupted before the first chunk: nothing deleted.
	kept := log(admin)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	clock.Store(now.Add(time.Hour).UnixMicro())
	_, err = admin.PruneAudit(ctx, engine.PruneAuditOptions{Before: now.Add(-25 * time.Hour)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted prune: %v", err)
	}
	got := log(admin)
	for _, a := range kept {
		if !hasEntry(got, a.ID) {
			t.Fatalf("interrupted prune deleted %+v", a)
		}
	}
}

// hasEntry reports whether log holds the entry with the id.
func hasEntry(log []docex.AuditEntry, id string) bool {
	for _, a := range log {
		if a.ID == id {
			return true
		}
	}
	return false
}

// wantPruneDetail checks the detail of an audit.prune entry against res.
func wantPruneDetail(t *testing.T, a docex.AuditEntry, n int, res engine.AuditPruneResult) {
	t.Helper()
	d := a.Detail
	if fmt.Sprint(d["entries"]) != fmt.Sprint(n) || d["before"] != res.Before.Format(time.RFC3339Nano) ||
		fmt.Sprint(d["last_seq"]) != fmt.Sprint(res.LastSeq) || d["last_id"] != res.LastID || a.Outcome != docex.OutcomeOK {
		t.Fatalf("audit.prune entry %+v, want %d entries, before %s, last %d %s", a, n, res.Before.Format(time.RFC3339Nano), res.LastSeq, res.LastID)
	}
}
