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

// cascadeFanOut is the fan-out of the tree BenchmarkCascadeDelete
// deletes: a root, 20 documents derived from it, 20 from each of those
// and 20 from each of those (8,420 descendants), one of the deepest also
// derived from a second document (a shared descendant).
const cascadeFanOut = 20

// cascadeTree adds the tree of BenchmarkCascadeDelete to a new basket of
// s's tenant (st is the tenant's store, for the lineage edges) and
// returns the root's id and the number of descendants.
func cascadeTree(b *testing.B, s *engine.Session, st driver.TenantStore, name string) (string, int) {
	b.Helper()
	bk, err := s.CreateBasket(bg, name)
	must(b, err)
	n := 1 + cascadeFanOut + cascadeFanOut*cascadeFanOut + cascadeFanOut*cascadeFanOut*cascadeFanOut
	ids := make([]string, 0, n)
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
		}
	}
	now := time.Now().UTC()
	var edges []driver.LineageEdge
	edge := func(src, der string) {
		edges = append(edges, driver.LineageEdge{SourceID: src, DerivedID: der, Step: "split", Pipeline: "p", Version: 1,
			Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: now})
	}
	// ids[0] is the root; the children of ids[k] are ids[k*20+1 .. k*20+20].
	for k := 0; k*cascadeFanOut+cascadeFanOut < n; k++ {
		for c := 1; c <= cascadeFanOut; c++ {
			edge(ids[k], ids[k*cascadeFanOut+c])
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
// 8,420 descendants over three levels, each with its own content and
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
				root, n := cascadeTree(b, s, st, fmt.Sprintf("tree%d", i))
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
