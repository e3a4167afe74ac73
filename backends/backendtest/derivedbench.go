package backendtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// BenchDerivedAfter measures driver.LineagePager.DerivedAfter paging
// through a lineage of 10,020 edges, a page of 7 pairs an op (ns/op is
// per page; the walk starts again at the end). In "fanout" one document
// is the source of all the edges: 10,000 that created their documents
// and 20 deduplicated onto documents created before; in "wide" each of 1,002 sources has 10 derived
// documents (the cascade's shape: a level's page of sources at a time),
// the 20 deduplicated edges among them; in "sparse" the sources are
// 1,024 documents (a cascade's page of a level) of which one in 16 has
// derived documents (about 156 each) and the others none; in "leaves"
// the lineage is fanout's and the sources are 1,024 of its derived
// documents, none of which has derived documents (a cascade's last level:
// each op reads an empty page).
func BenchDerivedAfter(b *testing.B, h BenchHarness) {
	for _, shape := range []string{"fanout", "wide", "sparse", "leaves"} {
		b.Run(shape, func(b *testing.B) {
			e := newBenchEnv(b, h)
			if _, err := e.eng.Provisioner("bench").Create(bg, "bench", "bench"); err != nil {
				b.Fatal(err)
			}
			s := e.eng.As(docex.UserContext{UserID: "u", TenantID: "bench", Roles: []string{"admin"}})
			st, err := e.be.OpenTenant(bg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			lp, ok := st.(driver.LineagePager)
			if !ok {
				b.Skipf("%T is no driver.LineagePager", st)
			}
			sources, edges := derivedBenchLineage(b, s, st, shape)
			pairs := 0
			var afterSrc, afterID string
			for b.Loop() {
				page, err := lp.DerivedAfter(bg, sources, afterSrc, afterID, 7)
				if err != nil {
					b.Fatal(err)
				}
				pairs += len(page)
				if len(page) < 7 {
					afterSrc, afterID = "", ""
					continue
				}
				afterSrc, afterID = page[6].SourceID, page[6].ID
			}
			if pairs == 0 && shape != "leaves" || edges != 10020 {
				b.Fatalf("%d pairs read, %d edges", pairs, edges)
			}
		})
	}
}

// derivedBenchLineage adds the documents and edges of BenchDerivedAfter's
// shape and returns the sources and the number of edges.
func derivedBenchLineage(b *testing.B, s *engine.Session, st driver.TenantStore, shape string) ([]string, int) {
	bk, err := s.CreateBasket(bg, "lineage")
	if err != nil {
		b.Fatal(err)
	}
	nsrc, stride := 1, 1
	switch shape {
	case "wide":
		nsrc = 1002
	case "sparse":
		nsrc, stride = 1024, 16
	}
	const derived, dedup = 10000, 20
	n := nsrc + dedup + derived
	ids := make([]string, 0, n)
	created := map[string]docex.Document{}
	for off := 0; off < n; off += 1000 {
		docs := make([]engine.NewDocument, min(1000, n-off))
		for i := range docs {
			docs[i] = engine.NewDocument{Name: fmt.Sprintf("d%05d.txt", off+i), Content: strings.NewReader(fmt.Sprintf("document %d", off+i)),
				Metadata: map[string]docex.Value{"n": docex.Number(float64(off + i))}}
		}
		added, err := s.AddDocuments(bg, bk.ID, docs)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range added {
			ids = append(ids, a.Document.ID)
			created[a.Document.ID] = a.Document
		}
	}
	sources, olds, news := ids[:nsrc], ids[nsrc:nsrc+dedup], ids[nsrc+dedup:]
	var edges []driver.LineageEdge
	edge := func(src, der, job string, dedup bool) {
		at := created[der].CreatedAt
		if dedup {
			at = at.Add(1e6)
		}
		edges = append(edges, driver.LineageEdge{SourceID: src, DerivedID: der, JobID: job, Step: "split", Pipeline: "p", Version: 1,
			Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: at})
	}
	active := nsrc / stride // the sources with derived documents: every stride-th
	for i, d := range news {
		edge(sources[i%active*stride], d, "j1", false)
	}
	for i, d := range olds {
		edge(sources[(i*53)%active*stride], d, "j2", true)
	}
	total := len(edges)
	for len(edges) > 0 {
		part := edges[:min(2000, len(edges))]
		edges = edges[len(part):]
		err := st.Write(bg, func(tx driver.Tx) error {
			for _, ed := range part {
				if err := tx.InsertLineage(bg, ed); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if shape == "leaves" {
		sources = news[:1024]
	}
	return sources, total
}
