package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// TestCascadeTree is no test: with DOCEX_CASCADE_TREE set to the path of
// a docex.yaml (after docex init and docex tenant create acme) it adds to
// tenant acme a basket "tree" holding a document with
// DOCEX_CASCADE_FANOUT (default 50) documents derived from it, as many
// from each of those and as many from each of those (127,550 descendants
// at 50), by edges that created them, and prints the root's id: the tree
// docs/benchmarks.md measures doc delete --cascade on. Skipped otherwise.
func TestCascadeTree(t *testing.T) {
	path := os.Getenv("DOCEX_CASCADE_TREE")
	if path == "" {
		t.Skip("DOCEX_CASCADE_TREE not set")
	}
	fan := 50
	if v := os.Getenv("DOCEX_CASCADE_FANOUT"); v != "" {
		var err error
		if fan, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv,
		g: globals{config: path, tenant: "acme", user: "bench", roles: []string{"admin"}}}
	sys, err := c.system(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.close()
	s := sys.eng.As(c.userContext())
	st, err := sys.be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bk, err := s.CreateBasket(ctx, "tree")
	if err != nil {
		t.Fatal(err)
	}
	n := 1 + fan + fan*fan + fan*fan*fan
	ids := make([]string, 0, n)
	var edges []driver.LineageEdge
	for off := 0; off < n; off += 1000 {
		docs := make([]engine.NewDocument, min(1000, n-off))
		for i := range docs {
			docs[i] = engine.NewDocument{Name: fmt.Sprintf("d%07d.txt", off+i), Content: strings.NewReader(fmt.Sprintf("tree document %d", off+i)),
				Metadata: map[string]docex.Value{"n": docex.Number(float64(off + i))}}
		}
		added, err := s.AddDocuments(ctx, bk.ID, docs)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range added {
			// ids[0] is the root; the documents derived from ids[k] are
			// ids[k*fan+1 ..].
			if k := len(ids); k > 0 {
				edges = append(edges, driver.LineageEdge{SourceID: ids[(k-1)/fan], DerivedID: a.Document.ID, Step: "split", Pipeline: "p", Version: 1,
					Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: a.Document.CreatedAt}) // the edge created it
			}
			ids = append(ids, a.Document.ID)
		}
	}
	for len(edges) > 0 {
		part := edges[:min(2000, len(edges))]
		edges = edges[len(part):]
		if err := st.Write(ctx, func(tx driver.Tx) error { return tx.(driver.StepRowsTx).InsertStepRows(ctx, nil, part, nil, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("root %s, %d descendants\n", ids[0], n-1)
}
