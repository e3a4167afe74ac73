package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// BenchmarkStoreRead: reads through a tenant store held open (a
// long-running process: the MCP server, a worker) over 1,000 documents
// with 3 metadata keys each, synchronous=normal. Each read checks the
// tenant's registry row as writes do (store.checkRead); the check reads
// the registry again only when the system database changed.
//
//   - document: Document (one statement);
//   - documents: Documents, a page of 20 with their metadata (a read
//     transaction, two statements);
//   - documents-1: Documents, a page of 1: the same snapshot read where
//     the statements' cost (parsing, if unprepared) weighs most;
//   - document-parallel: Document from GOMAXPROCS goroutines;
//   - open-document: OpenTenant, Document, Close (what an engine Session
//     does per call).
func BenchmarkStoreRead(b *testing.B) {
	ctx := context.Background()
	be, st := benchTenant(b)
	now := time.Now().UTC()
	bk := docex.Basket{ID: uuid.NewString(), Name: "in", CreatedAt: now}
	ids := make([]string, 1000)
	err := st.Write(ctx, func(tx driver.Tx) error {
		if err := tx.InsertBasket(ctx, bk); err != nil {
			return err
		}
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7()).String()
			if err := tx.InsertDocument(ctx, docex.Document{ID: ids[i], BasketID: bk.ID, Name: fmt.Sprintf("d%d", i), ContentType: "text/plain",
				Checksum: fmt.Sprintf("%064x", i), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now,
				Metadata: map[string]docex.Value{"kind": docex.String("invoice"), "n": docex.Number(float64(i)), "final": docex.Bool(i%2 == 0)}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("document", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if d, err := st.Document(ctx, ids[i%len(ids)]); err != nil || len(d.Metadata) != 3 {
				b.Fatal(d, err)
			}
			i++
		}
	})
	b.Run("documents", func(b *testing.B) {
		i := 0
		for b.Loop() {
			ds, err := st.Documents(ctx, bk.ID, docex.Page{Limit: 20, Offset: (i * 20) % len(ids)})
			if err != nil || len(ds) != 20 {
				b.Fatal(len(ds), err)
			}
			i++
		}
	})
	b.Run("documents-1", func(b *testing.B) {
		i := 0
		for b.Loop() {
			ds, err := st.Documents(ctx, bk.ID, docex.Page{Limit: 1, Offset: i % len(ids)})
			if err != nil || len(ds) != 1 || len(ds[0].Metadata) != 3 {
				b.Fatal(ds, err)
			}
			i++
		}
	})
	b.Run("document-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if d, err := st.Document(ctx, ids[i%len(ids)]); err != nil || len(d.Metadata) != 3 {
					b.Error(d, err)
					return
				}
				i++
			}
		})
	})
	b.Run("open-document", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s, err := be.OpenTenant(ctx, "acme")
			if err != nil {
				b.Fatal(err)
			}
			if d, err := s.Document(ctx, ids[i%len(ids)]); err != nil || len(d.Metadata) != 3 {
				b.Fatal(d, err)
			}
			s.Close()
			i++
		}
	})
}
