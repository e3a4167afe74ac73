package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// The statements of driver.ChecksumTx: one round trip each, whatever the
// number of checksums. The advisory locks are taken in the order of the
// array, which LockContents sorts. The lookups run unprepared, as the
// other lookups by an array of keys (see sqlMetaOf).
const (
	sqlAdvisoryLocks        = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`
	sqlDocumentsByChecksums = `SELECT ` + docCols + ` FROM documents WHERE basket_id = $1 AND checksum = ANY($2)`
	sqlContentRefsOf        = `SELECT checksum, count(*) FROM documents WHERE checksum = ANY($1) GROUP BY checksum`
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
	return t.p.later(fmt.Sprintf("lock %d contents", len(keys)), sqlAdvisoryLocks, keys)
}

// DocumentsByChecksums implements driver.ChecksumTx: the documents in one
// query and their metadata in another.
func (t *tx) DocumentsByChecksums(ctx context.Context, basketID string, checksums []string) (map[string]docex.Document, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := map[string]docex.Document{}
	if len(checksums) == 0 {
		return out, nil
	}
	rows, err := t.p.Query(ctx, sqlDocumentsByChecksums, pgx.QueryExecModeExec, basketID, checksums)
	if err != nil {
		return nil, t.b.wrap(err, "read documents by checksum")
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (docex.Document, error) { return scanDoc(r) })
	if err != nil {
		return nil, t.b.wrap(err, "read documents by checksum")
	}
	if err := attachMeta(ctx, t.b, t.p, docs); err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.Checksum] = d
	}
	return out, nil
}

// ContentRefsOf implements driver.ChecksumTx in one query.
func (t *tx) ContentRefsOf(ctx context.Context, checksums []string) (map[string]int64, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	if len(checksums) == 0 {
		return out, nil
	}
	rows, err := t.p.Query(ctx, sqlContentRefsOf, pgx.QueryExecModeExec, checksums)
	if err != nil {
		return nil, t.b.wrap(err, "count content references")
	}
	var (
		sum string
		n   int64
	)
	_, err = pgx.ForEachRow(rows, []any{&sum, &n}, func() error { out[sum] = n; return nil })
	return out, t.b.wrap(err, "count content references")
}

var _ driver.ChecksumTx = (*tx)(nil)
