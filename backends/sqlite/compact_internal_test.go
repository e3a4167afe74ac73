package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

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

// TestCompactCommittedUnderCancel: the driver reports ctx's error for a
// VACUUM that committed while ctx was done; committed tells it by the
// smaller database, and keeps the error when the database is not.
func TestCompactCommittedUnderCancel(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	tn := newTenant("acme")
	must(t, b.CreateTenant(ctx, tn, testAudit("tenant.create")))
	h, err := b.acquire(ctx, tn)
	must(t, err)
	defer b.release(h)
	conn, err := h.db.w.Conn(ctx)
	must(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "CREATE TABLE pad(x); INSERT INTO pad SELECT randomblob(4096) FROM generate_series(1, 64)")
	if err != nil {
		// generate_series may be missing: a recursive CTE instead.
		_, err = conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS pad(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 64) INSERT INTO pad SELECT randomblob(4096) FROM n")
	}
	must(t, err)
	_, err = conn.ExecContext(ctx, "DROP TABLE pad")
	must(t, err)
	before, err := dbSize(ctx, conn)
	must(t, err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := committed(cancelled, conn, before, context.Canceled); err == nil {
		t.Fatal("committed: nil before any VACUUM, want the error")
	}
	if err := committed(ctx, conn, before, context.Canceled); err == nil {
		t.Fatal("committed: nil with ctx not done, want the error")
	}
	_, err = conn.ExecContext(ctx, "VACUUM")
	must(t, err)
	if err := committed(cancelled, conn, before, context.Canceled); err != nil {
		t.Errorf("committed after a VACUUM that shrank the database: %v, want nil", err)
	}
}

// TestCompactBusy: a VACUUM that waited for another writer for longer
// than the busy timeout says who may hold the lock and what to do.
func TestCompactBusy(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{Dir: t.TempDir(), BusyTimeout: 50 * time.Millisecond})
	must(t, err)
	defer b.Close()
	_, err = b.Bootstrap(ctx, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now()})
	must(t, err)
	tn := newTenant("acme")
	must(t, b.CreateTenant(ctx, tn, testAudit("tenant.create")))
	st, err := b.OpenTenant(ctx, "acme")
	must(t, err)
	defer st.Close()
	path, err := b.tenantPath(tn.ID, tn.Incarnation)
	must(t, err)
	other, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	must(t, err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "CREATE TABLE held(x)") // takes the write lock
	must(t, err)
	_, err = st.(driver.Compactor).Compact(ctx)
	if err == nil || !isBusy(err) || !strings.Contains(err.Error(), "held the database for longer than database.sqlite.busy_timeout_ms") {
		t.Fatalf("Compact while another connection writes: %v", err)
	}
}

// TestWriteBusyTyped: a write that waited the busy timeout for another
// connection's write lock fails with an error matching
// docex.ErrStorageUnavailable (storage_unavailable, exit 1; jobs retry it)
// and still SQLite's, naming database.sqlite.busy_timeout_ms, and writes
// nothing. Before, it was untyped: "begin: database is locked (5)
// (SQLITE_BUSY)", the CLI's internal.
func TestWriteBusyTyped(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{Dir: t.TempDir(), BusyTimeout: 50 * time.Millisecond})
	must(t, err)
	defer b.Close()
	_, err = b.Bootstrap(ctx, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now()})
	must(t, err)
	tn := newTenant("acme")
	must(t, b.CreateTenant(ctx, tn, testAudit("tenant.create")))
	st, err := b.OpenTenant(ctx, "acme")
	must(t, err)
	defer st.Close()
	path, err := b.tenantPath(tn.ID, tn.Incarnation)
	must(t, err)
	other, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.ExecContext(ctx, "CREATE TABLE held(x)") // takes the write lock
	must(t, err)
	id := uuid.NewString()
	err = st.Write(ctx, func(tx driver.Tx) error {
		return tx.InsertBasket(ctx, docex.Basket{ID: id, Name: "b", CreatedAt: time.Now()})
	})
	if !errors.Is(err, docex.ErrStorageUnavailable) || !errors.Is(err, ErrBusy) || !isBusy(err) || !strings.Contains(err.Error(), "database.sqlite.busy_timeout_ms") {
		t.Fatalf("write while another connection holds the write lock: %v", err)
	}
	// Said once: before, the transaction's layer and the store's each
	// wrapped it ("...try again: the database stayed locked ...").
	if n := strings.Count(err.Error(), "the database stayed locked"); n != 1 {
		t.Errorf("the busy message is said %d times: %v", n, err)
	}
	must(t, tx.Rollback())
	if _, err := st.Basket(ctx, id); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("basket after the refused write: %v", err)
	}
}
