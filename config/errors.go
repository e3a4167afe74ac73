package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/spell"
	"go.yaml.in/yaml/v3"
)

var (
	// The YAML decoder's messages, which name Go types, not keys.
	typeMsg    = regexp.MustCompile("^line (\\d+): cannot unmarshal (!\\S*)( `(.*)`)? into (.+)$")
	unknownMsg = regexp.MustCompile(`^line (\d+): field (\S*) not found in type (.+)$`)
	twiceMsg   = regexp.MustCompile(`^line (\d+): field (\S+) already set in type (.+)$`)
	dupMsg     = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	lineMsg    = regexp.MustCompile(`^line (\d+):`)
)

// decodeError turns a YAML decoding error into docex.ErrInvalidConfig
// naming each offending key by its path as written in the file
// ("sandbox.max_memory_pages") and what it should hold, never a Go type.
// root is the document's node tree; extra are the issues nodeIssues found
// in it, reported with the decoder's in line order. A decoder error that
// names no line (a value its explicit tag does not fit: "cannot decode
// !!str `yes` as a !!bool") is one of extra's when there are any.
func decodeError(root *yaml.Node, err error, extra []issue) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		if len(extra) > 0 {
			return issuesError(extra)
		}
		return docex.Errorf(docex.ErrInvalidConfig, "config is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	all := append([]issue(nil), extra...)
	idx := indexKeys(root)
	reported := map[string]bool{} // "config key PATH (line N)" of extra
	for _, is := range extra {
		reported[strings.SplitN(is.msg, "): ", 2)[0]] = true
	}
	for _, m := range te.Errors {
		if u := unknownMsg.FindStringSubmatch(m); u != nil && u[2] == "" {
			continue // a key without a name: in extra
		}
		if t := typeMsg.FindStringSubmatch(m); t != nil && t[2] == "!!float" && strings.HasPrefix(want(t[5]), "a whole number") {
			continue // a float for a whole-number key: in extra
		}
		line := 0
		if l := lineMsg.FindStringSubmatch(m); l != nil {
			line, _ = strconv.Atoi(l[1])
		}
		if is := describe(idx, line, m); !reported[strings.SplitN(is.msg, "): ", 2)[0]] {
			all = append(all, is) // not about a value extra names already (0x1ffffffff for a uint32)
		}
	}
	return issuesError(all)
}

// issuesError returns docex.ErrInvalidConfig listing issues in line order.
func issuesError(issues []issue) error {
	sort.SliceStable(issues, func(i, j int) bool { return issues[i].line < issues[j].line })
	msgs := make([]string, len(issues))
	for i, is := range issues {
		msgs[i] = is.msg
	}
	return docex.Errorf(docex.ErrInvalidConfig, "%s", strings.Join(msgs, "; "))
}

// keyMsg formats a message about the key at path written on line: the
// one format of every config error about a key ("config key
// sandbox.pool_size (line 12): ..."). A key that is not written in the
// file (line 0: a default, a missing required value) is named without a
// line, and a line where no key is named ("" path: a key that is not a
// name) without a key.
func keyMsg(path string, line int, msg string) string {
	switch {
	case path == "":
		return fmt.Sprintf("config (line %d): %s", line, msg)
	case line <= 0:
		return fmt.Sprintf("config key %s: %s", path, msg)
	}
	return fmt.Sprintf("config key %s (line %d): %s", path, line, msg)
}

// describe rewrites one decoder message, about line.
func describe(idx byLine, line int, msg string) issue {
	if m := unknownMsg.FindStringSubmatch(msg); m != nil {
		k := idx.keyOn(line, m[2], "", "")
		return issue{k.line(line), keyMsg(k.path, k.line(line), "unknown key"+spell.Suggest(m[2], yamlKeys(m[3])))}
	}
	if m := dupMsg.FindStringSubmatch(msg); m != nil {
		if name, err := strconv.Unquote(m[2]); err == nil {
			first, _ := strconv.Atoi(m[3])
			k := idx.keyOn(first, name, "", "") // the key read: the first
			return issue{line, keyMsg(k.path, line, "written twice (first on line "+m[3]+")")}
		}
	}
	if m := twiceMsg.FindStringSubmatch(msg); m != nil {
		// Two keys the parser tells apart (one written !!binary) that
		// name one field.
		k := idx.keyOn(line, m[2], "", "")
		return issue{k.line(line), keyMsg(k.path, k.line(line), "written twice")}
	}
	if m := typeMsg.FindStringSubmatch(msg); m != nil {
		got := m[4]
		if m[3] == "" {
			got = map[string]string{"!!seq": "a list", "!!map": "a mapping"}[m[2]]
		}
		if got == "" && m[3] == "" {
			got = m[2]
		}
		w, tip := want(m[5]), ""
		if m[2] == "!!str" {
			// config_version: "1" is text, not a number: a value that
			// would be one without quotes was quoted.
			got = strconv.Quote(got) + " (text)"
			_, numErr := strconv.ParseFloat(m[4], 64)
			if (numErr == nil && strings.HasPrefix(w, "a whole number")) || (w == "true or false" && (m[4] == "true" || m[4] == "false")) {
				tip = ": write it without the quotes"
			}
		}
		value := "\x00" // none: a list or a mapping
		if m[3] != "" {
			value = m[4]
		}
		k := idx.keyOn(line, "", value, m[5])
		return issue{k.line(line), keyMsg(k.path, k.line(line), fmt.Sprintf("want %s, got %s%s", w, got, tip))}
	}
	return issue{line, "config: " + msg}
}

