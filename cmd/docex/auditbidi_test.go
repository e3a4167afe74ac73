package main

import (
	"strings"
	"testing"
)

// TestAuditBidiLabelsEscaped: on SQLite and on PostgreSQL alike, a
// refused basket name and a refused user id holding a bidirectional
// control are recorded with the control written out as the six
// characters \u202e: audit list --json and audit list --system --json
// show that text (no raw control), and the text output shows the same.
// Before, the JSON held the control raw (probe P18 F2b).
func TestAuditBidiLabelsEscaped(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if backend == "postgres" {
				postgresConfig(t, h, "auditbidi", "")
			}
			h.ok("init")
			h.ok("tenant", "create", "acme")
			admin := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
			h.want(exitInvalid, append([]string{"basket", "create", "in\u202etxt.exe"}, admin...)...)
			h.want(exitInvalid, "basket", "list", "--tenant", "acme", "--user", "al\u202eice", "--roles", "admin")
			type entry struct {
				Operation, Target string
				UserID            string `json:"user_id"`
			}
			r := h.ok(append([]string{"audit", "list", "--json"}, admin...)...)
			sys := h.ok("audit", "list", "--system", "--json")
			text := h.ok(append([]string{"audit", "list"}, admin...)...)
			for _, out := range []string{r.stdout, sys.stdout, text.stdout} {
				if strings.ContainsRune(out, '\u202e') {
					t.Errorf("raw U+202E in %s", out)
				}
			}
			found := false
			for _, e := range decode[[]entry](t, r.stdout) {
				found = found || e.Operation == "basket.create" && e.Target == `in\u202etxt.exe`
			}
			if !found {
				t.Errorf("no basket.create entry with target in\\u202etxt.exe: %s", r.stdout)
			}
			found = false
			for _, e := range decode[[]entry](t, sys.stdout) {
				found = found || e.UserID == `al\u202eice`
			}
			if !found {
				t.Errorf("no system entry of user al\\u202eice: %s", sys.stdout)
			}
			if !strings.Contains(text.stdout, `in\u202etxt.exe`) {
				t.Errorf("text output: %s", text.stdout)
			}
		})
	}
}
