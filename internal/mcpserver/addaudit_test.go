package mcpserver

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestFailedAddsAreAudited: add_document audited the paths it refused,
// and nothing else that failed: content over the inline limit, no source
// or two, no name, an unknown basket, a missing file, a content type the
// engine refuses. Now each is an mcp.document.add entry in the tenant's
// log, outcome error, with the error's text; nothing is added.
func TestFailedAddsAreAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, w := e.connect(t, user("will", "writer"), Config{AllowPath: e.allow, MaxInlineBytes: 10})
	cases := []struct {
		args   map[string]any
		target string
		path   string
	}{
		// Refused before the engine: the basket as given.
		{map[string]any{"basket": "in", "name": "a.txt", "text": "eleven char"}, "in", ""},
		{map[string]any{"basket": "in", "name": "a.txt", "text": "a", "base64": "YQ=="}, "in", ""},
		{map[string]any{"basket": "in", "text": "a"}, "in", ""},
		{map[string]any{"basket": "nosuch", "name": "a.txt", "text": "a"}, "nosuch", ""},
		{map[string]any{"basket": "in", "path": "missing.txt"}, "in", "missing.txt"},
		// Refused by the engine: the basket's id.
		{map[string]any{"basket": "in", "name": "a.txt", "text": "a", "content_type": "bad"}, e.basket.ID, ""},
	}
	var msgs []string
	for _, c := range cases {
		msg := callErr(t, w, "add_document", c.args)
		_, msg, _ = strings.Cut(msg, ": ") // "code: message"
		msgs = append(msgs, msg)
	}
	log, err := e.admin.Audit(ctx, docex.Page{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	var failed []docex.AuditEntry
	for _, a := range log {
		if a.UserID == "will" && a.Operation == "mcp.document.add" && a.Outcome != docex.OutcomeOK { // reads are audited too
			failed = append([]docex.AuditEntry{a}, failed...) // oldest first
		}
	}
	if len(failed) != len(cases) {
		t.Fatalf("%d failed adds audited, want %d: %+v", len(failed), len(cases), failed)
	}
	for i, c := range cases {
		a := failed[i]
		path, _ := a.Detail["path"].(string)
		if a.Operation != "mcp.document.add" || a.Outcome != docex.OutcomeError || a.Target != c.target || path != c.path || a.Error == "" || !strings.HasPrefix(msgs[i], a.Error) { // the message adds a hint
			t.Errorf("%v: audited %+v, want mcp.document.add on %s, outcome error, error %q, path %q", c.args, a, c.target, msgs[i], c.path)
		}
	}
	docs, err := e.admin.Documents(ctx, e.basket.ID, docex.Page{})
	if err != nil || len(docs) != 1 {
		t.Fatalf("basket after the failures: %v %v, want the first document alone", docs, err)
	}
}
