package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

func bootstrapped(t *testing.T) *Backend {
	t.Helper()
	b, err := Open(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if _, err := b.Bootstrap(context.Background(), driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return b
}

func newTenant(id string) docex.Tenant {
	return docex.Tenant{ID: id, DisplayName: id, Status: docex.TenantActive, CreatedAt: time.Now().UTC(), Incarnation: uuid.NewString()}
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A failure at any point of CreateTenant leaves no registry row and no
// file, and the id can be provisioned afterwards.
func TestCreateTenantFailureInjection(t *testing.T) {
	ctx := context.Background()
	injected := errors.New("injected failure")
	for _, point := range []string{"before-rename", "before-register"} {
		t.Run(point, func(t *testing.T) {
			b := bootstrapped(t)
			var seen []string
			b.testHook = func(p string) error {
				seen = append(seen, p)
				if p == point {
					return injected
				}
				return nil
			}
			tn := newTenant("acme")
			err := b.CreateTenant(ctx, tn, testAudit("tenant.create"))
			if !errors.Is(err, injected) {
				t.Fatalf("CreateTenant = %v, want the injected error", err)
			}
			if seen[len(seen)-1] != point {
				t.Fatalf("hook points %v", seen)
			}
			if _, err := b.Tenant(ctx, "acme"); !errors.Is(err, docex.ErrTenantNotFound) {
				t.Fatalf("Tenant after failed create = %v, want ErrTenantNotFound", err)
			}
			if ts, _ := b.Tenants(ctx); len(ts) != 1 {
				t.Fatalf("registry holds %v", ts)
			}
			if files := listFiles(t, b.tenantsDir()); len(files) != 0 {
				t.Fatalf("files left after failed create: %v", files)
			}
			if _, err := b.OpenTenant(ctx, "acme"); !errors.Is(err, docex.ErrTenantNotFound) {
				t.Fatalf("OpenTenant after failed create = %v", err)
			}
			// Same id, same incarnation even: succeeds cleanly.
			b.testHook = nil
			if err := b.CreateTenant(ctx, tn, testAudit("tenant.create")); err != nil {
				t.Fatalf("CreateTenant after the failure: %v", err)
			}
			st, err := b.OpenTenant(ctx, "acme")
			if err != nil {
				t.Fatalf("OpenTenant: %v", err)
			}
			defer st.Close()
			if st.Tenant().Incarnation != tn.Incarnation {
				t.Fatalf("incarnation %q", st.Tenant().Incarnation)
			}
			if err := st.Write(ctx, func(tx driver.Tx) error {
				return tx.InsertBasket(ctx, docex.Basket{ID: uuid.NewString(), Name: "b", CreatedAt: time.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			files := listFiles(t, b.tenantsDir())
			for _, f := range files {
				if !strings.HasPrefix(filepath.Base(f), tn.Incarnation+".db") {
					t.Errorf("unexpected file %s", f)
				}
			}
		})
	}
}

// A failure injected after the rename, with the system transaction still
// open, is what a crash at that point leaves once the transaction is rolled
// back: Sweep must remove such a file, and must leave registered files alone.
func TestSweepRemovesUnregisteredFiles(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	b.cfg.BusyTimeout = time.Millisecond // grace of 2 ms
	keep := newTenant("keep")
	if err := b.CreateTenant(ctx, keep, testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	// Simulate leftovers: a renamed but unregistered file and a temporary
	// file of a build in progress.
	orphan := newTenant("orphan")
	p, _ := b.tenantPath(orphan.ID, orphan.Incarnation)
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := b.buildTenantFile(ctx, p, orphan); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(b.stagingDir(), 0o700)
	tmp := filepath.Join(b.stagingDir(), uuid.NewString()+".db")
	os.WriteFile(tmp, []byte("partial"), 0o600)
	os.WriteFile(tmp+"-wal", []byte("partial"), 0o600)
	// Files the backend never creates are never its to remove, even in its
	// own directories (issue 8: a sweep deleted live databases of another
	// store sharing the directory).
	keepPath, _ := b.tenantPath(keep.ID, keep.Incarnation)
	foreign := []string{
		filepath.Join(b.stagingDir(), "notes.txt"),
		filepath.Join(b.stagingDir(), "x.db"),
		filepath.Join(filepath.Dir(keepPath), "notes.db"),
		filepath.Join(filepath.Dir(keepPath), uuid.NewString()+".txt"),
		filepath.Join(filepath.Dir(keepPath), strings.ToUpper(uuid.NewString())+".db"),
	}
	for _, f := range foreign {
		must(t, os.WriteFile(f, []byte("not docex's"), 0o600))
	}
	target := filepath.Join(t.TempDir(), "target")
	must(t, os.WriteFile(target, []byte("elsewhere"), 0o600))
	link := filepath.Join(filepath.Dir(keepPath), uuid.NewString()+".db")
	must(t, os.Symlink(target, link))
	foreign = append(foreign, link, target)
	time.Sleep(5 * time.Millisecond)
	want := []string{p, tmp, tmp + "-wal"}
	slices.Sort(want)

	// A dry run names what Sweep removes and removes nothing, not even an
	// empty directory.
	before := listFiles(t, b.tenantsDir())
	dry, err := b.Sweep(ctx, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dry)
	if !slices.Equal(dry, want) {
		t.Errorf("the dry run named %v, want the orphan and the staging files %v", dry, want)
	}
	if after := listFiles(t, b.tenantsDir()); !slices.Equal(after, before) {
		t.Errorf("the dry run changed the files: before %v, after %v", before, after)
	}
	must(t, os.MkdirAll(filepath.Join(b.tenantsDir(), "empty"), 0o700))
	if _, err := b.Sweep(ctx, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.tenantsDir(), "empty")); err != nil {
		t.Errorf("the dry run removed an empty tenant directory: %v", err)
	}

	removed, err := b.Sweep(ctx, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("Sweep removed %v, want the orphan and the staging files %v", removed, want)
	}
	for _, f := range foreign {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("Sweep removed a file it did not create: %v", err)
		}
		if filepath.Dir(f) != filepath.Dir(target) {
			os.Remove(f)
		}
	}
	files := listFiles(t, b.tenantsDir())
	for _, f := range files {
		if !strings.HasPrefix(f, keepPath) {
			t.Errorf("left after Sweep: %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(b.tenantsDir(), "orphan")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty tenant directory kept: %v", err)
	}
	st, err := b.OpenTenant(ctx, "keep")
	if err != nil {
		t.Fatalf("registered tenant after Sweep: %v", err)
	}
	st.Close()
	// The orphan's id provisions cleanly.
	if err := b.CreateTenant(ctx, newTenant("orphan"), testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
}

// Concurrent creates of one id: exactly one wins, the losers leave nothing.
func TestConcurrentCreateSameID(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	const n = 6
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- b.CreateTenant(ctx, newTenant("race"), testAudit("tenant.create")) }()
	}
	ok := 0
	for i := 0; i < n; i++ {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, docex.ErrTenantExists):
		default:
			t.Errorf("CreateTenant: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded", ok)
	}
	tn, err := b.Tenant(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.tenantPath(tn.ID, tn.Incarnation)
	for _, f := range listFiles(t, b.tenantsDir()) {
		if !strings.HasPrefix(f, p) {
			t.Errorf("loser left %s", f)
		}
	}
}

// Stores in use survive eviction; the handle is closed on release.
func TestEvictionWhileInUse(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	b.cfg.MaxOpenTenants = 1
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := b.CreateTenant(ctx, newTenant(id), testAudit("tenant.create")); err != nil {
			t.Fatal(err)
		}
	}
	s1, err := b.OpenTenant(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.OpenTenant(ctx, "a2")
	if err != nil {
		t.Fatal(err)
	}
	s3, err := b.OpenTenant(ctx, "a3")
	if err != nil {
		t.Fatal(err)
	}
	if n := b.OpenTenants(); n != 3 {
		t.Fatalf("%d open, want 3 (all in use)", n)
	}
	for _, s := range []driver.TenantStore{s1, s2, s3} {
		if _, err := s.Baskets(ctx, docex.Page{}); err != nil {
			t.Fatalf("%s: %v", s.Tenant().ID, err)
		}
	}
	s1.Close()
	s1.Close() // idempotent
	s2.Close()
	if n := b.OpenTenants(); n > 2 {
		t.Fatalf("%d open with one store in use, bound 1", n)
	}
	s3.Close()
	if n := b.OpenTenants(); n != 1 {
		t.Fatalf("%d open when idle, want 1", n)
	}
	// Deleting a tenant whose store is in use: the store refuses its
	// reads (tenant_unknown, as its writes) and stays open until closed,
	// then nothing is left open for it.
	s1, err = b.OpenTenant(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteTenant(ctx, "a1", testAudit("tenant.delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Baskets(ctx, docex.Page{}); !errors.Is(err, docex.ErrTenantUnknown) {
		t.Fatalf("store in use after delete: %v, want tenant_unknown", err)
	}
	s1.Close()
	if _, err := b.OpenTenant(ctx, "a1"); !errors.Is(err, docex.ErrTenantNotFound) {
		t.Fatalf("OpenTenant after delete: %v", err)
	}
}

// Sweep is meant to run on a live system (docex gc): it must not make a
// concurrent CreateTenant fail.
//
// BUG: it does. Sweep calls os.Remove on every tenant directory (to drop
// empty ones); CreateTenant does MkdirAll(tenants/<id>) and only then
// creates its temporary file there, so a Sweep in between removes the new,
// still empty directory and the build fails with "unable to open database
// file (14)". Without -race about 1 create in 10 fails while sweeps run in
// a loop. DeleteTenant's os.Remove of the directory races a re-create of
// the same id the same way.
func TestSweepConcurrentWithCreateTenant(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				b.Sweep(ctx, 0, false)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	deadline := time.Now().Add(3 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		if err := b.CreateTenant(ctx, newTenant(fmt.Sprintf("s%d", n)), testAudit("tenant.create")); err != nil {
			t.Fatalf("CreateTenant %d failed while Sweep ran concurrently: %v", n, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testAudit is a system audit entry for backend calls made by the tests.
func testAudit(op string) docex.AuditEntry {
	return docex.AuditEntry{ID: uuid.NewString(), Time: time.Now(), UserID: "test", Roles: []string{"operator"}, Operation: op, Outcome: docex.OutcomeOK}
}

// TestWriterPragmas: a tenant's write connection keeps temporary files,
// the group commit's savepoint sub-journals among them, in memory
// (temp_store=2), with the configured synchronous level and foreign keys
// on; its read connections are query-only.
func TestWriterPragmas(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	tn := newTenant("acme")
	if err := b.CreateTenant(ctx, tn, testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	h, err := b.acquire(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.release(h)
	pragma := func(conn interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, name string) int {
		t.Helper()
		var v int
		if err := conn.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, c := range []struct {
		name string
		conn interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}
		pragma string
		want   int
	}{
		{"writer", h.db.w, "temp_store", 2},
		{"writer", h.db.w, "synchronous", 2}, // full
		{"writer", h.db.w, "foreign_keys", 1},
		{"writer", h.db.w, "wal_autocheckpoint", walAutocheckpoint},
		{"reader", h.db.r, "query_only", 1},
	} {
		if got := pragma(c.conn, c.pragma); got != c.want {
			t.Errorf("%s: PRAGMA %s = %d, want %d", c.name, c.pragma, got, c.want)
		}
	}
}

// TestOpenRacingDelete: a tenant deleted between OpenTenant's registry
// read and its open of the file (the file went with the deletion) was
// reported as "registered but its database is unusable", an internal
// error; it is now tenant_not_found, as an open after the deletion is.
// A file missing while its tenant is registered is still the error it
// was. The race is played in order: the registry read, the deletion, the
// open.
func TestOpenRacingDelete(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	for _, id := range []string{"acme", "keep"} {
		must(t, b.CreateTenant(ctx, newTenant(id), testAudit("tenant.create")))
	}
	stale, err := b.Tenant(ctx, "acme") // OpenTenant's registry read
	must(t, err)
	must(t, b.DeleteTenant(ctx, "acme", testAudit("tenant.delete")))
	if _, err := b.openRegistered(ctx, stale, nil); !errors.Is(err, docex.ErrTenantNotFound) {
		t.Fatalf("open of a tenant deleted after the registry read: %v, want tenant_not_found", err)
	}
	// Deleted and created again: the old incarnation is not found either.
	must(t, b.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")))
	if _, err := b.openRegistered(ctx, stale, nil); !errors.Is(err, docex.ErrTenantNotFound) {
		t.Fatalf("open of an incarnation replaced after the registry read: %v, want tenant_not_found", err)
	}
	st, err := b.OpenTenant(ctx, "acme")
	must(t, err)
	st.Close()
	// A registered tenant whose file is gone is not a deletion.
	keep, err := b.Tenant(ctx, "keep")
	must(t, err)
	path, err := b.tenantPath(keep.ID, keep.Incarnation)
	must(t, err)
	must(t, os.Remove(path))
	if _, err := b.openRegistered(ctx, keep, nil); err == nil || errors.Is(err, docex.ErrTenantNotFound) {
		t.Fatalf("open of a registered tenant without its file: %v, want the open's error", err)
	}
}

// TestReadFailedAfterDeletion: a read that passed the registry check
// just before its tenant was deleted, and then failed (needing a new
// connection to the removed file: "unable to open database file"), fails
// with the refusal of a read after the deletion, ErrTenantUnknown; the
// same failure while the tenant is registered, and sql.ErrNoRows, are
// returned as they are. errRow carries such a refusal through
// QueryRowContext.
func TestReadFailedAfterDeletion(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	must(t, b.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")))
	ts, err := b.OpenTenant(ctx, "acme")
	must(t, err)
	defer ts.Close()
	s := ts.(*store)
	gone := errors.New("unable to open database file (14)")
	if err := s.readFailed(ctx, gone); err != gone {
		t.Fatalf("failure of a registered tenant's read: %v, want it as it is", err)
	}
	must(t, b.DeleteTenant(ctx, "acme", testAudit("tenant.delete")))
	if err := s.readFailed(ctx, sql.ErrNoRows); err != sql.ErrNoRows {
		t.Fatalf("no rows after the deletion: %v, want sql.ErrNoRows", err)
	}
	err = s.readFailed(ctx, gone)
	if !errors.Is(err, docex.ErrTenantUnknown) || err.Error() != `tenant "acme" was deleted since the store was opened` {
		t.Fatalf("failure of a read that raced the deletion: %v, want tenant_unknown", err)
	}
	var v int
	if got := errRow(err).Scan(&v); got != err {
		t.Fatalf("errRow(err).Scan = %v, want err", got)
	}
}

// TestSweepStagingAge: a staging file is swept only when older than both
// the sweep's grace and twice the busy timeout (10 s by default), and a
// dry run names exactly what the sweep then removes. Before, the grace
// was not looked at: docex gc --grace 1h removed a staging file of 30 s
// (and --grace 0s left one of 5 s alone, as now, without saying so).
func TestSweepStagingAge(t *testing.T) {
	ctx := context.Background()
	ages := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Hour}
	for _, c := range []struct {
		name  string
		grace time.Duration
		swept []time.Duration // the ages of the files swept
	}{
		{"no grace", 0, ages[1:]},
		{"grace under twice the busy timeout", 8 * time.Second, ages[1:]},
		{"grace of a minute", time.Minute, ages[2:]},
		{"grace of an hour", time.Hour, ages[2:]},
		{"grace of a day", 24 * time.Hour, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bootstrapped(t)
			b.cfg.BusyTimeout = 5 * time.Second
			must(t, os.MkdirAll(b.stagingDir(), 0o700))
			byAge := map[time.Duration]string{}
			for _, age := range ages {
				p := filepath.Join(b.stagingDir(), uuid.NewString()+".db")
				must(t, os.WriteFile(p, []byte("partial"), 0o600))
				when := time.Now().Add(-age)
				must(t, os.Chtimes(p, when, when))
				byAge[age] = p
			}
			var want []string
			for _, age := range c.swept {
				want = append(want, byAge[age])
			}
			slices.Sort(want)
			dry, err := b.Sweep(ctx, c.grace, true)
			must(t, err)
			slices.Sort(dry)
			removed, err := b.Sweep(ctx, c.grace, false)
			must(t, err)
			slices.Sort(removed)
			if !slices.Equal(dry, want) || !slices.Equal(removed, want) {
				t.Fatalf("grace %v: the dry run named %v, the sweep removed %v; want %v", c.grace, dry, removed, want)
			}
			for age, p := range byAge {
				_, err := os.Lstat(p)
				if gone := errors.Is(err, os.ErrNotExist); gone != slices.Contains(c.swept, age) {
					t.Fatalf("staging file of age %v gone: %v, want %v", age, gone, !gone)
				}
			}
		})
	}
}
