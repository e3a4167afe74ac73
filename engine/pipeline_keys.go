package engine

import (
	"slices"
	"strconv"
	"strings"
)

// Locating keys in the source. BurntSushi/toml reports the line of a
// syntax error but not of a key, so the source (already parsed, so valid
// TOML) is scanned: table headers ([x], [[steps]], [steps.params]), keys
// (bare, quoted, dotted) and their values, inline tables and arrays
// included, so that a step written as an element of an inline array
// (steps = [ { name = "a" } ]) has its keys located too.

// locPart is one part of a located key's path: a key, or (index >= 0) an
// element of an array (of tables, or inline).
type locPart struct {
	key   string
	index int
}

// keyLoc is a key, table header or array element and the line it is on.
type keyLoc struct {
	path []locPart
	line int
	elem bool // an array element: a [[steps]] header or an inline { }
	key  bool // a key as MetaData.Keys lists it: not an inline { }
}

// keys returns the path's keys without the array indexes: the key as the
// TOML decoder's MetaData.Keys names it.
func (l keyLoc) keys() []string {
	var out []string
	for _, p := range l.path {
		if p.index < 0 {
			out = append(out, p.key)
		}
	}
	return out
}

// where words a path as the errors name keys: "steps[0].params.size".
func where(path []locPart) string {
	var b strings.Builder
	for _, p := range path {
		if p.index >= 0 {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p.key)
	}
	return b.String()
}

func pathKey(path []locPart) string {
	var b strings.Builder
	for _, p := range path {
		if p.index >= 0 {
			b.WriteString("\x01" + strconv.Itoa(p.index))
		} else {
			b.WriteString("\x00" + p.key)
		}
	}
	return b.String()
}

// locateKeys returns every key, table header and array element of src
// in source order with its line. It never fails: on text it does not
// understand it skips ahead (src is parsed before it is scanned).
func locateKeys(src []byte) []keyLoc {
	l := &locator{src: src, line: 1, arrays: map[string]int{}}
	l.top()
	return l.out
}

type locator struct {
	src    []byte
	i      int
	line   int
	out    []keyLoc
	arrays map[string]int // [[x]] arrays of tables (pathKey) -> elements so far
}

func (l *locator) peek(off int) byte {
	if l.i+off < len(l.src) {
		return l.src[l.i+off]
	}
	return 0
}

func (l *locator) eof() bool { return l.i >= len(l.src) }

func (l *locator) advance() {
	if l.src[l.i] == '\n' {
		l.line++
	}
	l.i++
}

// space skips blanks, and with newlines also newlines and comments.
func (l *locator) space(newlines bool) {
	for !l.eof() {
		switch c := l.peek(0); {
		case c == ' ' || c == '\t':
			l.advance()
		case newlines && (c == '\n' || c == '\r'):
			l.advance()
		case newlines && c == '#':
			l.skipLine()
		default:
			return
		}
	}
}

// skipLine skips to the end of the line (its newline is left).
func (l *locator) skipLine() {
	for !l.eof() && l.peek(0) != '\n' {
		l.advance()
	}
}

// resolve returns the path of the keys of a table header: a part that
// names an array of tables is its last element.
func (l *locator) resolve(keys []string) []locPart {
	var path []locPart
	for _, k := range keys {
		path = append(path, locPart{key: k, index: -1})
		if n, ok := l.arrays[pathKey(path)]; ok && n > 0 {
			path = append(path, locPart{index: n - 1})
		}
	}
	return path
}

func (l *locator) top() {
	var table []locPart
	for {
		l.space(true)
		if l.eof() {
			return
		}
		line := l.line
		if l.peek(0) == '[' {
			array := l.peek(1) == '['
			l.i++
			if array {
				l.i++
			}
			keys := l.key()
			l.skipLine()
			if len(keys) == 0 {
				continue
			}
			if array {
				parent := l.resolve(keys[:len(keys)-1])
				table = append(parent, locPart{key: keys[len(keys)-1], index: -1})
				k := pathKey(table)
				table = append(table, locPart{index: l.arrays[k]})
				l.arrays[k]++
				l.out = append(l.out, keyLoc{path: slices.Clone(table), line: line, elem: true, key: true})
			} else {
				table = l.resolve(keys)
				l.out = append(l.out, keyLoc{path: slices.Clone(table), line: line, key: true})
			}
			continue
		}
		l.keyValue(table)
		l.space(false)
		if !l.eof() && l.peek(0) != '\n' && l.peek(0) != '\r' && l.peek(0) != '#' {
			l.skipLine() // not understood
		}
	}
}

// keyValue scans "key = value" below table.
func (l *locator) keyValue(table []locPart) {
	line := l.line
	start := l.i
	keys := l.key()
	l.space(false)
	if len(keys) == 0 || l.peek(0) != '=' {
		if l.i == start {
			l.skipLine()
		}
		return
	}
	l.i++
	path := slices.Clone(table)
	for _, k := range keys {
		path = append(path, locPart{key: k, index: -1})
	}
	l.out = append(l.out, keyLoc{path: path, line: line, key: true})
	l.value(path)
}

