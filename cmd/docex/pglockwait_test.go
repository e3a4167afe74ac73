package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPostgresSuspendBoundedWait: docex tenant suspend and tenant delete
// on PostgreSQL, behind a tenant write transaction whose client froze
// (here a connection that took the tenant's registry row FOR SHARE and
// read the tenant's meta table, as a write's check does, and then went
// idle), wait database.postgres.lock_timeout_ms and exit 1 with
// storage_unavailable naming the transaction (its server pid), with the
// hint, changing nothing. Before, they waited as long as the transaction
// stayed open: the fleet probe's suspend hung about 5 minutes behind a
// SIGSTOPped worker.
func TestPostgresSuspendBoundedWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dsn, schema, prefix := postgresConfig(t, h, "lockwait", "")
	path := filepath.Join(h.dir, "docex.yaml")
	y, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h.file("docex.yaml", string(y)+"    lock_timeout_ms: 100\n")
	h.ok("init")
	h.ok("tenant", "create", "acme")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test's end
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "tenants"}.Sanitize()+` WHERE id = 'acme' FOR SHARE`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{prefix + "acme", "meta"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"tenant", "suspend", "acme"}, {"tenant", "delete", "acme", "--yes"}} {
		r := h.want(exitInternal, append(args, "--json")...)
		var out struct {
			Error struct{ Code, Kind, Message, Hint string }
		}
		if err := json.Unmarshal([]byte(r.stderr), &out); err != nil {
			t.Fatalf("%v: stderr %q: %v", args, r.stderr, err)
		}
		e := out.Error
		if e.Code != "storage_unavailable" || e.Kind != "internal" ||
			!strings.Contains(e.Message, args[1]+` tenant "acme": waited 100ms`) || !strings.Contains(e.Message, fmt.Sprintf("pid %d (", pid)) ||
			!strings.Contains(e.Message, "idle in transaction for") || !strings.Contains(e.Hint, "database.postgres.lock_timeout_ms") {
			t.Fatalf("%v: %+v", args, e)
		}
	}
	r := h.ok("tenant", "show", "acme", "--json")
	if !strings.Contains(r.stdout, `"status": "active"`) {
		t.Fatalf("after the refused suspension: %s", r.stdout)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	h.ok("tenant", "suspend", "acme")
}

// TestPostgresSuspendNamesRegistryHolder: behind a session that holds
// only the tenant's registry row (an operator's psql `SELECT ... FOR
// SHARE`), not a transaction of the tenant, docex tenant suspend, resume
// and delete exit 1 with storage_unavailable naming it (its server pid,
// marked as not a transaction of the tenant). Before, the message said
// "none is open any more, run it again" while it was still open.
func TestPostgresSuspendNamesRegistryHolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dsn, schema, _ := postgresConfig(t, h, "lockreg", "")
	path := filepath.Join(h.dir, "docex.yaml")
	y, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h.file("docex.yaml", string(y)+"    lock_timeout_ms: 100\n")
	h.ok("init")
	h.ok("tenant", "create", "acme")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test's end
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "tenants"}.Sanitize()+` WHERE id = 'acme' FOR SHARE`); err != nil {
		t.Fatal(err)
	}
	var pid int32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"tenant", "suspend", "acme"}, {"tenant", "resume", "acme"}, {"tenant", "delete", "acme", "--yes"}} {
		r := h.want(exitInternal, append(args, "--json")...)
		var out struct {
			Error struct{ Code, Kind, Message, Hint string }
		}
		if err := json.Unmarshal([]byte(r.stderr), &out); err != nil {
			t.Fatalf("%v: stderr %q: %v", args, r.stderr, err)
		}
		e := out.Error
		if e.Code != "storage_unavailable" || !strings.Contains(e.Message, fmt.Sprintf("it waited for pid %d (", pid)) ||
			!strings.Contains(e.Message, "not a transaction of the tenant") || strings.Contains(e.Message, "none is open any more") {
			t.Fatalf("%v: %+v", args, e)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	h.ok("tenant", "suspend", "acme")
}
