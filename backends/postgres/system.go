package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Keys of the system meta table.
const (
	metaSchemaVersion = "schema_version"
	metaBootstrapID   = driver.SettingBootstrapTenantID
	metaMultiTenancy  = driver.SettingMultiTenancy
	metaSystemID      = "system_id"
	metaContentDir    = "content_dir"  // driver.ContentRecorder
	metaInitPending   = "init_pending" // driver.InitTracker: "true" until FinishInit
)

// sysErr wraps an error of a registry query: a missing system schema or
// table becomes docex.ErrNotInitialized.
func (b *Backend) sysErr(err error, format string, args ...any) error {
	if code, _ := pgError(err); code == codeUndefinedTable || code == codeInvalidSchemaName {
		return fmt.Errorf("%w: %w", docex.ErrNotInitialized, b.wrap(err, format, args...))
	}
	return b.wrap(err, format, args...)
}

const sqlMetaExists = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = $1 AND c.relname = 'meta')`

// readMeta returns the system meta table, or found=false when the system
// schema or its meta table does not exist.
func (b *Backend) readMeta(ctx context.Context, q querier) (meta map[string]string, found bool, err error) {
	// A catalog scan, not to_regclass: to_regclass consults the
	// connection's catalog cache, which may hold a negative entry from
	// before a concurrent Bootstrap committed.
	var exists bool
	if err := q.QueryRow(ctx, sqlMetaExists, b.cfg.BootstrapSchema).Scan(&exists); err != nil {
		return nil, false, b.wrap(err, "look up system schema %s", b.cfg.BootstrapSchema)
	}
	if !exists {
		return nil, false, nil
	}
	rows, err := q.Query(ctx, b.sql.metaAll)
	if err != nil {
		return nil, false, b.sysErr(err, "read system meta")
	}
	meta = map[string]string{}
	var k, v string
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { meta[k] = v; return nil }); err != nil {
		return nil, false, b.sysErr(err, "read system meta")
	}
	if len(meta) == 0 {
		return nil, false, nil
	}
	return meta, true, nil
}

// compareMeta returns docex.ErrSchemaVersion or docex.ErrInvalidConfig when
// the stored system settings differ from info.
func compareMeta(meta map[string]string, info driver.BootstrapInfo) error {
	if v := meta[metaSchemaVersion]; v != strconv.Itoa(driver.SchemaVersion) {
		return docex.Errorf(docex.ErrSchemaVersion, "postgres: system schema version %q, this binary uses %d", v, driver.SchemaVersion)
	}
	return driver.CompareSettings(meta, info)
}

// Bootstrap creates the system schema, its tables, the meta rows and the
// bootstrap tenant's registry row (is_system), plus the local store when
// multi-tenancy is disabled, in one transaction serialised by an advisory
// lock. On an initialised system it changes nothing and returns
// created=false, or docex.ErrSchemaVersion / docex.ErrInvalidConfig when the
// stored settings differ from info. It returns docex.ErrInvalidConfig for
// an invalid bootstrap tenant id or when the schema exists but is not a
// docex system schema.
func (b *Backend) Bootstrap(ctx context.Context, info driver.BootstrapInfo) (created bool, err error) {
	if err := tenancy.ValidateSyntax(info.BootstrapTenantID); err != nil {
		return false, fmt.Errorf("%w: bootstrap tenant id: %w", docex.ErrInvalidConfig, err)
	}
	now := info.Now
	if now.IsZero() {
		now = time.Now()
	}
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("bootstrap", b.cfg.BootstrapSchema)); err != nil {
			return b.wrap(err, "lock bootstrap")
		}
		meta, found, err := b.readMeta(ctx, tx)
		if err != nil {
			return err
		}
		if found {
			if err := compareMeta(meta, info); err != nil {
				return err
			}
			if meta[metaSystemID] != "" || info.SystemID == "" {
				return nil
			}
			// A system bootstrapped before system ids gets one.
			if _, err := tx.Exec(ctx, b.sql.metaInsert, metaSystemID, info.SystemID); err != nil {
				return b.wrap(err, "write system meta %s", metaSystemID)
			}
			return nil
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, b.cfg.BootstrapSchema).Scan(&n); err != nil {
			return b.wrap(err, "inspect schema %s", b.cfg.BootstrapSchema)
		}
		if n > 0 {
			return docex.Errorf(docex.ErrInvalidConfig, "postgres: schema %q exists and is not a docex system schema", b.cfg.BootstrapSchema)
		}
		if _, err := tx.Exec(ctx, systemDDLFor(b.sys)); err != nil {
			return b.wrap(err, "create system schema %s", b.cfg.BootstrapSchema)
		}

		for _, kv := range [][2]string{
			{metaSchemaVersion, strconv.Itoa(driver.SchemaVersion)},
			{metaBootstrapID, info.BootstrapTenantID},
			{metaMultiTenancy, strconv.FormatBool(info.MultiTenancy)},
			{metaSystemID, info.SystemID},
			{metaInitPending, map[bool]string{true: "true"}[info.InitPending]},
		} {
			if kv[1] == "" {
				continue // no system id given, or not pending
			}
			if _, err := tx.Exec(ctx, b.sql.metaInsert, kv[0], kv[1]); err != nil {
				return b.wrap(err, "write system meta %s", kv[0])
			}
		}
		inc, err := newIncarnation()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, b.sql.tenantInsert, info.BootstrapTenantID, driver.BootstrapTenantDisplayName,
			string(docex.TenantActive), true, utcMicro(now), inc); err != nil {
			return b.wrap(err, "register bootstrap tenant")
		}
		if !info.MultiTenancy {
			if _, err := tx.Exec(ctx, tenantDDLFor(quote(b.local), driver.SchemaVersion)); err != nil {
				if code, _ := pgError(err); code == codeDuplicateSchema {
					return fmt.Errorf("%w: %w", docex.ErrInvalidConfig, b.wrap(err, "create local store: schema %s exists", b.local))
				}
				return b.wrap(err, "create local store %s", b.local)
			}
			if err := b.writeIdentity(ctx, tx, b.local, "", ""); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, err
	}
	// River's migrations cannot share one transaction (they add enum
	// values), so they run after the system tables commit; they are
	// idempotent, every Bootstrap completes them, and Check refuses a
	// system without them.
	if err := b.migrateRiver(ctx); err != nil {
		return false, err
	}
	return created, nil
}

// Check returns docex.ErrNotInitialized when the system schema or its meta
// table is absent, docex.ErrSchemaVersion on another schema version, and
// docex.ErrInvalidConfig when the system was bootstrapped with another
// bootstrap tenant id or multi-tenancy setting.
func (b *Backend) Check(ctx context.Context, info driver.BootstrapInfo) error {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return err
	}
	if err := compareMeta(meta, info); err != nil {
		return err
	}
	return b.checkRiver(ctx)
}

// SystemID returns the system id Bootstrap stored, "" for a system
// bootstrapped before system ids, and docex.ErrNotInitialized when the
// system schema or its meta table is absent. It writes nothing.
func (b *Backend) SystemID(ctx context.Context) (string, error) {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return "", err
	}
	return meta[metaSystemID], nil
}

// ContentDir returns the content directory RecordContentDir recorded, ""
// when none, and docex.ErrNotInitialized when the system schema or its
// meta table is absent (driver.ContentRecorder). It writes nothing.
func (b *Backend) ContentDir(ctx context.Context) (string, error) {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return "", err
	}
	return meta[metaContentDir], nil
}

// RecordContentDir records dir as the system's content directory,
// replacing the one recorded (driver.ContentRecorder). It returns
// docex.ErrNotInitialized when the system schema or its meta table is
// absent.
func (b *Backend) RecordContentDir(ctx context.Context, dir string) error {
	if _, err := b.systemMeta(ctx); err != nil {
		return err
	}
	if _, err := b.pool.Exec(ctx, b.sql.metaUpsert, metaContentDir, dir); err != nil {
		return b.sysErr(err, "write system meta %s", metaContentDir)
	}
	return nil
}

// InitPending reports whether the system was created with
// driver.BootstrapInfo.InitPending and FinishInit has not been called
// since (driver.InitTracker). It returns docex.ErrNotInitialized when the
// system schema or its meta table is absent. It writes nothing.
func (b *Backend) InitPending(ctx context.Context) (bool, error) {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return false, err
	}
	return meta[metaInitPending] != "", nil
}

// FinishInit appends e to the system audit log and marks the
// initialisation finished, in one transaction (driver.InitTracker). It
// returns docex.ErrNotInitialized when the system schema or its meta table
// is absent.
func (b *Backend) FinishInit(ctx context.Context, e docex.AuditEntry) error {
	if _, err := b.systemMeta(ctx); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if err := b.appendSystemAudit(ctx, tx, e); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, b.sql.metaDelete, metaInitPending)
		return b.sysErr(err, "write system meta %s", metaInitPending)
	})
}

// systemMeta reads the system meta table; docex.ErrNotInitialized when
// the system schema or its meta table is absent.
func (b *Backend) systemMeta(ctx context.Context) (map[string]string, error) {
	meta, found, err := b.readMeta(ctx, b.pool)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, docex.Errorf(docex.ErrNotInitialized, "postgres: schema %s is not initialised (run docex init)", b.cfg.BootstrapSchema)
	}
	return meta, nil
}

// step runs the test hook of a provisioning step, if any.
func (b *Backend) step(name string) error {
	if b.provisionHook == nil {
		return nil
	}
	return b.provisionHook(name)
}

// CreateTenant creates the tenant's schema, its tables and indexes and its
// registry row in one transaction, serialised per id by an advisory lock:
// on any error nothing remains. It returns docex.ErrTenantExists when the
// id is registered (or its schema exists), docex.ErrInvalidID for an
// invalid id, docex.ErrMultiTenancyOff on a single-tenant system,
// docex.ErrNotInitialized before Bootstrap.
func (b *Backend) CreateTenant(ctx context.Context, t docex.Tenant, audit docex.AuditEntry) error {
	schema, err := b.tenantSchema(t.ID)
	if err != nil {
		return err
	}
	if t.Status == "" {
		t.Status = docex.TenantActive
	}
	if t.Status != docex.TenantActive && t.Status != docex.TenantSuspended {
		return docex.Errorf(docex.ErrInvalid, "postgres: tenant status %q", t.Status)
	}
	if t.Incarnation == "" {
		if t.Incarnation, err = newIncarnation(); err != nil {
			return err
		}
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if err := b.step("lock"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("tenant", t.ID)); err != nil {
			return b.wrap(err, "lock tenant %q", t.ID)
		}
		if err := b.step("check"); err != nil {
			return err
		}
		reg, err := b.registryForOpen(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		if !reg.multi {
			return docex.Errorf(docex.ErrMultiTenancyOff, "postgres: cannot create tenant %q", t.ID)
		}
		if reg.found {
			return docex.Errorf(docex.ErrTenantExists, "tenant %q already exists", t.ID)
		}
		if err := b.step("schema"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, tenantDDLFor(quote(schema), driver.SchemaVersion)); err != nil {
			if code, _ := pgError(err); code == codeDuplicateSchema || code == codeUniqueViolation {
				return fmt.Errorf("%w: %w", docex.ErrTenantExists, b.wrap(err, "create schema of tenant %q", t.ID))
			}
			return b.wrap(err, "create schema of tenant %q", t.ID)
		}
		if err := b.writeIdentity(ctx, tx, schema, t.ID, t.Incarnation); err != nil {
			return err
		}
		if err := b.step("register"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, b.sql.tenantInsert, t.ID, t.DisplayName, string(t.Status), false, utcMicro(t.CreatedAt), t.Incarnation); err != nil {
			if code, _ := pgError(err); code == codeUniqueViolation {
				return fmt.Errorf("%w: %w", docex.ErrTenantExists, b.wrap(err, "register tenant %q", t.ID))
			}
			return b.wrap(err, "register tenant %q", t.ID)
		}
		if err := b.appendSystemAudit(ctx, tx, audit); err != nil {
			return err
		}
		return b.step("commit")
	})
}

// writeIdentity records, inside a new store's schema, the tenant and the
// incarnation it belongs to ("" for the local store); inTenant checks them
// on every transaction.
func (b *Backend) writeIdentity(ctx context.Context, tx pgx.Tx, schema, id, incarnation string) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+quote(schema)+`.meta (key, value) VALUES ('tenant_id', $1), ('incarnation', $2)`, id, incarnation)
	return b.wrap(err, "record the identity of %s", schema)
}

// registry is the outcome of registryForOpen.
type registry struct {
	multi  bool
	found  bool
	tenant docex.Tenant
}

// registryForOpen reads the multi-tenancy setting and the registry row of
// id in one query. It returns docex.ErrNotInitialized before Bootstrap.
func (b *Backend) registryForOpen(ctx context.Context, q querier, id string) (registry, error) {
	var (
		mt                       string
		tid, name, status, incar *string
		isSys                    *bool
		created                  *time.Time
	)
	err := q.QueryRow(ctx, b.sql.tenantForOpen, id).Scan(&mt, &tid, &name, &status, &isSys, &created, &incar)
	if errors.Is(err, pgx.ErrNoRows) {
		return registry{}, docex.Errorf(docex.ErrNotInitialized, "postgres: schema %s has no meta (run docex init)", b.cfg.BootstrapSchema)
	}
	if err != nil {
		return registry{}, b.sysErr(err, "look up tenant %q", id)
	}
	r := registry{multi: mt == "true", found: tid != nil}
	if r.found {
		r.tenant = docex.Tenant{ID: *tid, DisplayName: *name, Status: docex.TenantStatus(*status), IsSystem: *isSys, CreatedAt: created.UTC(), Incarnation: *incar}
	}
	return r, nil
}

func scanTenant(row pgx.Row) (docex.Tenant, error) {
	var t docex.Tenant
	var status string
	err := row.Scan(&t.ID, &t.DisplayName, &status, &t.IsSystem, &t.CreatedAt, &t.Incarnation)
	t.Status = docex.TenantStatus(status)
	t.CreatedAt = t.CreatedAt.UTC()
	return t, err
}

// notFoundID returns the error of a lookup by an id that cannot be a
// tenant id: it matches docex.ErrTenantNotFound and docex.ErrInvalidID.
func notFoundID(id string, err error) error {
	return fmt.Errorf("%w: %q: %w", docex.ErrTenantNotFound, id, err)
}

// Tenant returns the registered tenant, docex.ErrTenantNotFound when it is
// not registered (also for an id that is not a valid tenant id), or
// docex.ErrNotInitialized before Bootstrap.
func (b *Backend) Tenant(ctx context.Context, id string) (docex.Tenant, error) {
	if err := tenancy.ValidateSyntax(id); err != nil {
		return docex.Tenant{}, notFoundID(id, err)
	}
	t, err := scanTenant(b.pool.QueryRow(ctx, b.sql.tenantGet, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return docex.Tenant{}, docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
	}
	if err != nil {
		return docex.Tenant{}, b.sysErr(err, "read tenant %q", id)
	}
	return t, nil
}

// Tenants lists the registered tenants (the bootstrap tenant included),
// ordered by id. It returns docex.ErrNotInitialized before Bootstrap.
func (b *Backend) Tenants(ctx context.Context) ([]docex.Tenant, error) {
	rows, err := b.pool.Query(ctx, b.sql.tenantList)
	if err != nil {
		return nil, b.sysErr(err, "list tenants")
	}
	defer rows.Close()
	out := []docex.Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, b.wrap(err, "list tenants")
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, b.sysErr(err, "list tenants")
	}
	return out, nil
}

// SetTenantStatus changes a tenant's status. It returns
// docex.ErrTenantNotFound for an unregistered id, docex.ErrBootstrapTenant
// for the bootstrap tenant, docex.ErrInvalid for an unknown status. It
// waits for the tenant's write transactions in flight (they hold its
// registry row FOR SHARE) at most Config.LockTimeout, then fails with an
// error matching ErrBusy that names them (lockWaitError), changing
// nothing.
func (b *Backend) SetTenantStatus(ctx context.Context, id string, status docex.TenantStatus, audit docex.AuditEntry) error {
	if status != docex.TenantActive && status != docex.TenantSuspended {
		return docex.Errorf(docex.ErrInvalid, "postgres: tenant status %q", status)
	}
	t, err := b.Tenant(ctx, id)
	if err != nil {
		return err
	}
	if t.IsSystem {
		return docex.Errorf(docex.ErrBootstrapTenant, "postgres: the status of bootstrap tenant %q is fixed", id)
	}
	op := "suspend"
	if status == docex.TenantActive {
		op = "resume"
	}
	return b.tenantAdmin(ctx, op, id, func(tx pgx.Tx) error {
		var isSys bool
		err := tx.QueryRow(ctx, b.sql.tenantStatus, id, string(status)).Scan(&isSys)
		if errors.Is(err, pgx.ErrNoRows) {
			return docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
		}
		if err != nil {
			return b.sysErr(err, "set status of tenant %q", id)
		}
		return b.appendSystemAudit(ctx, tx, audit)
	})
}

// DeleteTenant removes the registry row and drops the tenant's schema in
// one transaction. It returns docex.ErrTenantNotFound for an unregistered
// id and docex.ErrBootstrapTenant for the bootstrap tenant. A tenant whose
// schema was dropped behind docex's back can still be deleted. Each of
// its lock waits (for the tenant's transactions in flight, reads too) is
// bounded by Config.LockTimeout, as SetTenantStatus's.
func (b *Backend) DeleteTenant(ctx context.Context, id string, audit docex.AuditEntry) error {
	schema, err := b.tenantSchema(id)
	if err != nil {
		return notFoundID(id, err)
	}
	return b.tenantAdmin(ctx, "delete", id, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("tenant", id)); err != nil {
			return b.wrap(err, "lock tenant %q", id)
		}
		tag, err := tx.Exec(ctx, b.sql.tenantDelete, id)
		if err != nil {
			return b.sysErr(err, "unregister tenant %q", id)
		}
		if tag.RowsAffected() == 0 {
			t, err := scanTenant(tx.QueryRow(ctx, b.sql.tenantGet, id))
			if errors.Is(err, pgx.ErrNoRows) {
				return docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
			}
			if err == nil && t.IsSystem {
				return docex.Errorf(docex.ErrBootstrapTenant, "postgres: bootstrap tenant %q cannot be deleted", id)
			}
			return b.wrap(err, "unregister tenant %q", id)
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+quote(schema)+` CASCADE`); err != nil {
			return b.wrap(err, "drop schema of tenant %q", id)
		}
		// Its deliveries no worker holds go too: a worker started after
		// this serves no queue of the tenant, so they would wait for ever.
		// A running one stays: its worker finds the tenant gone and drops it.
		if _, err := tx.Exec(ctx, `DELETE FROM `+quote(b.queue.schema)+`.river_job WHERE queue = $1 AND state IN ('available', 'pending', 'retryable', 'scheduled')`, tenantQueue(id)); err != nil {
			return b.wrap(err, "drop the queued jobs of tenant %q", id)
		}
		return b.appendSystemAudit(ctx, tx, audit)
	})
}

// OpenTenant returns the store of a registered tenant after checking that
// its schema exists and has this binary's schema version. It returns
// docex.ErrTenantNotFound for an unregistered or invalid id,
// docex.ErrBootstrapTenant for the bootstrap tenant, docex.ErrMultiTenancyOff
// for a non-empty id on a single-tenant system, docex.ErrSchemaVersion on a
// version mismatch, docex.ErrCorrupt when the schema is missing, and
// docex.ErrNotInitialized before Bootstrap. It never creates anything.
func (b *Backend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	reg, err := b.registryForOpen(ctx, b.pool, id)
	if err != nil {
		return nil, err
	}
	st := &store{b: b}
	switch {
	case !reg.multi:
		if id != "" {
			return nil, docex.Errorf(docex.ErrMultiTenancyOff, "postgres: tenant %q given", id)
		}
		st.schema = b.local
	case id == "":
		return nil, docex.Errorf(docex.ErrTenantNotFound, "postgres: empty tenant id")
	default:
		schema, err := b.tenantSchema(id)
		if err != nil {
			return nil, notFoundID(id, err)
		}
		if !reg.found {
			return nil, docex.Errorf(docex.ErrTenantNotFound, "tenant %q not found", id)
		}
		if reg.tenant.IsSystem || reg.tenant.ID != id {
			return nil, docex.Errorf(docex.ErrBootstrapTenant, "postgres: tenant %q has no store", id)
		}
		st.schema, st.tenant = schema, reg.tenant
	}
	// The first transaction checks the schema's identity and version.
	if err := b.inTenant(ctx, st, pgx.ReadOnly, func(pgx.Tx) error { return nil }); err != nil {
		return nil, err
	}
	return st, nil
}

// AppendSystemAudit records e in the system audit log. It returns
// docex.ErrNotInitialized before Bootstrap.
func (b *Backend) AppendSystemAudit(ctx context.Context, e docex.AuditEntry) error {
	return b.appendSystemAudit(ctx, b.pool, e)
}

// appendSystemAudit records e in the system audit log through q (the pool,
// or the transaction of the registry change e records).
func (b *Backend) appendSystemAudit(ctx context.Context, q querier, e docex.AuditEntry) error {
	args, err := auditArgs(e)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, b.sql.auditInsert, args...)
	return b.sysErr(err, "append system audit")
}

// SystemAudit lists the system audit log, newest first. It returns
// docex.ErrInvalid for a bad page, docex.ErrNotInitialized before
// Bootstrap.
func (b *Backend) SystemAudit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := b.pool.Query(ctx, b.sql.auditList, page.Limit, page.Offset)
	if err != nil {
		return nil, b.sysErr(err, "list system audit")
	}
	out, err := scanAudit(rows)
	return out, b.sysErr(err, "list system audit")
}