// key scans a dotted key: bare, "basic" or 'literal' parts.
func (l *locator) key() []string {
	var keys []string
	for {
		l.space(false)
		switch c := l.peek(0); {
		case c == '"' || c == '\'':
			s := l.quoted()
			if c == '"' {
				if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
					s = u
				}
			}
			keys = append(keys, s)
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-':
			start := l.i
			for c := l.peek(0); c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'; c = l.peek(0) {
				l.i++
			}
			keys = append(keys, string(l.src[start:l.i]))
		default:
			return keys
		}
		l.space(false)
		if l.peek(0) != '.' {
			return keys
		}
		l.i++
	}
}

// quoted scans a one-line quoted string and returns its text between the
// quotes (escapes as written).
func (l *locator) quoted() string {
	q := l.peek(0)
	l.i++
	start := l.i
	for !l.eof() && l.peek(0) != q && l.peek(0) != '\n' {
		if q == '"' && l.peek(0) == '\\' && l.i+1 < len(l.src) && l.src[l.i+1] != '\n' {
			l.i++
		}
		l.i++
	}
	s := string(l.src[start:l.i])
	if !l.eof() && l.peek(0) == q {
		l.i++
	}
	return s
}

// value scans the value of the key at path.
func (l *locator) value(path []locPart) {
	l.space(false)
	switch c := l.peek(0); c {
	case '"', '\'':
		if l.peek(1) == c && l.peek(2) == c {
			l.i += 3
			for !l.eof() && !(l.peek(0) == c && l.peek(1) == c && l.peek(2) == c) {
				if c == '"' && l.peek(0) == '\\' && l.i+1 < len(l.src) {
					l.advance()
				}
				l.advance()
			}
			for range 3 { // and up to two quotes of the string's own
				if l.peek(0) == c {
					l.i++
				}
			}
			for l.peek(0) == c {
				l.i++
			}
			return
		}
		l.quoted()
	case '{':
		l.i++
		for {
			l.space(true)
			if l.eof() || l.peek(0) == '}' {
				break
			}
			before := l.i
			l.keyValue(path)
			l.space(true)
			if l.peek(0) == ',' {
				l.i++
			}
			if l.i == before {
				l.i++ // not understood
			}
		}
		if !l.eof() {
			l.i++
		}
	case '[':
		l.i++
		for n := 0; ; n++ {
			l.space(true)
			if l.eof() || l.peek(0) == ']' {
				break
			}
			before := l.i
			elem := append(slices.Clone(path), locPart{index: n})
			if l.peek(0) == '{' {
				l.out = append(l.out, keyLoc{path: elem, line: l.line, elem: true})
			}
			l.value(elem)
			l.space(true)
			if l.peek(0) == ',' {
				l.i++
			}
			if l.i == before {
				l.i++ // not understood
			}
		}
		if !l.eof() {
			l.i++
		}
	default:
		for !l.eof() && !strings.ContainsRune(",]}\n\r#", rune(l.peek(0))) {
			l.i++
		}
	}
}

// locMatches reports whether loc's path is want, or with prefix starts
// with it.
func locMatches(loc keyLoc, want []locPart, prefix bool) bool {
	if len(loc.path) < len(want) || !prefix && len(loc.path) != len(want) {
		return false
	}
	return slices.Equal(loc.path[:len(want)], want)
}

// stepPath returns the path of key (dotted) in step (-1: at the top).
func stepPath(step int, key string) []locPart {
	var path []locPart
	if step >= 0 {
		path = append(path, locPart{key: "steps", index: -1}, locPart{index: step})
	}
	if key != "" {
		for k := range strings.SplitSeq(key, ".") {
			path = append(path, locPart{key: k, index: -1})
		}
	}
	return path
}

// keyLine returns the line of key (dotted below the step, e.g.
// "params.size") in step (-1: top level): the first line that assigns it
// or a key below it; when there is none, the line of the step (its
// [[steps]] header, or the { of its inline table); else 0.
func keyLine(src []byte, step int, key string) int {
	return lineOf(locateKeys(src), step, key)
}

func lineOf(locs []keyLoc, step int, key string) int {
	want := stepPath(step, key)
	for _, loc := range locs {
		if key != "" && !loc.elem && locMatches(loc, want, true) {
			return loc.line
		}
	}
	if step < 0 {
		return 0
	}
	for _, loc := range locs {
		if loc.elem && locMatches(loc, stepPath(step, ""), false) {
			return loc.line
		}
	}
	return 0
}

// nthKey returns where the n-th (from 0) key named k (as MetaData.Keys
// names it: without array indexes) is written, or false.
func nthKey(locs []keyLoc, k []string, n int) (keyLoc, bool) {
	for _, loc := range locs {
		if loc.key && slices.Equal(loc.keys(), k) {
			if n == 0 {
				return loc, true
			}
			n--
		}
	}
	return keyLoc{}, false
}

// keyPrefix returns path up to and with its n-th key.
func keyPrefix(path []locPart, n int) []locPart {
	for i, p := range path {
		if p.index < 0 {
			if n--; n == 0 {
				return path[:i+1]
			}
		}
	}
	return path
}
