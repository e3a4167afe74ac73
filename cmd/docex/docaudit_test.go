package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedDocumentWritesAreAudited: a failed doc add or doc update left
// no audit entry (content over the limit, an unknown basket, a bad
// --content-type, a file it could not read), where failed metadata.set,
// plugin.remove, pipeline.create ... each leave one with outcome error.
// Now each is a document.add or document.update entry in the tenant's
// own log, outcome error, with the error's text; nothing was added or
// changed. A role that may not write gets the denial, whatever the
// failure would have been.
func TestFailedDocumentWritesAreAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.editConfig("    tenant_scoped: true\n", "    tenant_scoped: true\n    max_document_bytes: 100\n")
	h.ok("tenant", "create", "acme")
	h.ok("tenant", "create", "globex")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	bk := decode[struct{ ID string }](t, h.ok(with("basket", "create", "b", "--json")...).stdout)
	ok := h.file("ok.txt", "small")
	big := h.file("big.bin", strings.Repeat("x", 101))
	d := decode[[]added](t, h.ok(with("doc", "add", "b", ok, "--json")...).stdout)[0].Document

	missing := filepath.Join(h.dir, "missing.txt")
	cases := []struct {
		args          []string
		code          int
		op, target    string
		path, errCode string
	}{
		{[]string{"doc", "add", "b", big}, exitInvalid, "document.add", bk.ID, "", "too_large"},
		{[]string{"doc", "add", "b", ok, big}, exitInvalid, "document.add", bk.ID, "", "too_large"}, // a batch: all or nothing
		{[]string{"doc", "add", "nosuch", ok}, exitNotFound, "document.add", "nosuch", "", "not_found"},
		{[]string{"doc", "add", "b", h.file("new.txt", "new"), "--content-type", "bad"}, exitInvalid, "document.add", bk.ID, "", "invalid"},
		{[]string{"doc", "add", "b", missing}, exitInvalid, "document.add", "b", missing, "invalid"}, // refused before the engine: the basket as given
		{[]string{"doc", "update", d.ID, big}, exitInvalid, "document.update", d.ID, "", "too_large"},
		{[]string{"doc", "update", d.ID, ok, "--content-type", "bad"}, exitInvalid, "document.update", d.ID, "", "invalid"},
		{[]string{"doc", "update", d.ID, missing}, exitInvalid, "document.update", d.ID, missing, "invalid"},
	}
	var msgs []string
	for _, c := range cases {
		e := decode[map[string]map[string]string](t, h.want(c.code, with(append(c.args, "--json")...)...).stderr)
		if e["error"]["code"] != c.errCode {
			t.Errorf("docex %s: code %q, want %q", strings.Join(c.args, " "), e["error"]["code"], c.errCode)
		}
		msgs = append(msgs, e["error"]["message"])
	}
	type entry struct {
		Operation, Target, Outcome, Error string
		Detail                            map[string]any
	}
	var log []entry
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		if e.Outcome != "ok" {
			log = append([]entry{e}, log...) // oldest first
		}
	}
	if len(log) != len(cases) {
		t.Fatalf("%d failed entries, want %d: %+v", len(log), len(cases), log)
	}
	for i, c := range cases {
		e := log[i]
		path, _ := e.Detail["path"].(string)
		if e.Operation != c.op || e.Target != c.target || e.Outcome != "error" || e.Error != msgs[i] || path != c.path {
			t.Errorf("docex %s: audited %+v, want %s on %s, outcome error, error %q, path %q", strings.Join(c.args, " "), e, c.op, c.target, msgs[i], c.path)
		}
	}
	// Nothing was added or changed.
	docs := decode[[]doc](t, h.ok(with("doc", "list", "b", "--json")...).stdout)
	if len(docs) != 1 || docs[0].ID != d.ID || docs[0].Checksum != d.Checksum || docs[0].ContentType != d.ContentType {
		t.Fatalf("basket after the failures: %+v, want %+v alone", docs, d)
	}
	// The other tenant's log holds none of it.
	for _, e := range decode[[]entry](t, h.ok("audit", "list", "--json", "--tenant", "globex", "--user", "gus", "--roles", "admin").stdout) {
		if strings.HasPrefix(e.Operation, "document.") {
			t.Errorf("acme's failure in globex's log: %+v", e)
		}
	}

	// A reader is denied, whatever the failure would have been.
	reader := []string{"--tenant", "acme", "--user", "rita", "--roles", "reader"}
	for _, args := range [][]string{
		{"doc", "add", "b", big},
		{"doc", "add", "nosuch", ok},
		{"doc", "add", "b", missing},
		{"doc", "update", d.ID, missing},
	} {
		h.want(exitDenied, append(args, reader...)...)
	}
	denied := 0
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		if e.Outcome == "denied" && strings.HasPrefix(e.Operation, "document.") {
			denied++
		}
	}
	if denied != 4 {
		t.Errorf("%d denials audited, want 4", denied)
	}
}
