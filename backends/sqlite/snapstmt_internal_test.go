package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// TestSnapshotStatementsPrepared: the statements of snapshot reads (a read
// transaction: Documents reads the page and its metadata in one) come from
// the read pool's statement cache, prepared once, rather than parsed again
// by every snapshot. Before, a query only ever run inside snapshots was
// recorded as a miss and never prepared (BenchmarkStoreRead/documents-1,
// docs/benchmarks.md).
func TestSnapshotStatementsPrepared(t *testing.T) {
	ctx := context.Background()
	be, err := Open(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if _, err := be.Bootstrap(ctx, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := be.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	st, err := be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	bk := docex.Basket{ID: uuid.NewString(), Name: "in", CreatedAt: now}
	err = st.Write(ctx, func(tx driver.Tx) error {
		if err := tx.InsertBasket(ctx, bk); err != nil {
			return err
		}
		return tx.InsertDocument(ctx, docex.Document{ID: uuid.NewString(), BasketID: bk.ID, Name: "d", ContentType: "text/plain",
			Checksum: strings.Repeat("a", 64), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now,
			Metadata: map[string]docex.Value{"kind": docex.String("invoice")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := st.(*store).db.rc
	prepared := func() []string {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		var qs []string
		for q := range rc.stmts {
			if strings.Contains(q, "FROM documents d") || strings.Contains(q, "FROM metadata") {
				qs = append(qs, q)
			}
		}
		return qs
	}
	for range 3 {
		ds, err := st.Documents(ctx, bk.ID, docex.Page{Limit: 20})
		if err != nil || len(ds) != 1 || len(ds[0].Metadata) != 1 {
			t.Fatal(ds, err)
		}
	}
	if qs := prepared(); len(qs) < 2 {
		t.Fatalf("prepared statements of the snapshot read after 3 reads: %q; want its page and metadata queries", qs)
	}
}
