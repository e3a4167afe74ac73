package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// cascadeFixture is a document of the acme tenant with n documents
// derived from it, in the order of their lineage edges; the contents of
// those whose index big returns true are larger than a pack holds (a
// file of their own each).
type cascadeFixture struct {
	s        *Session
	root     string
	children []string
}

func newCascadeFixture(t *testing.T, be driver.Backend, st driver.TenantStore, s *Session, n int, big func(int) bool) *cascadeFixture {
	t.Helper()
	ctx := context.Background()
	b, err := s.CreateBasket(ctx, "tree")
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 65<<10)
	docs := make([]NewDocument, n+1)
	for i := range docs {
		content := fmt.Sprintf("document %d", i)
		if i > 0 && big(i-1) {
			content += pad
		}
		docs[i] = NewDocument{Name: fmt.Sprintf("d%04d.txt", i), Content: strings.NewReader(content)}
	}
	added, err := s.AddDocuments(ctx, b.ID, docs)
	if err != nil {
		t.Fatal(err)
	}
	f := &cascadeFixture{s: s, root: added[0].Document.ID}
	if err := st.Write(ctx, func(tx driver.Tx) error {
		for _, a := range added[1:] {
			f.children = append(f.children, a.Document.ID)
			if err := tx.InsertLineage(ctx, driver.LineageEdge{SourceID: f.root, DerivedID: a.Document.ID, Step: "split", Pipeline: "p", Version: 1,
				Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: a.Document.CreatedAt}); err != nil { // the time of the document: the edge created it
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// cascadeAudits returns how many document.delete entries name each
// document as deleted by the cascade of root.
func cascadeAudits(t *testing.T, s *Session, root string) map[string]int {
	t.Helper()
	out := map[string]int{}
	log, err := s.Audit(context.Background(), docex.Page{Limit: docex.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		if e.Operation == "document.delete" && e.Outcome == docex.OutcomeOK && e.Detail["cascade_from"] == root {
			out[e.Target]++
		}
	}
	return out
}

// TestCascadeInterruptedThenRerun: a cascade larger than a transaction
// (CascadeChunk) interrupted after its first transaction committed, and
// before that transaction's contents were released (as by a crash),
// leaves the first chunk deleted (each document with its audit entry)
// and the source and the others whole; the contents it did not release
// are found and removed by a sweep; running the cascade again finishes
// it, each document audited once. Before, a cascade was one transaction
// (its second write, which the test interrupts, never came).
func TestCascadeInterruptedThenRerun(t *testing.T) {
	ctx := context.Background()
	sqlBE, dir := OpenTestSQLite(t)
	be := &hookBackend{Backend: sqlBE}
	s := acmeSessionOn(t, be, dir, nil)
	const n = CascadeChunk + 200
	big := func(i int) bool { return i < 5 || i >= n-5 } // in the first chunk, in the last
	f := newCascadeFixture(t, be, be.store(ctx, t), s, n, big)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first transaction runs; the release after it and the second
	// transaction find the context cancelled (the process gone).
	be.armNextWrite(func() { be.armNextIsolated(cancel) })
	_, err := s.DeleteDocumentCascade(cctx, f.root)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted cascade: %v, want context.Canceled", err)
	}
	gone := 0
	for i, id := range f.children {
		_, err := s.Document(ctx, id)
		switch {
		case errors.Is(err, docex.ErrNotFound) && i < CascadeChunk:
			gone++
		case err != nil:
			t.Fatalf("child %d after the interrupted cascade: %v", i, err)
		}
	}
	if _, err := s.Document(ctx, f.root); gone != CascadeChunk || err != nil {
		t.Fatalf("interrupted cascade: %d children deleted, want %d (the first chunk); the source: %v", gone, CascadeChunk, err)
	}
	if a := cascadeAudits(t, s, f.root); len(a) != CascadeChunk {
		t.Fatalf("interrupted cascade: %d documents audited as deleted, want %d", len(a), CascadeChunk)
	}
	// The first chunk's big contents, not released, are found by a sweep.
	rep, err := s.e.Provisioner("ops").Sweep(ctx, SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ContentFiles != 5 {
		t.Fatalf("the sweep after the interrupted cascade removed %d content files, want 5 (the first chunk's, not released)", rep.ContentFiles)
	}

	deleted, err := s.DeleteDocumentCascade(ctx, f.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != n-CascadeChunk+1 || deleted[len(deleted)-1] != f.root {
		t.Fatalf("the cascade run again deleted %d documents, want %d, the source last", len(deleted), n-CascadeChunk+1)
	}
	audits := cascadeAudits(t, s, f.root)
	for _, id := range append(f.children, f.root) {
		if _, err := s.Document(ctx, id); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("document %s after the cascade run again: %v", id, err)
		}
		if audits[id] != 1 {
			t.Fatalf("document %s: %d document.delete entries naming the cascade, want 1", id, audits[id])
		}
	}
	if rep, err := s.e.Provisioner("ops").Sweep(ctx, SweepOptions{DryRun: true}); err != nil || rep.ContentFiles != 0 {
		t.Fatalf("after the cascade run again a sweep would remove %d content files (%v), want 0 (released)", rep.ContentFiles, err)
	}
}

// oneByOneBackend is a SQLite backend whose transactions hide the
// backend's optional interfaces (plainTx): the engine deletes a
// cascade's documents one by one, as with a backend without
// driver.DeleteBatchTx.
type oneByOneBackend struct{ *hookBackend }

func (b oneByOneBackend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	st, err := b.hookBackend.OpenTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return oneByOneStore{st.(*hookStore)}, nil
}

type oneByOneStore struct{ *hookStore }

func (s oneByOneStore) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	return s.hookStore.Write(ctx, func(tx driver.Tx) error { return fn(plainTx{tx}) })
}

// TestCascadeOneByOne: without driver.DeleteBatchTx a cascade larger than
// a transaction deletes the same documents, in the same order, with the
// same audit entries, as with it.
func TestCascadeOneByOne(t *testing.T) {
	ctx := context.Background()
	var got [2][]string
	for k, wrap := range []bool{false, true} {
		sqlBE, dir := OpenTestSQLite(t)
		hb := &hookBackend{Backend: sqlBE}
		var be driver.Backend = hb
		if wrap {
			be = oneByOneBackend{hb}
		}
		s := acmeSessionOn(t, be, dir, nil)
		st, err := be.OpenTenant(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, ok := st.(oneByOneStore); ok != wrap {
			t.Fatalf("store %T", st)
		}
		f := newCascadeFixture(t, be, st, s, 2*CascadeChunk+10, func(int) bool { return false })
		deleted, err := s.DeleteDocumentCascade(ctx, f.root)
		if err != nil {
			t.Fatal(err)
		}
		audits := cascadeAudits(t, s, f.root)
		if len(audits) != len(deleted) {
			t.Fatalf("one by one %t: %d audited, %d deleted", wrap, len(audits), len(deleted))
		}
		// The ids differ between the two runs; their positions in the
		// tree do not.
		pos := map[string]int{f.root: -1}
		for i, id := range f.children {
			pos[id] = i
		}
		for _, id := range deleted {
			got[k] = append(got[k], fmt.Sprint(pos[id]))
		}
	}
	if strings.Join(got[0], ",") != strings.Join(got[1], ",") || len(got[0]) != 2*CascadeChunk+11 {
		t.Fatalf("batched and one-by-one cascades differ: %d and %d documents", len(got[0]), len(got[1]))
	}
}

// TestCascadeDedupCycleAtDepth: a chain of MaxLineageDepth documents each
// created by the one before, whose last one's output deduplicated back
// onto the first (a cycle through a deduplicated edge), is no deeper
// than MaxLineageDepth: the cascade deletes the chain (before, the edge
// back made it refuse, "descendants deeper than 64 steps"), and a
// lineage walk ends. Both one document at a time and batched.
func TestCascadeDedupCycleAtDepth(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%t", plain), func(t *testing.T) {
			ctx := context.Background()
			be, dir := OpenTestSQLite(t)
			s := acmeSessionOn(t, be, dir, nil)
			b, err := s.CreateBasket(ctx, "chain")
			if err != nil {
				t.Fatal(err)
			}
			docs := make([]NewDocument, MaxLineageDepth+1)
			for i := range docs {
				docs[i] = NewDocument{Name: fmt.Sprintf("d%02d.txt", i), Content: strings.NewReader(fmt.Sprintf("link %d", i))}
			}
			added, err := s.AddDocuments(ctx, b.ID, docs)
			if err != nil {
				t.Fatal(err)
			}
			st, err := be.OpenTenant(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			edge := func(src, der docex.Document, dedup bool) driver.LineageEdge {
				at := der.CreatedAt // created: the document's time
				if dedup {
					at = at.Add(1e9)
				}
				return driver.LineageEdge{SourceID: src.ID, DerivedID: der.ID, Step: "s", Pipeline: "p", Version: 1,
					Plugin: "derive", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: at}
			}
			if err := st.Write(ctx, func(tx driver.Tx) error {
				for i := 0; i < MaxLineageDepth; i++ {
					if err := tx.InsertLineage(ctx, edge(added[i].Document, added[i+1].Document, false)); err != nil {
						return err
					}
				}
				return tx.InsertLineage(ctx, edge(added[MaxLineageDepth].Document, added[0].Document, true))
			}); err != nil {
				t.Fatal(err)
			}
			if err := st.Write(ctx, func(tx driver.Tx) error {
				var r driver.Tx = tx
				if plain {
					r = plainTx{tx}
				}
				ids, err := descendantsIn(ctx, r, added[0].Document.ID)
				if err == nil && len(ids) != MaxLineageDepth {
					err = fmt.Errorf("%d descendants, want %d", len(ids), MaxLineageDepth)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var r driver.TenantStore = st
			if plain {
				r = plainStore{st}
			}
			l, err := lineageOf(ctx, r, added[MaxLineageDepth].Document.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Both ways the walk lists MaxLineageDepth levels and says the
			// chain goes on; the ancestors' truncation does not cut the
			// descendants' walk short (before, it ended after one level).
			if len(l.Ancestors) != MaxLineageDepth || len(l.Descendants) != MaxLineageDepth || !l.Descendants[0].Deduplicated || !l.Truncated {
				t.Fatalf("lineage of the last: %d ancestors, %d descendants (want %d each), truncated %t, first %+v",
					len(l.Ancestors), len(l.Descendants), MaxLineageDepth, l.Truncated, l.Descendants[0])
			}
			gone, err := s.DeleteDocumentCascade(ctx, added[0].Document.ID)
			if err != nil || len(gone) != MaxLineageDepth+1 {
				t.Fatalf("cascade of the first: %d deleted, %v; want %d", len(gone), err, MaxLineageDepth+1)
			}
		})
	}
}
