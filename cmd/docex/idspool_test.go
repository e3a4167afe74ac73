package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestIDSpoolEmit: doc delete --json writes the ids deleted from a
// temporary file (idSpool) byte for byte as the encoding of deletedDocs
// by cli.emit would, with no id, one, and several added in chunks, with
// characters JSON escapes and HTML ones it does not, and content_error
// ("" or the content removal's error).
func TestIDSpoolEmit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		id         string
		chunks     [][]string
		contentErr string
	}{
		{"none", "a", nil, ""},
		{"empty chunks", "a", [][]string{{}, {}}, ""},
		{"one", "0190a5c3-0000-7000-8000-000000000001", [][]string{{"0190a5c3-0000-7000-8000-000000000001"}}, ""},
		{"several", "r<&>", [][]string{{"x", "y\"z"}, {}, {"é\\", "<b>", "r<&>"}}, ""},
		{"content error", "a", [][]string{{"a"}}, "content store: remove: \"x\" <&>\nnext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var all []string
			s, err := newIDSpool()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, ch := range tc.chunks {
				all = append(all, ch...)
				if err := s.add(ch); err != nil {
					t.Fatal(err)
				}
			}
			if all == nil {
				all = []string{}
			}
			var want, got bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(deletedDocs{ID: tc.id, Deleted: true, DeletedIDs: all, ContentError: tc.contentErr}); err != nil {
				t.Fatal(err)
			}
			if err := s.emitDeleted(&got, tc.id, tc.contentErr); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Fatalf("spooled output:\n%s\nwant:\n%s", got.String(), want.String())
			}
		})
	}
	s, err := newIDSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.add([]string{"a\nb"}); err == nil {
		t.Fatal("an id with a newline was spooled")
	}
}
