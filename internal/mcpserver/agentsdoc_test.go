package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/markdown"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestAgentsDocTools ties docs/agents.md's Tools table to the tools the
// server registers: one row per tool and none for a tool that does not
// exist; every argument of a tool's input schema named in its arguments
// cell, and every property of its output schema in its result cell (or in
// the record the cell names).
func TestAgentsDocTools(t *testing.T) {
	b, err := os.ReadFile("../../docs/agents.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	section, ok := markdown.Section(doc, "## Tools")
	if !ok {
		t.Fatal("docs/agents.md has no Tools section")
	}
	names := regexp.MustCompile("`([a-z_]+)`")
	record := func(kind string) []string {
		k := strings.Index(section, "**"+kind+" record** is ")
		if k < 0 {
			t.Fatalf("the Tools section does not define a %s record", kind)
		}
		text := section[k:]
		text = text[:strings.Index(text, ";")+1]
		if kind == "basket" {
			text = section[k : k+strings.Index(section[k:], ".")]
		}
		var keys []string
		for _, m := range names.FindAllStringSubmatch(text, -1) {
			keys = append(keys, m[1])
		}
		slices.Sort(keys)
		return keys
	}
	rows := map[string][]string{}
	for _, cells := range markdown.TableRows(section) {
		if len(cells) != 4 {
			t.Fatalf("a row of %d cells: %q", len(cells), cells)
		}
		rows[strings.Trim(cells[0], "`")] = cells
	}
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{})
	seen := map[string]bool{}
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		seen[tool.Name] = true
		row, ok := rows[tool.Name]
		if !ok {
			t.Errorf("docs/agents.md has no row for the tool %s", tool.Name)
			continue
		}
		var in, out struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		b, _ := json.Marshal(tool.InputSchema)
		must(t, json.Unmarshal(b, &in))
		b, _ = json.Marshal(tool.OutputSchema)
		must(t, json.Unmarshal(b, &out))
		for p := range in.Properties {
			if !strings.Contains(row[2], "`"+p+"`") {
				t.Errorf("%s: the argument %s is not in the doc's arguments: %s", tool.Name, p, row[2])
			}
		}
		if len(in.Properties) == 0 && strings.TrimSpace(row[2]) != "none" {
			t.Errorf("%s takes no argument; the doc says %s", tool.Name, row[2])
		}
		if len(in.Required) > 0 && !strings.Contains(row[2], "required") {
			t.Errorf("%s: the doc marks no argument required (%v are)", tool.Name, in.Required)
		}
		var keys []string
		for p := range out.Properties {
			keys = append(keys, p)
		}
		slices.Sort(keys)
		switch result := strings.TrimSpace(row[3]); {
		case strings.HasPrefix(result, "the document record"):
			if want := record("document"); !slices.Equal(keys, want) {
				t.Errorf("%s returns %v; the document record is %v", tool.Name, keys, want)
			}
		case strings.HasPrefix(result, "the basket record"):
			if want := record("basket"); !slices.Equal(keys, want) {
				t.Errorf("%s returns %v; the basket record is %v", tool.Name, keys, want)
			}
		default:
			for _, p := range keys {
				if !strings.Contains(result, "`"+p+"`") {
					t.Errorf("%s: the result key %s is not in the doc's result: %s", tool.Name, p, result)
				}
			}
		}
	}
	for name := range rows {
		if !seen[name] {
			t.Errorf("docs/agents.md documents the tool %s, which the server does not register", name)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAgentsDocErrorCodes ties the table of docs/agents.md's "JSON-RPC
// errors" to the codes the server gives each kind of engine error: one
// row per kind (the last, "any other", for the kinds without a row), the
// code the first number of its second cell.
func TestAgentsDocErrorCodes(t *testing.T) {
	b, err := os.ReadFile("../../docs/agents.md")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdown.Section(string(b), "### JSON-RPC errors")
	if !ok {
		t.Fatal("docs/agents.md has no JSON-RPC errors section")
	}
	kinds := []string{"invalid", "not_found", "denied", "conflict", "plugin_failed", "interrupted", "internal"}
	doc := map[string]int64{}
	other := int64(0)
	number := regexp.MustCompile("`(-[0-9]+)`")
	word := regexp.MustCompile("`([a-z_]+)`")
	for _, cells := range markdown.TableRows(section) {
		if len(cells) != 3 {
			t.Fatalf("a row of %d cells: %q", len(cells), cells)
		}
		m := number.FindStringSubmatch(cells[1])
		if m == nil {
			t.Fatalf("no code in %q", cells[1])
		}
		code, err := strconv.ParseInt(m[1], 10, 64)
		must(t, err)
		if strings.HasPrefix(cells[0], "any other") {
			other = code
			continue
		}
		for _, k := range word.FindAllStringSubmatch(cells[0], -1) {
			doc[k[1]] = code
		}
	}
	if other == 0 {
		t.Fatal("the table has no row for the other kinds")
	}
	for _, k := range kinds {
		want, ok := doc[k]
		if !ok {
			want = other
		}
		if got := codeOfKind(k); got != want {
			t.Errorf("kind %s: code %d, the doc says %d", k, got, want)
		}
	}
	for k := range doc {
		if !slices.Contains(kinds, k) {
			t.Errorf("the doc gives a code to %q, which is no kind", k)
		}
	}
}

// TestAgentsDocContent: a tool result's content is what docs/agents.md's
// Tools section says: for every tool but read_document one text item,
// the JSON of structuredContent; for read_document two text items, the
// page as it is (text or base64) and a footer of one of the two forms
// the doc gives, with A, B, N and ID put in. Before, the doc said every
// result was also given as JSON text, and did not give the footer of the
// last page.
func TestAgentsDocContent(t *testing.T) {
	b, err := os.ReadFile("../../docs/agents.md")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdown.Section(string(b), "## Tools")
	if !ok {
		t.Fatal("docs/agents.md has no Tools section")
	}
	// The footer forms, with their line breaks undone.
	flat := strings.Join(strings.Fields(section), " ")
	forms := regexp.MustCompile("`(\\[bytes A-B of N; [^`]*\\])`").FindAllStringSubmatch(flat, -1)
	if len(forms) != 2 {
		t.Fatalf("the Tools section gives %d footer forms, want 2: %q", len(forms), forms)
	}
	more, end := forms[0][1], forms[1][1]
	if !strings.Contains(more, "more follows") || !strings.Contains(end, "end of document") {
		t.Fatalf("footer forms %q and %q", more, end)
	}
	footer := func(form string, a, b, n int, id string) string {
		return strings.NewReplacer("A", strconv.Itoa(a), "B", strconv.Itoa(b), "N", strconv.Itoa(n), "ID", id).Replace(form)
	}
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{})
	ctx := context.Background()
	content := strings.Repeat("0123456789", 5) // 50 bytes
	long := call[struct{ Document docOut }](t, cs, "add_document", map[string]any{"basket": "in", "name": "long.txt", "text": content}).Document
	empty := call[struct{ Document docOut }](t, cs, "add_document", map[string]any{"basket": "in", "name": "empty.txt", "text": ""}).Document
	for _, c := range []struct {
		name string
		args map[string]any
		page string
		foot string
	}{
		{"first page", map[string]any{"id": long.ID, "max_bytes": 20}, content[:20], footer(more, 0, 20, 50, long.ID)},
		{"middle page", map[string]any{"id": long.ID, "offset": 20, "max_bytes": 20}, content[20:40], footer(more, 20, 40, 50, long.ID)},
		{"last page", map[string]any{"id": long.ID, "offset": 40, "max_bytes": 20}, content[40:], footer(end, 40, 50, 50, long.ID)},
		{"whole document", map[string]any{"id": long.ID}, content, footer(end, 0, 50, 50, long.ID)},
		{"base64", map[string]any{"id": long.ID, "max_bytes": 20, "encoding": "base64"}, base64.StdEncoding.EncodeToString([]byte(content[:20])), footer(more, 0, 20, 50, long.ID)},
		{"empty document", map[string]any{"id": empty.ID}, "", footer(end, 0, 0, 0, empty.ID)},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_document", Arguments: c.args})
			if err != nil || res.IsError {
				t.Fatalf("%v %+v", err, res)
			}
			var texts []string
			for _, item := range res.Content {
				tc, ok := item.(*mcp.TextContent)
				if !ok {
					t.Fatalf("a content item of type %T", item)
				}
				texts = append(texts, tc.Text)
			}
			if want := []string{c.page, c.foot}; !slices.Equal(texts, want) {
				t.Fatalf("content %q, want %q", texts, want)
			}
		})
	}
	// Any other tool: one text item, the JSON of structuredContent.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_document", Arguments: map[string]any{"id": long.ID}})
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("get_document: %v %+v", err, res)
	}
	structured, err := json.Marshal(res.StructuredContent)
	must(t, err)
	var fromText, fromStructured any
	must(t, json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &fromText))
	must(t, json.Unmarshal(structured, &fromStructured))
	if !reflect.DeepEqual(fromText, fromStructured) {
		t.Fatalf("get_document's text %v is not its structuredContent %v", fromText, fromStructured)
	}
}