// yamlKeys returns the keys of the section whose Go type the decoder
// names (goType, "config.Database"): the keys a misspelt one may have
// meant. None for a type that is not a section of File.
func yamlKeys(goType string) []string {
	var keys []string
	var find func(t reflect.Type)
	find = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		if t.String() == goType {
			keys = spell.FieldKeys(t, "yaml")
		}
		for f := range t.Fields() {
			find(f.Type)
		}
	}
	find(reflect.TypeFor[File]())
	return keys
}

// want says in YAML terms what a Go type holds.
func want(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "bool":
		return "true or false"
	case "int", "int32", "int64":
		return "a whole number"
	case "uint32", "uint64", "uint":
		return "a whole number, 0 or more"
	case "string":
		return "text"
	}
	if strings.HasPrefix(goType, "[]") {
		return "a list"
	}
	return "a mapping of keys"
}

// A key is one key of a document as the decoder reads it into a File.
type key struct {
	path string     // dotted, "sandbox.max_memory_pages"
	k, v *yaml.Node // the key and its value (an alias resolved)
	// field is the type of the File field the key sets (a pointer's
	// element type), nil for an unknown key.
	field reflect.Type
}

// walk calls fn with each key of the document root as the decoder reads
// it into a File: the keys of each mapping read into a section of File
// (the top level, multi_tenancy, ...), that mapping's own keys first, then
// those merged in with << (an alias, a mapping or a list of them) that it
// does not have, the first merge winning, and in each section key's value
// the keys of that section. It never walks into the value of an unknown
// key or of a key that holds a value, and reads each mapping merged into a
// section once, so that it takes time linear in the document's size
// however often its aliases repeat a part of it.
func walk(root *yaml.Node, fn func(key)) {
	n := resolve(root)
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = resolve(n.Content[0])
	}
	walkSection(n, "", reflect.TypeFor[File](), fn)
}

// walkSection walks the mapping n read into a value of the struct type t
// at path.
func walkSection(n *yaml.Node, path string, t reflect.Type, fn func(key)) {
	if n.Kind != yaml.MappingNode {
		return
	}
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" && f.IsExported() {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			fields[name] = ft
		}
	}
	for _, e := range entries(n) {
		p := e[0].Value
		if path != "" {
			p = path + "." + p
		}
		ft := fields[e[0].Value]
		fn(key{path: p, k: e[0], v: e[1], field: ft})
		if ft != nil && ft.Kind() == reflect.Struct {
			walkSection(e[1], p, ft, fn)
		}
	}
}

// entries returns the key and value nodes of the mapping n as the decoder
// reads them: its own keys, then those of the mappings its (last) << key
// merges in that are not there yet, depth first. A mapping merged in twice
// (or into itself) is read once.
func entries(n *yaml.Node) [][2]*yaml.Node {
	seen := map[string]bool{}
	read := map[*yaml.Node]bool{}
	var out [][2]*yaml.Node
	var add func(m *yaml.Node)
	add = func(m *yaml.Node) {
		if m.Kind != yaml.MappingNode || read[m] {
			return
		}
		read[m] = true
		var merge *yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], resolve(m.Content[i+1])
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merge = v
				continue
			}
			if !seen[k.Value] {
				seen[k.Value] = true
				out = append(out, [2]*yaml.Node{k, v})
			}
		}
		switch {
		case merge == nil:
		case merge.Kind == yaml.SequenceNode:
			for _, c := range merge.Content {
				add(resolve(c))
			}
		default:
			add(merge)
		}
	}
	add(n)
	return out
}

// resolve returns the node an alias stands for.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// found is the key keyOn found: its path, or "" when none was.
type found struct {
	path string
	k    *yaml.Node
}

