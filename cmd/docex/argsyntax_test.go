package main

import "testing"

// TestArgumentSyntaxBeforeRole pins what docs/isolation.md says of the
// role check "whatever the request": the CLI's argument syntax (a --meta
// that is not key=value) is a usage error found before anything is
// opened, for every role, and is not audited; what the arguments carry
// (a metadata key, a content type) is the engine's to refuse, after the
// role: a reader's add is that role's denial (audited), a writer's is
// refused as invalid (audited, outcome error).
func TestArgumentSyntaxBeforeRole(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	as := func(role string, args ...string) []string {
		return append(args, "--tenant", "acme", "--user", "alice", "--roles", role)
	}
	h.ok(as("admin", "basket", "create", "b")...)
	f := h.file("q.txt", "q")
	tests := []struct {
		role    string
		args    []string
		code    int
		outcome string // of the document.add entry; "" for none
	}{
		{"reader", []string{"--meta", "bad"}, exitInvalid, ""},
		{"writer", []string{"--meta", "bad"}, exitInvalid, ""},
		{"reader", []string{"--meta", "bad\tkey=1"}, exitDenied, "denied"},
		{"reader", []string{"--content-type", "bad"}, exitDenied, "denied"},
		{"writer", []string{"--meta", "bad\tkey=1"}, exitInvalid, "error"},
		{"writer", []string{"--content-type", "bad"}, exitInvalid, "error"},
	}
	adds := func() []map[string]any { // newest first
		var out []map[string]any
		for _, e := range decode[[]map[string]any](t, h.ok(as("admin", "audit", "list", "--json", "--limit", "1000")...).stdout) {
			if e["operation"] == "document.add" {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range tests {
		before := len(adds())
		h.want(tc.code, as(tc.role, append([]string{"doc", "add", "b", f}, tc.args...)...)...)
		log := adds()
		added := log[:len(log)-before]
		switch {
		case tc.outcome == "" && len(added) != 0:
			t.Errorf("%s %v: audited %v, want nothing (a usage error)", tc.role, tc.args, added)
		case tc.outcome != "" && (len(added) != 1 || added[0]["operation"] != "document.add" || added[0]["outcome"] != tc.outcome):
			t.Errorf("%s %v: audited %v, want one document.add, outcome %s", tc.role, tc.args, added, tc.outcome)
		}
	}
}
