package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// The statements of driver.BatchReader: one query each, whatever the
// number of ids (and one for the documents' metadata), unprepared as the
// other lookups by an array of keys (see sqlMetaOf).
const (
	sqlDocumentsByID = `SELECT ` + docCols + ` FROM documents WHERE id = ANY($1)`
	// The documents of ids that an edge created (lineageCreated).
	sqlDerivedAmong = `SELECT DISTINCT l.derived_id FROM lineage l JOIN documents d ON d.id = l.derived_id
		WHERE l.derived_id = ANY($1) AND ` + lineageCreated
)

func documentsByID(ctx context.Context, b *Backend, q querier, ids []string) (map[string]docex.Document, error) {
	out := map[string]docex.Document{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, sqlDocumentsByID, pgx.QueryExecModeExec, ids)
	if err != nil {
		return nil, b.wrap(err, "read documents")
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (docex.Document, error) { return scanDoc(r) })
	if err != nil {
		return nil, b.wrap(err, "read documents")
	}
	if err := attachMeta(ctx, b, q, docs); err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.ID] = d
	}
	return out, nil
}

func derivedAmong(ctx context.Context, b *Backend, q querier, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, sqlDerivedAmong, pgx.QueryExecModeExec, ids)
	if err != nil {
		return nil, b.wrap(err, "read lineage")
	}
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error { out[id] = true; return nil })
	return out, b.wrap(err, "read lineage")
}

// DocumentsByID implements driver.BatchReader.
func (s *store) DocumentsByID(ctx context.Context, ids []string) (out map[string]docex.Document, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = documentsByID(ctx, s.b, q, ids); return err })
	return out, err
}

// DerivedAmong implements driver.BatchReader.
func (s *store) DerivedAmong(ctx context.Context, ids []string) (out map[string]bool, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = derivedAmong(ctx, s.b, q, ids); return err })
	return out, err
}

// DocumentsByID implements driver.BatchReader.
func (t *tx) DocumentsByID(ctx context.Context, ids []string) (map[string]docex.Document, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return documentsByID(ctx, t.b, t.p, ids)
}

// DerivedAmong implements driver.BatchReader.
func (t *tx) DerivedAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return derivedAmong(ctx, t.b, t.p, ids)
}

var (
	_ driver.BatchReader = (*tx)(nil)
	_ driver.BatchReader = (*store)(nil)
)