// TestAgentsDocAnnotations ties docs/agents.md's table of tool
// annotations to the tools the server lists: one row per tool, each hint
// as the doc gives it, and every hint given (none left to the
// specification's default). Before, set_metadata, run_plugin and
// run_pipeline said destructiveHint false though they overwrite metadata
// values, create_basket idempotentHint false though a second call
// changes nothing, and the read-only tools left destructiveHint out.
func TestAgentsDocAnnotations(t *testing.T) {
	b, err := os.ReadFile("../../docs/agents.md")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdown.Section(string(b), "## Tool annotations")
	if !ok {
		t.Fatal("docs/agents.md has no Tool annotations section")
	}
	type hints struct{ readOnly, destructive, idempotent, openWorld string }
	rows := map[string]hints{}
	for _, cells := range markdown.TableRows(section) {
		if len(cells) != 6 {
			t.Fatalf("a row of %d cells: %q", len(cells), cells)
		}
		rows[strings.Trim(cells[0], "`")] = hints{cells[1], cells[2], cells[3], cells[4]}
	}
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{})
	pb := func(p *bool) string {
		if p == nil {
			return "absent"
		}
		return strconv.FormatBool(*p)
	}
	seen := map[string]bool{}
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		seen[tool.Name] = true
		a := tool.Annotations
		if a == nil || a.Title == "" {
			t.Errorf("%s: annotations %+v, want a title and every hint", tool.Name, a)
			continue
		}
		got := hints{strconv.FormatBool(a.ReadOnlyHint), pb(a.DestructiveHint), strconv.FormatBool(a.IdempotentHint), pb(a.OpenWorldHint)}
		want, ok := rows[tool.Name]
		if !ok {
			t.Errorf("docs/agents.md gives no annotations of %s", tool.Name)
		} else if got != want {
			t.Errorf("%s: annotations %+v, the doc says %+v", tool.Name, got, want)
		}
	}
	for name := range rows {
		if !seen[name] {
			t.Errorf("docs/agents.md gives annotations of %s, which the server does not have", name)
		}
	}
}
