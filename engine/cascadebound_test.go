package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// cascadeTree adds to s's acme tenant a tree of documents: the source
// (root) with fanout[0] documents derived from it, each with fanout[1],
// and so on, by edges that created them. parent maps each descendant to
// its source.
type cascadeTree struct {
	root   string
	parent map[string]string
	depth  map[string]int
}

func newCascadeTree(t *testing.T, s *Session, st driver.TenantStore, fanout ...int) *cascadeTree {
	t.Helper()
	ctx := context.Background()
	b, err := s.CreateBasket(ctx, "tree")
	if err != nil {
		t.Fatal(err)
	}
	n, width := 1, 1
	for _, f := range fanout {
		width *= f
		n += width
	}
	docs := make([]NewDocument, n)
	for i := range docs {
		docs[i] = NewDocument{Name: fmt.Sprintf("d%05d.txt", i), Content: strings.NewReader(fmt.Sprintf("document %d", i))}
	}
	added, err := s.AddDocuments(ctx, b.ID, docs)
	if err != nil {
		t.Fatal(err)
	}
	tr := &cascadeTree{root: added[0].Document.ID, parent: map[string]string{}, depth: map[string]int{}}
	var edges []driver.LineageEdge
	level, next := []Added{added[0]}, 1
	for d, f := range fanout {
		var below []Added
		for _, src := range level {
			for range f {
				der := added[next]
				next++
				below = append(below, der)
				tr.parent[der.Document.ID], tr.depth[der.Document.ID] = src.Document.ID, d+1
				edges = append(edges, driver.LineageEdge{SourceID: src.Document.ID, DerivedID: der.Document.ID, Step: "split", Pipeline: "p", Version: 1,
					Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: der.Document.CreatedAt}) // the edge created it
			}
		}
		level = below
	}
	if err := st.Write(ctx, func(tx driver.Tx) error {
		for _, e := range edges {
			if err := tx.InsertLineage(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// readSizes records the largest list of ids a transaction was given to
// read or lock, and the most lineage edges one read returned.
type readSizes struct {
	mu           sync.Mutex
	maxIDs, maxE int
}

func (r *readSizes) saw(ids, edges int) {
	r.mu.Lock()
	r.maxIDs, r.maxE = max(r.maxIDs, ids), max(r.maxE, edges)
	r.mu.Unlock()
}

// sizedBackend is a SQLite backend whose transactions record their reads'
// sizes (sizedTx) and have driver.LineageBatchReader and
// driver.DeleteBatchTx of the backend's, no other optional interface.
type sizedBackend struct {
	*hookBackend
	sizes *readSizes
}

func (b sizedBackend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	st, err := b.hookBackend.OpenTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return sizedStore{st.(*hookStore), b.sizes}, nil
}

type sizedStore struct {
	*hookStore
	sizes *readSizes
}

func (s sizedStore) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	return s.hookStore.Write(ctx, func(tx driver.Tx) error { return fn(sizedTx{tx, s.sizes}) })
}

// DerivedAfter is the backend store's, its sizes recorded (a read
// outside a transaction: DescendantIDs).
func (s sizedStore) DerivedAfter(ctx context.Context, sources []string, afterSource, afterID string, limit int) ([]driver.DerivedRef, error) {
	refs, err := s.hookInner.(driver.LineagePager).DerivedAfter(ctx, sources, afterSource, afterID, limit)
	s.sizes.saw(len(sources), len(refs))
	return refs, err
}

func (s sizedStore) Lineage(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	sources, derived, err = s.hookInner.Lineage(ctx, docID)
	s.sizes.saw(1, len(sources)+len(derived))
	return sources, derived, err
}

func (s sizedStore) DocumentsByID(ctx context.Context, ids []string) (map[string]docex.Document, error) {
	s.sizes.saw(len(ids), 0)
	return s.hookInner.DocumentsByID(ctx, ids)
}

type sizedTx struct {
	driver.Tx
	sizes *readSizes
}

func (t sizedTx) LockDocuments(ctx context.Context, ids []string, exclusive bool) (map[string]string, error) {
	t.sizes.saw(len(ids), 0)
	return t.Tx.LockDocuments(ctx, ids, exclusive)
}

func (t sizedTx) Lineage(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	sources, derived, err = t.Tx.Lineage(ctx, docID)
	t.sizes.saw(1, len(sources)+len(derived))
	return sources, derived, err
}

func (t sizedTx) LineageAmong(ctx context.Context, ids []string, into bool) ([]driver.LineageEdge, error) {
	edges, err := t.Tx.(driver.LineageBatchReader).LineageAmong(ctx, ids, into)
	t.sizes.saw(len(ids), len(edges))
	return edges, err
}

func (t sizedTx) DeleteDocuments(ctx context.Context, ids []string, audit []docex.AuditEntry) error {
	return t.Tx.(driver.DeleteBatchTx).DeleteDocuments(ctx, ids, audit)
}

// sizedCascadeTree returns a session on a store that records the sizes
// of its reads, and a tree of fan documents each with fan derived
// documents on it, the sizes reset once it is built.
func sizedCascadeTree(t *testing.T, fan int) (*Session, *cascadeTree, *readSizes) {
	t.Helper()
	sqlBE, dir := OpenTestSQLite(t)
	sizes := &readSizes{}
	be := sizedBackend{&hookBackend{Backend: sqlBE}, sizes}
	s := acmeSessionOn(t, be, dir, nil)
	tr := newCascadeTree(t, s, be.hookBackend.store(context.Background(), t), fan, fan)
	*sizes = readSizes{}
	return s, tr, sizes
}

// TestCascadeReadsBounded: a cascading delete of a tree of 50 documents
// each with 50 derived documents (2,550 descendants), on a store without
// driver.LineagePager, reads no more ids at once than a transaction
// deletes (CascadeChunk, and the source) or a page of its walk holds
// (cascadePage), and no more edges than one document has (51: its source
// and the 50 derived from it): its memory is bounded by the walk's depth
// and pages, not by the tree. Before, the cascade read (and held) the
// tree a level at a time: the 2,500 documents of its second level in one
// read, their ids all held.
func TestCascadeReadsBounded(t *testing.T) {
	ctx := context.Background()
	const fan = 50
	const readsPage = 1024 // cascadePage (TestCascadeWalkHeld checks)
	s, tr, sizes := sizedCascadeTree(t, fan)
	deleted, err := s.DeleteDocumentCascade(ctx, tr.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != len(tr.parent)+1 || deleted[len(deleted)-1] != tr.root {
		t.Fatalf("the cascade deleted %d documents, want %d, the source last", len(deleted), len(tr.parent)+1)
	}
	if bound := max(CascadeChunk+1, readsPage); sizes.maxIDs > bound || sizes.maxE > fan+1 || len(tr.parent) <= bound {
		t.Fatalf("the cascade of %d documents read %d ids at once (want at most %d) and %d edges in one read (want at most %d)", len(tr.parent), sizes.maxIDs, bound, sizes.maxE, fan+1)
	}
}

// TestCascadeWalkHeld: a cascade's walk (cascadeWalk) over a tree three
// levels deep, 12 wide at each (1,884 descendants), reading 5 derived
// documents at a time, holds at most the source and a page per level
// (1 + 3 x 5 ids) at once, whether the store pages the lineage
// (driver.LineagePager) or not; it yields every descendant once, each
// after the documents derived from it (post-order), and the same order
// both ways. A cascade of the tree deletes it in transactions of at most
// CascadeChunk documents (the last one with the source), each reported
// as it commits (DeleteDocumentCascadeEach).
func TestCascadeWalkHeld(t *testing.T) {
	ctx := context.Background()
	be, dir := OpenTestSQLite(t)
	s := acmeSessionOn(t, be, dir, nil)
	st, err := be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const fan, page = 12, 5
	if cascadePage != 1024 {
		t.Fatalf("cascadePage is %d: TestCascadeReadsBounded's bound says 1024", cascadePage)
	}
	tr := newCascadeTree(t, s, st, fan, fan, fan)
	var orders [2][]string
	for k, plain := range []bool{false, true} {
		w := newCascadeWalk(tr.root, page)
		err := st.Write(ctx, func(tx driver.Tx) error {
			var r driver.Tx = tx
			if plain {
				r = plainTx{tx}
			}
			if _, ok := r.(driver.LineagePager); ok == plain {
				t.Fatalf("%T: a pager %t", r, ok)
			}
			for {
				id, live, ok, err := w.next(ctx, r, true)
				if err != nil || !ok {
					return err
				}
				if !live {
					t.Fatalf("document %s yielded as gone", id)
				}
				orders[k] = append(orders[k], id)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if bound := 1 + 3*page; w.maxHeld > bound {
			t.Fatalf("plain %t: the walk held %d ids at once, want at most %d", plain, w.maxHeld, bound)
		}
		pos := map[string]int{}
		for i, id := range orders[k] {
			if _, dup := pos[id]; dup {
				t.Fatalf("plain %t: %s yielded twice", plain, id)
			}
			pos[id] = i
		}
		if len(pos) != len(tr.parent) {
			t.Fatalf("plain %t: %d yielded, want %d", plain, len(pos), len(tr.parent))
		}
		for id, p := range tr.parent {
			if p != tr.root && pos[p] < pos[id] {
				t.Fatalf("plain %t: %s (depth %d) yielded before %s derived from it", plain, p, tr.depth[p], id)
			}
		}
	}
	if strings.Join(orders[0], ",") != strings.Join(orders[1], ",") {
		t.Fatal("the paged and unpaged walks yield different orders")
	}

	var chunks [][]string
	err = s.DeleteDocumentCascadeEach(ctx, tr.root, func(ids []string) error {
		chunks = append(chunks, ids)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, ch := range chunks {
		n += len(ch)
		if len(ch) > CascadeChunk || i == len(chunks)-1 && (len(ch) == 0 || ch[len(ch)-1] != tr.root) {
			t.Fatalf("chunk %d of %d: %d ids; want at most %d, the last ending with the source", i, len(chunks), len(ch), CascadeChunk)
		}
	}
	if n != len(tr.parent)+1 || len(chunks) != (len(tr.parent)+CascadeChunk-1)/CascadeChunk {
		t.Fatalf("%d ids in %d chunks, want %d in %d", n, len(chunks), len(tr.parent)+1, (len(tr.parent)+CascadeChunk-1)/CascadeChunk)
	}
}

// TestCascadeWalkDiamonds: a lattice of documents each derived from both
// documents of the level above (edges into documents that are gone, which
// a cascade follows, 14 levels of 2), over a live source and a live
// leaf, has 2^14 paths from the source; the walk reaches each document
// once (walkSeen) and yields each once, paged or not, and a cascade of
// the source deletes the leaf. The walk without the set yielded a
// document once per path (16,384 times the leaf).
func TestCascadeWalkDiamonds(t *testing.T) {
	ctx := context.Background()
	be, dir := OpenTestSQLite(t)
	s := acmeSessionOn(t, be, dir, nil)
	b, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	added, err := s.AddDocuments(ctx, b.ID, []NewDocument{
		{Name: "root.txt", Content: strings.NewReader("root")},
		{Name: "leaf.txt", Content: strings.NewReader("leaf")},
	})
	if err != nil {
		t.Fatal(err)
	}
	root, leaf := added[0].Document.ID, added[1].Document.ID
	st, err := be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const levels = 14
	gone := func(l, i int) string { return fmt.Sprintf("00000000-0000-7000-8000-%08d%04d", l, i) }
	if err := st.Write(ctx, func(tx driver.Tx) error {
		edge := func(src, der string) error {
			return tx.InsertLineage(ctx, driver.LineageEdge{SourceID: src, DerivedID: der, Step: "s", Pipeline: "p", Version: 1,
				Plugin: "x", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: time.Now().UTC()})
		}
		above := []string{root}
		for l := range levels {
			level := []string{gone(l, 0), gone(l, 1)}
			for _, src := range above {
				for _, der := range level {
					if err := edge(src, der); err != nil {
						return err
					}
				}
			}
			above = level
		}
		for _, src := range above {
			if err := edge(src, leaf); err != nil {
				return err
			}
		}
		return tx.SetMetadata(ctx, leaf, map[string]docex.Value{"derived_from": docex.String(above[0])}, time.Now().UTC())
	}); err != nil {
		t.Fatal(err)
	}
	for _, plain := range []bool{false, true} {
		w := newCascadeWalk(root, 3)
		yields := map[string]int{}
		err := st.Write(ctx, func(tx driver.Tx) error {
			var r driver.Tx = tx
			if plain {
				r = plainTx{tx}
			}
			for n := 0; ; n++ {
				id, _, ok, err := w.next(ctx, r, true)
				if err != nil || !ok {
					return err
				}
				if yields[id]++; n > 4*levels+4 {
					return fmt.Errorf("more than %d yields (the leaf %d times so far)", n, yields[leaf])
				}
			}
		})
		if err != nil {
			t.Fatalf("plain %t: %v", plain, err)
		}
		if len(yields) != 2*levels+1 || yields[leaf] != 1 {
			t.Fatalf("plain %t: %d documents yielded, the leaf %d times; want %d, each once", plain, len(yields), yields[leaf], 2*levels+1)
		}
		for id, n := range yields {
			if n != 1 {
				t.Fatalf("plain %t: %s yielded %d times", plain, id, n)
			}
		}
	}
	deleted, err := s.DeleteDocumentCascade(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 2 || deleted[0] != leaf || deleted[1] != root {
		t.Fatalf("the cascade deleted %v, want the leaf, then the source", deleted)
	}
}

// TestWalkSeenAttempts: what a transaction's attempt marked counts once
// it committed, or while it is the current one; not after a retry began.
func TestWalkSeenAttempts(t *testing.T) {
	a, b, c := "01a24eae-2961-7acd-a8c5-2992f89b0001", "01a24eae-2961-7acd-a8c5-2992f89b0002", "not-a-uuid"
	w := newCascadeWalk(a, 4)
	w.commit() // the first transaction
	w.begin()
	w.seen.mark(b)
	w.seen.mark(c)
	if !w.seen.has(a) || !w.seen.has(b) || !w.seen.has(c) {
		t.Fatal("marks of the current and a committed attempt do not count")
	}
	w.begin() // the transaction is retried
	if !w.seen.has(a) || w.seen.has(b) || w.seen.has(c) {
		t.Fatal("a failed attempt's marks count after a retry began")
	}
	w.seen.mark(b)
	w.commit()
	w.begin()
	if !w.seen.has(b) || w.seen.has(c) {
		t.Fatal("a committed retry's marks do not count, or the failed attempt's do")
	}
}

// TestUnderivedDeleteReadsBounded: deleting a document without its
// derived documents (DeleteUnderivedDocument) counts them with a
// cascade's walk: on the tree of TestCascadeReadsBounded (2,550
// descendants) it is refused, naming them all, having read no more ids
// at once than a page of the walk and no more edges than one document
// has. Before, it read the tree a level at a time (2,500 ids in one
// read) and held them.
func TestUnderivedDeleteReadsBounded(t *testing.T) {
	ctx := context.Background()
	const fan = 50
	s, tr, sizes := sizedCascadeTree(t, fan)
	err := s.DeleteUnderivedDocument(ctx, tr.root)
	if !errors.Is(err, docex.ErrHasDerived) || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("has %d derived", len(tr.parent))) {
		t.Fatalf("err = %v, want ErrHasDerived naming %d derived documents", err, len(tr.parent))
	}
	if sizes.maxIDs > cascadePage || sizes.maxE > fan+1 {
		t.Fatalf("the count read %d ids at once (want at most %d) and %d edges in one read (want at most %d)", sizes.maxIDs, cascadePage, sizes.maxE, fan+1)
	}
	if _, err := s.Document(ctx, tr.root); err != nil {
		t.Fatalf("the refused delete deleted the document: %v", err)
	}
}

// TestDescendantIDsBeyondLineageLimit: the documents derived from a
// document (DescendantIDs, what the doc delete prompt counts) are all
// listed, deepest first, when its lineage has more than MaxLineageEdges
// edges: a tree of 20 documents each with 20 derived documents (420
// descendants), and 10,000 more edges from the source into documents
// that are gone (which are followed, not listed). The reads are a page
// at a time (at most cascadePage ids and derived documents per read),
// and a walk of 1,000 documents per read, paged (driver.LineagePager)
// or not, lists the same ids in the same order. Before, DescendantIDs listed the documents of the
// first 10,000 edges of Lineage: the level of 10,020 edges was cut and
// the 400 documents below it were not listed.
func TestDescendantIDsBeyondLineageLimit(t *testing.T) {
	ctx := context.Background()
	const fan, gone = 20, MaxLineageEdges
	s, tr, sizes := sizedCascadeTree(t, fan)
	st, err := s.e.be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Write(ctx, func(tx driver.Tx) error {
		for i := range gone {
			if err := tx.InsertLineage(ctx, driver.LineageEdge{SourceID: tr.root, DerivedID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), Step: "s", Pipeline: "p", Version: 1,
				Plugin: "x", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: time.Now().UTC()}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	*sizes = readSizes{}
	ids, err := s.DescendantIDs(ctx, tr.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(tr.parent) {
		t.Fatalf("DescendantIDs listed %d documents, want %d", len(ids), len(tr.parent))
	}
	seen := map[string]bool{}
	for i, id := range ids {
		d, ok := tr.depth[id]
		if !ok || seen[id] {
			t.Fatalf("DescendantIDs listed %s: not a descendant, or twice", id)
		}
		seen[id] = true
		if i > 0 && tr.depth[ids[i-1]] < d {
			t.Fatalf("DescendantIDs listed %s (depth %d) after %s (depth %d): want the deepest first", id, d, ids[i-1], tr.depth[ids[i-1]])
		}
	}
	if sizes.maxIDs > cascadePage || sizes.maxE > cascadePage {
		t.Fatalf("DescendantIDs read %d ids at once and %d edges in one read, want at most %d", sizes.maxIDs, sizes.maxE, cascadePage)
	}
	for _, plain := range []bool{false, true} {
		err := st.Write(ctx, func(tx driver.Tx) error {
			var r driver.Reader = tx
			if plain {
				r = plainTx{tx}
			}
			const page = 1000 // the source's 10,020 in 11 reads, as many of sources below
			small, err := descendantIDsIn(ctx, r, tr.root, page)
			if err != nil {
				return err
			}
			if strings.Join(small, ",") != strings.Join(ids, ",") {
				t.Errorf("plain %t: %d per read listed %d ids, not those of DescendantIDs (%d) in its order", plain, page, len(small), len(ids))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
