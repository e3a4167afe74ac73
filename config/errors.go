package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
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
)

// decodeError turns a YAML decoding error into docex.ErrInvalidConfig
// naming each offending key by its path as written in the file
// ("sandbox.max_memory_pages") and what it should hold, never a Go type.
func decodeError(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return docex.Errorf(docex.ErrInvalidConfig, "config is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = describe(&root, m)
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

// keyLines returns the line of each key path written in the document
// ("sandbox.max_memory_pages"), as keyAt spells paths. A key merged in
// (<<: *anchor) or reached through an alias takes the line where it is
// written; a key written in the mapping itself wins over a merged one.
func keyLines(root *yaml.Node) map[string]int {
	lines := map[string]int{}
	var walk func(n *yaml.Node, path string, merged bool)
	walk = func(n *yaml.Node, path string, merged bool) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, merged)
			}
		case yaml.AliasNode:
			if n.Alias != nil {
				walk(n.Alias, path, merged)
			}
		case yaml.MappingNode:
			var merges []*yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
					merges = append(merges, v)
					continue
				}
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, seen := lines[p]; !seen || !merged {
					lines[p] = k.Line
				}
				walk(v, p, merged)
			}
			for _, m := range merges { // <<: *a or <<: [*a, *b]
				if m.Kind == yaml.SequenceNode {
					for _, c := range m.Content {
						walk(c, path, true)
					}
				} else {
					walk(m, path, true)
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), merged)
			}
		}
	}
	walk(root, "", false)
	return lines
}
