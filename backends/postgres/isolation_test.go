package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// addBasket adds a basket named name to the store.
func addBasket(t testing.TB, st driver.TenantStore, name string) docex.Basket {
	t.Helper()
	bk := docex.Basket{ID: newID(), Name: name, CreatedAt: time.Now()}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	return bk
}

// onlyBasket checks that the store's only basket is named want.
func onlyBasket(st driver.TenantStore, want string) error {
	list, err := st.Baskets(bg, docex.Page{})
	if err != nil {
		return err
	}
	if len(list) != 1 || list[0].Name != want {
		return fmt.Errorf("baskets %+v, want only %q", list, want)
	}
	return nil
}

func TestDroppedSchemaNeverFallsThrough(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 2}, true)
	a, other := openStore(t, b, "alpha"), openStore(t, b, "beta")
	addBasket(t, a, "alpha-basket")
	addBasket(t, other, "beta-basket")
	// Decoys a fall-through could find: tables of the same names in public
	// and in the session's temporary schema.
	exec(t, b, `CREATE TABLE public.baskets (id text, name text, created_at timestamptz, doc_count bigint, bytes bigint);
		INSERT INTO public.baskets VALUES ('p', 'public-basket', now(), 0, 0)`)

	exec(t, b, `DROP SCHEMA docex_t_alpha CASCADE`)
	list, err := a.Baskets(bg, docex.Page{})
	if err == nil {
		t.Fatalf("read of a dropped tenant schema succeeded: %+v", list)
	}
	wantErr(t, err, docex.ErrCorrupt)
	err = a.Write(bg, func(tx driver.Tx) error {
		_, err := tx.Baskets(bg, docex.Page{})
		return err
	})
	wantErr(t, err, docex.ErrCorrupt)
	_, err = b.OpenTenant(bg, "alpha")
	wantErr(t, err, docex.ErrCorrupt)
	must(t, onlyBasket(other, "beta-basket"))
	// The registry row can still be removed, and the id provisioned again.
	must(t, b.DeleteTenant(bg, "alpha", testAudit("tenant.delete")))
	openStore(t, b, "alpha")
}

// TestSchemaDroppedMidTransaction: the check at the start of every tenant
// transaction reads the schema's own meta table, so the schema cannot be
// dropped (or renamed) under a running transaction: the DROP waits for the
// transaction, here until its lock timeout, and the transaction reads its
// own tenant's rows only. Public and temporary decoys are never found.
func TestSchemaDroppedMidTransaction(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 3}, true)
	a := openStore(t, b, "alpha")
	addBasket(t, a, "alpha-basket")
	exec(t, b, `CREATE TABLE public.baskets (id text, name text, created_at timestamptz, doc_count bigint, bytes bigint);
		INSERT INTO public.baskets VALUES ('p', 'public-basket', now(), 0, 0)`)
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	err := a.Write(ctx, func(tx driver.Tx) error {
		conn, err := b.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		_, derr := conn.Exec(ctx, `SET lock_timeout = '500ms'; DROP SCHEMA docex_t_alpha CASCADE`)
		if code, _ := pgError(derr); code != "55P03" {
			return fmt.Errorf("DROP SCHEMA under a running transaction: %v, want a lock timeout", derr)
		}
		list, err := tx.Baskets(ctx, docex.Page{})
		if err != nil || len(list) != 1 || list[0].Name != "alpha-basket" {
			return fmt.Errorf("read in the transaction: %+v %v", list, err)
		}
		return nil
	})
	must(t, err)
}

