package quote

import (
	"strings"
	"testing"
)

func TestShort(t *testing.T) {
	long := strings.Repeat("a", 63) + "é" + strings.Repeat("b", 40) // é straddles byte 64
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"abc\n", `"abc\n"`},
		{strings.Repeat("x", 64), `"` + strings.Repeat("x", 64) + `"`},
		{strings.Repeat("x", 65), `"` + strings.Repeat("x", 64) + `"... (65 bytes)`},
		{long, `"` + strings.Repeat("a", 63) + `"... (105 bytes)`},
	} {
		if got := Short(c.in); got != c.want {
			t.Errorf("Short(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func FuzzShort(f *testing.F) {
	f.Add(strings.Repeat("é", 40))
	f.Fuzz(func(t *testing.T, s string) {
		got := Short(s)
		if len(got) > 4*Max+40 {
			t.Fatalf("Short of %d bytes is %d bytes", len(s), len(got))
		}
		if len(s) <= Max && !strings.HasPrefix(got, `"`) {
			t.Fatalf("Short(%q) = %s", s, got)
		}
	})
}
