package sqlite

// The optional batch interfaces of the driver (driver.ChecksumTx,
// driver.JobsTx, driver.BatchReader).

import (
	"context"
	"database/sql"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// LockContents implements driver.ChecksumTx: a no-op, as LockContent (the
// tenant's write transactions are serialised).
func (t *tx) LockContents(context.Context, []string) error { return nil }

// DocumentsByChecksums implements driver.ChecksumTx.
func (r reader) DocumentsByChecksums(ctx context.Context, basketID string, checksums []string) (map[string]docex.Document, error) {
	docs, err := r.documentsIn(ctx, `d.basket_id = ? AND d.checksum`, []any{basketID}, checksums)
	out := make(map[string]docex.Document, len(docs))
	for _, d := range docs {
		out[d.Checksum] = d
	}
	return out, err
}

// documentsIn returns, with their metadata, the documents where "cond IN
// (keys)" holds; cond's own parameters are pre. One query per maxInParams
// keys, and one per maxInParams documents for the metadata.
func (r reader) documentsIn(ctx context.Context, cond string, pre []any, keys []string) (docs []docex.Document, err error) {
	err = r.snap(ctx, func(r reader) error { docs, err = r.documentsInSnap(ctx, cond, pre, keys); return err })
	return docs, err
}

func (r reader) documentsInSnap(ctx context.Context, cond string, pre []any, keys []string) ([]docex.Document, error) {
	var docs []docex.Document
	err := inChunks(keys, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT `+docCols+` FROM documents d WHERE `+cond+` IN (`+list+`)`, // cond is a constant
			append(append([]any{}, pre...), args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDoc(rows)
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	for start := 0; start < len(docs); start += maxInParams {
		if err := r.loadMeta(ctx, docs[start:min(len(docs), start+maxInParams)]); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// ContentRefsOf implements driver.ChecksumTx.
func (r reader) ContentRefsOf(ctx context.Context, checksums []string) (map[string]int64, error) {
	out := make(map[string]int64, len(checksums))
	err := inChunks(checksums, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT checksum, count(*) FROM documents WHERE checksum IN (`+list+`) GROUP BY checksum`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sum string
			var n int64
			if err := rows.Scan(&sum, &n); err != nil {
				return err
			}
			out[sum] = n
		}
		return rows.Err()
	})
	return out, err
}

var _ driver.ChecksumTx = (*tx)(nil)

// UpdateJobs implements driver.JobsTx: UpdateJob on each job (statements
// cost no round trip here).
func (t *tx) UpdateJobs(ctx context.Context, jobs []driver.JobRecord) error {
	for _, j := range jobs {
		if err := t.UpdateJob(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

var _ driver.JobsTx = (*tx)(nil)

// DocumentsByID implements driver.BatchReader.
func (r reader) DocumentsByID(ctx context.Context, ids []string) (map[string]docex.Document, error) {
	docs, err := r.documentsIn(ctx, `d.id`, nil, ids)
	out := make(map[string]docex.Document, len(docs))
	for _, d := range docs {
		out[d.ID] = d
	}
	return out, err
}

// DerivedAmong implements driver.BatchReader: the documents of ids that
// an edge created (lineageCreated), one statement per chunk of ids.
func (r reader) DerivedAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	return idsAmong(ctx, r.q, `SELECT DISTINCT l.derived_id FROM lineage l JOIN documents d ON d.id = l.derived_id
		WHERE `+lineageCreated+` AND l.derived_id IN (`, ids)
}

// idsAmong returns the ids among ids that query returns: query is a
// SELECT of one id column ending in "IN (", run for chunks of ids.
func idsAmong(ctx context.Context, q querier, query string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := rowsAmong(ctx, q, query, ids, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		out[id] = true
		return nil
	})
	return out, err
}

// rowsAmong runs query, which ends with "IN (", for ids, a chunk at a
// time (inChunks), and calls each for every row.
func rowsAmong(ctx context.Context, q querier, query string, ids []string, each func(rows *sql.Rows) error) error {
	return inChunks(ids, func(list string, args []any) error {
		rows, err := q.QueryContext(ctx, query+list+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

var (
	_ driver.BatchReader = (*tx)(nil)
	_ driver.BatchReader = (*store)(nil)

	_ driver.ContentRefsReader = (*store)(nil)
)
