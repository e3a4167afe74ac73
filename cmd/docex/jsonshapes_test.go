package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// jsonShape is an object docs/json.md documents: its keys, and for each
// key the documented type (the table's second column).
type jsonShape struct {
	keys  []string
	types map[string]string
}

// jsonShapes are docs/json.md's shapes by name ("Tenant", "init"), and
// the commands that print each: byCommand maps a command path to the
// shape name, "[Name]" for a list of them.
type jsonShapes struct {
	byName    map[string]jsonShape
	byCommand map[string]string
}

var (
	boldShape = regexp.MustCompile("^\\*\\*([A-Za-z ]+)\\*\\*: (.*)$")
	backticks = regexp.MustCompile("`([^`]+)`")
	// shapeRef is a type column naming another shape: "Document: ...",
	// "[PluginParameter], sorted by name".
	shapeRef = regexp.MustCompile(`^\[?[A-Z][A-Za-z]*\]?`)
)

// parseJSONShapes reads docs/json.md's "Shapes" section: a bold name, the
// commands that print it, then a table of keys (or the keys inline, as
// `{"a", "b"}`). Lines naming several shapes (Deleted, Metadata) are left
// out: their forms are checked by the tests of those commands.
func parseJSONShapes(t *testing.T) jsonShapes {
	t.Helper()
	data, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n## Shapes")
	if i < 0 {
		t.Fatal("docs/json.md has no Shapes section")
	}
	s := jsonShapes{byName: map[string]jsonShape{}, byCommand: map[string]string{}}
	var cur string
	for _, line := range strings.Split(text[i:], "\n") {
		if m := boldShape.FindStringSubmatch(line); m != nil {
			name, rest := m[1], m[2]
			cur = ""
			if name == "Deleted" || name == "Metadata" {
				continue
			}
			cur = name
			sh := jsonShape{types: map[string]string{}}
			if inline := backticks.FindStringSubmatch(rest); inline != nil && strings.HasPrefix(inline[1], "{") {
				keys, types := objectFields(inline[1])
				sh.keys = keys
				for k, typ := range types {
					sh.types[k] = typ
				}
				s.byCommand[name] = name // init, version, gc, verify: named after their command
			}
			s.byName[name] = sh
			// "`a`, `b`; `c` and `d` print `[Name]`."
			for _, seg := range strings.Split(rest, ";") {
				list := strings.Contains(seg, "print `[") || strings.Contains(seg, "prints `[")
				for _, m := range backticks.FindAllStringSubmatch(seg, -1) {
					cmd := m[1]
					if strings.HasPrefix(cmd, "[") || strings.HasPrefix(cmd, "{") || strings.HasPrefix(cmd, "--") {
						continue
					}
					if _, ok := commands().byPath[cmd]; !ok {
						continue // a command with arguments: checked by its own test
					}
					if list {
						s.byCommand[cmd] = "[" + name + "]"
					} else {
						s.byCommand[cmd] = name
					}
				}
			}
			continue
		}
		if cur == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.SplitN(strings.TrimPrefix(line, "| "), " | ", 2)
		if len(cells) != 2 {
			continue
		}
		typ := strings.TrimSuffix(strings.TrimSpace(cells[1]), " |")
		sh := s.byName[cur]
		for _, m := range backticks.FindAllStringSubmatch(cells[0], -1) {
			sh.keys = append(sh.keys, m[1])
			sh.types[m[1]] = typ
		}
		s.byName[cur] = sh
	}
	return s
}

// objectKeys returns the top-level keys of a documented object form:
// `{"a", "b": bool}` or `[{a, b: [string], c}]`.
func objectKeys(form string) []string {
	keys, _ := objectFields(form)
	return keys
}

// objectFields is objectKeys, with the types the form gives its keys
// (`"dry_run": bool`: "bool"); a key without one has none in types.
func objectFields(form string) (keys []string, types map[string]string) {
	form = strings.Trim(form, "[]")
	start, end := strings.Index(form, "{"), strings.LastIndex(form, "}")
	if start < 0 || end < start {
		return nil, nil
	}
	types = map[string]string{}
	depth, from := 0, start+1
	item := func(s string) {
		s = strings.TrimSpace(s)
		k, typ, ok := strings.Cut(s, ":")
		k = strings.Trim(strings.TrimSpace(k), `"`)
		if k == "" {
			return
		}
		keys = append(keys, k)
		if ok && strings.TrimSpace(typ) != "" {
			types[k] = strings.TrimSpace(typ)
		}
	}
	for i := start + 1; i < end; i++ {
		switch form[i] {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 0 {
				item(form[from:i])
				from = i + 1
			}
		}
	}
	item(form[from:end])
	return keys, types
}