// line returns the line of the key found, else def.
func (f found) line(def int) int {
	if f.k == nil {
		return def
	}
	return f.k.Line
}

// byLine indexes the keys of a document by the lines of their key and
// value nodes, each in walk order: the keys a decoder message about a line
// may be about.
type byLine map[int][]key

// indexKeys walks root once.
func indexKeys(root *yaml.Node) byLine {
	idx := byLine{}
	walk(root, func(k key) {
		if k.k.Kind != yaml.ScalarNode {
			k.path = "" // a list or a mapping as a key names nothing
		}
		idx[k.k.Line] = append(idx[k.k.Line], k)
		if k.v.Line != k.k.Line {
			idx[k.v.Line] = append(idx[k.v.Line], k)
		}
	})
	return idx
}

// keyOn finds the key a decoder message about line is about. With name,
// the message is about the key itself (unknown, set twice): a key named
// name written on line, else name itself. Without, it is about a value of
// Go type goType (a wrong type) on line: a key whose value is there, best
// the one holding value (as the decoder quotes it, cut to 7 characters and
// "..." when longer than 10; "\x00" for a list or a mapping) for a field
// of that type, else a key written on line; the last one of the best.
func (idx byLine) keyOn(line int, name, value, goType string) found {
	var best found
	score := -1
	for _, k := range idx[line] {
		s := -1
		switch {
		case name != "":
			if k.k.Line == line && k.k.Value == name {
				s = 0
			}
		case k.v.Line == line:
			s = 1
			if quoted := k.v.Value; k.v.Kind != yaml.ScalarNode && value == "\x00" ||
				k.v.Kind == yaml.ScalarNode && (quoted == value || len(quoted) > 10 && quoted[:7]+"..." == value) {
				s += 2
			}
			if k.field != nil && k.field.String() == strings.TrimPrefix(goType, "*") {
				s++
			}
		default: // k.k.Line == line
			s = 0
		}
		if s >= 0 && s >= score {
			best, score = found{k.path, k.k}, s
		}
	}
	if best.k == nil && name != "" {
		best.path = name
	}
	return best
}

// keyLines returns the line of each key path written in the document
// ("sandbox.max_memory_pages"). A key merged in (<<: *anchor) takes the
// line where it is written.
func keyLines(root *yaml.Node) map[string]int {
	lines := map[string]int{}
	walk(root, func(k key) {
		if _, ok := lines[k.path]; !ok {
			lines[k.path] = k.k.Line
		}
	})
	return lines
}

// issue is an error message about the key on a line.
type issue struct {
	line int
	msg  string
}

// digits is how a whole number is written.
var digits = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// yaml11Bools are the YAML 1.1 booleans the decoder still reads into a
// bool field, quoted or not; YAML 1.2 reads them as text.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true, "off": true, "Off": true, "OFF": true,
}

