package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/postgres"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

// TestPostgresIdleEndedHint: a tenant transaction PostgreSQL ended for
// staying idle longer than database.postgres.idle_in_transaction_timeout_ms
// (here a write of a system docex init made, paused until the server
// ended its session) is storage_unavailable, exit 1, and its hint names
// the key. Before, it was internal, with no hint (probe P18 F4).
func TestPostgresIdleEndedHint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dsn, schema, prefix := postgresConfig(t, h, "idlehint", "")
	h.ok("init")
	h.ok("tenant", "create", "acme")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := "docex-idle-" + prefix
	b, err := postgres.Open(ctx, postgres.Config{DSN: dsn + "&application_name=" + app, BootstrapSchema: schema, TenantSchemaPrefix: prefix,
		IdleInTransactionTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := b.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = st.Write(ctx, func(tx driver.Tx) error {
		if err := tx.InsertBasket(ctx, docex.Basket{ID: "b1", Name: "first", CreatedAt: time.Now()}); err != nil {
			return err
		}
		// Idle until the server ended the session.
		for seen := false; ; {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'`, app).Scan(&n); err != nil {
				return err
			}
			if seen && n == 0 {
				break
			}
			seen = seen || n > 0
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return tx.AppendAudit(ctx, docex.AuditEntry{ID: "a1", Time: time.Now(), TenantID: "acme", UserID: "u", Operation: "basket.create", Target: "first", Outcome: docex.OutcomeOK})
	})
	if !errors.Is(err, postgres.ErrIdleInTransaction) || docex.Code(err) != "storage_unavailable" || exitCode(err) != exitInternal {
		t.Fatalf("code %s, exit %d: %v", docex.Code(err), exitCode(err), err)
	}
	if hint := hintFor(err, globals{}); !strings.Contains(hint, "raise database.postgres.idle_in_transaction_timeout_ms") {
		t.Fatalf("hint %q", hint)
	}
}
