package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// Bootstrap implements driver.Backend.
func (b *Backend) Bootstrap(ctx context.Context, info driver.BootstrapInfo) (bool, error) {
	d, err := b.system(ctx, true)
	if err != nil {
		return false, err
	}
	created := false
	err = withTx(ctx, d.w, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, systemSchema+pluginSchema); err != nil {
			return fmt.Errorf("create system schema: %w", err)
		}
		meta, err := readMeta(ctx, tx, "docex_meta")
		if err != nil {
			return err
		}
		if len(meta) > 0 {
			if err := compareMeta(meta, info); err != nil {
				return err
			}
			if meta["system_id"] != "" || info.SystemID == "" {
				return nil
			}
			// A system bootstrapped before system ids gets one.
			_, err := tx.ExecContext(ctx, `INSERT INTO docex_meta(key, value) VALUES ('system_id', ?)`, info.SystemID)
			return err
		}
		created = true
		mt := "false"
		if info.MultiTenancy {
			mt = "true"
		}
		for k, v := range map[string]string{
			"schema_version":      strconv.Itoa(driver.SchemaVersion),
			"bootstrap_tenant_id": info.BootstrapTenantID,
			"multi_tenancy":       mt,
			"created_at":          info.Now.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
			"system_id":           info.SystemID,
			metaInitPending:       pending(info.InitPending),
		} {
			if v == "" {
				continue // no system id given
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO docex_meta(key, value) VALUES (?, ?)`, k, v); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO docex_tenants(id, display_name, status, is_system, created_at, incarnation) VALUES (?, ?, 'active', 1, ?, ?)`,
			info.BootstrapTenantID, driver.BootstrapTenantDisplayName, micros(info.Now), "00000000-0000-0000-0000-000000000000"); err != nil {
			return fmt.Errorf("register bootstrap tenant: %w", err)
		}
		if !info.MultiTenancy {
			// Local mode: the one store's tables live in this file.
			if _, err := tx.ExecContext(ctx, tenantSchema+jobSchema); err != nil {
				return fmt.Errorf("create local schema: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_meta(key, value) VALUES ('schema_version', ?), ('tenant_id', ''), ('incarnation', '')`, strconv.Itoa(driver.SchemaVersion)); err != nil {
				return err
			}
		}
		return nil
	})
	return created, err
}

// Check implements driver.Backend.
func (b *Backend) Check(ctx context.Context, info driver.BootstrapInfo) error {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return err
	}
	return compareMeta(meta, info)
}

// SystemID implements driver.Backend.
func (b *Backend) SystemID(ctx context.Context) (string, error) {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return "", err
	}
	return meta["system_id"], nil
}

// metaInitPending is the docex_meta key of a system whose initialisation
// is not finished (driver.InitTracker).
const metaInitPending = "init_pending"

// pending returns the value of metaInitPending: "true", or "" for none.
func pending(p bool) string {
	if p {
		return "true"
	}
	return ""
}

// InitPending implements driver.InitTracker.
func (b *Backend) InitPending(ctx context.Context) (bool, error) {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return false, err
	}
	return meta[metaInitPending] != "", nil
}

