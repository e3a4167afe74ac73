package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fatMeta is keys values of 64 KiB (engine.MaxMetaValueLen) of c each.
func fatMeta(keys int, c string) map[string]docex.Value {
	m := map[string]docex.Value{}
	for i := range keys {
		m[fmt.Sprintf("k%03d", i)] = docex.String(strings.Repeat(c, engine.MaxMetaValueLen/len(c)))
	}
	return m
}

// allocated is the number of bytes the process allocated while fn ran.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestResourcesListReadsNoMetadata: resources/list lists documents by
// id, name, type and size, and reads none of their metadata. Before, it
// read every listed document's metadata in full (a document may hold
// 16 MiB): here 10 documents of 1 MiB each, more than 10 MiB allocated
// by one call (P4: 363 MB RSS for 20 documents of 16 MiB).
func TestResourcesListReadsNoMetadata(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.admin.CreateBasket(ctx, "fat")
	if err != nil {
		t.Fatal(err)
	}
	var docs []engine.NewDocument
	for i := range 10 {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%d.txt", i), Content: strings.NewReader(fmt.Sprint("fat ", i)), Metadata: fatMeta(16, "v")})
	}
	if _, err := e.admin.AddDocuments(ctx, b.ID, docs); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	list := func() *mcp.ListResourcesResult {
		res, err := cs.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	list() // warm
	var res *mcp.ListResourcesResult
	n := allocated(func() { res = list() })
	docURIs := 0
	for _, r := range res.Resources {
		if strings.HasPrefix(r.URI, documentPrefix) {
			docURIs++
		}
	}
	if docURIs != 11 { // and e.doc
		t.Fatalf("resources/list: %d documents, want 11", docURIs)
	}
	// The metadata is 10 MiB; the listing itself takes tens of KiB.
	if n > 4<<20 {
		t.Fatalf("one resources/list allocated %d bytes: it read the documents' metadata", n)
	}
}

// TestRecordsBounded: get_document, set_metadata and add_document (a
// duplicate) give a document record whose metadata's JSON holds at most
// recordMetaBytes (1 MiB, docs/agents.md), the keys left out in
// metadata_omitted; get_document with keys reads them, 1 MiB a call.
// Before, each reply held every value: here 8 values of 64 KiB of "<",
// 3 MB of JSON (\u003c), twice (P4: 16 MiB of them, a 218 MB line).
func TestRecordsBounded(t *testing.T) {
	const bound = 1 << 20 // docs/agents.md
	e := newEnv(t)
	ctx := context.Background()
	meta := fatMeta(8, "<")
	meta["small"] = docex.Number(1)
	added, err := e.admin.AddDocuments(ctx, e.basket.ID, []engine.NewDocument{{Name: "lt.txt", Content: strings.NewReader("lt"), Metadata: meta}})
	if err != nil {
		t.Fatal(err)
	}
	id := added[0].Document.ID
	_, cs := e.connect(t, user("will", "writer"), Config{})
	type rec struct {
		ID       string                     `json:"id"`
		Metadata map[string]json.RawMessage `json:"metadata"`
		Omitted  []string                   `json:"metadata_omitted"`
	}
	// callRec calls tool and returns the record at path (none: the result).
	callRec := func(tool string, args map[string]any, path string) rec {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %s", tool, err, text(res))
		}
		data, _ := json.Marshal(res.StructuredContent)
		if len(data) > bound+4096 || len(text(res)) > bound+4096 {
			t.Fatalf("%s: structuredContent %d bytes, content %d", tool, len(data), len(text(res)))
		}
		var out map[string]json.RawMessage
		must(t, json.Unmarshal(data, &out))
		if path != "" {
			data = out[path]
		}
		var r rec
		must(t, json.Unmarshal(data, &r))
		if r.ID != id {
			t.Fatalf("%s: record of %s, want %s", tool, r.ID, id)
		}
		return r
	}
	full := callRec("get_document", map[string]any{"id": id}, "")
	if len(full.Omitted) == 0 || len(full.Metadata)+len(full.Omitted) != 9 || full.Metadata["small"] == nil {
		t.Fatalf("get_document: %d values, omitted %v", len(full.Metadata), full.Omitted)
	}
	// keys reads the values left out, a bounded page at a time.
	got := map[string]string{}
	for k, v := range full.Metadata {
		var s any
		must(t, json.Unmarshal(v, &s))
		got[k] = fmt.Sprint(s)
	}
	left, calls := full.Omitted, 0
	for len(left) > 0 {
		if calls++; calls > 9 {
			t.Fatalf("get_document keys: no progress, %v left", left)
		}
		r := callRec("get_document", map[string]any{"id": id, "keys": append(left, "absent")}, "")
		if len(r.Metadata) == 0 || len(r.Metadata)+len(r.Omitted) != len(left) {
			t.Fatalf("get_document keys %v: %d values, omitted %v", left, len(r.Metadata), r.Omitted)
		}
		for k, v := range r.Metadata {
			var s string
			must(t, json.Unmarshal(v, &s))
			got[k] = s
		}
		left = r.Omitted
	}
	for k, v := range meta {
		if got[k] != fmt.Sprint(v.Any()) {
			t.Fatalf("value of %s: %d bytes read, want %d", k, len(got[k]), len(fmt.Sprint(v.Any())))
		}
	}
	// set_metadata and a duplicate add_document give the bounded record.
	r := callRec("set_metadata", map[string]any{"id": id, "metadata": map[string]any{"more": "x"}}, "")
	if len(r.Omitted) == 0 || r.Metadata["more"] == nil {
		t.Fatalf("set_metadata: %d values, omitted %v", len(r.Metadata), r.Omitted)
	}
	r = callRec("add_document", map[string]any{"basket": "in", "name": "again.txt", "text": "lt"}, "document")
	if len(r.Omitted) == 0 {
		t.Fatalf("add_document: %d values, omitted %v", len(r.Metadata), r.Omitted)
	}
}

