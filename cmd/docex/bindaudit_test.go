package main

import (
	"reflect"
	"strings"
	"testing"
)

// TestBindAuditEntries: the audit target of basket.bind was "BASKET_ID
// PIPELINE" and of basket create --pipeline "NAME pipeline=PIPELINE",
// where docs/json.md says the target is the id or name acted on. The
// target is the basket (its id for a bind, its name for a create) and
// the pipeline is in the detail, with "unchanged" for a bind that changed
// nothing; a refused one has the same target and detail, a denied one
// too (it had {}).
func TestBindAuditEntries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "ann", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, admin...) }
	h.ok(with("plugin", "install", "../../testplugins/upper")...)
	h.ok(with("pipeline", "create", h.file("up.toml", "name = \"up\"\n[[steps]]\nname = \"u\"\nplugin = \"upper\"\n"))...)
	h.ok(with("basket", "create", "inbox", "--pipeline", "up")...)
	other := decode[struct{ ID string }](t, h.ok(with("basket", "create", "other", "--json")...).stdout)
	h.ok(with("basket", "bind", "other", "up")...)
	h.ok(with("basket", "bind", "other", "up")...)
	h.want(exitNotFound, with("basket", "bind", "other", "nope")...)
	// Denied (a writer has no pipeline.manage): the same detail.
	writer := []string{"--tenant", "acme", "--user", "wes", "--roles", "writer"}
	h.want(exitDenied, append([]string{"basket", "bind", "other", "up"}, writer...)...)
	h.want(exitDenied, append([]string{"basket", "create", "third", "--pipeline", "up"}, writer...)...)
	type entry struct {
		Operation, Target, Outcome string
		Detail                     map[string]any
	}
	var got []entry
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		if strings.HasPrefix(e.Operation, "basket.") {
			got = append([]entry{e}, got...) // oldest first
		}
	}
	want := []entry{
		{"basket.create", "inbox", "ok", map[string]any{"pipeline": "up"}},
		{"basket.create", "other", "ok", map[string]any{}},
		{"basket.bind", other.ID, "ok", map[string]any{"pipeline": "up"}},
		{"basket.bind", other.ID, "ok", map[string]any{"pipeline": "up", "unchanged": true}},
		{"basket.bind", other.ID, "error", map[string]any{"pipeline": "nope"}},
		{"basket.bind", other.ID, "denied", map[string]any{"pipeline": "up"}},
		{"basket.create", "third", "denied", map[string]any{"pipeline": "up"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("basket audit entries:\n got %+v\nwant %+v", got, want)
	}
}

// TestUnknownBasketWritesAudited: basket bind, basket unbind, basket
// delete and pipeline run --basket on a basket that does not exist exited
// 3 and left no audit entry, where docs/json.md says a basket.bind is
// logged refused or not and docs/isolation.md that every tenant write
// audits the input it refuses. Each is now audited as the write it was:
// outcome error, the basket as given as the target (pipeline.run: the
// pipeline, the basket in the detail), bind's detail naming the pipeline.
func TestUnknownBasketWritesAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "ann", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, admin...) }
	h.want(exitNotFound, with("basket", "bind", "nobasket", "up")...)
	h.want(exitNotFound, with("basket", "unbind", "nobasket")...)
	h.want(exitNotFound, with("basket", "delete", "nobasket")...)
	h.want(exitNotFound, with("pipeline", "run", "up", "--basket", "nobasket")...)
	type entry struct {
		Operation, Target, Outcome string
		Detail                     map[string]any
	}
	var got []entry
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		got = append([]entry{e}, got...) // oldest first
	}
	want := []entry{
		{"basket.bind", "nobasket", "error", map[string]any{"pipeline": "up"}},
		{"basket.unbind", "nobasket", "error", map[string]any{}},
		{"basket.delete", "nobasket", "error", map[string]any{}},
		{"pipeline.run", "up", "error", map[string]any{"basket": "nobasket"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit entries:\n got %+v\nwant %+v", got, want)
	}
}