// FinishInit implements driver.InitTracker.
func (b *Backend) FinishInit(ctx context.Context, e docex.AuditEntry) error {
	if _, err := b.systemMeta(ctx); err != nil {
		return err
	}
	d, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	return withTx(ctx, d.w, func(tx *sql.Tx) error {
		if err := insertAudit(ctx, tx, "docex_system_audit", e); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM docex_meta WHERE key = ?`, metaInitPending)
		return err
	})
}

// metaContentDir is the docex_meta key of the content directory
// (driver.ContentRecorder).
const metaContentDir = "content_dir"

// ContentDir implements driver.ContentRecorder.
func (b *Backend) ContentDir(ctx context.Context) (string, error) {
	meta, err := b.systemMeta(ctx)
	if err != nil {
		return "", err
	}
	return meta[metaContentDir], nil
}

// RecordContentDir implements driver.ContentRecorder.
func (b *Backend) RecordContentDir(ctx context.Context, dir string) error {
	if _, err := b.systemMeta(ctx); err != nil {
		return err
	}
	d, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	return withTx(ctx, d.w, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO docex_meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, metaContentDir, dir)
		return err
	})
}

// systemMeta reads the system meta table; docex.ErrNotInitialized when
// the system is not bootstrapped.
func (b *Backend) systemMeta(ctx context.Context) (map[string]string, error) {
	d, err := b.system(ctx, false)
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	err = withReadTx(ctx, d.r, func(tx *sql.Tx) error {
		var err error
		meta, err = readMeta(ctx, tx, "docex_meta")
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(meta) == 0 {
		return nil, docex.Errorf(docex.ErrNotInitialized, "the system database at %s is not initialised (run docex init)", b.SystemPath())
	}
	return meta, nil
}

func compareMeta(meta map[string]string, info driver.BootstrapInfo) error {
	if v := meta["schema_version"]; v != strconv.Itoa(driver.SchemaVersion) {
		return docex.Errorf(docex.ErrSchemaVersion, "system schema version is %s, this binary needs %d (no migrations at run time)", v, driver.SchemaVersion)
	}
	return driver.CompareSettings(meta, info)
}

// readMeta reads a key/value table; a missing table reads as empty.
func readMeta(ctx context.Context, q querier, table string) (map[string]string, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type='table' AND name=?`, table).Scan(&n); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if n == 0 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM `+table) // table is a constant
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// AppendSystemAudit implements driver.Backend.
func (b *Backend) AppendSystemAudit(ctx context.Context, e docex.AuditEntry) error {
	d, err := b.system(ctx, false)
	if err != nil {
		return err
	}
	return withTx(ctx, d.w, func(tx *sql.Tx) error { return insertAudit(ctx, tx, "docex_system_audit", e) })
}

// SystemAudit implements driver.Backend.
func (b *Backend) SystemAudit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error) {
	d, err := b.system(ctx, false)
	if err != nil {
		return nil, err
	}
	return listAudit(ctx, d.r, "docex_system_audit", page)
}

// auditRow returns e's column values in the order of auditColumnList, or
// the error of encoding its roles or detail.
func auditRow(e docex.AuditEntry) ([]any, error) {
	roles := []byte("[]")
	if e.Roles != nil {
		var err error
		if roles, err = json.Marshal(e.Roles); err != nil {
			return nil, err
		}
	}
	detail, err := driver.EncodeDetail(e.Detail)
	if err != nil {
		return nil, err
	}
	return []any{e.ID, micros(e.Time), e.TenantID, e.UserID, string(roles), e.Operation, e.Target, e.Outcome, e.Error, detail}, nil
}

// auditColumnList names the columns auditRow fills.
const auditColumnList = "(id, time, tenant_id, user_id, roles, operation, target, outcome, error, detail)"

func insertAudit(ctx context.Context, q querier, table string, e docex.AuditEntry) error {
	row, err := auditRow(e)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO `+table+auditColumnList+` VALUES (?,?,?,?,?,?,?,?,?,?)`, row...)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// insertAudits appends entries with multi-row INSERTs.
func insertAudits(ctx context.Context, t *tx, table string, entries []docex.AuditEntry) error {
	rows := make([][]any, len(entries))
	for i, e := range entries {
		row, err := auditRow(e)
		if err != nil {
			return err
		}
		rows[i] = row
	}
	err := t.insertRows(ctx, table+auditColumnList, "", 10, len(rows), func(i int, dst []any) []any {
		return append(dst, rows[i]...)
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

func listAudit(ctx context.Context, q querier, table string, page docex.Page) ([]docex.AuditEntry, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT id, time, tenant_id, user_id, roles, operation, target, outcome, error, detail FROM `+table+` ORDER BY seq DESC LIMIT ? OFFSET ?`, page.Limit, page.Offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []docex.AuditEntry{}
	for rows.Next() {
		var e docex.AuditEntry
		var t int64
		var roles, detail string
		if err := rows.Scan(&e.ID, &t, &e.TenantID, &e.UserID, &roles, &e.Operation, &e.Target, &e.Outcome, &e.Error, &detail); err != nil {
			return nil, err
		}
		if e.Detail, err = driver.DecodeDetail(detail); err != nil {
			return nil, err
		}
		e.Time = fromMicros(t)
		if err := json.Unmarshal([]byte(roles), &e.Roles); err != nil {
			return nil, docex.Errorf(docex.ErrCorrupt, "audit roles: %v", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// withTx runs fn in a write transaction (BEGIN IMMEDIATE on a write pool).
func withTx(ctx context.Context, w *sql.DB, fn func(tx *sql.Tx) error) (err error) {
	defer func() { err = withCancel(ctx, err) }()
	tx, err := w.BeginTx(ctx, nil)
	if isBusy(err) {
		return busyError(fmt.Errorf("begin: %w", err))
	}
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if isBusy(err) {
			err = busyError(err)
		}
		return errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		if isBusy(err) {
			return busyError(fmt.Errorf("commit: %w", err))
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// withCancel returns err, a transaction's error, holding ctx's error when
// ctx ended and err does not hold it: database/sql rolls back a
// transaction whose context ends, and a statement run after that fails
// with "sql: statement is closed" or sql.ErrTxDone, which says nothing of
// the interruption (errors.Is(err, context.Canceled) is false).
func withCancel(ctx context.Context, err error) error {
	cause := ctx.Err()
	if err == nil || cause == nil || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// withReadTx runs fn in a read transaction, a consistent snapshot.
func withReadTx(ctx context.Context, r *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	return withCancel(ctx, fn(tx))
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}