// nodeIssues returns an issue for each value the decoder would read
// without an error but not as written:
//   - a number written for a whole-number key otherwise than in decimal
//     digits: with a fraction or an exponent (1.5, 1.0, 1e3, .inf: YAML's
//     floats, which the decoder would truncate silently, 1.9 to 1), in
//     another base, with underscores or a plus sign (0x10, 0o17, 0b11,
//     1_000, +1), or with a leading zero (010, which the decoder reads as
//     octal 8);
//   - a boolean other than true or false: the YAML 1.1 spellings the
//     decoder still reads (yes, no, on, off, y, n: lower-case, capitalised
//     or upper-case, quoted or not) and the capitalised YAML 1.2 ones
//     (True, FALSE);
//   - a key without a name (~, null, "", or nothing before the colon),
//     which the decoder skips;
//   - a key without a value (nothing after the colon, ~, null, !!null),
//     which the decoder reads as if the key were not there: the default
//     (config_version, which has none, as 0);
//   - a value with an explicit tag (!!str 5, !!bool yes, !foo 5) other
//     than the key's own (!!int, !!bool, !!str) or that its value does not
//     fit: the decoder either read it otherwise than written or failed
//     naming neither the key nor the line; and a section (a mapping)
//     with a tag other than !!map (sandbox: !foo), which the decoder
//     ignored.
//
// The message says how to write the value. tagged are the values written
// with an explicit tag among those: the decoder may stop at one of them
// (untagged).
func nodeIssues(root *yaml.Node) (out []issue, tagged []*yaml.Node) {
	walk(root, func(k key) {
		n := len(out)
		defer func() {
			if len(out) > n && k.v.Kind == yaml.ScalarNode && k.v.Style&yaml.TaggedStyle != 0 {
				tagged = append(tagged, k.v)
			}
		}()
		v := k.v
		if k.k.Kind == yaml.ScalarNode && (k.k.ShortTag() == "!!null" || k.k.Value == "") {
			out = append(out, issue{k.k.Line, keyMsg("", k.k.Line, "a key without a name")})
			return
		}
		if k.k.Kind == yaml.ScalarNode && k.k.Style&yaml.TaggedStyle != 0 {
			// A key is text: !!binary gives its bytes (decoded), !!str
			// is its own tag; another the decoder refuses without a line
			// ("cannot decode !!str `x` as a !!int"), hiding every other
			// error.
			if t := k.k.ShortTag(); t != "!!str" && t != "!!binary" {
				out = append(out, issue{k.k.Line, keyMsg(k.path, k.k.Line, fmt.Sprintf("a key is text, got %s %s: write it without the tag", t, k.k.Value))})
				tagged = append(tagged, k.k)
				return
			}
		}
		if k.field != nil && k.field.Kind() == reflect.Struct && v.Kind == yaml.MappingNode &&
			v.Style&yaml.TaggedStyle != 0 && v.ShortTag() != "!!map" {
			// A section's own tag is !!map: the decoder read another
			// (!foo, !!binary) as if it were not there.
			out = append(out, issue{k.k.Line, keyMsg(k.path, k.k.Line, fmt.Sprintf("want a mapping of keys, got %s and a mapping: write it without the tag", v.ShortTag()))})
		}
		if k.field == nil || v.Kind != yaml.ScalarNode {
			return
		}
		if v.ShortTag() == "!!null" {
			msg := "no value: leave the key out for the default"
			if k.path == "config_version" {
				msg = fmt.Sprintf("no value: config_version is required; write config_version: %d", Version)
			}
			out = append(out, issue{k.k.Line, keyMsg(k.path, k.k.Line, msg)})
			return
		}
		bad := func(w, got, tip string) {
			out = append(out, issue{k.k.Line, keyMsg(k.path, k.k.Line, fmt.Sprintf("want %s, got %s%s", w, got, tip))})
		}
		if v.Style&yaml.TaggedStyle != 0 {
			if w, got, tip, wrong := taggedValue(k.field, v); wrong {
				bad(w, got, tip)
				return
			}
		}
		switch k.field.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			w := want(k.field.String())
			switch v.ShortTag() {
			case "!!float":
				tip := ""
				if x, err := strconv.ParseFloat(v.Value, 64); err == nil && x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
					tip = fmt.Sprintf(": write it as %d", int64(x))
				}
				bad(w, v.Value, tip)
			case "!!int":
				if !digits.MatchString(v.Value) {
					bad(w, v.Value, intTip(v.Value))
				}
			}
		case reflect.Bool:
			got := v.Value
			switch tag := v.ShortTag(); {
			case tag == "!!bool" && (v.Value == "true" || v.Value == "false"):
			case tag == "!!bool":
				bad("true or false", got, ": use true or false")
			case tag == "!!str" && yaml11Bools[v.Value]:
				if v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
					got = strconv.Quote(got) + " (text)"
				}
				bad("true or false", got, ": use true or false")
			case tag == "!!binary":
				// The decoder reads the bytes it encodes as text.
				if b, err := base64.StdEncoding.DecodeString(v.Value); err == nil && yaml11Bools[string(b)] {
					bad("true or false", "!!binary "+got, ": use true or false")
				}
			}
		}
	})
	return out, tagged
}

// intTip says how to write a whole number written otherwise than in
// decimal digits (v, an integer to YAML: +1, 1_000, 0x10, 0o17, 0b11,
// 010), or that it is not one.
func intTip(v string) string {
	plain := strings.ReplaceAll(strings.TrimPrefix(v, "+"), "_", "")
	tip := ": write it in decimal digits"
	if x, err := strconv.ParseInt(plain, 0, 64); err == nil {
		tip = fmt.Sprintf(": write it as %d", x) // +1, 1_000, 0x10, 0o17, 0b11
	}
	if strings.HasPrefix(strings.TrimPrefix(plain, "-"), "0") && strings.Trim(plain, "-0123456789") == "" {
		tip = ": write it without leading zeros" // 010: octal 8 to the decoder, 10 to a reader
	}
	return tip
}