// TestErrorsQuoteShort: a failed call quotes a long argument (a value or
// a key) by its first 64 bytes and its length, `"<<<..." (N bytes)`,
// whether the SDK's schema validation refused it or the engine did.
// Before, the message quoted it in full, escaped: a 1 MiB argument of "<"
// made an error of megabytes (P4: 15 MiB, a 94 MB reply).
func TestErrorsQuoteShort(t *testing.T) {
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{})
	const n = 1 << 19 // under argBytes, which is refused before (TestArgumentsBounded)
	big := strings.Repeat("<", n)
	quoted := fmt.Sprintf("%q... (%d bytes)", big[:64], n)
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"get_document", map[string]any{"id": big}, quoted}, // the engine's invalid id, quoted the same way
		{"get_document", map[string]any{"id": strings.Repeat("a", 63) + strings.Repeat("é", 40)}, `"` + strings.Repeat("a", 63) + `"... (143 bytes)`}, // cut back to a whole character
		{"list_documents", map[string]any{"basket": "in", "order": big}, big[:64] + "... (524288 bytes)"},                                             // enum, %v
		{"list_documents", map[string]any{"basket": "in", "limit": big}, big[:64] + "... (524288 bytes)"},                                             // type, %v
		{"list_documents", map[string]any{"basket": big}, quoted},                                                                                     // no such basket
		{"list_documents", map[string]any{"basket": "in", big: 1}, quoted},                                                                            // an unknown argument
	} {
		msg := callErr(t, cs, c.tool, c.args)
		if len(msg) > 4096 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error of %d bytes: %.300s", c.tool, len(msg), msg)
		}
	}
}

// TestEmptyPages: a page without documents is "documents": [], not null
// (list_documents and find_documents, an empty basket and a page past the
// end).
func TestEmptyPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.admin.CreateBasket(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"list_documents", map[string]any{"basket": "empty"}},
		{"list_documents", map[string]any{"basket": "in", "offset": 50}},
		{"find_documents", map[string]any{"basket": "empty", "metadata": map[string]any{"k": "v"}}},
		{"find_documents", map[string]any{"basket": "in", "metadata": map[string]any{"k": "v"}}},
	} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %s", c.tool, err, text(res))
		}
		data, _ := json.Marshal(res.StructuredContent)
		if !strings.Contains(string(data), `"documents":[]`) || !strings.Contains(text(res), `"documents":[]`) {
			t.Errorf("%s %v: %s", c.tool, c.args, data)
		}
	}
}

