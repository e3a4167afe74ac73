package spell

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// TOMLTypeError splits a BurntSushi/toml decode error that is not a
// toml.ParseError ("toml: line 2 (last key "description"): incompatible
// types: TOML value has type int64; destination has type string") into
// its line, its key and a message in the words of the file's author. A
// type mismatch becomes "want W, got G": G names the TOML value ("an
// integer", "a table"...), W is want(key, dest) when want is not nil and
// returns a wording (dest is the decoder's name of the Go type: "string",
// "integer", "float", "boolean", "slice"...), else a plain one ("a
// string", "an array"...). Any other such error keeps its message. ok is
// false when s has not that form.
func TOMLTypeError(s string, want func(key, dest string) string) (line int, key, msg string, ok bool) {
	rest, ok := strings.CutPrefix(s, "toml: line ")
	if !ok {
		return 0, "", "", false
	}
	num, rest, ok := strings.Cut(rest, " (last key \"")
	if !ok {
		return 0, "", "", false
	}
	key, msg, ok = strings.Cut(rest, "\"): ")
	if !ok {
		return 0, "", "", false
	}
	line, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", "", false
	}
	return line, key, typeMismatch(key, msg, want), true
}

// typeMismatch rewords the decoder's "incompatible types: TOML value has
// type T; destination has type D" as "want D, got T" (see TOMLTypeError);
// any other message, or a type it has no words for, is returned as it is.
func typeMismatch(key, msg string, want func(key, dest string) string) string {
	rest, ok := strings.CutPrefix(msg, "incompatible types: TOML value has type ")
	if !ok {
		return msg
	}
	got, dest, ok := strings.Cut(rest, "; destination has type ")
	if !ok {
		return msg
	}
	w := ""
	if want != nil {
		w = want(key, dest)
	}
	if w == "" {
		w = map[string]string{"string": "a string", "integer": "an integer", "boolean": "true or false", "slice": "an array", "float": "a number", "map": "a table"}[dest]
	}
	g := map[string]string{"int64": "an integer", "float64": "a number", "string": "a string", "bool": "a boolean",
		"map[string]any": "a table", "map[string]interface {}": "a table", "[]any": "an array", "[]interface {}": "an array",
		"[]map[string]any": "an array of tables", "[]map[string]interface {}": "an array of tables",
		"time.Time": "a date or time"}[got]
	if w == "" || g == "" {
		return msg
	}
	return fmt.Sprintf("want %s, got %s", w, g)
}

// TOMLSyntax rewords a toml.ParseError's message in the words of the
// rest of docex's errors: a rune the lexer quotes as '\n' is "the end of
// the line", EOF and the NUL rune it quotes at the end of the input (as
// a rune or as '\x00') "the end of the file", and "Key 'k' has already been
// defined." and its kin become `key "k" is defined twice` and the like.
// Any other message is returned as it is.
func TOMLSyntax(msg string) string {
	for _, k := range []struct{ pre, suf, to string }{
		{"Key '", "' has already been defined.", "key %q is defined twice"},
		{"Key '", "' was already created as a hash.", "key %q is already a table: it cannot be defined again"},
		{"Key '", "' was already created and cannot be used as an array.", "key %q is already defined: it cannot also be an array of tables"},
	} {
		if rest, ok := strings.CutPrefix(msg, k.pre); ok {
			if key, ok := strings.CutSuffix(rest, k.suf); ok {
				return fmt.Sprintf(k.to, key)
			}
		}
	}
	return strings.NewReplacer(`'\n'`, "the end of the line", `'\r'`, "the end of the line", "unexpected EOF", "unexpected end of the file",
		"'\\\x00'", `'\' at the end of the file`, "'\x00'", "the end of the file", `'\x00'`, "the end of the file").Replace(msg)
}

// TOMLLine returns the line of src a toml.ParseError names, from its
// Position's Line, Start and Len, within 1 and the number of lines of src
// (1 + its newlines). The parser reports one line short for an escape cut
// off by the end of the file (line 0 for "\"\\"); an error that ends at
// the end of src gets the line its Start is on. So does an error whose
// text takes in a newline (a table header cut short, "[[steps]\n"): the
// parser reports the line after it, where it went on looking.
func TOMLLine(line, start, length int, src []byte) int {
	atNewline := start >= 0 && start < len(src) && bytes.ContainsAny(src[start:min(start+max(length, 1), len(src))], "\r\n")
	if start >= 0 && start <= len(src) && (start+length >= len(src) || atNewline) {
		line = 1 + bytes.Count(src[:start], []byte("\n"))
	}
	return min(max(line, 1), 1+bytes.Count(src, []byte("\n")))
}

// TOMLNesting returns how deep the arrays and inline tables of a TOML
// document nest at most (a table header, [a] or [[a]], counts as such a
// level while it is read), and the line where that depth is first
// reached; brackets in strings and comments are not counted. It reads src
// once, in linear time, and never fails: text that is not TOML is counted
// as it comes. BurntSushi/toml's cost grows with the square of the
// nesting (each level copies its parent's key path), so a decoder's
// caller refuses a document nested deeper than it needs before decoding
// it.
func TOMLNesting(src []byte) (depth, line int) {
	level, ln := 0, 1
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '\n':
			ln++
		case '#':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			if i+2 < len(src) && src[i+1] == c && src[i+2] == c { // """ or '''
				i += 3
				for i < len(src) && !(src[i] == c && i+2 < len(src) && src[i+1] == c && src[i+2] == c) {
					if src[i] == '\n' {
						ln++
					}
					if c == '"' && src[i] == '\\' {
						i++
						if i < len(src) && src[i] == '\n' {
							ln++
						}
					}
					i++
				}
				for k := 0; k < 2 && i+3 < len(src) && src[i+3] == c; k++ {
					i++ // up to two quotes of the string's own before its closing three
				}
				i += 2 // at the closing quotes' last
				continue
			}
			for i++; i < len(src) && src[i] != c && src[i] != '\n'; i++ {
				if c == '"' && src[i] == '\\' && i+1 < len(src) && src[i+1] != '\n' {
					i++
				}
			}
			if i < len(src) && src[i] == '\n' {
				ln++
			}
		case '[', '{':
			level++
			if level > depth {
				depth, line = level, ln
			}
		case ']', '}':
			level--
		}
	}
	return depth, line
}
