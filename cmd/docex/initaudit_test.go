package main

import (
	"testing"
)

// TestInitAudit: docex init records itself in the system audit log
// (system.init) and its installs of the built-in steps, each by the
// operator's --user, or "system" without one (docs/json.md). Before, init
// wrote no entry of its own and its installs were by "docex init".
func TestInitAudit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		actor string
	}{
		{"with --user", []string{"init", "--user", "bob"}, "bob"},
		{"without", []string{"init", "--no-builtin-steps"}, "system"},
		{"single-file", []string{"init", "--single-file", "--user", "carol"}, "carol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.actor != "system" {
				delete(h.env, noBuiltinEnv) // the built-in steps are installed
			}
			h.ok(tc.args...)
			h.ok(tc.args...) // again: nothing is created, nothing recorded
			log := decode[[]map[string]any](t, h.ok("audit", "list", "--system", "--json").stdout)
			inits, installs := 0, 0
			for _, e := range log {
				switch e["operation"] {
				case "system.init":
					inits++
				case "plugin.install.system":
					installs++
				default:
					continue
				}
				if e["user_id"] != tc.actor || e["outcome"] != "ok" {
					t.Errorf("entry %v: want it by %q, ok", e, tc.actor)
				}
			}
			if inits != 1 {
				t.Errorf("%d system.init entries, want 1 (init twice: only the first creates the system)", inits)
			}
			if builtins := tc.actor != "system"; builtins != (installs > 0) {
				t.Errorf("%d plugin.install.system entries", installs)
			}
		})
	}
}
