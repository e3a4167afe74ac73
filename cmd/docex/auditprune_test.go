package main

import (
	"strings"
	"testing"
	"time"
)

// TestAuditPrune: audit prune refuses bad --older-than values (exit 2:
// malformed, zero or negative before the tenant is opened; under 24h by
// the engine, audited) and a reader or writer (exit 4) without deleting
// anything; --json prints docs/json.md's shape; a prune records its
// audit.prune entry; --system prunes the system log (operator).
func TestAuditPrune(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, admin...) }
	h.ok(with("basket", "create", "b")...)

	type entry struct {
		ID, Operation, Outcome, Error string
		TenantID                      string `json:"tenant_id"`
		Detail                        map[string]any
	}
	list := func(args ...string) []entry {
		return decode[[]entry](t, h.ok(append([]string{"audit", "list", "--json"}, args...)...).stdout)
	}
	before := list(admin...)

	for _, bad := range [][]string{
		{},
		{"--older-than", "0s"},
		{"--older-than", "-5m"},
		{"--older-than", "0d"},
		{"--older-than", "x"},
		{"--older-than", "1.5d"},
		{"--older-than", "23h"},
		{"--older-than", "23h59m", "--system"},
		{"--older-than", "1h", "--dry-run"},
	} {
		r := h.want(exitInvalid, with(append([]string{"audit", "prune", "--json"}, bad...)...)...)
		if e := decode[map[string]map[string]string](t, r.stderr); e["error"]["kind"] != "invalid" || r.stdout != "" {
			t.Errorf("audit prune %v: %+v, stdout %q", bad, e, r.stdout)
		}
	}
	r := h.want(exitInvalid, with("audit", "prune", "--older-than", "12h")...)
	if !strings.Contains(r.stderr, "less than 24h0m0s ago") {
		t.Errorf("audit prune --older-than 12h: %s", r.stderr)
	}
	for _, role := range []string{"reader", "writer"} {
		h.want(exitDenied, "audit", "prune", "--older-than", "30d", "--tenant", "acme", "--user", "bob", "--roles", role)
	}
	after := list(admin...)
	for _, a := range before {
		found := false
		for _, b := range after {
			found = found || b.ID == a.ID
		}
		if !found {
			t.Fatalf("a refused prune deleted %+v", a)
		}
	}
	// The engine's refusals (under 24h) and the denials are audited; the
	// CLI's own checks are not.
	var refused, denied int
	for _, a := range after {
		switch {
		case a.Operation == "audit.prune" && a.Outcome == "error" && strings.Contains(a.Error, "less than 24h0m0s ago"):
			refused++
		case a.Operation == "audit.prune" && a.Outcome == "denied":
			denied++
		}
	}
	if refused != 3 || denied != 2 { // 23h, 1h --dry-run, 12h; reader, writer
		t.Fatalf("audit.prune refusals: %d errors (want 3), %d denials (want 2): %+v", refused, denied, after)
	}

	type pruneJSON struct {
		Entries, Transactions int
		Before                time.Time
		LastSeq               int64  `json:"last_seq"`
		LastID                string `json:"last_id"`
		System                bool
		DryRun                bool `json:"dry_run"`
	}
	dry := decode[pruneJSON](t, h.ok(with("audit", "prune", "--older-than", "1d", "--dry-run", "--json")...).stdout)
	if dry.Entries != 0 || !dry.DryRun || dry.System || dry.Transactions != 0 || time.Since(dry.Before) < 24*time.Hour {
		t.Fatalf("dry run: %+v", dry)
	}
	res := decode[pruneJSON](t, h.ok(with("audit", "prune", "--older-than", "720h", "--json")...).stdout)
	if res.Entries != 0 || res.DryRun || res.Transactions != 1 || res.LastSeq != 0 || res.LastID != "" || res.Before.Nanosecond()%1000 != 0 {
		t.Fatalf("prune: %+v", res)
	}
	if got := list(admin...)[0]; got.Operation != "audit.prune" || got.Outcome != "ok" || got.Detail["entries"] != 0.0 || got.Detail["before"] != res.Before.Format(time.RFC3339Nano) {
		t.Fatalf("newest entry %+v, want the prune's", got)
	}
	if r := h.ok(with("audit", "prune", "--older-than", "30d")...); !strings.HasPrefix(r.stdout, "deleted 0 entries of the tenant's audit log recorded before ") {
		t.Fatalf("audit prune: %q", r.stdout)
	}

	// The system log, by the operator.
	sres := decode[pruneJSON](t, h.ok("audit", "prune", "--system", "--older-than", "30d", "--json").stdout)
	if !sres.System || sres.Entries != 0 || sres.Transactions != 1 {
		t.Fatalf("system prune: %+v", sres)
	}
	sys := list("--system")
	if len(sys) < 2 || sys[1].Operation != "audit.prune" || sys[1].TenantID != "" { // sys[0]: this list
		t.Fatalf("system log: %+v, want the prune second newest", sys)
	}
	if r := h.ok("audit", "prune", "--system", "--older-than", "30d", "--dry-run"); !strings.HasPrefix(r.stdout, "would delete 0 entries of the system audit log recorded before ") {
		t.Fatalf("system dry run: %q", r.stdout)
	}
}
