package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// frozenWrite starts a write transaction of st that inserts a basket
// named name and then stops, as a client frozen mid-transaction (a
// SIGSTOPped worker, a machine gone without closing its connection),
// until thaw is called (at the latest when the test ends). It returns
// the server process id of the transaction once it stopped, thaw, and
// the channel of Write's error.
func frozenWrite(t *testing.T, st driver.TenantStore, name string) (pid int32, thaw func(), wrote <-chan error) {
	t.Helper()
	frozen := make(chan struct{})
	thaw = sync.OnceFunc(func() { close(frozen) })
	t.Cleanup(thaw) // before the backend closes: it waits for the connection
	pids, errs := make(chan int32, 1), make(chan error, 1)
	go func() {
		errs <- st.Write(bg, func(dtx driver.Tx) error {
			if err := dtx.InsertBasket(bg, docex.Basket{ID: newID(), Name: name, CreatedAt: time.Now()}); err != nil {
				return err
			}
			var pid int32
			if err := dtx.(*tx).q.QueryRow(bg, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				return err
			}
			pids <- pid
			<-frozen
			return nil
		})
	}()
	select {
	case pid = <-pids:
	case err := <-errs:
		t.Fatalf("the write ended before it froze: %v", err)
	}
	return pid, thaw, errs
}

// TestFrozenWriterBoundsSuspendAndDelete: a tenant's write transaction
// whose client froze (its registry row locked FOR SHARE: the suspension
// barrier) makes a suspension, a resumption's opposite and a deletion
// wait at most Config.LockTimeout; each then fails with ErrBusy
// (docex.ErrStorageUnavailable) naming the frozen transaction's process
// and state, and changes nothing. Fleet probe: docex tenant suspend hung
// about 5 minutes on a SIGSTOPped worker; before, these calls waited for
// as long as the transaction stayed open (here: until the test's bound).
func TestFrozenWriterBoundsSuspendAndDelete(t *testing.T) {
	b := bootstrapped(t, Config{LockTimeout: 200 * time.Millisecond}, true)
	st := openStore(t, b, "acme")
	pid, thaw, wrote := frozenWrite(t, st, "frozen")
	// A bound on a hung test (the old code waited until it).
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	named := fmt.Sprintf("pid %d (", pid)
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"suspend", func() error {
			return b.SetTenantStatus(ctx, "acme", docex.TenantSuspended, testAudit("tenant.suspend"))
		}},
		{"delete", func() error { return b.DeleteTenant(ctx, "acme", testAudit("tenant.delete")) }},
	} {
		err := op.run()
		wantErr(t, err, ErrBusy, docex.ErrStorageUnavailable)
		if docex.Code(err) != "storage_unavailable" {
			t.Errorf("%s: code %s, want storage_unavailable", op.name, docex.Code(err))
		}
		msg := err.Error()
		t.Logf("%s: %s", op.name, msg)
		for _, want := range []string{op.name + ` tenant "acme"`, "nothing was changed", named, "idle in transaction for"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %q", op.name, msg, want)
			}
		}
	}
	tn, err := b.Tenant(bg, "acme")
	must(t, err)
	if tn.Status != docex.TenantActive {
		t.Fatalf("status %s after the failed suspension, want active", tn.Status)
	}
	entries, err := b.SystemAudit(bg, docex.Page{})
	must(t, err)
	for _, e := range entries {
		if e.Operation == "tenant.suspend" || e.Operation == "tenant.delete" {
			t.Errorf("audited %s although nothing was changed", e.Operation)
		}
	}
	thaw()
	must(t, <-wrote) // the frozen write was not harmed
	if _, err := st.BasketByName(bg, "frozen"); err != nil {
		t.Fatalf("the write that waited out the refusals: %v", err)
	}
	// Once it ended, the suspension goes through.
	must(t, b.SetTenantStatus(ctx, "acme", docex.TenantSuspended, testAudit("tenant.suspend")))
}

// TestFrozenWriterEndedByServer: a tenant transaction idle for longer
// than Config.IdleInTransactionTimeout is ended by the server, which
// releases what it held: a suspension waiting for it goes through while
// its client is still frozen, and nothing the transaction did is kept
// when the client wakes. Before, the transaction held the tenant's
// registry row for as long as its client stayed frozen.
func TestFrozenWriterEndedByServer(t *testing.T) {
	// The bound holds for every tenant transaction of b: 3 s, not less,
	// so that the test's own short transactions are not ended by a
	// scheduling pause at a high load.
	b := bootstrapped(t, Config{IdleInTransactionTimeout: 3 * time.Second, LockTimeout: 10 * time.Minute}, true)
	st := openStore(t, b, "acme")
	_, thaw, wrote := frozenWrite(t, st, "frozen")
	// A bound on a hung test (the old code waited until it).
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	must(t, b.SetTenantStatus(ctx, "acme", docex.TenantSuspended, testAudit("tenant.suspend")))
	thaw()
	err := <-wrote
	if err == nil {
		t.Fatal("the frozen write committed after the server ended its transaction")
	}
	// Usually the server's FATAL (25P03), which the error then explains;
	// the connection's reset may come first and lose it.
	t.Logf("the frozen write, woken: %v", err)
	must(t, b.SetTenantStatus(ctx, "acme", docex.TenantActive, testAudit("tenant.resume")))
	st2, err := b.OpenTenant(bg, "acme")
	must(t, err)
	defer st2.Close()
	if _, err := st2.BasketByName(bg, "frozen"); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("the basket of the ended transaction: %v, want not found", err)
	}
	addBasket(t, st2, "after") // the pool works on
}