// taggedValue checks the scalar v written with an explicit tag for a key
// of Go type field (a pointer's element type). A value is what it says
// only with the key's own tag (!!bool for a boolean, !!int for a whole
// number, !!str for text) and a value that tag reads as written (true or
// false; decimal digits). Otherwise wrong is true, with what the key
// wants, what was written (the tag and the value) and a tip: without the
// tag, when the plain value would do. A section's value is left to the
// decoder (it wants a mapping).
func taggedValue(field reflect.Type, v *yaml.Node) (w, got, tip string, wrong bool) {
	tag := v.ShortTag()
	value := v.Value
	if v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		value = strconv.Quote(value)
	}
	got = strings.TrimSuffix(tag+" "+value, " ")
	plain := v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
	switch field.Kind() {
	case reflect.Bool:
		ok := v.Value == "true" || v.Value == "false"
		if tag == "!!bool" && ok {
			return "", "", "", false
		}
		switch {
		case ok && plain:
			tip = ": write it without the tag"
		case ok:
			tip = ": write it without the tag and the quotes"
		default:
			tip = ": use true or false"
		}
		return "true or false", got, tip, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		ok := digits.MatchString(v.Value)
		if tag == "!!int" && ok {
			return "", "", "", false
		}
		switch {
		case ok && plain:
			tip = ": write it without the tag"
		case ok:
			tip = ": write it without the tag and the quotes"
		case tag == "!!int":
			tip = intTip(v.Value)
		}
		return want(field.String()), got, tip, true
	case reflect.String:
		if tag == "!!str" {
			return "", "", "", false
		}
		if tag != "!!binary" {
			// The decoder reads a binary value's bytes, not its text.
			tip = ": write it without the tag"
		}
		if v.Value == "" || v.Value == "~" || strings.EqualFold(v.Value, "null") {
			tip = ": write it without the tag, in quotes"
		}
		return "text", got, tip, true
	}
	return "", "", "", false
}

// untagged returns data with the explicit tags of the scalar nodes
// blanked out, each character a space so that every line and column
// stays (a tag that is its line's first token, a key's, becomes !!str
// and spaces instead), or nil when one is not written where its node
// says (a document in UTF-16, an unusual tag) or a first token's is
// shorter than !!str.
func untagged(data []byte, nodes []*yaml.Node) []byte {
	text := []rune(string(data))
	// The first character of each line, as the YAML scanner counts lines.
	starts := []int{0}
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			starts = append(starts, i+1)
		case '\n', '\u0085', '\u2028', '\u2029':
			starts = append(starts, i+1)
		}
	}
	// end returns the end of the property (an anchor or a tag) at i.
	end := func(i int) int {
		if strings.HasPrefix(string(text[i:min(i+2, len(text))]), "!<") {
			for i < len(text) && text[i] != '>' {
				i++
			}
			return min(i+1, len(text))
		}
		for i < len(text) && !strings.ContainsRune(" \t\r\n\u0085\u2028\u2029,[]{}", text[i]) {
			i++
		}
		return i
	}
	for _, n := range nodes {
		if n.Line < 1 || n.Line > len(starts) || n.Column < 1 {
			return nil
		}
		i := starts[n.Line-1] + n.Column - 1
		found := false
		// A node's properties: an anchor and a tag, in either order.
		for range 2 {
			if i >= len(text) || (text[i] != '&' && text[i] != '!') {
				break
			}
			e := end(i)
			if text[i] == '!' {
				first := strings.TrimLeft(string(text[starts[n.Line-1]:i]), " \t") == ""
				for j := i; j < e; j++ {
					text[j] = ' '
				}
				if first {
					// The line's first token (a key): spaces would
					// indent what follows. !!str, the tag of text,
					// keeps the column, where it fits.
					if e-i < len("!!str") {
						return nil
					}
					copy(text[i:], []rune("!!str"))
				}
				found = true
			}
			for i = e; i < len(text) && (text[i] == ' ' || text[i] == '\t'); i++ {
			}
		}
		if !found {
			return nil
		}
	}
	return []byte(string(text))
}

// maxKeys is the most keys a mapping of docex.yaml may have: its largest
// section has 17. The decoder compares every key of a mapping with every
// other, which would take minutes for the hundred thousand keys that fit
// in MaxConfigBytes.
const maxKeys = 256

// largeMapping returns an error for the first mapping of root (as written,
// aliases not followed) with more than maxKeys keys, or nil.
func largeMapping(root *yaml.Node) error {
	todo := []*yaml.Node{root}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if n.Kind == yaml.MappingNode && len(n.Content)/2 > maxKeys {
			return docex.Errorf(docex.ErrInvalidConfig, "%s", keyMsg("", n.Line, fmt.Sprintf("a mapping of %d keys, more than %d: no section of docex.yaml has that many", len(n.Content)/2, maxKeys)))
		}
		todo = append(todo, n.Content...)
	}
	return nil
}
