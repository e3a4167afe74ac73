package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestListingsBounded: list_documents, find_documents and the basket
// resource give at most listBytes of documents' JSON, whatever their
// metadata holds: a document's values past listMetaBytes are left out
// (their keys in metadata_omitted; get_document has them), and a page
// stops early with a next_offset; paging still gives every document
// exactly once. Before, each reply held every value of every document of
// the page (here about 5.6 MB, twice in list_documents: content and
// structuredContent; a document may hold 16 MiB).
func TestListingsBounded(t *testing.T) {
	const listBytes = 1 << 20 // the bound docs/agents.md gives
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.admin.CreateBasket(ctx, "fat")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("v", 60_000)
	const n = 31
	var docs []engine.NewDocument
	for i := range n {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%03d.txt", i), Content: strings.NewReader(fmt.Sprint("fat ", i)),
			Metadata: map[string]docex.Value{"a": docex.String(big), "b": docex.String(big), "c": docex.String(big), "kind": docex.String("fat")}})
	}
	// One small document among them keeps all of its metadata.
	docs[5].Metadata = map[string]docex.Value{"kind": docex.String("fat"), "small": docex.Number(1)}
	if _, err := e.admin.AddDocuments(ctx, b.ID, docs); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})

	type listed struct {
		Documents []struct {
			ID       string                     `json:"id"`
			Name     string                     `json:"name"`
			Metadata map[string]json.RawMessage `json:"metadata"`
			Omitted  []string                   `json:"metadata_omitted"`
		} `json:"documents"`
		NextOffset *int `json:"next_offset"`
	}
	for _, tool := range []string{"list_documents", "find_documents"} {
		seen := map[string]bool{}
		offset, pages := 0, 0
		for {
			args := map[string]any{"basket": "fat", "limit": 100, "offset": offset}
			if tool == "find_documents" {
				args["metadata"] = map[string]any{"kind": "fat"}
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
			if err != nil || res.IsError {
				t.Fatalf("%s: %v %s", tool, err, text(res))
			}
			data, _ := json.Marshal(res.StructuredContent)
			if len(data) > listBytes+1024 {
				t.Fatalf("%s offset %d: structuredContent is %d bytes, more than %d", tool, offset, len(data), listBytes)
			}
			if c := len(text(res)); c > listBytes+1024 {
				t.Fatalf("%s offset %d: content is %d bytes", tool, offset, c)
			}
			var page listed
			if err := json.Unmarshal(data, &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Documents) == 0 {
				t.Fatalf("%s offset %d: empty page", tool, offset)
			}
			for _, d := range page.Documents {
				if seen[d.ID] {
					t.Fatalf("%s: %s (%s) listed twice", tool, d.ID, d.Name)
				}
				seen[d.ID] = true
				if d.Name == "d005.txt" {
					if len(d.Metadata) != 2 || d.Omitted != nil {
						t.Fatalf("%s: small document %v, omitted %v", tool, d.Metadata, d.Omitted)
					}
					continue
				}
				// a (60,000 bytes) and kind fit in listMetaBytes; b and c do not.
				if len(d.Metadata) != 2 || d.Metadata["kind"] == nil || d.Metadata["a"] == nil || !slices.Equal(d.Omitted, []string{"b", "c"}) {
					t.Fatalf("%s: %s has metadata keys %d, omitted %v", tool, d.Name, len(d.Metadata), d.Omitted)
				}
			}
			pages++
			if page.NextOffset == nil {
				break
			}
			offset = *page.NextOffset
		}
		if len(seen) != n || pages < 2 {
			t.Fatalf("%s: %d documents in %d pages, want %d in several", tool, len(seen), pages, n)
		}
	}
	// get_document gives every value.
	var got struct {
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}
	all := call[struct {
		Documents []struct{ ID string } `json:"documents"`
	}](t, cs, "list_documents", map[string]any{"basket": "fat", "limit": 1})
	got = call[struct {
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}](t, cs, "get_document", map[string]any{"id": all.Documents[0].ID})
	if len(got.Metadata) != 4 || got.Metadata["c"] != big || got.Omitted != nil {
		t.Fatalf("get_document: %d keys, omitted %v", len(got.Metadata), got.Omitted)
	}

	// The basket resource: bounded too, and says where to go on.
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: basketURI(b.ID)})
	if err != nil {
		t.Fatal(err)
	}
	body := res.Contents[0].Text
	if len(body) > listBytes+64<<10 {
		t.Fatalf("basket resource is %d bytes", len(body))
	}
	var r struct {
		Documents  []json.RawMessage `json:"documents"`
		NextOffset *int              `json:"next_offset"`
		Next       string            `json:"next"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.NextOffset == nil || *r.NextOffset != len(r.Documents) || len(r.Documents) >= n ||
		r.Next != fmt.Sprintf("call list_documents with basket=%s offset=%d", b.ID, len(r.Documents)) {
		t.Fatalf("basket resource: %d documents, next_offset %v, next %q", len(r.Documents), r.NextOffset, r.Next)
	}
	// A basket that fits has neither.
	res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: basketURI(e.basket.ID)})
	if err != nil || strings.Contains(res.Contents[0].Text, "next") {
		t.Fatalf("small basket resource: %v %v", res, err)
	}
}

// TestRunPluginBounded: run_plugin gives the input's record (and the
// derived documents') with its metadata bounded as a listing's: values
// past listMetaBytes are left out and named in metadata_omitted;
// get_document still has them. Before, the reply held every value (up
// to 16 MiB, twice: content and structuredContent).
func TestRunPluginBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	big := strings.Repeat("v", 60_000)
	if _, err := e.admin.SetMetadata(ctx, e.doc.ID, map[string]docex.Value{"a": docex.String(big), "b": docex.String(big), "c": docex.String("small")}); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("will", "writer"), Config{})
	type rec struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_plugin", Arguments: map[string]any{"plugin": "echo", "document_id": e.doc.ID}})
	if err != nil || res.IsError {
		t.Fatalf("run_plugin: %v %s", err, text(res))
	}
	if n := len(text(res)); n > 2*listMetaBytes {
		t.Fatalf("run_plugin's content is %d bytes", n)
	}
	data, _ := json.Marshal(res.StructuredContent)
	var run struct {
		Status   string `json:"status"`
		Document rec    `json:"document"`
		Derived  []rec  `json:"derived"`
	}
	if err := json.Unmarshal(data, &run); err != nil {
		t.Fatal(err)
	}
	if run.Status != "ok" || len(run.Derived) != 1 {
		t.Fatalf("run_plugin: %s", data[:min(len(data), 500)])
	}
	for _, d := range append([]rec{run.Document}, run.Derived...) {
		// a (60,000 bytes) and c fit in listMetaBytes, and the small
		// values the document held or echo set; b does not.
		_, hasB := d.Metadata["b"]
		if d.ID != e.doc.ID || d.Metadata["a"] != big || d.Metadata["c"] != "small" || hasB || !slices.Equal(d.Omitted, []string{"b"}) {
			t.Fatalf("run_plugin record %s: %d keys, omitted %v", d.ID, len(d.Metadata), d.Omitted)
		}
	}
	got := call[rec](t, cs, "get_document", map[string]any{"id": e.doc.ID})
	if got.Metadata["b"] != big || got.Omitted != nil {
		t.Fatalf("get_document: %d keys, omitted %v", len(got.Metadata), got.Omitted)
	}
}

// TestListingEscapedValues: the store bounds a listed document's metadata
// counting each value at the least length of its JSON; a value whose
// escapes make its JSON too long for the bound, though its bytes were not,
// leaves room that a later value the store left out may fit in, and the
// listing gives that value as listedOf over the whole metadata does.
func TestListingEscapedValues(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.admin.CreateBasket(ctx, "esc")
	if err != nil {
		t.Fatal(err)
	}
	quotes := strings.Repeat(`"`, 40_000) // 40,000 bytes, 80,002 of JSON
	plain := strings.Repeat("x", 30_000)
	meta := map[string]docex.Value{"a": docex.String(quotes), "b": docex.String(plain), "kind": docex.String("esc")}
	if _, err := e.admin.AddDocuments(ctx, b.ID, []engine.NewDocument{{Name: "q.txt", Content: strings.NewReader("q"), Metadata: meta}}); err != nil {
		t.Fatal(err)
	}
	want := listedOf(docex.Document{Metadata: meta})
	if !slices.Equal(want.MetadataOmitted, []string{"a"}) {
		t.Fatalf("listedOf: omitted %v", want.MetadataOmitted)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	for _, tool := range []string{"list_documents", "find_documents"} {
		args := map[string]any{"basket": "esc"}
		if tool == "find_documents" {
			args["metadata"] = map[string]any{"kind": "esc"}
		}
		page := call[struct {
			Documents []struct {
				Metadata map[string]string `json:"metadata"`
				Omitted  []string          `json:"metadata_omitted"`
			} `json:"documents"`
		}](t, cs, tool, args)
		if len(page.Documents) != 1 {
			t.Fatalf("%s: %d documents", tool, len(page.Documents))
		}
		d := page.Documents[0]
		if d.Metadata["b"] != plain || d.Metadata["kind"] != "esc" || len(d.Metadata) != 2 || !slices.Equal(d.Omitted, []string{"a"}) {
			t.Fatalf("%s: %d keys, omitted %v", tool, len(d.Metadata), d.Omitted)
		}
	}
}
