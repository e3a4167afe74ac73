package spell

import (
	"errors"

	"github.com/BurntSushi/toml"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	cands := []string{"extract-text", "chunk", "redact-pii", "size", "overlap", "strategy"}
	for _, c := range []struct{ name, want string }{
		{"extract_text", ` (did you mean "extract-text"?)`},
		{"Extract-Text", ` (did you mean "extract-text"?)`},
		{"sise", ` (did you mean "size"?)`},
		{"chunks", ` (did you mean "chunk"?)`},
		{"redact", ""}, // 4 edits: too far
		{"overlpa", ` (did you mean "overlap"?)`},
		{"x", ""},
		{"", ""},
		{"chunk", ""}, // itself is not a suggestion
		{"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", ""},
	} {
		if got := Suggest(c.name, cands); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	if got := Suggest("a", nil); got != "" {
		t.Errorf("no candidates: %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b        string
		limit, want int
	}{
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 2, 3}, // over the limit: limit+1
		{"", "abc", 5, 3},
		{"abc", "abc", 1, 0},
		{"ab", "ba", 3, 1}, // a transposition
		{"titel", "title", 1, 1},
		{"ca", "abc", 3, 3},
	} {
		if got := editDistance(c.a, c.b, c.limit); got != c.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", c.a, c.b, c.limit, got, c.want)
		}
	}
}

func FuzzSuggest(f *testing.F) {
	f.Add("extract_text", "extract-text")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, name, cand string) {
		got := Suggest(name, []string{cand})
		if got != "" && name == cand {
			t.Fatalf("suggested the name itself: %q", got)
		}
		if d := editDistance(name, cand, 3); d < 0 || d > 4 {
			t.Fatalf("editDistance out of range: %d", d)
		}
	})
}

func TestSuggestOrList(t *testing.T) {
	for _, c := range []struct {
		name  string
		cands []string
		want  string
	}{
		{"sise", []string{"size", "overlap"}, ` (did you mean "size"?)`},
		{"foo", []string{"size", "overlap"}, ` (its parameters: overlap, size)`},
		{"foo", nil, ` (it takes none)`},
	} {
		if got := SuggestOrList(c.name, c.cands, "parameters"); got != c.want {
			t.Errorf("SuggestOrList(%q, %v) = %q, want %q", c.name, c.cands, got, c.want)
		}
	}
}

func TestClosestAndFieldKeys(t *testing.T) {
	if best, ok := Closest("stat", []string{"state", "doc"}); !ok || best != "state" {
		t.Errorf("Closest(stat) = %q, %v", best, ok)
	}
	if best, ok := Closest("zzz", []string{"state"}); ok {
		t.Errorf("Closest(zzz) = %q, want none", best)
	}
	type section struct {
		A int    `yaml:"alpha" toml:"a"`
		B string `yaml:"beta,omitempty"`
		C bool   `yaml:"-"`
		D int
	}
	if got := FieldKeys(reflect.TypeFor[section](), "yaml"); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("FieldKeys yaml = %v", got)
	}
	if got := FieldKeys(reflect.TypeFor[section](), "toml"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("FieldKeys toml = %v", got)
	}
}

func TestTOMLTypeError(t *testing.T) {
	steps := func(key, _ string) string {
		if key == "steps" {
			return "[[steps]] tables"
		}
		return ""
	}
	for _, tt := range []struct {
		in       string
		want     func(key, dest string) string
		line     int
		key, msg string
		ok       bool
	}{
		{`toml: line 2 (last key "description"): incompatible types: TOML value has type int64; destination has type string`, nil, 2, "description", "want a string, got an integer", true},
		{`toml: line 3 (last key "steps"): incompatible types: TOML value has type map[string]any; destination has type slice`, steps, 3, "steps", "want [[steps]] tables, got a table", true},
		{`toml: line 3 (last key "steps"): incompatible types: TOML value has type int64; destination has type slice`, nil, 3, "steps", "want an array, got an integer", true},
		{`toml: line 4 (last key "on"): incompatible types: TOML value has type string; destination has type boolean`, steps, 4, "on", "want true or false, got a string", true},
		// An unknown type keeps the decoder's words; other errors too.
		{`toml: line 5 (last key "x"): incompatible types: TOML value has type complex128; destination has type string`, nil, 5, "x", "incompatible types: TOML value has type complex128; destination has type string", true},
		{`toml: line 6 (last key "x"): value out of range`, nil, 6, "x", "value out of range", true},
		{`toml: line x (last key "x"): value out of range`, nil, 0, "", "", false},
		{`some other error`, nil, 0, "", "", false},
	} {
		line, key, msg, ok := TOMLTypeError(tt.in, tt.want)
		if line != tt.line || key != tt.key || msg != tt.msg || ok != tt.ok {
			t.Errorf("TOMLTypeError(%q) = %d, %q, %q, %v; want %d, %q, %q, %v", tt.in, line, key, msg, ok, tt.line, tt.key, tt.msg, tt.ok)
		}
	}
}

