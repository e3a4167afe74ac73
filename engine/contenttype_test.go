package engine

import "testing"

// TestContentTypeByName: the type an extension gives, normalised; none
// for no extension or an unknown one.
func TestContentTypeByName(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"a.txt", "text/plain; charset=utf-8", true},
		{"A.TXT", "text/plain; charset=utf-8", true},
		{"dir/report.pdf", "application/pdf", true},
		{"r.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", true},
		{"t.tsv", "text/tab-separated-values; charset=utf-8", true},
		{"notes.markdown", "text/markdown; charset=utf-8", true},
		{"noext", "", false},
		{"trailing.", "", false},
		{"x.zzqx", "", false},
		{"", "", false},
	} {
		got, ok := ContentTypeByName(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ContentTypeByName(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
