package sqlite

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// TestCompactKeepsWriterPragmas: Compact switches the write connection's
// temp_store to FILE for VACUUM (its copy of the database would otherwise
// be held in memory) and back to MEMORY; the WAL is truncated and the
// file on disk is the size Compact reports.
func TestCompactKeepsWriterPragmas(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	tn := newTenant("acme")
	must(t, b.CreateTenant(ctx, tn, testAudit("tenant.create")))
	st, err := b.OpenTenant(ctx, "acme")
	must(t, err)
	defer st.Close()
	big := strings.Repeat("x", 64<<10)
	var ids []string
	for range 40 {
		id := uuid.NewString()
		ids = append(ids, id)
		must(t, st.Write(ctx, func(tx driver.Tx) error {
			return tx.InsertBasket(ctx, docex.Basket{ID: id, Name: "b-" + id + big[:1000]})
		}))
	}
	must(t, st.Write(ctx, func(tx driver.Tx) error {
		for _, id := range ids {
			if err := tx.DeleteBasket(ctx, id); err != nil {
				return err
			}
		}
		return nil
	}))
	c, err := st.(driver.Compactor).Compact(ctx)
	must(t, err)
	if c.After <= 0 || c.After > c.Before {
		t.Errorf("Compact: %+v", c)
	}
	h, err := b.acquire(ctx, tn)
	must(t, err)
	defer b.release(h)
	var temp int
	must(t, h.db.w.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp))
	if temp != 2 {
		t.Errorf("writer's temp_store after Compact: %d, want 2 (memory)", temp)
	}
	path, err := b.tenantPath(tn.ID, tn.Incarnation)
	must(t, err)
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Size() != c.After {
		t.Errorf("file size after Compact: %d, reported %d", fi.Size(), c.After)
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() != 0 {
		t.Errorf("WAL after Compact: %d bytes, want truncated", wal.Size())
	}
}
