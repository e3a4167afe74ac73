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