// shapeMismatches compares v, printed by a command, with shape name
// ("[Name]" for a list): the keys must be exactly the documented ones,
// and values whose documented type names another shape, or an inline
// object form, are compared in turn.
func (s jsonShapes) shapeMismatches(path, name string, v any) []string {
	if inner, ok := strings.CutPrefix(name, "["); ok {
		inner = strings.TrimSuffix(inner, "]")
		arr, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want a list of %s, got %T", path, inner, v)}
		}
		var out []string
		for i, x := range arr {
			out = append(out, s.shapeMismatches(fmt.Sprintf("%s[%d]", path, i), inner, x)...)
		}
		return out
	}
	sh, ok := s.byName[name]
	if !ok {
		return nil
	}
	return s.keysMismatch(path, name, sh.keys, sh.types, v)
}

func (s jsonShapes) keysMismatch(path, name string, keys []string, types map[string]string, v any) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: want a %s object, got %T", path, name, v)}
	}
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	want := slices.Clone(keys)
	sort.Strings(got)
	sort.Strings(want)
	var out []string
	for _, k := range got {
		if !slices.Contains(want, k) {
			out = append(out, fmt.Sprintf("%s: key %q is not in docs/json.md's %s", path, k, name))
		}
	}
	for _, k := range want {
		if _, ok := obj[k]; !ok {
			out = append(out, fmt.Sprintf("%s: docs/json.md's %s has %q, the output does not", path, name, k))
		}
	}
	for _, k := range keys {
		typ, child := types[k], obj[k]
		if child == nil {
			continue
		}
		if p := typeMismatch(typ, child); p != "" {
			out = append(out, fmt.Sprintf("%s.%s: %s (docs/json.md's %s: %s)", path, k, p, name, typ))
		}
		form := strings.Trim(typ, "`")
		if m := backticks.FindStringSubmatch(typ); m != nil && strings.HasPrefix(typ, "`") {
			form = m[1]
		}
		ref := shapeRef.FindString(form) // "Document", "[PluginParameter]"
		switch {
		case strings.HasPrefix(form, "{") || strings.HasPrefix(form, "[{"):
			if inner := objectKeys(form); len(inner) > 0 && !strings.Contains(form, "{string") {
				if arr, ok := child.([]any); ok {
					for i, x := range arr {
						out = append(out, s.keysMismatch(fmt.Sprintf("%s.%s[%d]", path, k, i), name+"."+k, inner, nil, x)...)
					}
				} else if _, ok := child.(map[string]any); ok && strings.HasPrefix(form, "{") {
					out = append(out, s.keysMismatch(path+"."+k, name+"."+k, inner, nil, child)...)
				}
			}
		case ref != "" && s.byName[strings.Trim(ref, "[]")].keys != nil:
			out = append(out, s.shapeMismatches(path+"."+k, ref, child)...)
		}
	}
	return out
}

