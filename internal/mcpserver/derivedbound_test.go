package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRunPluginDerivedBounded: run_plugin of the built-in chunk step with
// a tiny size derives 300 documents; the reply's derived holds the first
// maxDerivedListed of them (always a list), derived_total says 300, and
// derived_next's find_documents arguments page through all 300. A run
// that derives none has "derived": [], derived_total 0 and no
// derived_next. Before, derived held every document the run derived (a
// chunk of size 1 made a reply of 19.5 MB) and there was no
// derived_total.
func TestRunPluginDerivedBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	steps, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		if st.Name != "chunk" {
			continue
		}
		if _, err := e.eng.Provisioner("ops").InstallSystemPlugin(ctx, st.Manifest, st.Module); err != nil {
			t.Fatal(err)
		}
	}
	const n = 300
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, "%07d|", i) // 300 distinct chunks of 8 characters
	}
	a, err := e.admin.AddDocument(ctx, e.basket.ID, engine.NewDocument{Name: "long.txt", Content: strings.NewReader(body.String())})
	if err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("will", "writer"), Config{})
	type next struct {
		Basket   string            `json:"basket"`
		Metadata map[string]string `json:"metadata"`
	}
	type runOut struct {
		Status  string `json:"status"`
		Derived []struct {
			ID string `json:"id"`
		} `json:"derived"`
		DerivedTotal *int  `json:"derived_total"`
		DerivedNext  *next `json:"derived_next"`
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_plugin", Arguments: map[string]any{"plugin": "chunk", "document_id": a.Document.ID,
		"params": map[string]any{"strategy": "fixed", "size": "8", "overlap": "0"}}})
	if err != nil || res.IsError {
		t.Fatalf("run_plugin: %v %s", err, text(res))
	}
	data, _ := json.Marshal(res.StructuredContent)
	var run runOut
	if err := json.Unmarshal(data, &run); err != nil {
		t.Fatal(err)
	}
	if run.Status != "ok" || run.DerivedTotal == nil || *run.DerivedTotal != n || len(run.Derived) != maxDerivedListed || run.DerivedNext == nil {
		t.Fatalf("run_plugin: status %q, %d derived, derived_total %v, derived_next %v (%d bytes)", run.Status, len(run.Derived), run.DerivedTotal, run.DerivedNext, len(data))
	}
	dn := run.DerivedNext
	var dnRaw map[string]any // derived_next as sent: find_documents takes it as it is
	if err := json.Unmarshal(mustRaw(t, data, "derived_next"), &dnRaw); err != nil {
		t.Fatal(err)
	}
	if dn.Basket != e.basket.ID || dn.Metadata["derived_from"] != a.Document.ID || dn.Metadata["derived_by"] != "chunk" || len(dn.Metadata) != 2 {
		t.Fatalf("derived_next: %+v", dn)
	}
	// derived_next pages through every derived document, those of
	// derived first.
	var all []string
	for off := 0; ; {
		page := call[struct {
			Documents []struct {
				ID string `json:"id"`
			} `json:"documents"`
			NextOffset *int `json:"next_offset"`
		}](t, cs, "find_documents", withPage(dnRaw, off))
		for _, d := range page.Documents {
			all = append(all, d.ID)
		}
		if page.NextOffset == nil {
			break
		}
		off = *page.NextOffset
	}
	if len(all) != n {
		t.Fatalf("find_documents with derived_next: %d documents, want %d", len(all), n)
	}
	for i, d := range run.Derived {
		if all[i] != d.ID {
			t.Fatalf("derived[%d] %s, find_documents' %s", i, d.ID, all[i])
		}
	}
	// The same content emitted many times is one document, listed once
	// and counted once (before: 150 records of one id, derived_total 150
	// and a derived_next that found 1).
	same, err := e.admin.AddDocument(ctx, e.basket.ID, engine.NewDocument{Name: "same.txt", Content: strings.NewReader(strings.Repeat("abcdefgh", 150))})
	if err != nil {
		t.Fatal(err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_plugin", Arguments: map[string]any{"plugin": "chunk", "document_id": same.Document.ID,
		"params": map[string]any{"strategy": "fixed", "size": "8", "overlap": "0"}}})
	if err != nil || res.IsError {
		t.Fatalf("run_plugin: %v %s", err, text(res))
	}
	data, _ = json.Marshal(res.StructuredContent)
	run = runOut{}
	if err := json.Unmarshal(data, &run); err != nil {
		t.Fatal(err)
	}
	if run.DerivedTotal == nil || *run.DerivedTotal != 1 || len(run.Derived) != 1 || run.DerivedNext != nil {
		t.Fatalf("one chunk emitted 150 times: %d derived, derived_total %v, derived_next %v", len(run.Derived), run.DerivedTotal, run.DerivedNext)
	}

	// No derived document: [], 0, no derived_next.
	manifest, module := pluginBytes(t, "tag")
	if _, err := e.admin.InstallPlugin(ctx, manifest, module); err != nil {
		t.Fatal(err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_plugin", Arguments: map[string]any{"plugin": "tag", "document_id": e.doc.ID}})
	if err != nil || res.IsError {
		t.Fatalf("run_plugin tag: %v %s", err, text(res))
	}
	data, _ = json.Marshal(res.StructuredContent)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["derived"]) != "[]" || string(raw["derived_total"]) != "0" || raw["derived_next"] != nil {
		t.Fatalf("run_plugin tag: derived %s, derived_total %s, derived_next %s", raw["derived"], raw["derived_total"], raw["derived_next"])
	}
}

// TestDerivedOfBytes: derivedOf stops before the record that would bring
// the records' JSON past listBytes (the first always given), however
// few they are.
func TestDerivedOfBytes(t *testing.T) {
	big := docex.String(strings.Repeat("v", 60_000))
	var ds []docex.Document
	for i := range 50 {
		ds = append(ds, docex.Document{ID: fmt.Sprint(i), Metadata: map[string]docex.Value{"a": big}})
	}
	out := derivedOf(ds)
	data, _ := json.Marshal(out)
	if len(out) == 0 || len(out) >= len(ds) || len(data) > listBytes {
		t.Fatalf("derivedOf: %d of %d records, %d bytes", len(out), len(ds), len(data))
	}
	if got := derivedOf(nil); got == nil || len(got) != 0 {
		t.Fatalf("derivedOf(nil) = %#v", got)
	}
}

// mustRaw returns the member key of the JSON object data.
func mustRaw(t *testing.T, data []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m[key] == nil {
		t.Fatalf("%s in %.200s: %v", key, data, err)
	}
	return m[key]
}

// withPage returns args with limit 100 and offset off added.
func withPage(args map[string]any, off int) map[string]any {
	out := map[string]any{"limit": 100, "offset": off}
	for k, v := range args {
		out[k] = v
	}
	return out
}
