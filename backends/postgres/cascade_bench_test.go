package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// cascadeTree adds a tree of documents to a new basket of s's tenant (st
// is the tenant's store, for the lineage edges): a root, fanOut documents
// derived from it, fanOut from each of those and fanOut from each of
// those, one of the deepest also derived from a second document (a
// shared descendant). It returns the root's id and the number of
// descendants.
func cascadeTree(b testing.TB, s *engine.Session, st driver.TenantStore, name string, fanOut int) (string, int) {
	b.Helper()
	bk, err := s.CreateBasket(bg, name)
	must(b, err)
	n := 1 + fanOut + fanOut*fanOut + fanOut*fanOut*fanOut
	ids := make([]string, 0, n)
	created := make(map[string]time.Time, n)
	for off := 0; off < n; off += 1000 {
		docs := make([]engine.NewDocument, min(1000, n-off))
		for i := range docs {
			docs[i] = engine.NewDocument{Name: fmt.Sprintf("d%05d.txt", off+i), Content: strings.NewReader(fmt.Sprintf("%s document %d", name, off+i)),
				Metadata: map[string]docex.Value{"n": docex.Number(float64(off + i)), "lang": docex.String("en")}}
		}
		added, err := s.AddDocuments(bg, bk.ID, docs)
		must(b, err)
		for _, a := range added {
			ids = append(ids, a.Document.ID)
			created[a.Document.ID] = a.Document.CreatedAt
		}
	}
	var edges []driver.LineageEdge
	edge := func(src, der string) { // at the document's time: the edge created it (driver.LineageEdge.Dedup)
		edges = append(edges, driver.LineageEdge{SourceID: src, DerivedID: der, Step: "split", Pipeline: "p", Version: 1,
			Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: created[der]})
	}
	// ids[0] is the root; the children of ids[k] are ids[k*fanOut+1 ..].
	for k := 0; k*fanOut+fanOut < n; k++ {
		for c := 1; c <= fanOut; c++ {
			edge(ids[k], ids[k*fanOut+c])
		}
	}
	edge(ids[1], ids[n-1]) // a descendant reached twice
	for len(edges) > 0 {
		part := edges[:min(2000, len(edges))]
		edges = edges[len(part):]
		must(b, st.Write(bg, func(tx driver.Tx) error { return tx.(driver.StepRowsTx).InsertStepRows(bg, nil, part, nil, nil) }))
	}
	return ids[0], n - 1
}

// BenchmarkCascadeDelete: docex doc delete --cascade of a document with
// 8,420 descendants over three levels (cascadeTree, a fan-out of 20), each with its own content and
// two metadata keys, through the engine (filesystem and database
// content). It reports the round trips to the server per document
// deleted (round-trips/doc), the content's release included.
func BenchmarkCascadeDelete(b *testing.B) {
	for _, storage := range []string{engine.ContentFilesystem, engine.ContentDatabase} {
		b.Run(storage, func(b *testing.B) {
			be := openBackend(b, Config{MaxConns: 4})
			cfg := engine.Config{MultiTenancy: true, ContentStorage: storage, ContentDir: b.TempDir()}
			_, err := engine.Bootstrap(bg, be, cfg)
			must(b, err)
			rt := traceRoundTrips(b, be)
			eng, err := engine.New(bg, be, cfg)
			must(b, err)
			defer eng.Close()
			_, err = eng.Provisioner("bench").Create(bg, "bench", "Bench")
			must(b, err)
			s := eng.As(docex.UserContext{UserID: "u", TenantID: "bench", Roles: []string{"admin"}})
			st, err := be.OpenTenant(bg, "bench")
			must(b, err)
			defer st.Close()
			var trips, docs int64
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				root, n := cascadeTree(b, s, st, fmt.Sprintf("tree%d", i), 20)
				before := rt.n.Load()
				b.StartTimer()
				deleted, err := s.DeleteDocumentCascade(bg, root)
				b.StopTimer()
				must(b, err)
				if len(deleted) != n+1 {
					b.Fatalf("the cascade deleted %d documents, want %d", len(deleted), n+1)
				}
				trips += rt.n.Load() - before
				docs += int64(len(deleted))
				b.StartTimer()
			}
			b.ReportMetric(float64(trips)/float64(docs), "round-trips/doc")
		})
	}
}

// TestCascadeRoundTrips: a cascading delete of 1,463 documents (three
// transactions, engine.CascadeChunk documents each at most) takes a few
// round trips per transaction, whatever the number of documents in it
// (database content, whose release is part of the transactions). Before,
// each document was deleted in a round trip of its own.
func TestCascadeRoundTrips(t *testing.T) {
	be := openBackend(t, Config{MaxConns: 4})
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}
	_, err := engine.Bootstrap(bg, be, cfg)
	must(t, err)
	rt := traceRoundTrips(t, be)
	eng, err := engine.New(bg, be, cfg)
	must(t, err)
	defer eng.Close()
	_, err = eng.Provisioner("ops").Create(bg, "acme", "")
	must(t, err)
	s := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})
	st, err := be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	root, n := cascadeTree(t, s, st, "tree", 11)
	if n <= 2*engine.CascadeChunk {
		t.Fatalf("%d descendants: not more than two transactions' worth", n)
	}
	before := rt.n.Load()
	deleted, err := s.DeleteDocumentCascade(bg, root)
	must(t, err)
	if len(deleted) != n+1 {
		t.Fatalf("the cascade deleted %d documents, want %d", len(deleted), n+1)
	}
	// Per transaction: begin, the lineage read and lock of each level
	// (first and last), the locks, the delete, the content's references
	// and the commit with what was held.
	trips := rt.n.Load() - before
	if trips > 60 {
		t.Fatalf("a cascade of %d documents took %d round trips, want at most 60", n+1, trips)
	}
	t.Logf("a cascade of %d documents: %d round trips", n+1, trips)
}