// TestJSONShapesParsed: the parser finds the shapes docs/json.md
// documents, so that TestJSONConvention's comparison cannot pass by
// finding nothing.
func TestJSONShapesParsed(t *testing.T) {
	t.Parallel()
	s := parseJSONShapes(t)
	for name, key := range map[string]string{
		"Tenant": "display_name", "Basket": "pipeline", "Document": "checksum", "Added": "duplicate",
		"AuditEntry": "detail", "PluginInfo": "manifest_sha256", "PluginParameter": "less_than",
		"RunResult": "report", "RunReport": "instance_retired", "init": "builtin_steps_outdated",
		"version": "go_version", "gc": "dry_run", "verify": "damaged", "Pipeline": "definition",
		"Run summary": "steps_filtered", "Job": "attempt_history", "Lineage": "truncated",
	} {
		if !slices.Contains(s.byName[name].keys, key) {
			t.Errorf("shape %s: keys %v lack %q", name, s.byName[name].keys, key)
		}
	}
	for cmd, name := range map[string]string{
		"tenant list": "[Tenant]", "tenant show": "Tenant", "doc add": "[Added]", "doc find": "[Document]",
		"plugin show": "PluginInfo", "run": "RunResult", "pipeline run": "Run summary", "job list": "[Job]",
		"doc lineage": "Lineage", "gc": "gc",
	} {
		if s.byCommand[cmd] != name {
			t.Errorf("command %s prints %q, want %q", cmd, s.byCommand[cmd], name)
		}
	}
	if got := objectKeys(`[{step, input_id, outcome: "ran"/"cached"/"filtered", outputs: [string], report, created_at}]`); !slices.Equal(got, []string{"step", "input_id", "outcome", "outputs", "report", "created_at"}) {
		t.Errorf("objectKeys = %v", got)
	}
	// A key the output has and the document does not is reported, and one
	// the document has and the output lacks.
	bad := map[string]any{"id": "x", "display_name": "", "status": "active", "is_system": false, "extra": 1}
	if got := s.shapeMismatches("tenant show", "Tenant", bad); len(got) != 2 {
		t.Errorf("mismatches = %q, want 2 (extra, created_at)", got)
	}
	// A value of another type than documented is reported: a bool as a
	// string, a time not in RFC 3339 UTC, a status not among the listed
	// values, a number for a list, a string for a nested shape.
	wrong := map[string]any{"id": "x", "display_name": "", "status": "gone", "is_system": "false", "created_at": "2026-12-01 10:32:05"}
	if got := s.shapeMismatches("tenant show", "Tenant", wrong); len(got) != 3 {
		t.Errorf("mismatches = %q, want 3 (status, is_system, created_at)", got)
	}
	for typ, want := range map[string]string{
		"string":                              "string",
		"number: total size of its documents": "number",
		"bool: the bootstrap tenant":          "bool",
		"time":                                "string",
		"object: the user's keys":             "object",
		"Document: the input":                 "object",
		"RunReport":                           "object",
		"[string]":                            "array",
		"[PluginParameter], sorted by name":   "array",
		"`[string]`: job ids":                 "array",
		"`{step, input_id}` (all empty)":      "object",
		"`\"ok\"`, `\"error\"` or `\"skipped\"`: the plugin's verdict": "string",
	} {
		if got, _, _ := documentedType(typ); got != want {
			t.Errorf("documentedType(%q) = %q, want %q", typ, got, want)
		}
	}
	if _, values, _ := documentedType("`\"ok\"`, `\"denied\"` or `\"error\"`"); !slices.Equal(values, []string{"ok", "denied", "error"}) {
		t.Errorf("literal values %q", values)
	}
	if typ := s.byName["gc"].types["dry_run"]; typ != "bool" {
		t.Errorf("gc's dry_run documented as %q, want bool (the inline form's type)", typ)
	}
	// Every column of every table names a type the check knows.
	for name, sh := range s.byName {
		for k, typ := range sh.types {
			if kind, _, _ := documentedType(typ); kind == "" {
				t.Errorf("docs/json.md %s.%s: type %q names no JSON type", name, k, typ)
			}
		}
	}
}

// quoted are the literal strings a type column lists: `"ok"`, `"error"`.
var quoted = regexp.MustCompile("`\"([^\"`]*)\"`")

// documentedType returns the JSON type a documented type column names:
// "string", "number", "bool", "object" or "array" ("" when it names none),
// the literal strings it allows (`"active"` or `"suspended"`; nil: any),
// and whether it is a time (an RFC 3339 string in UTC, rule 5). A column
// naming another shape ("Document: ...", "RunReport") or an object form
// is an object, "[X]" or a list form an array.
func documentedType(typ string) (kind string, values []string, isTime bool) {
	typ = strings.TrimSpace(typ)
	head, _, _ := strings.Cut(typ, ": ") // the type, before its description
	switch {
	case strings.HasPrefix(typ, "[") || strings.HasPrefix(typ, "`["):
		return "array", nil, false
	case strings.HasPrefix(typ, "`{"):
		return "object", nil, false
	case strings.HasPrefix(typ, "`\""):
		for _, m := range quoted.FindAllStringSubmatch(head, -1) {
			values = append(values, m[1])
		}
		return "string", values, false
	}
	word := strings.FieldsFunc(head, func(r rune) bool { return r == ' ' || r == ',' || r == ':' })
	if len(word) == 0 {
		return "", nil, false
	}
	switch word[0] {
	case "string", "number", "bool", "object":
		return word[0], nil, false
	case "time":
		return "string", nil, true
	}
	if shapeRef.MatchString(word[0]) {
		return "object", nil, false
	}
	return "", nil, false
}

// typeMismatch says how v, a decoded JSON value, differs from the
// documented type column typ ("" when it does not).
func typeMismatch(typ string, v any) string {
	kind, values, isTime := documentedType(typ)
	got := ""
	switch x := v.(type) {
	case string:
		got = "string"
		if isTime {
			if tm, err := time.Parse(time.RFC3339Nano, x); err != nil || tm.Location() != time.UTC {
				return fmt.Sprintf("%q is not an RFC 3339 time in UTC", x)
			}
		}
		if values != nil && !slices.Contains(values, x) {
			return fmt.Sprintf("%q is not one of %q", x, values)
		}
	case float64:
		got = "number"
	case bool:
		got = "bool"
	case map[string]any:
		got = "object"
	case []any:
		got = "array"
	}
	if kind != "" && got != kind {
		return fmt.Sprintf("got %s, documented %s", got, kind)
	}
	return ""
}