func FuzzTOMLTypeError(f *testing.F) {
	f.Add(`toml: line 2 (last key "description"): incompatible types: TOML value has type int64; destination has type string`)
	f.Add(`toml: line 2 (last key "`)
	f.Fuzz(func(t *testing.T, s string) {
		line, _, msg, ok := TOMLTypeError(s, nil)
		if ok && (!strings.HasPrefix(s, "toml: line ") || msg == "" && !strings.HasSuffix(s, "\"): ")) {
			t.Fatalf("TOMLTypeError(%q) = line %d, %q, ok", s, line, msg)
		}
	})
}

// TestTOMLSyntax rewords the parser's own messages (taken from the parser,
// so that a reworded release shows here).
func TestTOMLSyntax(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name = \"x\"\nname = \"y\"\n", `key "name" is defined twice`},
		{"[a]\nb = 1\n[a]\n", `key "a" is defined twice`},
		{"a = 1\n[a]\n", `key "a" is defined twice`},
		{"[a]\n[[a]]\n", `key "a" is already defined: it cannot also be an array of tables`},
		{"name = \n", "expected value but found the end of the line instead"},
		{"[[steps]\n", "expected end of table array name delimiter ']', but got the end of the line instead"},
		{"name = ", "unexpected end of the file; expected value"},
		{"name = \"x\n", "strings cannot contain newlines"},
		// The parser quotes the end of the file as a NUL rune.
		{"name = \"\\", `invalid escape in string '\' at the end of the file`},
		{"a = 1\n[t", "expected '.' or ']' to end table name, but got the end of the file instead"},
	} {
		var v map[string]any
		_, err := toml.Decode(c.src, &v)
		var pe toml.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: %v, want a toml.ParseError", c.src, err)
		}
		if got := TOMLSyntax(pe.Message); got != c.want {
			t.Errorf("%q: TOMLSyntax(%q) = %q, want %q", c.src, pe.Message, got, c.want)
		}
	}
}

func TestTOMLLine(t *testing.T) {
	for _, c := range []struct {
		src               string
		want              int
		line, start, size int // what the parser reports
	}{
		{`"\`, 1, 0, 1, 1},                             // the parser's line 0
		{"a = 1\nb = 2\n\"\\", 3, 2, 13, 1},            // and its line 2
		{"a = [\n", 1, 1, 5, 1},                        // unexpected EOF
		{"a = 1\nb = \"abc", 2, 2, 13, 1},              // unexpected EOF in a string
		{"a = 1\nb = \"\\u12\"\nc = 2\n", 2, 2, 11, 5}, // not at the end: the parser's line
		{"a\nb", 2, 9, 0, 1},                           // past the end
		{"", 1, -1, 0, 0},
		// At a newline: the line it ends (the parser says the next).
		{"name = \"p15\"\n[[steps]\nname = \"c\"\n", 2, 3, 20, 2},
		{"name = \"p15\"\n[a\nb = 1\n", 2, 3, 15, 1},
		{"x = \r\ny = 1\n", 1, 2, 4, 1},
		{"a = 1\nb = \"\\u12\nc\"\n", 2, 2, 11, 5}, // a newline inside: where it starts
	} {
		if got := TOMLLine(c.line, c.start, c.size, []byte(c.src)); got != c.want {
			t.Errorf("TOMLLine(%d, %d, %d, %q) = %d, want %d", c.line, c.start, c.size, c.src, got, c.want)
		}
	}
}

func TestTOMLNesting(t *testing.T) {
	cases := []struct {
		src         string
		depth, line int
	}{
		{"", 0, 0},
		{"a = 1\n", 0, 0},
		{"[t]\na = [1, [2]]\n", 2, 2},
		{"[[steps]]\nx = { a = [ { b = 1 } ] }\n", 3, 2},
		{"a = \"[[[[\" # [[[[\nb = '{{{{'\n", 0, 0},
		{"a = \"\"\"\n[[[\n\"\"\"\nb = [[1]]\n", 2, 4},
		{"a = '''\n{{{'''\nb = [1]\n", 1, 3},
		{"a = \"\\\"[[\" \nb = [\n[\n1]]\n", 2, 3},
		{"a = \"\"\"x\"\"\"\" \nb = [1]\n", 1, 2}, // a quote of the string's own before its closing three
		{strings.Repeat("[", 40), 40, 1},
		{"]]]]", 0, 0},
	}
	for _, c := range cases {
		if d, l := TOMLNesting([]byte(c.src)); d != c.depth || l != c.line {
			t.Errorf("TOMLNesting(%q) = %d, %d; want %d, %d", c.src, d, l, c.depth, c.line)
		}
	}
}

// FuzzTOMLNesting: any input is read without a panic, and the depth is
// never more than the number of opening brackets.
func FuzzTOMLNesting(f *testing.F) {
	for _, s := range []string{"a = [[1]]", "x = \"\"\"[\"\"\"", "'''", "\"\\", "{[#\n]}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		d, l := TOMLNesting(src)
		if open := strings.Count(string(src), "[") + strings.Count(string(src), "{"); d > open || d < 0 || (d > 0) != (l > 0) {
			t.Fatalf("depth %d line %d for %d opening brackets", d, l, open)
		}
	})
}
