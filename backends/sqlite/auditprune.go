package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// Audit retention: the oldest entries of an audit log, a prefix in
// sequence (rowid) order, are deleted by a prune (engine.PruneAudit). The
// newest entry is never deleted, so the largest rowid stays and SQLite
// never gives a sequence number twice (a rowid table without AUTOINCREMENT
// takes the largest rowid plus one).

// auditPrefix returns the prefix of the audit table (a constant name) that
// a prune with the cutoff before deletes (driver.AuditPrefix). The first
// entry not before the cutoff is found by reading the table in rowid
// order: the reads are the entries to prune, and one more.
func auditPrefix(ctx context.Context, q querier, table string, before time.Time) (driver.AuditPrefix, error) {
	var out driver.AuditPrefix
	cut := micros(before)
	err := q.QueryRowContext(ctx, `SELECT coalesce(min(
			coalesce((SELECT seq FROM `+table+` WHERE time >= ? ORDER BY seq LIMIT 1), (SELECT max(seq) FROM `+table+`)),
			(SELECT max(seq) FROM `+table+`)), 0)`, cut).Scan(&out.Upto)
	if err != nil {
		return out, fmt.Errorf("find the audit entries to prune: %w", err)
	}
	if out.Upto == 0 {
		return out, nil
	}
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE seq < ? AND time < ?`, out.Upto, cut).Scan(&out.Entries); err != nil {
		return out, fmt.Errorf("count the audit entries to prune: %w", err)
	}
	if out.Entries == 0 {
		return out, nil
	}
	if err := q.QueryRowContext(ctx, `SELECT seq, id FROM `+table+` WHERE seq < ? AND time < ? ORDER BY seq DESC LIMIT 1`, out.Upto, cut).Scan(&out.LastSeq, &out.LastID); err != nil {
		return out, fmt.Errorf("find the newest audit entry to prune: %w", err)
	}
	return out, nil
}

// pruneAudit deletes the entries of the audit table (a constant name) that
// p selects, lowest rowid first.
func pruneAudit(ctx context.Context, q querier, table string, p driver.AuditPrune) (driver.AuditPruned, error) {
	var out driver.AuditPruned
	if p.Limit <= 0 || p.Upto <= p.After+1 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `DELETE FROM `+table+` WHERE seq IN (
		SELECT seq FROM `+table+` WHERE seq > ? AND seq < ? AND time < ? ORDER BY seq LIMIT ?) RETURNING seq, id`,
		p.After, p.Upto, micros(p.Before), p.Limit)
	if err != nil {
		return out, fmt.Errorf("prune audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var id string
		if err := rows.Scan(&seq, &id); err != nil {
			return driver.AuditPruned{}, fmt.Errorf("prune audit: %w", err)
		}
		out.Entries++
		if seq > out.LastSeq {
			out.LastSeq, out.LastID = seq, id
		}
	}
	if err := rows.Err(); err != nil {
		return driver.AuditPruned{}, fmt.Errorf("prune audit: %w", err)
	}
	return out, nil
}

// PrunableAudit returns the entries of the tenant's audit log that a prune
// with the cutoff before deletes.
func (r reader) PrunableAudit(ctx context.Context, before time.Time) (driver.AuditPrefix, error) {
	return auditPrefix(ctx, r.q, r.audit, before)
}

// PruneAudit deletes the entries of the tenant's audit log that p selects.
// The tenant's writes are serialized: the entries it reads are the ones it
// deletes.
func (t *tx) PruneAudit(ctx context.Context, p driver.AuditPrune) (driver.AuditPruned, error) {
	return pruneAudit(ctx, t.t, t.audit, p)
}

// SystemAuditPrefix implements driver.Backend.
func (b *Backend) SystemAuditPrefix(ctx context.Context, before time.Time) (driver.AuditPrefix, error) {
	d, err := b.system(ctx, false)
	if err != nil {
		return driver.AuditPrefix{}, err
	}
	return auditPrefix(ctx, d.r, "docex_system_audit", before)
}

// PruneSystemAudit implements driver.Backend.
func (b *Backend) PruneSystemAudit(ctx context.Context, p driver.AuditPrune, final func(driver.AuditPruned) (docex.AuditEntry, bool)) (driver.AuditPruned, error) {
	d, err := b.system(ctx, false)
	if err != nil {
		return driver.AuditPruned{}, err
	}
	var out driver.AuditPruned
	err = withTx(ctx, d.w, func(tx *sql.Tx) error {
		var err error
		if out, err = pruneAudit(ctx, tx, "docex_system_audit", p); err != nil {
			return err
		}
		if e, ok := final(out); ok {
			return insertAudit(ctx, tx, "docex_system_audit", e)
		}
		return nil
	})
	if err != nil {
		return driver.AuditPruned{}, err
	}
	return out, nil
}