// TestDeleteCommitsUnderWaitingTransactions: transactions of a tenant
// store that begin while the tenant's deletion has dropped its schema but
// not committed wait for the schema's tables; when the deletion commits
// they find them gone (42P01), and report the deletion
// (docex.ErrTenantUnknown), not damaged data (docex.ErrCorrupt, before).
// The deletion is held before its commit by a lock on the job table, which
// it writes after the DROP SCHEMA; the test waits for the transactions to
// wait on their locks (pg_stat_activity), not for time.
func TestDeleteCommitsUnderWaitingTransactions(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 8}, true)
	st := openStore(t, b, "alpha")
	other := openStore(t, b, "beta")
	addBasket(t, st, "alpha-basket")
	must(t, onlyBasket(st, "alpha-basket")) // the check is prepared
	// A bound on a hung test.
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	holder, err := b.pool.Begin(ctx)
	must(t, err)
	defer holder.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // released below
	if _, err := holder.Exec(ctx, `LOCK TABLE `+quote(b.queue.schema)+`.river_job IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- b.DeleteTenant(ctx, "alpha", testAudit("tenant.delete")) }()
	// waiting returns how many backends wait on a lock running query.
	waiting := func(query string) int64 {
		return queryInt(t, b, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, query)
	}
	for waiting(`DELETE FROM %river_job%`) == 0 { // past its DROP SCHEMA
		select {
		case err := <-deleted:
			t.Fatalf("the deletion ended before it waited for the job table: %v", err)
		case <-ctx.Done():
			t.Fatal("the deletion never waited for the job table")
		case <-time.After(5 * time.Millisecond):
		}
	}
	ops := map[string]chan error{"read": make(chan error, 1), "write": make(chan error, 1)}
	go func() { ops["read"] <- onlyBasket(st, "alpha-basket") }()
	go func() { ops["write"] <- addBasketErr(st, "more") }()
	for waiting(`%current_schemas%`) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the store's transactions never waited for the deletion")
		case <-time.After(5 * time.Millisecond):
		}
	}
	must(t, holder.Rollback(ctx))
	must(t, <-deleted)
	for op, c := range ops {
		if err := <-c; !errors.Is(err, docex.ErrTenantUnknown) || errors.Is(err, docex.ErrCorrupt) {
			t.Errorf("%s that waited for the deletion: %v (code %s), want %s", op, err, docex.Code(err), docex.ErrTenantUnknown.Code())
		}
	}
	addBasket(t, other, "beta-basket")
	must(t, onlyBasket(other, "beta-basket"))
}

func isUndefinedTable(err error) bool {
	code, _ := pgError(err)
	return code == codeUndefinedTable
}

// TestPooledConnectionState abuses a small pool: a session-level SET
// search_path committed by a tenant transaction, a failed transaction, and
// a connection released inside a transaction must not affect the next
// borrower.
func TestPooledConnectionState(t *testing.T) {
	for _, conns := range []int32{1, 2} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) {
			b := bootstrapped(t, Config{MaxConns: conns}, true)
			a, other := openStore(t, b, "alpha"), openStore(t, b, "beta")
			addBasket(t, a, "alpha-basket")
			addBasket(t, other, "beta-basket")

			steps := []struct {
				name string
				fn   func(tx *tx) error
				ok   bool
			}{
				{"session SET search_path", func(tx *tx) error {
					_, err := tx.q.Exec(bg, `SET search_path TO docex_t_alpha, public`)
					return err
				}, true},
				{"session set_config", func(tx *tx) error {
					_, err := tx.q.Exec(bg, `SELECT set_config('search_path', 'docex_t_alpha', false)`)
					return err
				}, true},
				{"failed statement", func(tx *tx) error {
					_, err := tx.q.Exec(bg, `SELECT * FROM no_such_table`)
					return err
				}, false},
				{"duplicate basket", func(tx *tx) error {
					return tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "alpha-basket"})
				}, false},
				{"statement after error", func(tx *tx) error {
					_, _ = tx.q.Exec(bg, `SELECT 1/0`)
					_, err := tx.q.Exec(bg, `SELECT 1`)
					return err
				}, false},
				{"temp table decoy", func(tx *tx) error {
					_, err := tx.q.Exec(bg, `CREATE TEMP TABLE baskets (id text, name text, created_at timestamptz, doc_count bigint, bytes bigint);
						INSERT INTO pg_temp.baskets VALUES ('t', 'temp-basket', now(), 0, 0)`)
					return err
				}, true},
			}
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					err := a.Write(bg, func(dtx driver.Tx) error { return s.fn(dtx.(*tx)) })
					if (err == nil) != s.ok {
						t.Fatalf("step error %v, want ok=%t", err, s.ok)
					}
					for range 2 * conns {
						must(t, onlyBasket(other, "beta-basket"))
						must(t, onlyBasket(a, "alpha-basket"))
					}
					c, err := b.pool.Acquire(bg)
					must(t, err)
					var path string
					must(t, c.QueryRow(bg, `SHOW search_path`).Scan(&path))
					c.Release()
					if path != "" && path != `""` {
						t.Fatalf("pooled connection kept search_path %q", path)
					}
				})
			}

			// A connection released inside an open transaction is destroyed.
			c, err := b.pool.Acquire(bg)
			must(t, err)
			_, err = c.Exec(bg, `BEGIN; SET LOCAL search_path TO docex_t_alpha`)
			must(t, err)
			c.Release()
			must(t, onlyBasket(other, "beta-basket"))
		})
	}
}

func TestTenantIDsNeedingQuotes(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	ids := []string{"select", "user", "order", "table", "a-b", "x_1", "from-where", "group", "z9"}
	stores := map[string]driver.TenantStore{}
	for _, id := range ids {
		stores[id] = openStore(t, b, id)
		addBasket(t, stores[id], "basket-of-"+id)
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			must(t, onlyBasket(stores[id], "basket-of-"+id))
			st, err := b.OpenTenant(bg, id)
			must(t, err)
			defer st.Close()
			if st.Tenant().ID != id {
				t.Fatalf("opened %q for %q", st.Tenant().ID, id)
			}
		})
	}
	// A custom prefix with the same ids.
	b2 := bootstrapped(t, Config{TenantSchemaPrefix: "t_", BootstrapSchema: "sys"}, true)
	for _, id := range []string{"select", "a-b"} {
		st := openStore(t, b2, id)
		addBasket(t, st, id)
		must(t, onlyBasket(st, id))
	}
	if n := queryInt(t, b2, `SELECT count(*) FROM pg_namespace WHERE nspname IN ('t_select', 't_a-b')`); n != 2 {
		t.Fatalf("custom-prefix schemas: %d", n)
	}
}

// TestManyTenantsRoundRobin: 100 tenants through a 2-connection pool, each
// read seeing only its own tenant's rows; TestScaleManyTenantsRoundRobin
// (make test-scale) does it with 1,000.
func TestManyTenantsRoundRobin(t *testing.T) { manyTenantsRoundRobin(t, 100) }

func manyTenantsRoundRobin(t *testing.T, n int) {
	b := bootstrapped(t, Config{MaxConns: 2}, true)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%04d", i)
	}
	// Provision with a few workers through the same small pool.
	work := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 4 {
		wg.Go(func() {
			for id := range work {
				err := b.CreateTenant(bg, docex.Tenant{ID: id, DisplayName: id, CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create"))
				if err == nil {
					var st driver.TenantStore
					if st, err = b.OpenTenant(bg, id); err == nil {
						err = st.Write(bg, func(tx driver.Tx) error {
							return tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "basket-of-" + id, CreatedAt: time.Now()})
						})
						st.Close()
					}
				}
				if err != nil && failed.Add(1) < 5 {
					t.Errorf("provision %s: %v", id, err)
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	// Round-robin reads from 4 goroutines sharing 2 connections, each
	// checking it sees only its own tenant's rows.
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 2*n; i += 4 {
				id := ids[i%n]
				st, err := b.OpenTenant(bg, id)
				if err == nil {
					err = onlyBasket(st, "basket-of-"+id)
					st.Close()
				}
				if err != nil && failed.Add(1) < 5 {
					t.Errorf("read %s: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	if got := queryInt(t, b, `SELECT count(*) FROM docex_system.tenants`); got != int64(n+1) {
		t.Fatalf("%d registry rows, want %d", got, n+1)
	}
}

func TestNoForeignKeyCrossesSchemas(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	openStore(t, b, "acme")
	openStore(t, b, "beta")
	const q = `SELECT count(*) FILTER (WHERE n1.oid <> n2.oid), count(*) FILTER (WHERE n1.nspname = 'docex_t_acme')
		FROM pg_constraint c
		JOIN pg_class r1 ON r1.oid = c.conrelid JOIN pg_namespace n1 ON n1.oid = r1.relnamespace
		JOIN pg_class r2 ON r2.oid = c.confrelid JOIN pg_namespace n2 ON n2.oid = r2.relnamespace
		WHERE c.contype = 'f'`
	var crossing, inAcme int64
	must(t, b.pool.QueryRow(bg, q).Scan(&crossing, &inAcme))
	if crossing != 0 {
		t.Fatalf("%d foreign keys cross a schema boundary", crossing)
	}
	if inAcme != 3 {
		t.Fatalf("tenant schema has %d foreign keys, want 3 (documents->baskets, metadata->documents, basket_pipelines->baskets)", inAcme)
	}
	// No other object of a tenant schema depends on another schema
	// (views, sequences owned elsewhere, inherited tables).
	const deps = `SELECT count(*) FROM pg_depend d
		JOIN pg_class c1 ON d.classid = 'pg_class'::regclass AND c1.oid = d.objid
		JOIN pg_class c2 ON d.refclassid = 'pg_class'::regclass AND c2.oid = d.refobjid
		WHERE c1.relnamespace <> c2.relnamespace
		AND c1.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'docex\_t\_%')`
	if n := queryInt(t, b, deps); n != 0 {
		t.Fatalf("%d dependencies cross a schema boundary", n)
	}
}

func TestProvisioningCrashSafety(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	boom := errors.New("injected failure")
	for _, step := range []string{"lock", "check", "schema", "register", "commit"} {
		for _, how := range []string{"error", "cancel"} {
			t.Run(step+"/"+how, func(t *testing.T) {
				ctx, cancel := context.WithCancel(bg)
				defer cancel()
				b.provisionHook = func(s string) error {
					if s != step {
						return nil
					}
					if how == "cancel" {
						cancel()
						return nil
					}
					return boom
				}
				err := b.CreateTenant(ctx, docex.Tenant{ID: "crash", DisplayName: "c", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create"))
				b.provisionHook = nil
				if err == nil {
					t.Fatal("CreateTenant succeeded despite the failure")
				}
				assertNoTenant(t, b, "crash")
				must(t, b.CreateTenant(bg, docex.Tenant{ID: "crash", DisplayName: "c", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")))
				st, err := b.OpenTenant(bg, "crash")
				must(t, err)
				st.Close()
				must(t, b.DeleteTenant(bg, "crash", testAudit("tenant.delete")))
				assertNoTenant(t, b, "crash")
			})
		}
	}
}

// assertNoTenant checks that neither a registry row nor a schema of id is
// visible (waiting briefly for a cancelled server process to roll back).
func assertNoTenant(t *testing.T, b *Backend, id string) {
	t.Helper()
	rows := queryInt(t, b, `SELECT count(*) FROM docex_system.tenants WHERE id = $1`, id)
	schemas := queryInt(t, b, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, "docex_t_"+id)
	if rows != 0 || schemas != 0 {
		t.Fatalf("after a failed provisioning: %d registry rows, %d schemas", rows, schemas)
	}
	_, err := b.OpenTenant(bg, id)
	wantErr(t, err, docex.ErrTenantNotFound)
}

// TestRenamedSchemaIsNotAnotherTenant: each schema records the tenant and
// incarnation it belongs to, and every transaction checks them, so a
// schema renamed to another tenant's schema name is refused, not read as
// that tenant (issue 8).
func TestRenamedSchemaIsNotAnotherTenant(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 2}, true)
	alpha, beta := openStore(t, b, "alpha"), openStore(t, b, "beta")
	addBasket(t, alpha, "alpha-basket")
	addBasket(t, beta, "beta-basket")
	exec(t, b, `DROP SCHEMA docex_t_beta CASCADE; ALTER SCHEMA docex_t_alpha RENAME TO docex_t_beta`)
	list, err := beta.Baskets(bg, docex.Page{})
	if err == nil {
		t.Fatalf("beta's store read alpha's schema: %+v", list)
	}
	wantErr(t, err, docex.ErrCorrupt)
	wantErr(t, addBasketErr(beta, "x"), docex.ErrCorrupt)
	_, err = b.OpenTenant(bg, "beta")
	wantErr(t, err, docex.ErrCorrupt)
	_, err = b.OpenTenant(bg, "alpha")
	wantErr(t, err, docex.ErrCorrupt) // its schema is gone
}

func addBasketErr(st driver.TenantStore, name string) error {
	bk := docex.Basket{ID: newID(), Name: name, CreatedAt: time.Now()}
	return st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) })
}

// TestScaleOutDocListsTenantTables: docs/scale-out.md names every table of
// a tenant schema (what Citus moves with the tenant).
func TestScaleOutDocListsTenantTables(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	openStore(t, b, "acme")
	doc, err := os.ReadFile("../../docs/scale-out.md")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := b.pool.Query(bg, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'docex_t_acme' ORDER BY 1`)
	must(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if len(tables) == 0 {
		t.Fatal("no tables in docex_t_acme")
	}
	// The list: the backticked names of the bullet "Everything of a tenant
	// is in its schema", up to its next sentence ("Only the job queue's
	// delivery rows ...").
	text := string(doc)
	i := strings.Index(text, "**Everything of a tenant is in its schema**")
	j := i + strings.Index(text[max(i, 0):], "Only")
	if i < 0 || j < i {
		t.Fatal("docs/scale-out.md has no list of a tenant's tables")
	}
	var listed []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(text[i:j], -1) {
		listed = append(listed, m[1])
	}
	sort.Strings(listed)
	if !slices.Equal(listed, tables) {
		t.Errorf("docs/scale-out.md lists the tenant tables %v; a tenant schema has %v", listed, tables)
	}
	// The schema names the doc gives are defaults, and it says how to
	// change them.
	for _, key := range []string{"tenant_schema_prefix", "multi_tenancy.bootstrap_tenant.schema", "MaxConnLifetime", "--shutdown-timeout"} {
		if !strings.Contains(text, key) {
			t.Errorf("docs/scale-out.md does not mention %s", key)
		}
	}
}
