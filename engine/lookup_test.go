package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestPluginLookupByNameInALargeBasket: a lookup by name finds a document
// whatever its place in the basket (issue 8: only the first page of the
// basket, in name order, was searched).
func TestPluginLookupByNameInALargeBasket(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	b, err := e.b.Basket(ctx, e.bDoc.BasketID)
	if err != nil {
		t.Fatal(err)
	}
	var docs []engine.NewDocument
	for i := range docex.MaxPageLimit + 50 {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("aaa-%05d.txt", i), Content: strings.NewReader(fmt.Sprint(i))})
	}
	docs = append(docs, engine.NewDocument{Name: "zzz.txt", Content: strings.NewReader("the one")})
	if _, err := e.b.AddDocuments(ctx, b.ID, docs); err != nil {
		t.Fatal(err)
	}
	e.install(t, e.b, "lookup")
	res, err := e.b.RunPlugin(ctx, "lookup", e.bDoc.ID, map[string]string{"name": "zzz.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Document.Metadata["found"] != docex.Number(1) || res.Document.Metadata["total_bytes"] != docex.Number(7) {
		t.Fatalf("lookup of the last name in a basket of %d: %+v", len(docs)+1, res.Document.Metadata)
	}
}
