package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

const tenantCols = `id, display_name, status, is_system, created_at, incarnation`

func scanTenant(row interface{ Scan(...any) error }) (docex.Tenant, error) {
	var t docex.Tenant
	var created int64
	var status string
	var sys int
	if err := row.Scan(&t.ID, &t.DisplayName, &status, &sys, &created, &t.Incarnation); err != nil {
		return t, err
	}
	t.Status, t.IsSystem, t.CreatedAt = docex.TenantStatus(status), sys != 0, fromMicros(created)
	return t, nil
}

// Tenant implements driver.Backend.
func (b *Backend) Tenant(ctx context.Context, id string) (docex.Tenant, error) {
	d, err := b.system(ctx, false)
	if err != nil {
		return docex.Tenant{}, err
	}
	t, err := scanTenant(d.r.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM docex_tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
	}
	if err != nil {
		return t, fmt.Errorf("read tenant registry: %w", err)
	}
	return t, nil
}

// Tenants implements driver.Backend.
func (b *Backend) Tenants(ctx context.Context) ([]docex.Tenant, error) {
	d, err := b.system(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := d.r.QueryContext(ctx, `SELECT `+tenantCols+` FROM docex_tenants ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []docex.Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// CreateTenant implements driver.Backend.
//
// The tenant file is built completely under a temporary name first. Then,
// inside one system transaction that holds SQLite's write lock (so
// concurrent creates, in this or another process, are serialised), the
// registry is checked, the file renamed to its final name and made durable,
// and the registry row inserted. A registry row therefore always names a
// complete file; a crash can only leave an unregistered file, which no
// OpenTenant ever opens and Sweep removes.
func (b *Backend) CreateTenant(ctx context.Context, t docex.Tenant, audit docex.AuditEntry) error {
	final, err := b.tenantPath(t.ID, t.Incarnation)
	if err != nil {
		return err
	}
	d, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	if err := b.checkMulti(ctx, d); err != nil {
		return err
	}
	// Cheap early check; the authoritative one is in the transaction.
	if _, err := b.Tenant(ctx, t.ID); err == nil {
		return docex.Errorf(docex.ErrTenantExists, "tenant %q already exists", t.ID)
	}
	dir := filepath.Dir(final)
	// The file is built in a staging directory that is never removed; the
	// tenant's own directory is created, filled and removed only under the
	// system write lock, so Sweep and DeleteTenant cannot pull it away.
	staging := b.stagingDir()
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	tmp := filepath.Join(staging, t.Incarnation+".db")
	defer removeDB(tmp)
	if err := b.buildTenantFile(ctx, tmp, t); err != nil {
		return err
	}
	err = withTx(ctx, d.w, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM docex_tenants WHERE id = ?`, t.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return docex.Errorf(docex.ErrTenantExists, "tenant %q already exists", t.ID)
		}
		if err := b.hook("before-rename"); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create tenant directory: %w", err)
		}
		if err := os.Rename(tmp, final); err != nil {
			return fmt.Errorf("install tenant database: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		if err := syncDir(b.tenantsDir()); err != nil {
			return err
		}
		if err := b.hook("before-register"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO docex_tenants(`+tenantCols+`) VALUES (?, ?, ?, 0, ?, ?)`,
			t.ID, t.DisplayName, string(docex.TenantActive), micros(t.CreatedAt), t.Incarnation); err != nil {
			return err
		}
		return insertAudit(ctx, tx, "docex_system_audit", audit)
	})
	if err != nil {
		if !errors.Is(err, docex.ErrTenantExists) {
			removeDB(final) // never registered: nothing refers to it
		}
		return fmt.Errorf("create tenant %q: %w", t.ID, err)
	}
	return nil
}

// hook is a failure-injection seam for this package's tests.
func (b *Backend) hook(point string) error {
	if b.testHook != nil {
		return b.testHook(point)
	}
	return nil
}

func (b *Backend) checkMulti(ctx context.Context, d *db) error {
	var v string
	err := d.r.QueryRowContext(ctx, `SELECT value FROM docex_meta WHERE key = 'multi_tenancy'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return docex.ErrNotInitialized
	}
	if err != nil {
		return err
	}
	if v != "true" {
		return docex.ErrMultiTenancyOff
	}
	return nil
}

// buildTenantFile creates a complete, durable tenant database at path: a
// copy of the backend's template (the schema, built once) with the tenant's
// identity written into its tenant_meta, the WAL folded into the file.
func (b *Backend) buildTenantFile(ctx context.Context, path string, t docex.Tenant) error {
	tmpl, err := b.tenantTemplate(ctx)
	if err != nil {
		return err
	}
	removeDB(path)
	if err := os.WriteFile(path, tmpl, 0o600); err != nil {
		if ferr := b.outOfFiles("create tenant database", err); ferr != nil {
			return ferr
		}
		return fmt.Errorf("create tenant database: %w", err)
	}
	conn := b.sqlOpen(path, b.dsn(path, "rw", true))
	conn.SetMaxOpenConns(1)
	err = withTx(ctx, conn, func(tx *sql.Tx) error {
		for k, v := range map[string]string{"tenant_id": t.ID, "incarnation": t.Incarnation} {
			if _, err := tx.ExecContext(ctx, `UPDATE tenant_meta SET value = ? WHERE key = ?`, v, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		// Fold the WAL into the file so that the file alone is complete.
		_, err = conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	if err = errors.Join(err, conn.Close()); err != nil {
		return fmt.Errorf("create tenant database: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// tenantTemplate returns the bytes of an empty tenant database (WAL mode,
// every table and index, tenant_meta with this binary's schema version and
// an empty identity), built once per backend.
func (b *Backend) tenantTemplate(ctx context.Context) ([]byte, error) {
	b.tmplMu.Lock()
	defer b.tmplMu.Unlock()
	if b.tmpl != nil {
		return b.tmpl, nil
	}
	path := filepath.Join(b.stagingDir(), "template-"+uuid.NewString()+".db")
	defer removeDB(path)
	nd, err := b.openDB(ctx, path, true)
	if err != nil {
		return nil, fmt.Errorf("create tenant template: %w", err)
	}
	err = withTx(ctx, nd.w, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, tenantSchema+pluginSchema+jobSchema); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tenant_meta(key, value) VALUES ('schema_version', ?), ('tenant_id', ''), ('incarnation', '')`,
			strconv.Itoa(driver.SchemaVersion))
		return err
	})
	if err == nil {
		_, err = nd.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	if err = errors.Join(err, nd.close()); err != nil {
		return nil, fmt.Errorf("create tenant template: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b.tmpl = data
	return data, nil
}

func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// SetTenantStatus implements driver.Backend.
func (b *Backend) SetTenantStatus(ctx context.Context, id string, status docex.TenantStatus, audit docex.AuditEntry) error {
	d, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	var t docex.Tenant
	err = withTx(ctx, d.w, func(tx *sql.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRowContext(ctx, `UPDATE docex_tenants SET status = ? WHERE id = ? AND is_system = 0 RETURNING `+tenantCols, string(status), id))
		if errors.Is(err, sql.ErrNoRows) {
			return docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, "docex_system_audit", audit)
	})
	if err != nil || status == docex.TenantActive {
		return err
	}
	return b.drain(ctx, "suspend", t)
}

// checkRegistered returns nil when the registry still names t's
// incarnation and, for a store opened while t was active, t is still
// active: docex.ErrTenantUnknown when t was deleted (or deleted and created
// again), docex.ErrTenantSuspended when it was suspended.
func (b *Backend) checkRegistered(ctx context.Context, t docex.Tenant) error {
	sys, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	var status, inc string
	err = sys.reads().QueryRowContext(ctx, `SELECT status, incarnation FROM docex_tenants WHERE id = ?`, t.ID).Scan(&status, &inc)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && inc != t.Incarnation:
		return docex.Errorf(docex.ErrTenantUnknown, "tenant %q was deleted since the store was opened", t.ID)
	case err != nil:
		return fmt.Errorf("read tenant registry: %w", err)
	case t.Status == docex.TenantActive && status != string(docex.TenantActive):
		return docex.Errorf(docex.ErrTenantSuspended, "tenant %q is %s", t.ID, status)
	}
	return nil
}

// DeleteTenant implements driver.Backend. The registry row goes first, in
// a transaction; then the file. A crash between the two leaves an
// unregistered file for Sweep, never a registered tenant without a file.
// Between the two it waits for the tenant's write in flight (drain), at
// most Config.LockTimeout; past it, it removes the file all the same and
// returns a *driver.DeleteWaitError (ErrLockTimeout) naming the
// processes that held the write lock: the deletion stands.
func (b *Backend) DeleteTenant(ctx context.Context, id string, audit docex.AuditEntry) error {
	d, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	var t docex.Tenant
	err = withTx(ctx, d.w, func(tx *sql.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM docex_tenants WHERE id = ? AND is_system = 0`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM docex_tenants WHERE id = ?`, id); err != nil {
			return err
		}
		return insertAudit(ctx, tx, "docex_system_audit", audit)
	})
	if err != nil {
		return err
	}
	// The file goes whatever the wait's outcome: interrupted, or past the
	// lock timeout (a write's process stopped, holding the lock), the
	// deletion goes on and says so (driver.DeleteWaitError).
	var waitErr error
	if err := b.drain(ctx, "delete", t); errors.Is(err, ErrLockTimeout) {
		waitErr = &driver.DeleteWaitError{Err: err}
	}
	b.evict(id + "/" + t.Incarnation)
	path, err := b.tenantPath(t.ID, t.Incarnation)
	if err != nil {
		return err
	}
	removeDB(path)
	// Remove the directory if empty, under the write lock that creates
	// hold while they fill it.
	_ = withTx(ctx, d.w, func(*sql.Tx) error {
		os.Remove(filepath.Dir(path))
		return nil
	})
	return waitErr
}

// stagingAge is how old a staging file must be for Sweep to remove it:
// grace, and at least twice the busy timeout (a create builds its file
// within a write that waits for the lock at most that long).
func (b *Backend) stagingAge(grace time.Duration) time.Duration {
	return max(grace, 2*b.cfg.BusyTimeout)
}

func (b *Backend) stagingDir() string { return filepath.Join(b.tenantsDir(), ".staging") }

// Sweep removes tenant files that no registry row refers to (left by a
// crash during provisioning or deletion) and staging files of crashed
// provisioning. It runs under the system write lock, so it is serialised
// with CreateTenant's rename-and-register step: an unregistered tenant
// file is removed at any age. Staging files are removed only when older
// than both grace and twice the busy timeout (a create may be building
// them; stagingAge). It returns the paths removed; with dryRun it removes
// nothing (taking the same lock and the same bounds, so that what it
// lists is what a sweep would remove) and returns the paths it would
// remove.
func (b *Backend) Sweep(ctx context.Context, grace time.Duration, dryRun bool) ([]string, error) {
	minAge := b.stagingAge(grace)
	d, err := b.system(ctx, false)
	if err != nil {
		return nil, err
	}
	var removed []string
	err = withTx(ctx, d.w, func(tx *sql.Tx) error {
		removed = removed[:0]
		live := map[string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT `+tenantCols+` FROM docex_tenants`)
		if err != nil {
			return err
		}
		for rows.Next() {
			t, err := scanTenant(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if p, err := b.tenantPath(t.ID, t.Incarnation); err == nil {
				live[p] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		staged, _ := os.ReadDir(b.stagingDir())
		for _, f := range staged {
			if _, ok := ownDBFile(f, true); !ok {
				continue // not a name this backend gives: not ours to remove
			}
			p := filepath.Join(b.stagingDir(), f.Name())
			if info, err := f.Info(); err == nil && b.now().Sub(info.ModTime()) > minAge {
				if dryRun || os.Remove(p) == nil {
					removed = append(removed, p)
				}
			}
		}
		dirs, _ := os.ReadDir(b.tenantsDir())
		for _, dEnt := range dirs {
			if !dEnt.IsDir() || tenancy.ValidateSyntax(dEnt.Name()) != nil {
				continue
			}
			dir := filepath.Join(b.tenantsDir(), dEnt.Name())
			files, _ := os.ReadDir(dir)
			for _, f := range files {
				db, ok := ownDBFile(f, false)
				if !ok || live[filepath.Join(dir, db)] {
					continue
				}
				// Renamed into place only under this lock, and not
				// registered: an orphan of a crash.
				p := filepath.Join(dir, f.Name())
				if dryRun || os.Remove(p) == nil {
					removed = append(removed, p)
				}
			}
			if !dryRun {
				os.Remove(dir) // only if empty
			}
		}
		return nil
	})
	return removed, err
}

// ownDBFile reports whether e is a regular file named as this backend
// names tenant database files, <incarnation>.db with an optional -wal, -shm
// or -journal suffix (in the staging directory also template-<uuid>.db), and
// returns the name of its database file. Sweep removes nothing else.
func ownDBFile(e fs.DirEntry, staging bool) (string, bool) {
	if !e.Type().IsRegular() {
		return "", false
	}
	name := e.Name()
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		name = strings.TrimSuffix(name, suffix)
	}
	base, ok := strings.CutSuffix(name, ".db")
	if staging {
		base = strings.TrimPrefix(base, "template-")
	}
	u, err := uuid.Parse(base)
	return name, ok && err == nil && u.String() == base
}

// handle is an open tenant database shared by the stores opened on it.
type handle struct {
	key   string
	db    *db   // set before ready is closed, unless err is
	err   error // why opening failed
	ready chan struct{}
	refs  int
	elem  *list.Element
}

// OpenTenant implements driver.Backend: the one place where a tenant id
// becomes a database.
func (b *Backend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	sys, err := b.system(ctx, false)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return b.openLocal(ctx, sys)
	}
	if err := tenancy.ValidateSyntax(id); err != nil {
		return nil, err
	}
	// The registry row read after generation gen is what a read's check
	// would read as long as the system database stays at gen.
	var gen *sysGen
	if g, err := b.systemGen(ctx); err == nil {
		gen = &g
	}
	t, err := b.Tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.IsSystem {
		return nil, docex.Errorf(docex.ErrBootstrapTenant, "tenant %q is the bootstrap tenant", id)
	}
	return b.openRegistered(ctx, t, gen)
}

// openRegistered returns a store of t, a tenant incarnation read from the
// registry. A file that cannot be opened is the tenant's deletion when
// the registry no longer names t's incarnation (deleted, or deleted and
// created again, between the registry read and the open: its file went
// with it): docex.ErrTenantNotFound, as if the read had come after;
// otherwise acquire's error. gen, when not nil, is a generation of the
// system database read before t was: the store's reads skip the registry
// check while the system database stays at it (store.checkRead).
func (b *Backend) openRegistered(ctx context.Context, t docex.Tenant, gen *sysGen) (driver.TenantStore, error) {
	h, err := b.acquire(ctx, t)
	if err != nil {
		if ctx.Err() == nil {
			if now, terr := b.Tenant(ctx, t.ID); errors.Is(terr, docex.ErrTenantNotFound) || terr == nil && now.Incarnation != t.Incarnation {
				return nil, docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found (deleted while it was being opened)", t.ID)
			}
		}
		return nil, err
	}
	s := &store{b: b, h: h, tenant: t, db: h.db}
	s.reader = reader{q: guardedPool{cachedPool: cachedPool{db: h.db.r, c: h.db.rc}, s: s}, audit: "audit"}
	if gen != nil {
		s.checked.Store(gen)
	}
	return s, nil
}

func (b *Backend) openLocal(ctx context.Context, sys *db) (driver.TenantStore, error) {
	var v string
	if err := sys.r.QueryRowContext(ctx, `SELECT value FROM docex_meta WHERE key = 'multi_tenancy'`).Scan(&v); err != nil {
		return nil, docex.Errorf(docex.ErrNotInitialized, "read system metadata: %v", err)
	}
	if v != "false" {
		return nil, docex.ErrTenantRequired
	}
	return &store{b: b, db: sys, reader: reader{q: sys.reads(), audit: "audit"}}, nil
}

// acquire returns the open handle of the tenant incarnation, opening it
// (fail closed: never creating) and verifying that the file belongs to the
// tenant and has this binary's schema version. Opening happens outside the
// backend's lock, so cold opens of different tenants run in parallel;
// concurrent opens of one tenant wait for the first.
func (b *Backend) acquire(ctx context.Context, t docex.Tenant) (*handle, error) {
	key := t.ID + "/" + t.Incarnation
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, docex.ErrClosed
	}
	if h, ok := b.handles[key]; ok {
		h.refs++
		b.lru.MoveToFront(h.elem)
		b.mu.Unlock()
		select {
		case <-h.ready:
		case <-ctx.Done():
			b.release(h)
			return nil, ctx.Err()
		}
		if h.err != nil {
			b.release(h)
			return nil, h.err
		}
		return h, nil
	}
	h := &handle{key: key, refs: 1, ready: make(chan struct{})}
	h.elem = b.lru.PushFront(h)
	b.handles[key] = h
	b.mu.Unlock()

	d, err := b.openTenantDB(ctx, t)

	b.mu.Lock()
	if err == nil && b.closed {
		d.close()
		err = docex.ErrClosed
	}
	if err != nil {
		h.err = err
		if b.handles[key] == h {
			b.lru.Remove(h.elem)
			delete(b.handles, key)
		}
		h.refs--
		close(h.ready)
		b.mu.Unlock()
		return nil, err
	}
	h.db = d
	close(h.ready)
	idle := b.trimLocked()
	b.mu.Unlock()
	closeAll(idle)
	return h, nil
}

// openTenantDB opens and verifies a tenant's file.
func (b *Backend) openTenantDB(ctx context.Context, t docex.Tenant) (*db, error) {
	path, err := b.tenantPath(t.ID, t.Incarnation)
	if err != nil {
		return nil, err
	}
	d, err := b.openDB(ctx, path, false)
	if err != nil {
		if ferr := b.outOfFiles(fmt.Sprintf("open tenant %q", t.ID), err); ferr != nil {
			return nil, ferr
		}
		return nil, fmt.Errorf("open tenant %q: registered but its database is unusable: %w", t.ID, err)
	}
	meta, err := readMeta(ctx, d.r, "tenant_meta")
	if err != nil {
		if ferr := b.outOfFiles(fmt.Sprintf("open tenant %q", t.ID), err); ferr != nil {
			err = ferr
		}
	} else {
		switch {
		case meta["tenant_id"] != t.ID || meta["incarnation"] != t.Incarnation:
			err = driver.StoreDamaged(docex.Errorf(docex.ErrCorrupt, "tenant %q: database file belongs to %q/%q", t.ID, meta["tenant_id"], meta["incarnation"]))
		case meta["schema_version"] != strconv.Itoa(driver.SchemaVersion):
			err = docex.Errorf(docex.ErrSchemaVersion, "tenant %q has schema version %q, this binary needs %d (no migrations at run time)", t.ID, meta["schema_version"], driver.SchemaVersion)
		}
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (b *Backend) release(h *handle) {
	b.mu.Lock()
	h.refs--
	var idle []*db
	if h.refs == 0 && b.handles[h.key] != h {
		if h.db != nil {
			idle = append(idle, h.db) // evicted while in use
		}
	} else {
		idle = b.trimLocked()
	}
	b.mu.Unlock()
	closeAll(idle)
}

// trimLocked removes idle handles beyond the bound, least recently used
// first, and returns their databases for the caller to close after
// unlocking (closing checkpoints the WAL: not under the lock).
func (b *Backend) trimLocked() []*db {
	var idle []*db
	for e := b.lru.Back(); e != nil && len(b.handles) > b.cfg.MaxOpenTenants; {
		h := e.Value.(*handle)
		prev := e.Prev()
		if h.refs == 0 && h.db != nil {
			b.lru.Remove(e)
			delete(b.handles, h.key)
			idle = append(idle, h.db)
		}
		e = prev
	}
	return idle
}

func closeAll(dbs []*db) {
	for _, d := range dbs {
		d.close()
	}
}

func (b *Backend) evict(key string) {
	b.mu.Lock()
	h, ok := b.handles[key]
	if !ok {
		b.mu.Unlock()
		return
	}
	b.lru.Remove(h.elem)
	delete(b.handles, key)
	var idle []*db
	if h.refs == 0 && h.db != nil {
		idle = append(idle, h.db)
	}
	b.mu.Unlock()
	closeAll(idle)
}

// OpenTenants returns the number of tenant databases currently open.
func (b *Backend) OpenTenants() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.handles)
}
