package engine

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// plainStore and plainTx hide a backend's optional interfaces
// (driver.BatchReader, driver.LineageBatchReader): the engine reads
// through them one document at a time, as with a backend without them.
type plainStore struct{ driver.TenantStore }

type plainTx struct{ driver.Tx }

// TestLineageBatchedWalk: a lineage walk a level at a time (one read of
// the edges and one of the names per level, driver.LineageBatchReader and
// driver.BatchReader) gives exactly the walk one document at a time: the
// edges in the same order, the names, the gone documents, the depth
// bound and the truncation at MaxLineageEdges; and a cascade's
// descendants are the same, deepest first.
func TestLineageBatchedWalk(t *testing.T) {
	ctx := context.Background()
	be, dir := OpenTestSQLite(t)
	s := acmeSessionOn(t, be, dir, nil)
	b, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	const n = 700 // more than one statement's ids on SQLite (500)
	docs := make([]NewDocument, n)
	for i := range docs {
		docs[i] = NewDocument{Name: fmt.Sprintf("d%03d.txt", i), Content: strings.NewReader(fmt.Sprintf("doc %d", i))}
	}
	added, err := s.AddDocuments(ctx, b.ID, docs)
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return added[i].Document.ID }
	st, err := be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// d0 -> d1..d349 -> d350..d698 (each from d(i-349)); d0 -> d699 twice
	// (two steps); two edges to documents that never existed (gone);
	// every edge at its own time, in an order that is not the ids'.
	base := time.Now().UTC().Truncate(time.Millisecond)
	var edges []driver.LineageEdge
	edge := func(src, der string, k int, step string) {
		edges = append(edges, driver.LineageEdge{SourceID: src, DerivedID: der, JobID: "", Step: step, Pipeline: "p", Version: 1,
			Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: fmt.Sprintf(`{"k":"%d"}`, k), CreatedAt: base.Add(time.Duration((k*7919)%1000) * time.Millisecond)})
	}
	for i := 1; i < 350; i++ {
		edge(id(0), id(i), i, "one")
		edge(id(i), id(i+349), i+1000, "two")
	}
	edge(id(0), id(699), 1, "one")
	edge(id(0), id(699), 2, "other")
	const dead = "00000000-0000-7000-8000-00000000dead"
	edge(id(5), dead, 3, "two")
	edge("00000000-0000-7000-8000-00000000beef", id(0), 4, "zero")
	// Each derived document's derived_from names its source: the edges
	// created them (driver.LineageEdge.Dedup), whatever their times.
	if err := st.Write(ctx, func(tx driver.Tx) error {
		named := map[string]bool{}
		for _, e := range edges {
			if err := tx.InsertLineage(ctx, e); err != nil {
				return err
			}
			if e.DerivedID == dead || named[e.DerivedID] { // not a suffix test: 1 random id in 65,536 ends in "dead"
				continue
			}
			named[e.DerivedID] = true
			if err := tx.SetMetadata(ctx, e.DerivedID, map[string]docex.Value{"derived_from": docex.String(e.SourceID)}, base); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(driver.LineageBatchReader); !ok {
		t.Fatalf("%T is not a driver.LineageBatchReader: the test compares nothing", st)
	}
	for _, doc := range []string{id(0), id(5), id(400), id(699), dead} {
		batched, err := lineageOf(ctx, st, doc)
		if err != nil {
			t.Fatal(err)
		}
		one, err := lineageOf(ctx, plainStore{st}, doc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(batched, one) {
			t.Fatalf("lineage of %s: batched walk differs from the one-by-one walk:\n%+v\n%+v", doc, batched, one)
		}
		if doc == id(0) && (len(batched.Descendants) != 2*349+3 || len(batched.Ancestors) != 1 || !batched.Ancestors[0].SourceGone) {
			t.Fatalf("lineage of d0: %d descendants, %d ancestors (%+v)", len(batched.Descendants), len(batched.Ancestors), batched.Ancestors)
		}
	}
	if err := st.Write(ctx, func(tx driver.Tx) error {
		batched, err := descendantsIn(ctx, tx, id(0))
		if err != nil {
			return err
		}
		one, err := descendantsIn(ctx, plainTx{tx}, id(0))
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(batched, one) || len(batched) != 2*349+2 {
			t.Fatalf("descendants of d0: batched %d, one by one %d, want 700 and equal", len(batched), len(one))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Truncation: d1 gets more derived documents (never stored: gone)
	// than MaxLineageEdges lists.
	if err := st.Write(ctx, func(tx driver.Tx) error {
		for i := range MaxLineageEdges + 1 {
			e := edges[0]
			e.SourceID, e.DerivedID = id(1), fmt.Sprintf("00000000-0000-7000-8000-%012d", i)
			if err := tx.InsertLineage(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{id(0), id(1)} {
		batched, err := lineageOf(ctx, st, doc)
		if err != nil {
			t.Fatal(err)
		}
		one, err := lineageOf(ctx, plainStore{st}, doc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(batched, one) || !batched.Truncated || len(batched.Descendants) != MaxLineageEdges {
			t.Fatalf("lineage of %s: batched %d descendants (truncated %t), one by one %d (truncated %t); want %d, truncated, equal",
				doc, len(batched.Descendants), batched.Truncated, len(one.Descendants), one.Truncated, MaxLineageEdges)
		}
	}
}

// descendantsIn (tests: the level-by-level walk the cascade used before
// cascadeWalk, which checks the batch readers against the one-by-one
// reads) returns the ids of the documents derived from docID,
// directly or not, read in tx (gone ones included, as their own
// descendants may exist), deepest first. Each document is locked
// exclusively (driver.Tx.LockDocuments) before its derived documents are
// read: a job deriving from it commits first and is seen, or finds it
// gone and writes nothing (keepInputs). It follows the edges that
// created their document, and those into a document that is gone; not a
// deduplicated edge (driver.LineageEdge.Dedup): a document that existed
// before the step's output deduplicated onto it, an original the user
// added say, is no descendant. Such edges may form a cycle (A's output
// deduplicating onto X, X's onto A); creating edges cannot.
func descendantsIn(ctx context.Context, tx driver.Tx, docID string) ([]string, error) {
	var levels [][]string
	seen := map[string]bool{docID: true}
	frontier := []string{docID}
	for len(frontier) > 0 {
		if _, err := tx.LockDocuments(ctx, frontier, true); err != nil {
			return nil, err
		}
		ders, err := lineageLevel(ctx, tx, frontier, false)
		if err != nil {
			return nil, err
		}
		var next []string
		for _, e := range ders {
			if !e.Dedup && !seen[e.DerivedID] {
				seen[e.DerivedID] = true
				next = append(next, e.DerivedID)
			}
		}
		levels = append(levels, next)
		frontier = next
	}
	var ids []string
	for i := len(levels) - 1; i >= 0; i-- {
		ids = append(ids, levels[i]...)
	}
	return ids, nil
}
