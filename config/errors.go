package config

import (
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
	typeMsg    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	unknownMsg = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (.+)$`)
	lineMsg    = regexp.MustCompile(`^line (\d+):`)
)

// decodeError turns a YAML decoding error into docex.ErrInvalidConfig
// naming each offending key by its path as written in the file
// ("sandbox.max_memory_pages") and what it should hold, never a Go type.
// root is the document's node tree; extra are issues found in it
// (fractions), reported with the decoder's in line order.
func decodeError(root *yaml.Node, err error, extra []issue) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return docex.Errorf(docex.ErrInvalidConfig, "config is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	all := append([]issue(nil), extra...)
	for _, m := range te.Errors {
		if t := typeMsg.FindStringSubmatch(m); t != nil && t[2] == "float" && strings.HasPrefix(want(t[4]), "a whole number") {
			continue // a float for a whole-number key: in extra
		}
		line := 0
		if l := lineMsg.FindStringSubmatch(m); l != nil {
			line, _ = strconv.Atoi(l[1])
		}
		all = append(all, issue{line, describe(root, m)})
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

// describe rewrites one decoder message.
func describe(root *yaml.Node, msg string) string {
	if m := unknownMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("config key %s (line %d): unknown key%s", keyAt(root, line, m[2]), line, spell.Suggest(m[2], yamlKeys(m[3])))
	}
	if m := typeMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		got := m[3]
		if got == "" {
			got = map[string]string{"seq": "a list", "map": "a mapping"}[m[2]]
		}
		if got == "" {
			got = m[2]
		}
		w, tip := want(m[4]), ""
		if m[2] == "str" {
			// config_version: "1" is text, not a number: a value that
			// would be one without quotes was quoted.
			got = strconv.Quote(got) + " (text)"
			_, numErr := strconv.ParseFloat(m[3], 64)
			if (numErr == nil && strings.HasPrefix(w, "a whole number")) || (w == "true or false" && (m[3] == "true" || m[3] == "false")) {
				tip = ": write it without the quotes"
			}
		}
		return fmt.Sprintf("config key %s (line %d): want %s, got %s%s", keyAt(root, line, ""), line, w, got, tip)
	}
	return "config: " + msg
}

// yamlKeys returns the keys of the section whose Go type the decoder
// names (goType, "config.Database"): the keys a misspelt one may have
// meant. None for a type that is not a section of File.
func yamlKeys(goType string) []string {
	var keys []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
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
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[File]())
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

// keyAt returns the dotted path of the key on line (named name, when
// given) in the document, or "at line N" when none is found.
func keyAt(root *yaml.Node, line int, name string) string {
	var best string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line && (name == "" || k.Value == name) {
					best = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, "")
	if best == "" {
		return fmt.Sprintf("at line %d", line)
	}
	return best
}

// visit calls fn with the dotted path (as keyAt spells it), the key node
// and the value node (aliases resolved) of each key in the document, as
// the decoder sees them: a mapping's own keys, then those merged in with
// << (an alias, a mapping or a list of them) that it does not have, the
// first merge winning. A mapping reached again through an alias while it
// is being walked (an anchor containing itself) is not walked again.
func visit(root *yaml.Node, fn func(path string, k, v *yaml.Node)) {
	active := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, path string)
	// entries appends the keys of mapping n not in seen.
	var entries func(n *yaml.Node, seen map[string]bool, out [][2]*yaml.Node) [][2]*yaml.Node
	entries = func(n *yaml.Node, seen map[string]bool, out [][2]*yaml.Node) [][2]*yaml.Node {
		if n.Kind != yaml.MappingNode || active[n] {
			return out
		}
		active[n] = true
		defer delete(active, n)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], resolve(n.Content[i+1])
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merges = append(merges, v)
				continue
			}
			if !seen[k.Value] {
				seen[k.Value] = true
				out = append(out, [2]*yaml.Node{k, v})
			}
		}
		for _, m := range merges {
			if m.Kind == yaml.SequenceNode {
				for _, c := range m.Content {
					out = entries(resolve(c), seen, out)
				}
			} else {
				out = entries(m, seen, out)
			}
		}
		return out
	}
	walk = func(n *yaml.Node, path string) {
		n = resolve(n)
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			if active[n] {
				return
			}
			for _, e := range entries(n, map[string]bool{}, nil) {
				p := e[0].Value
				if path != "" {
					p = path + "." + e[0].Value
				}
				fn(p, e[0], e[1])
				active[n] = true
				walk(e[1], p)
				delete(active, n)
			}
		case yaml.SequenceNode:
			if active[n] {
				return
			}
			active[n] = true
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
			delete(active, n)
		}
	}
	walk(root, "")
}

// resolve returns the node an alias stands for.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// keyLines returns the line of each key path written in the document
// ("sandbox.max_memory_pages"). A key merged in (<<: *anchor) takes the
// line where it is written.
func keyLines(root *yaml.Node) map[string]int {
	lines := map[string]int{}
	visit(root, func(path string, k, _ *yaml.Node) {
		if _, ok := lines[path]; !ok {
			lines[path] = k.Line
		}
	})
	return lines
}

// issue is an error message about the key on a line.
type issue struct {
	line int
	msg  string
}

// fractions returns an issue for each number with a fraction or an
// exponent (1.5, 1.0, 1e3, .inf: YAML's floats) written for a
// whole-number key: the decoder would truncate it silently (1.9 to 1).
// Whole numbers are written as digits, so 1.0 and 1e3 are refused too; the
// message says how to write a whole one.
func fractions(root *yaml.Node) []issue {
	ints := map[string]string{} // key path -> Go type
	var keys func(t reflect.Type, prefix string)
	keys = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			for f := range t.Fields() {
				if k, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); k != "" && k != "-" && f.IsExported() {
					keys(f.Type, strings.TrimPrefix(prefix+"."+k, "."))
				}
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			ints[prefix] = t.String()
		}
	}
	keys(reflect.TypeFor[File](), "")
	var out []issue
	visit(root, func(path string, k, v *yaml.Node) {
		goType, ok := ints[path]
		if !ok || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!float" {
			return
		}
		tip := ""
		if x, err := strconv.ParseFloat(v.Value, 64); err == nil && x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			tip = fmt.Sprintf(": write it as %d", int64(x))
		}
		out = append(out, issue{k.Line, fmt.Sprintf("config key %s (line %d): want %s, got %s%s", path, k.Line, want(goType), v.Value, tip)})
	})
	return out
}