// TestRegistryHolderNamed: a session that is not a transaction of the
// tenant but holds the tenant's registry row (an operator's psql
// `SELECT ... FOR SHARE`, a backup tool) makes a suspension, a
// resumption and a deletion give up after Config.LockTimeout naming it,
// marked as not a transaction of the tenant. Before, the error said
// "none is open any more, run it again" while the holder was still open
// (probe P18 F1).
func TestRegistryHolderNamed(t *testing.T) {
	b := bootstrapped(t, Config{LockTimeout: 200 * time.Millisecond}, true)
	openStore(t, b, "acme")
	conn, err := b.pool.Acquire(bg)
	must(t, err)
	defer conn.Release()
	tx, err := conn.Begin(bg)
	must(t, err)
	defer tx.Rollback(bg) //nolint:errcheck // the test's end
	_, err = tx.Exec(bg, `SELECT 1 FROM `+b.sys+`.tenants WHERE id = 'acme' FOR SHARE`)
	must(t, err)
	var pid int32
	must(t, tx.QueryRow(bg, `SELECT pg_backend_pid()`).Scan(&pid))
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"suspend", func() error {
			return b.SetTenantStatus(ctx, "acme", docex.TenantSuspended, testAudit("tenant.suspend"))
		}},
		{"resume", func() error {
			return b.SetTenantStatus(ctx, "acme", docex.TenantActive, testAudit("tenant.resume"))
		}},
		{"delete", func() error { return b.DeleteTenant(ctx, "acme", testAudit("tenant.delete")) }},
	} {
		err := op.run()
		wantErr(t, err, ErrBusy, docex.ErrStorageUnavailable)
		msg := err.Error()
		t.Logf("%s: %s", op.name, msg)
		for _, want := range []string{op.name + ` tenant "acme"`, "nothing was changed: it waited for " + fmt.Sprintf("pid %d (", pid),
			"idle in transaction for", "not a transaction of the tenant: it holds or awaits a lock on the tenant's registry row)"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %q", op.name, msg, want)
			}
		}
	}
	// The probe's own wait ended: once the holder ends, the row is free.
	must(t, tx.Rollback(bg))
	must(t, b.SetTenantStatus(ctx, "acme", docex.TenantSuspended, testAudit("tenant.suspend")))
	must(t, b.DeleteTenant(ctx, "acme", testAudit("tenant.delete")))
}

// TestIdleEndedTransactionIsStorageUnavailable: the error of a tenant
// transaction that PostgreSQL ended for staying idle longer than
// Config.IdleInTransactionTimeout (25P03, or the connection it closed)
// matches ErrIdleInTransaction and docex.ErrStorageUnavailable
// (storage_unavailable, exit 1) and names the key. Before, it was
// internal (probe P18 F4).
func TestIdleEndedTransactionIsStorageUnavailable(t *testing.T) {
	// 3 s, not less: see TestFrozenWriterEndedByServer.
	b := bootstrapped(t, Config{IdleInTransactionTimeout: 3 * time.Second}, true)
	st := openStore(t, b, "acme")
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	// The statement that finds the session ended: a statement of its
	// own, or a held audit entry sent with the commit (the case the
	// probe saw: "append audit" named as if the audit had failed).
	for _, next := range []struct {
		what string
		run  func(driver.Tx) error
	}{
		{`insert basket "second"`, func(dtx driver.Tx) error {
			return dtx.InsertBasket(ctx, docex.Basket{ID: newID(), Name: "second", CreatedAt: time.Now()})
		}},
		{"append audit", func(dtx driver.Tx) error { return dtx.AppendAudit(ctx, testAudit("basket.create")) }},
	} {
		err := st.Write(ctx, func(dtx driver.Tx) error {
			if err := dtx.InsertBasket(ctx, docex.Basket{ID: newID(), Name: "first", CreatedAt: time.Now()}); err != nil {
				return err
			}
			var pid int32
			if err := dtx.(*tx).q.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				return err
			}
			// Idle until the server ended the session (no wall-clock bet).
			for {
				var n int
				if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
			return next.run(dtx)
		})
		t.Logf("%s: %v", next.what, err)
		wantErr(t, err, ErrIdleInTransaction, docex.ErrStorageUnavailable)
		if docex.Code(err) != "storage_unavailable" || !strings.Contains(err.Error(), "PostgreSQL ended the transaction: it stayed idle between two statements for longer than 3s (database.postgres.idle_in_transaction_timeout_ms)") {
			t.Fatalf("%s: code %s: %v", next.what, docex.Code(err), err)
		}
		if _, err := st.BasketByName(bg, "first"); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("%s: the basket of the ended transaction: %v, want not found", next.what, err)
		}
	}
}