// TestMalformedIDsUnaudited: as docs/agents.md lists them, a read whose
// id is not a UUID in canonical form is refused (invalid_id) before it
// reaches the engine's audit: get_document, read_document, get_job, and
// list_documents or find_documents whose basket is a UUID not in
// canonical form. A name that is no UUID is looked up, and audited.
func TestMalformedIDsUnaudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	count := func() int {
		log, err := e.admin.Audit(ctx, docex.Page{Limit: 1000})
		must(t, err)
		n := 0
		for _, a := range log {
			if a.UserID == "rita" {
				n++
			}
		}
		return n
	}
	upper := strings.ToUpper(e.basket.ID)
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"get_document", map[string]any{"id": "nope"}},
		{"read_document", map[string]any{"id": "nope"}},
		{"get_job", map[string]any{"id": "nope"}},
		{"list_documents", map[string]any{"basket": upper}},
		{"find_documents", map[string]any{"basket": upper, "metadata": map[string]any{"k": "v"}}},
	} {
		before := count()
		if msg := callErr(t, cs, c.tool, c.args); !strings.HasPrefix(msg, "invalid_id:") {
			t.Errorf("%s: %s", c.tool, msg)
		}
		if n := count() - before; n != 0 {
			t.Errorf("%s with a malformed id: %d audit entries, want none (docs/agents.md)", c.tool, n)
		}
	}
	before := count()
	callErr(t, cs, "list_documents", map[string]any{"basket": "nope"})
	if n := count() - before; n != 1 {
		t.Errorf("list_documents of an unknown name: %d audit entries, want 1", n)
	}
}

// TestResourcesListSkipsEmptyBaskets: resources/list reads no documents
// of a basket its counter says is empty, and goes through at most 1,000
// baskets a call: a page may then end early, with a nextCursor. Paging
// still gives every resource once. Before, it made one audited engine
// call per empty basket, every basket in one call (P4: 3,000 empty
// baskets, 3,002 audit entries for one call).
func TestResourcesListSkipsEmptyBaskets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const empty = 1150
	for i := range empty {
		if _, err := e.admin.CreateBasket(ctx, fmt.Sprintf("e%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	last, err := e.admin.CreateBasket(ctx, "zz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.AddDocuments(ctx, last.ID, []engine.NewDocument{{Name: "a.txt", Content: strings.NewReader("a")}, {Name: "b.txt", Content: strings.NewReader("b")}}); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	audited := func() (n int) {
		log, err := e.admin.Audit(ctx, docex.Page{Limit: 10000})
		must(t, err)
		for _, a := range log {
			if a.UserID == "rita" {
				n++
			}
		}
		return n
	}
	before := audited()
	seen := map[string]bool{}
	cursor, pages, short := "", 0, 0
	for {
		res, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range res.Resources {
			if seen[r.URI] {
				t.Fatalf("%s listed twice", r.URI)
			}
			seen[r.URI] = true
		}
		if res.NextCursor == "" {
			break
		}
		if len(res.Resources) < listPage {
			short++
		}
		cursor = res.NextCursor
	}
	// docex://baskets, 1,152 baskets, 3 documents.
	if len(seen) != 1+empty+2+3 {
		t.Fatalf("%d resources, want %d", len(seen), 1+empty+2+3)
	}
	// The basket pages of the listing (about 2 a page) and the two
	// baskets with documents, not one a basket.
	if n := audited() - before; n > 4*pages {
		t.Fatalf("%d pages made %d audit entries", pages, n)
	}
	if short == 0 {
		t.Fatalf("no page ended early at %d baskets", 1000)
	}
}

// TestResourcesEmptyPageIsArray: a resources/list page with no resource
// (past the last basket, or ended early by the scan bound) sends
// "resources": [], as the MCP schema wants, not null.
func TestResourcesEmptyPageIsArray(t *testing.T) {
	e := newEnv(t)
	srv, _ := e.connect(t, user("rita", "reader"), Config{})
	res, err := srv.listResources(context.Background(), &mcp.ListResourcesRequest{Params: &mcp.ListResourcesParams{Cursor: encodeCursor(listCursor{Section: 2, Basket: 1 << 20})}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"resources":[]`) {
		t.Fatalf("an empty page: %s", data)
	}
}

// TestPluginTimeoutNotCancelled: a plugin that runs past its own
// timeout_ms fails with plugin_failed and its message, and the tool error
// does not add "The call was cancelled." (nothing cancelled it; before,
// every error wrapping context.DeadlineExceeded said so).
func TestPluginTimeoutNotCancelled(t *testing.T) {
	e := newEnv(t)
	manifest, module := pluginBytes(t, "loop")
	if _, err := e.admin.InstallPlugin(context.Background(), manifest, module); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("will", "writer"), Config{})
	msg := callErr(t, cs, "run_plugin", map[string]any{"plugin": "loop", "document_id": e.doc.ID})
	if !strings.HasPrefix(msg, "plugin_failed: ") || strings.Contains(msg, "The call was cancelled.") {
		t.Fatalf("a plugin's timeout: %s", msg)
	}
}
