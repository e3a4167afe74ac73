package main

import (
	"strings"
	"testing"
)

// TestDocUpdateContentType: doc update takes its content type from
// --content-type, else FILE's extension (a document added as a .docx and
// updated with a .txt file holds text), else the document's name and the
// new content, as an add does.
func TestDocUpdateContentType(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	with := initAdmin(h, "acme")
	h.ok(with("basket", "create", "b")...)
	const docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("report.docx", "PK\x03\x04 not really a docx"), "-q")...).stdout)
	for _, tc := range []struct {
		name, file, content string
		flags               []string
		want                string
	}{
		{"a .txt file", "new.txt", "plain text now", nil, "text/plain; charset=utf-8"},
		{"a .md file", "notes.md", "# markdown", nil, "text/markdown; charset=utf-8"},
		{"no extension: the document's name", "blob", "more plain text", nil, docx},
		{"an unknown extension: the document's name", "data.zzqx", "plain again", nil, docx},
		{"--content-type wins", "other.txt", "marked down", []string{"--content-type", "text/markdown"}, "text/markdown"},
		{"back to text", "again.txt", "plain text at last", nil, "text/plain; charset=utf-8"},
	} {
		args := with(append([]string{"doc", "update", id, h.file(tc.file, tc.content), "--json"}, tc.flags...)...)
		got := decode[struct {
			ContentType string `json:"content_type"`
		}](t, h.ok(args...).stdout).ContentType
		stored := decode[struct {
			ContentType string `json:"content_type"`
		}](t, h.ok(with("doc", "get", id, "--json")...).stdout).ContentType
		if got != tc.want || stored != tc.want {
			t.Errorf("%s: update says %q, doc get %q, want %q", tc.name, got, stored, tc.want)
		}
	}
	// A refused --content-type changes nothing.
	h.want(exitInvalid, with("doc", "update", id, h.file("x.txt", "refused"), "--content-type", "text/\x01bad")...)
	if out := h.ok(with("doc", "get", id, "--json")...).stdout; !strings.Contains(out, `"text/plain; charset=utf-8"`) {
		t.Errorf("after a refused update: %s", out)
	}
}

// initAdmin initialises h's system, creates tenant tn and returns a
// function that appends the flags of alice, an admin of tn, to a
// command line.
func initAdmin(h *harness, tn string) func(args ...string) []string {
	h.ok("init")
	h.ok("tenant", "create", tn)
	return func(args ...string) []string {
		return append(args, "--tenant", tn, "--user", "alice", "--roles", "admin")
	}
}
