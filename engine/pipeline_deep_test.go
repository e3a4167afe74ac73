package engine

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestDeepNestingIsCheap: a definition under the 64 KiB cap whose value
// nests 16,000 levels deep cost gigabytes to parse (BurntSushi/toml and
// the key locator copy each level's key path for the next: quadratic),
// before the caller's role was checked: 17 GiB for inline tables. It is
// refused now, before it is decoded, naming the line, with a few
// megabytes allocated. Bytes allocated are counted, not time taken.
func TestDeepNestingIsCheap(t *testing.T) {
	const n = 16000
	head := "name = \"deep\"\n[[steps]]\nname = \"a\"\nplugin = \"upper\"\n"
	cases := []struct{ name, src string }{
		{"params array", head + "params = { x = " + strings.Repeat("[", n) + strings.Repeat("]", n) + " }\n"},
		{"params tables", head + "params = { x = " + strings.Repeat("{a=", n/2) + "1" + strings.Repeat("}", n/2) + " }\n"},
		{"unknown top-level key", "name = \"deep\"\nbogus = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n[[steps]]\nname = \"a\"\nplugin = \"upper\"\n"},
		{"unknown step key", head + "bogus = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"},
		{"strings and comments inside", head + "params = { x = " + strings.Repeat("[\"]#\", '[', # ]\n", n/16) + strings.Repeat("]", n/16) + " }\n"},
	}
	for _, c := range cases {
		if len(c.src) > MaxPipelineBytes {
			t.Fatalf("%s: %d bytes, over the cap", c.name, len(c.src))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ParsePipeline([]byte(c.src))
		runtime.ReadMemStats(&after)
		if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), "more than 16") {
			t.Errorf("%s: %v, want a refusal of the nesting", c.name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 128<<20 {
			t.Errorf("%s (%d bytes): %d MiB allocated to parse it", c.name, len(c.src), alloc>>20)
		}
	}
	// As deep as allowed: decoded (and refused for what it holds, a
	// nested parameter, not for its depth).
	_, err := ParsePipeline([]byte(head + "params = { x = " + strings.Repeat("[", 14) + strings.Repeat("]", 14) + " }\n"))
	if err == nil || strings.Contains(err.Error(), "nested 16 deep") {
		t.Errorf("16 levels: %v, want a refusal of the parameter", err)
	}
	// Shallow nesting is still located: the line of an unknown key in an
	// inline table of a step is named.
	_, err = ParsePipeline([]byte(head + "\n\nx = { a = [ { b = 1 } ] }\n"))
	if err == nil || !strings.Contains(err.Error(), "line 7") {
		t.Errorf("unknown key on line 7: %v", err)
	}
}
