package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// The statements of driver.ChecksumTx. The advisory locks are taken in
// the order of the array, which LockContents sorts. The lookup
// (sqlChecksumLookup) runs unprepared, as the other lookups by an array of
// keys (see sqlMetaOf), and reads, for each distinct checksum, the
// tenant's references to it, the basket's document with it (if any) and
// that document's metadata, in one statement: each through its own index
// (a lookup per key in a nested loop, the LATERAL subqueries being
// neither flattened nor aggregated over the table), whatever the size of
// the tables and whether or not they were ever analyzed. Written as
// "checksum = ANY($2)", a tenant whose tables were never analyzed (no
// statistics: each of the array's keys is taken to match 0.5% of the rows)
// read every document of the basket, or of the tenant, at each call.
const (
	sqlAdvisoryLocks  = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`
	sqlChecksumLookup = `SELECT c.sum, (SELECT count(*) FROM documents r WHERE r.checksum = c.sum),
		d.id, d.basket_id, d.name, d.content_type, d.size, d.checksum, d.status, d.created_at, d.updated_at, m.keys, m.types, m.vals
	FROM (SELECT DISTINCT unnest($2::text[])) AS c(sum)
	LEFT JOIN LATERAL (SELECT ` + docCols + ` FROM documents WHERE basket_id = $1 AND checksum = c.sum LIMIT 1) AS d ON true
	LEFT JOIN LATERAL (SELECT array_agg(key) AS keys, array_agg(vtype) AS types, array_agg(value) AS vals
		FROM metadata WHERE document_id = d.id) AS m ON true`
)

// LockContents implements driver.ChecksumTx: the advisory locks of
// LockContent, taken in ascending key order in one statement, held (see
// pipe) as LockContent's.
func (t *tx) LockContents(ctx context.Context, checksums []string) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(checksums) == 0 {
		return nil
	}
	keys := make([]int64, 0, len(checksums))
	for _, c := range checksums {
		keys = append(keys, lockKey("content", t.schema, c))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	return t.lockContentKeys(keys)
}

// maxContentLocks bounds the per-content advisory locks one transaction
// takes. PostgreSQL keeps every lock in one shared table, of
// max_locks_per_transaction x max_connections entries (6,400 by default):
// a doc add of 20,000 files locking each content failed with "out of
// shared memory".
const maxContentLocks = 512

// lockContentKeys takes the content locks of keys (sorted, distinct). Every
// transaction first takes the tenant's content lock: shared, and then the
// per-content locks, while it holds at most maxContentLocks of those; or
// exclusive, instead of any per-content lock, when it would hold more (it
// then excludes every other content lock of the tenant until it ends). The
// tenant's lock is always taken first, and held to the end, so the two
// kinds cannot deadlock. A transaction that holds the shared lock keeps
// taking per-content locks (upgrading could deadlock with another
// transaction doing the same), so the engine locks a transaction's
// contents in one call where it can (driver.ChecksumTx).
func (t *tx) lockContentKeys(keys []int64) error {
	switch {
	case t.contentLock == contentLockExclusive:
		return nil
	case t.contentLock == contentLockNone && len(keys) > maxContentLocks:
		t.contentLock = contentLockExclusive
		return t.p.later(fmt.Sprintf("lock the tenant's contents (%d contents)", len(keys)), sqlAdvisoryLock, lockKey("contents", t.schema))
	case t.contentLock == contentLockNone:
		t.contentLock = contentLockShared
		if err := t.p.later("lock the tenant's contents (shared)", sqlAdvisoryLockShared, lockKey("contents", t.schema)); err != nil {
			return err
		}
	}
	if len(keys) == 1 {
		return t.p.later("lock content", sqlAdvisoryLock, keys[0])
	}
	return t.p.later(fmt.Sprintf("lock %d contents", len(keys)), sqlAdvisoryLocks, keys)
}

// The content locks a transaction holds (lockContentKeys).
const (
	contentLockNone = iota
	contentLockShared
	contentLockExclusive
)

// DocumentsByChecksums implements driver.ChecksumTx in one statement
// (sqlChecksumLookup), which also counts the tenant's references to each
// checksum, for a ContentRefsOf call right after it.
func (t *tx) DocumentsByChecksums(ctx context.Context, basketID string, checksums []string) (map[string]docex.Document, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := map[string]docex.Document{}
	if len(checksums) == 0 {
		return out, nil
	}
	refs, err := checksumLookup(ctx, t.b, t.p, basketID, checksums, out)
	if err != nil {
		return nil, err
	}
	t.refsOf = refs
	return out, nil
}

// checksumLookup runs sqlChecksumLookup: the basket's documents go to
// docs, and it returns the reference counts of every checksum (0
// included).
func checksumLookup(ctx context.Context, b *Backend, q querier, basketID string, checksums []string, docs map[string]docex.Document) (map[string]int64, error) {
	rows, err := q.Query(ctx, sqlChecksumLookup, pgx.QueryExecModeExec, basketID, checksums)
	if err != nil {
		return nil, b.wrap(err, "read documents by checksum")
	}
	defer rows.Close()
	refs := make(map[string]int64, len(checksums))
	for rows.Next() {
		var (
			sum                                    string
			n                                      int64
			id, basket, name, ct, checksum, status *string
			size                                   *int64
			created, updated                       *time.Time
			keys, vals                             []string
			types                                  []int16
		)
		if err := rows.Scan(&sum, &n, &id, &basket, &name, &ct, &size, &checksum, &status, &created, &updated, &keys, &types, &vals); err != nil {
			return nil, b.wrap(err, "read documents by checksum")
		}
		refs[sum] = n
		if id == nil {
			continue
		}
		meta, err := decodeMeta(keys, types, vals)
		if err != nil {
			return nil, err
		}
		docs[sum] = docex.Document{ID: *id, BasketID: *basket, Name: *name, ContentType: *ct, Size: *size, Checksum: *checksum, Status: *status,
			CreatedAt: created.UTC(), UpdatedAt: updated.UTC(), Metadata: meta}
	}
	return refs, b.wrap(rows.Err(), "read documents by checksum")
}

// ContentRefsOf implements driver.ChecksumTx in one query, or in none
// right after a DocumentsByChecksums call that counted every checksum.
func (t *tx) ContentRefsOf(ctx context.Context, checksums []string) (map[string]int64, error) {
	counted := t.refsOf
	if err := t.check(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, sum := range checksums {
		n, ok := counted[sum]
		if !ok {
			var err error
			if counted, err = checksumLookup(ctx, t.b, t.p, "", checksums, map[string]docex.Document{}); err != nil {
				return nil, err
			}
			return positive(counted), nil
		}
		if n > 0 {
			out[sum] = n
		}
	}
	return out, nil
}

var _ driver.ChecksumTx = (*tx)(nil)

// positive returns the counts of refs above 0.
func positive(refs map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(refs))
	for sum, n := range refs {
		if n > 0 {
			out[sum] = n
		}
	}
	return out
}
