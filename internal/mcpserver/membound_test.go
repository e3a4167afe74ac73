package mcpserver

import (
	"context"
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
