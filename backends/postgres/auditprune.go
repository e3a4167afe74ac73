package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

// Audit retention: the oldest entries of an audit log, a prefix in
// sequence order, are deleted by a prune (engine.PruneAudit). The table
// is named by {t}: the tenant's audit (through the transaction's
// search_path) or the system schema's system_audit.

// sqlAuditPrefix returns the bound of the prefix a prune with the cutoff
// $1 deletes, how many entries it holds and the sequence number and id of
// the newest of them (driver.AuditPrefix): the oldest entry in sequence
// order that is not before the cutoff, or the newest entry when every one
// is, bounds it. LEAST ignores a NULL.
const sqlAuditPrefix = `WITH u AS (SELECT coalesce(least(
		(SELECT seq FROM {t} WHERE time >= $1 ORDER BY seq LIMIT 1),
		(SELECT max(seq) FROM {t})), 0) AS upto),
	l AS (SELECT seq, id FROM {t}, u WHERE seq < upto AND time < $1 ORDER BY seq DESC LIMIT 1)
	SELECT upto, (SELECT count(*) FROM {t} WHERE seq < upto AND time < $1),
		coalesce((SELECT seq FROM l), 0), coalesce((SELECT id FROM l), '') FROM u`

// sqlPruneAudit deletes up to $4 entries with a sequence number above $1
// and below $2 and a time before $3, lowest first, and returns how many,
// and the sequence number and id of the newest. Entries that a concurrent
// prune deleted first are not counted.
const sqlPruneAudit = `WITH d AS (DELETE FROM {t} WHERE seq IN (
		SELECT seq FROM {t} WHERE seq > $1 AND seq < $2 AND time < $3 ORDER BY seq LIMIT $4) RETURNING seq, id)
	SELECT count(*), coalesce(max(seq), 0), coalesce((SELECT id FROM d ORDER BY seq DESC LIMIT 1), '') FROM d`

// auditTable returns stmt for the audit table table (a quoted, qualified
// name or "audit").
func auditTable(stmt, table string) string { return strings.ReplaceAll(stmt, "{t}", table) }

// auditPrefix runs sqlAuditPrefix on table through q.
func auditPrefix(ctx context.Context, q querier, table string, before time.Time) (driver.AuditPrefix, error) {
	var out driver.AuditPrefix
	err := q.QueryRow(ctx, auditTable(sqlAuditPrefix, table), pgx.QueryExecModeExec, utcMicro(before)).Scan(&out.Upto, &out.Entries, &out.LastSeq, &out.LastID)
	return out, err
}

// pruneAudit runs sqlPruneAudit on table through q.
func pruneAudit(ctx context.Context, q querier, table string, p driver.AuditPrune) (driver.AuditPruned, error) {
	var out driver.AuditPruned
	if p.Limit <= 0 || p.Upto <= p.After+1 {
		return out, nil
	}
	err := q.QueryRow(ctx, auditTable(sqlPruneAudit, table), pgx.QueryExecModeExec, p.After, p.Upto, utcMicro(p.Before), p.Limit).Scan(&out.Entries, &out.LastSeq, &out.LastID)
	if err != nil {
		return driver.AuditPruned{}, err
	}
	return out, nil
}

// PrunableAudit returns the entries of the tenant's audit log that a prune
// with the cutoff before deletes, in a read transaction of its own.
func (s *store) PrunableAudit(ctx context.Context, before time.Time) (out driver.AuditPrefix, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		out, err = auditPrefix(ctx, q, "audit", before)
		return s.b.wrap(err, "find the audit entries to prune")
	})
	return out, err
}

// PrunableAudit returns the entries of the tenant's audit log that a prune
// with the cutoff before deletes.
func (t *tx) PrunableAudit(ctx context.Context, before time.Time) (driver.AuditPrefix, error) {
	if err := t.check(); err != nil {
		return driver.AuditPrefix{}, err
	}
	out, err := auditPrefix(ctx, t.p, "audit", before)
	return out, t.b.wrap(err, "find the audit entries to prune")
}

// PruneAudit deletes the entries of the tenant's audit log that p selects
// (sqlPruneAudit).
func (t *tx) PruneAudit(ctx context.Context, p driver.AuditPrune) (driver.AuditPruned, error) {
	if err := t.check(); err != nil {
		return driver.AuditPruned{}, err
	}
	out, err := pruneAudit(ctx, t.p, "audit", p)
	return out, t.b.wrap(err, "prune audit")
}

// SystemAuditPrefix returns the entries of the system audit log that a
// prune with the cutoff before deletes. It returns docex.ErrNotInitialized
// before Bootstrap.
func (b *Backend) SystemAuditPrefix(ctx context.Context, before time.Time) (driver.AuditPrefix, error) {
	out, err := auditPrefix(ctx, b.pool, b.sys+".system_audit", before)
	return out, b.sysErr(err, "find the system audit entries to prune")
}

// PruneSystemAudit deletes the entries of the system audit log that p
// selects and appends final's entry, in one transaction. It returns
// docex.ErrNotInitialized before Bootstrap.
func (b *Backend) PruneSystemAudit(ctx context.Context, p driver.AuditPrune, final func(driver.AuditPruned) (docex.AuditEntry, bool)) (driver.AuditPruned, error) {
	var out driver.AuditPruned
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		if out, err = pruneAudit(ctx, tx, b.sys+".system_audit", p); err != nil {
			return b.sysErr(err, "prune system audit")
		}
		if e, ok := final(out); ok {
			return b.appendSystemAudit(ctx, tx, e)
		}
		return nil
	})
	if err != nil {
		return driver.AuditPruned{}, err
	}
	return out, nil
}
