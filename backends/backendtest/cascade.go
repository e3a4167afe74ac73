package backendtest

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
)

// testCascadeChunks: a cascading delete larger than one transaction
// (engine.CascadeChunk documents) over a tree of three levels across two
// baskets, with fan-out, a document derived from three others, a
// derivation onto a document that has another source, a descendant whose
// source was deleted before and content shared inside and outside the
// tree, deletes exactly the live descendants and the source (the source
// last, each once), audits each deletion once with the cascade's source,
// keeps the basket counters, releases every content no document refers to
// any more (a sweep finds none left) and keeps shared content, and leaves
// the lineage of the documents it spares saying the others are gone. A
// reader may not cascade, another tenant finds nothing to cascade, and a
// second cascade finds the source gone.
func (f *fixture) testCascadeChunks(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("globex")
	s := e.as("acme", "admin")
	a, b := e.basket(s, "a"), e.basket(s, "b")
	pad := strings.Repeat("x", 65<<10) // above the pack threshold: a content file of its own
	type spec struct {
		basket, content string
	}
	var specs []spec
	doc := func(basket docex.Basket, content string) int {
		specs = append(specs, spec{basket.ID, content})
		return len(specs) - 1
	}
	const perA, perB, perC = 400, 400, 300
	p := doc(a, "ancestor")
	root := doc(a, "root")
	mid := []int{doc(a, "A"), doc(a, "B"), doc(b, "C")}
	var level2 [3][]int
	for i, n := range []int{perA, perB, perC} {
		for k := range n {
			basket, content := a, fmt.Sprintf("level 2 of %d, %d", i, k)
			if i == 2 {
				basket = b
			}
			if k < 5 {
				content += pad
			}
			if i == 2 && k == 7 {
				content = "level 2 of 0, 7" // the same content as a document of basket a in the tree
			}
			level2[i] = append(level2[i], doc(basket, content))
		}
	}
	gone := level2[0][10]   // deleted before the cascade; its own derived document stays until then
	deeper := doc(a, "H")   // derived from gone
	outsider := doc(b, "S") // not in the tree: derives a tree document
	sharer := doc(b, "level 2 of 0, 9")
	ids := make([]string, len(specs))
	created := make([]time.Time, len(specs))
	for _, bk := range []docex.Basket{a, b} {
		var docs []engine.NewDocument
		var at []int
		for i, sp := range specs {
			if sp.basket == bk.ID {
				docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%04d.txt", i), Content: strings.NewReader(sp.content),
					Metadata: map[string]docex.Value{"i": docex.Number(float64(i))}})
				at = append(at, i)
			}
		}
		added, err := s.AddDocuments(bg, bk.ID, docs)
		must(t, err)
		for k, ad := range added {
			if ad.Duplicate {
				t.Fatalf("document %d added as a duplicate", at[k])
			}
			ids[at[k]], created[at[k]] = ad.Document.ID, ad.Document.CreatedAt
		}
	}
	// The first edge into a document created it (its time is the
	// document's); a later one is a step's output deduplicated onto it
	// (driver.LineageEdge.Dedup): the cascade reaches the document by the
	// first.
	var edges []driver.LineageEdge
	into := map[int]int{}
	edge := func(src, der int, step string) {
		at := created[der].Add(time.Duration(into[der]) * time.Microsecond)
		into[der]++
		edges = append(edges, driver.LineageEdge{SourceID: ids[src], DerivedID: ids[der], Step: step, Pipeline: "p", Version: 1,
			Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: at})
	}
	edge(p, root, "one")
	for i, m := range mid {
		edge(root, m, "one")
		for _, d := range level2[i] {
			edge(m, d, "two")
		}
	}
	shared := level2[0][3]
	edge(mid[1], shared, "two") // derived from A, B and C
	edge(mid[2], shared, "two")
	edge(level2[0][20], level2[1][20], "three") // onto a document B derived already
	edge(gone, deeper, "three")
	edge(outsider, level2[2][30], "other")
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	must(t, st.Write(bg, func(tx driver.Tx) error {
		for _, ed := range edges {
			if err := tx.InsertLineage(bg, ed); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.DeleteDocument(bg, ids[gone]))

	// driver.LineagePager: the pairs out of the three documents of the
	// first level, the one deleted and one of the second level, a page of
	// 7 at a time, are the edges', in the primary key's order: those that
	// did not create their document (the second and third into shared,
	// the one onto a document B derived already) deduplicated, the
	// deleted document gone.
	if lp, ok := st.(driver.LineagePager); ok {
		srcs := []string{ids[mid[2]], ids[gone], ids[mid[0]], ids[mid[1]], ids[level2[0][20]]}
		createdOf := map[string]time.Time{}
		for i, id := range ids {
			createdOf[id] = created[i]
		}
		var want []driver.DerivedRef
		for _, ed := range edges {
			if slices.Contains(srcs, ed.SourceID) {
				isGone := ed.DerivedID == ids[gone]
				want = append(want, driver.DerivedRef{SourceID: ed.SourceID, ID: ed.DerivedID, Gone: isGone,
					Dedup: !isGone && !ed.CreatedAt.Equal(createdOf[ed.DerivedID])})
			}
		}
		slices.SortFunc(want, func(a, b driver.DerivedRef) int { return strings.Compare(a.SourceID+" "+a.ID, b.SourceID+" "+b.ID) })
		var got []driver.DerivedRef
		for afterSrc, afterID := "", ""; ; {
			page, err := lp.DerivedAfter(bg, srcs, afterSrc, afterID, 7)
			must(t, err)
			got = append(got, page...)
			if len(page) < 7 {
				break
			}
			afterSrc, afterID = page[6].SourceID, page[6].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("DerivedAfter by pages of 7: %d pairs, want %d (equal)", len(got), len(want))
		}
		// The sources repeated, and cursors whose source is none of them
		// (before, between and after them) or is one of them: the pairs
		// after the cursor.
		twice := append(slices.Clone(srcs), srcs...)
		for _, c := range []driver.DerivedRef{{}, {SourceID: ids[outsider], ID: "~"}, {SourceID: want[9].SourceID + "0"},
			{SourceID: want[9].SourceID, ID: want[9].ID}, {SourceID: want[9].SourceID, ID: ""}, {SourceID: "~"}} {
			var after []driver.DerivedRef
			for _, w := range want {
				if cmp.Or(strings.Compare(w.SourceID, c.SourceID), strings.Compare(w.ID, c.ID)) > 0 {
					after = append(after, w)
				}
			}
			page, err := lp.DerivedAfter(bg, twice, c.SourceID, c.ID, len(want)+1)
			must(t, err)
			if !slices.Equal(page, after) {
				t.Fatalf("DerivedAfter(%q, %q): %d pairs, want %d (equal)", c.SourceID, c.ID, len(page), len(after))
			}
		}
	} else {
		t.Logf("%T is no driver.LineagePager", st)
	}

	// The driver's part: both backends delete many documents in few
	// statements (driver.DeleteBatchTx), all or none.
	c := e.basket(s, "c")
	var xs []string
	for i := range 3 {
		xs = append(xs, e.add(s, c.ID, fmt.Sprintf("x%d", i), fmt.Sprintf("x %d", i), map[string]docex.Value{"k": docex.String("v")}).ID)
	}
	entry := func(target string) docex.AuditEntry {
		return docex.AuditEntry{ID: uuid.NewString(), Time: time.Now().UTC(), TenantID: "acme", UserID: "u", Operation: "test.delete", Target: target, Outcome: docex.OutcomeOK}
	}
	for _, bad := range [][]string{{xs[0], unknownID}, {xs[0], xs[0]}} {
		err := st.Write(bg, func(tx driver.Tx) error {
			bt, ok := tx.(driver.DeleteBatchTx)
			if !ok {
				t.Fatalf("%T is not a driver.DeleteBatchTx", tx)
			}
			return bt.DeleteDocuments(bg, bad, []docex.AuditEntry{entry(bad[0])})
		})
		wantErr(t, err, docex.ErrNotFound)
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.(driver.DeleteBatchTx).DeleteDocuments(bg, xs[:2], []docex.AuditEntry{entry(xs[0]), entry(xs[1])})
	}))
	for i, x := range xs {
		d, err := s.Document(bg, x)
		if i < 2 && !errors.Is(err, docex.ErrNotFound) || i == 2 && (err != nil || d.Metadata["k"] != docex.String("v")) {
			t.Fatalf("document %d after DeleteDocuments of the first two: %+v, %v", i, d, err)
		}
	}
	if got, err := s.Basket(bg, c.ID); err != nil || got.DocumentCount != 1 || got.Bytes != int64(len("x 2")) {
		t.Fatalf("basket after DeleteDocuments: %+v, %v; want 1 document of 3 bytes", got, err)
	}
	log, err := s.Audit(bg, docex.Page{Limit: 10})
	must(t, err)
	if len(log) < 2 || log[0].Target != xs[1] || log[1].Target != xs[0] || log[0].Operation != "test.delete" {
		t.Fatalf("audit after DeleteDocuments: %+v", log[:min(2, len(log))])
	}

	// Refusals change nothing.
	_, err = e.as("acme", "reader").DeleteDocumentCascade(bg, ids[root])
	wantErr(t, err, docex.ErrForbidden)
	_, err = e.as("globex", "admin").DeleteDocumentCascade(bg, ids[root])
	wantErr(t, err, docex.ErrNotFound)
	if _, err := s.Document(bg, ids[root]); err != nil {
		t.Fatalf("the source after refused cascades: %v", err)
	}

	deleted, err := s.DeleteDocumentCascade(bg, ids[root])
	must(t, err)
	want := map[string]bool{ids[root]: true, ids[deeper]: true}
	for i, m := range mid {
		want[ids[m]] = true
		for _, d := range level2[i] {
			want[ids[d]] = true
		}
	}
	delete(want, ids[gone])
	if len(want) <= 2*engine.CascadeChunk {
		t.Fatalf("the tree has %d documents to delete: not more than two transactions' worth", len(want))
	}
	seen := map[string]bool{}
	for _, id := range deleted {
		if !want[id] || seen[id] {
			t.Fatalf("the cascade deleted %s (in the tree %t, listed before %t)", id, want[id], seen[id])
		}
		seen[id] = true
	}
	if len(deleted) != len(want) || deleted[len(deleted)-1] != ids[root] {
		t.Fatalf("the cascade deleted %d documents, want %d, the source last", len(deleted), len(want))
	}
	for id := range want {
		if _, err := s.Document(bg, id); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("document %s after the cascade: %v", id, err)
		}
	}
	left := map[string]int{a.ID: 0, b.ID: 0}
	for _, i := range []int{p, outsider, sharer} {
		d, err := s.Document(bg, ids[i])
		must(t, err)
		left[d.BasketID]++
	}
	for _, bk := range []docex.Basket{a, b} {
		got, err := s.Basket(bg, bk.ID)
		must(t, err)
		list, err := s.Documents(bg, bk.ID, docex.Page{Limit: docex.MaxPageLimit})
		must(t, err)
		if got.DocumentCount != int64(left[bk.ID]) || len(list) != left[bk.ID] {
			t.Fatalf("basket %s: counter %d, %d documents listed; want %d", bk.Name, got.DocumentCount, len(list), left[bk.ID])
		}
	}
	if got := e.read(s, ids[sharer]); got != "level 2 of 0, 9" {
		t.Fatalf("content shared with a deleted document reads %q", got)
	}

	// One audit entry per deletion, naming the cascade's source.
	audited := map[string]int{}
	for off := 0; ; off += docex.MaxPageLimit {
		page, err := s.Audit(bg, docex.Page{Limit: docex.MaxPageLimit, Offset: off})
		must(t, err)
		for _, en := range page {
			if en.Operation == "document.delete" && en.Outcome == docex.OutcomeOK && en.Detail["cascade_from"] == ids[root] {
				audited[en.Target]++
			}
		}
		if len(page) < docex.MaxPageLimit {
			break
		}
	}
	for id := range want {
		if audited[id] != 1 {
			t.Fatalf("document %s: %d document.delete entries naming the cascade, want 1", id, audited[id])
		}
	}
	if len(audited) != len(want) {
		t.Fatalf("%d documents audited as deleted by the cascade, want %d", len(audited), len(want))
	}

	// The lineage of the documents spared says the others are gone.
	l, err := s.Lineage(bg, ids[p])
	must(t, err)
	if len(l.Descendants) != len(edges)-1 {
		t.Fatalf("lineage of the source's source: %d descendant edges, want %d", len(l.Descendants), len(edges)-1)
	}
	for _, ed := range l.Descendants {
		if !ed.DerivedGone {
			t.Fatalf("lineage of the source's source: %s not gone", ed.DerivedID)
		}
	}
	l, err = s.Lineage(bg, ids[outsider])
	must(t, err)
	if len(l.Descendants) != 1 || !l.Descendants[0].DerivedGone || l.Gone {
		t.Fatalf("lineage of a document outside the tree: %+v", l)
	}

	// Nothing left for a sweep but the pack files (their contents are
	// gone; a pack is removed by the sweep once none of it is referred to).
	rep, err := e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{DryRun: true})
	must(t, err)
	// The content rows of the two documents DeleteDocuments deleted above,
	// which nothing released (database content, or the locators of packed
	// filesystem content).
	unreleased := 2
	if rep.ContentFiles != unreleased {
		t.Fatalf("the cascade's contents should have been released; a sweep would remove %d, want %d", rep.ContentFiles, unreleased)
	}
	if f.storage == engine.ContentFilesystem {
		// Each content over the pack threshold was a file of its own.
		sums := map[string]bool{}
		for _, sp := range specs {
			if strings.HasSuffix(sp.content, pad) {
				sums[sum(sp.content)] = true
			}
		}
		found := 0
		acme, err := e.eng.Provisioner("").Get(bg, "acme")
		must(t, err)
		for s := range sums {
			if _, err := os.Lstat(filepath.Join(e.cfg.ContentDir, "tenants", "acme", acme.Incarnation, s[:2], s)); err == nil {
				found++
			}
		}
		if found != 0 {
			t.Fatalf("%d of %d content files of deleted documents left", found, len(sums))
		}
	}
	_, err = s.DeleteDocumentCascade(bg, ids[root])
	wantErr(t, err, docex.ErrNotFound)
	if slices.Contains(deleted, ids[p]) {
		t.Fatal("the source's source was deleted")
	}
}

