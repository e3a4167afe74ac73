package sqlite

import (
	"context"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// LockContents implements driver.ChecksumTx: a no-op, as LockContent (the
// tenant's write transactions are serialised).
func (t *tx) LockContents(context.Context, []string) error { return nil }

// DocumentsByChecksums implements driver.ChecksumTx: one query per
// maxInParams checksums, and one for the metadata.
func (r reader) DocumentsByChecksums(ctx context.Context, basketID string, checksums []string) (map[string]docex.Document, error) {
	var docs []docex.Document
	err := inChunks(checksums, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT `+docCols+` FROM documents d WHERE d.basket_id = ? AND d.checksum IN (`+list+`)`,
			append([]any{basketID}, args...)...)
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
	if err := r.loadMeta(ctx, docs); err != nil {
		return nil, err
	}
	out := make(map[string]docex.Document, len(docs))
	for _, d := range docs {
		out[d.Checksum] = d
	}
	return out, nil
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
