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

// BenchmarkSetMetadata sets 8 keys (the size of a step's metadata, e.g.
// redact-pii's counts) on 32 of 1,000 documents per transaction (a
// pipeline batch's round), with synchronous=normal so that the
// statements, not the fsync, are measured; ns/doc is per document.
func BenchmarkSetMetadata(b *testing.B) {
	ctx := context.Background()
	_, st := benchTenant(b)
	var err error
	now := time.Now().UTC()
	bk := docex.Basket{ID: uuid.NewString(), Name: "in", CreatedAt: now}
	ids := make([]string, 1000)
	err = st.Write(ctx, func(tx driver.Tx) error {
		if err := tx.InsertBasket(ctx, bk); err != nil {
			return err
		}
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7()).String()
			if err := tx.InsertDocument(ctx, docex.Document{ID: ids[i], BasketID: bk.ID, Name: fmt.Sprintf("d%d", i), ContentType: "text/plain",
				Checksum: fmt.Sprintf("%064x", i), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	kv := map[string]docex.Value{}
	for _, k := range []string{"pii_card", "pii_email", "pii_iban", "pii_ipv4", "pii_ipv6", "pii_phone", "pii_total", "redacted"} {
		kv[k] = docex.Number(1)
	}
	i := 0
	for b.Loop() {
		err := st.Write(ctx, func(tx driver.Tx) error {
			for range 32 {
				if err := tx.SetMetadata(ctx, ids[i%len(ids)], kv, now); err != nil {
					return err
				}
				i++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/doc")
}

// benchTenant returns a backend in b's temporary directory, with
// synchronous=normal (the statements are measured, not the fsync), and a
// store of its tenant acme; both are closed at the end of b.
func benchTenant(b *testing.B) (*Backend, driver.TenantStore) {
	ctx := context.Background()
	be, err := Open(ctx, Config{Dir: b.TempDir(), Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	if _, err := be.Bootstrap(ctx, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now()}); err != nil {
		b.Fatal(err)
	}
	if err := be.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")); err != nil {
		b.Fatal(err)
	}
	st, err := be.OpenTenant(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return be, st
}
