package mcpserver

import (
	"context"
	"reflect"
	"testing"

	"github.com/docex-dev/docex"
)

// TestBasketLookupOneEntry: a write naming a basket (add_document,
// run_pipeline) is audited once, as the write. Before, the server's
// lookup of the basket was audited as a read of its own: a run_pipeline
// on an unknown basket left mcp.basket.get and mcp.pipeline.run (the CLI's
// pipeline run --basket leaves only the second), and every add_document
// by basket an mcp.basket.get entry before its mcp.document.add (a
// reader's denied add too).
func TestBasketLookupOneEntry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, w := e.connect(t, user("will", "writer"), Config{})
	_, r := e.connect(t, user("rita", "reader"), Config{})
	add := call[struct{ Document docOut }](t, w, "add_document", map[string]any{"basket": "in", "name": "a.txt", "text": "abc"})
	callErr(t, w, "add_document", map[string]any{"basket": "nosuch", "name": "b.txt", "text": "abc"})
	callErr(t, w, "run_pipeline", map[string]any{"pipeline": "p", "basket": "nosuch"})
	callErr(t, r, "add_document", map[string]any{"basket": "in", "name": "c.txt", "text": "abc"})
	log, err := e.admin.Audit(ctx, docex.Page{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(log) - 1; i >= 0; i-- {
		if a := log[i]; a.UserID == "will" || a.UserID == "rita" {
			got = append(got, a.UserID+" "+a.Operation+" "+a.Target+" "+a.Outcome)
		}
	}
	want := []string{
		"will mcp.document.add " + add.Document.ID + " ok",
		"will mcp.document.add nosuch error",
		"will mcp.pipeline.run p error",
		"rita mcp.document.add " + e.basket.ID + " denied",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit entries, oldest first:\n got %q\nwant %q", got, want)
	}
}