// testCascadeDeep: a cascading delete of a tree deeper than
// engine.MaxLineageDepth (a chain of 3×64+8 documents, each but the last
// with two documents of its own derived from it: 600 descendants, more
// than a transaction's worth) deletes every descendant DescendantIDs
// lists (what doc delete's prompt counts), each after the documents
// derived from it, and the source last; DeleteUnderivedDocument (doc
// delete without --cascade) refuses it as any document with derived
// documents, saying how many (before: "more than 64 levels deep").
// Before, the cascade refused such a tree (docex.ErrInvalid, "descendants
// deeper than 64 steps") that DescendantIDs listed whole, so the prompt
// offered a cascade that was then refused.
func (f *fixture) testCascadeDeep(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	bk := e.basket(s, "deep")
	const chain = 3*engine.MaxLineageDepth + 8
	n := 1 + chain + 2*(chain-1)
	docs := make([]engine.NewDocument, n)
	for i := range docs {
		docs[i] = engine.NewDocument{Name: fmt.Sprintf("d%04d.txt", i), Content: strings.NewReader(fmt.Sprintf("deep %d", i))}
	}
	added, err := s.AddDocuments(bg, bk.ID, docs)
	must(t, err)
	parent := map[string]string{}
	var edges []driver.LineageEdge
	edge := func(src, der docex.Document) {
		parent[der.ID] = src.ID
		edges = append(edges, driver.LineageEdge{SourceID: src.ID, DerivedID: der.ID, Step: "s", Pipeline: "p", Version: 1,
			Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: der.CreatedAt}) // created it
	}
	// added[0] the source; added[1..chain] the chain below it; then the
	// two leaves of each chain document but the last.
	for i := 1; i <= chain; i++ {
		edge(added[i-1].Document, added[i].Document)
	}
	for i := 1; i < chain; i++ {
		edge(added[i].Document, added[chain+2*i-1].Document)
		edge(added[i].Document, added[chain+2*i].Document)
	}
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	must(t, st.Write(bg, func(tx driver.Tx) error {
		for _, ed := range edges {
			if err := tx.InsertLineage(bg, ed); err != nil {
				return err
			}
		}
		return nil
	}))
	root := added[0].Document.ID
	desc, err := s.DescendantIDs(bg, root)
	must(t, err)
	if len(desc) != n-1 || n-1 <= engine.CascadeChunk {
		t.Fatalf("DescendantIDs: %d, want %d (more than %d)", len(desc), n-1, engine.CascadeChunk)
	}
	err = s.DeleteUnderivedDocument(bg, root)
	wantErr(t, err, docex.ErrHasDerived)
	if !strings.Contains(err.Error(), fmt.Sprintf("has %d derived document(s)", n-1)) {
		t.Fatalf("delete without cascade: %v", err)
	}
	deleted, err := s.DeleteDocumentCascade(bg, root)
	must(t, err)
	if len(deleted) != n || deleted[n-1] != root {
		t.Fatalf("the cascade deleted %d documents, want %d, the source last", len(deleted), n)
	}
	want := map[string]bool{root: true}
	for _, id := range desc {
		want[id] = true
	}
	at := map[string]int{}
	for i, id := range deleted {
		if !want[id] {
			t.Fatalf("the cascade deleted %s, not listed by DescendantIDs", id)
		}
		if _, dup := at[id]; dup {
			t.Fatalf("the cascade deleted %s twice", id)
		}
		at[id] = i
	}
	for id, src := range parent {
		if at[id] > at[src] {
			t.Fatalf("%s deleted after its source %s", id, src)
		}
	}
	list, err := s.Documents(bg, bk.ID, docex.Page{Limit: 10})
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("%d documents left after the cascade", len(list))
	}
}
