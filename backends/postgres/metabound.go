package postgres

import (
	"context"
	"errors"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

var (
	_ driver.MetaBoundReader         = (*store)(nil)
	_ driver.MetaBoundReader         = (*tx)(nil)
	_ driver.DocumentMetaBoundReader = (*store)(nil)
	_ driver.DocumentMetaKeysReader  = (*store)(nil)
)

// DocumentMetaBound implements driver.DocumentMetaBoundReader: Document's
// document, its metadata bounded to metaBytes (attachMetaBound), in one
// read transaction.
func (s *store) DocumentMetaBound(ctx context.Context, id string, metaBytes int) (driver.BoundDocument, error) {
	return s.documentMetaBound(ctx, id, nil, metaBytes)
}

// DocumentMetaKeys implements driver.DocumentMetaKeysReader: as
// DocumentMetaBound, of the values of keys only (the others are not read,
// nor their lengths).
func (s *store) DocumentMetaKeys(ctx context.Context, id string, keys []string, metaBytes int) (driver.BoundDocument, error) {
	if keys == nil {
		keys = []string{}
	}
	return s.documentMetaBound(ctx, id, keys, metaBytes)
}

// documentMetaBound is DocumentMetaBound of the values of keys only, or
// of every value when keys is nil.
func (s *store) documentMetaBound(ctx context.Context, id string, keys []string, metaBytes int) (out driver.BoundDocument, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		d, err := scanDoc(q.QueryRow(ctx, sqlDocumentByID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return docex.Errorf(docex.ErrNotFound, "%s not found", docWhat(id))
		}
		if err != nil {
			return s.b.wrap(err, "read %s", docWhat(id))
		}
		bd, err := attachMetaBound(ctx, s.b, q, []docex.Document{d}, keys, metaBytes)
		if err == nil {
			out = bd[0]
		}
		return err
	})
	return out, err
}

const (
	// sqlMetaSizesOf is sqlMetaOf with each value's length instead of
	// the value: octet_length reads a stored (TOASTed) value's length
	// without reading the value.
	sqlMetaSizesOf = `SELECT document_id, key, vtype, octet_length(value) FROM metadata WHERE document_id = ANY($1)`
	// sqlMetaSizesOfKeys is sqlMetaSizesOf of some keys only.
	sqlMetaSizesOfKeys = sqlMetaSizesOf + ` AND key = ANY($2)`
	// sqlMetaPairs reads the values of (document, key) pairs, through the
	// metadata primary key.
	sqlMetaPairs = `SELECT m.document_id, m.key, m.vtype, m.value FROM unnest($1::text[], $2::text[]) AS p(d, k)
		JOIN metadata m ON m.document_id = p.d AND m.key = p.k`
)

// DocumentsMetaBound implements driver.MetaBoundReader.
func (s *store) DocumentsMetaBound(ctx context.Context, basketID string, page docex.Page, metaBytes int) (out []driver.BoundDocument, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		out, err = listDocumentsMetaBound(ctx, s.b, q, basketID, page, metaBytes)
		return err
	})
	return out, err
}

// FindDocumentsMetaBound implements driver.MetaBoundReader.
func (s *store) FindDocumentsMetaBound(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page, metaBytes int) (out []driver.BoundDocument, total int64, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		out, total, err = findDocumentsMetaBound(ctx, s.b, q, basketID, filters, page, metaBytes)
		return err
	})
	return out, total, err
}

// DocumentsMetaBound implements driver.MetaBoundReader.
func (t *tx) DocumentsMetaBound(ctx context.Context, basketID string, page docex.Page, metaBytes int) ([]driver.BoundDocument, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return listDocumentsMetaBound(ctx, t.b, t.p, basketID, page, metaBytes)
}

// FindDocumentsMetaBound implements driver.MetaBoundReader.
func (t *tx) FindDocumentsMetaBound(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page, metaBytes int) ([]driver.BoundDocument, int64, error) {
	if err := t.check(); err != nil {
		return nil, 0, err
	}
	return findDocumentsMetaBound(ctx, t.b, t.p, basketID, filters, page, metaBytes)
}

func listDocumentsMetaBound(ctx context.Context, b *Backend, q querier, basketID string, page docex.Page, metaBytes int) ([]driver.BoundDocument, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	docs, err := scanDocuments(ctx, b, q, basketID, sqlDocuments(page.Order), basketID, page.Limit, page.Offset)
	if err != nil {
		return nil, err
	}
	return attachMetaBound(ctx, b, q, docs, nil, metaBytes)
}

func findDocumentsMetaBound(ctx context.Context, b *Backend, q querier, basketID string, filters []docex.MetaFilter, page docex.Page, metaBytes int) ([]driver.BoundDocument, int64, error) {
	docs, total, err := findDocumentRows(ctx, b, q, basketID, filters, page)
	if err != nil {
		return nil, 0, err
	}
	out, err := attachMetaBound(ctx, b, q, docs, nil, metaBytes)
	return out, total, err
}

// attachMetaBound fills in the metadata of docs (whose maps are empty)
// bounded to metaBytes (driver.BoundMeta): the keys, types and lengths
// first, then only the values kept. With keys not nil, only the values of
// those keys are looked at.
func attachMetaBound(ctx context.Context, b *Backend, q querier, docs []docex.Document, keys []string, metaBytes int) ([]driver.BoundDocument, error) {
	out := make([]driver.BoundDocument, len(docs))
	if len(docs) == 0 {
		return out, nil
	}
	ids := make([]string, len(docs))
	byID := make(map[string]int, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
		byID[d.ID] = i
	}
	sizes := make([][]driver.MetaSize, len(docs))
	query, args := sqlMetaSizesOf, []any{pgx.QueryExecModeExec, ids}
	if keys != nil {
		query, args = sqlMetaSizesOfKeys, append(args, keys)
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, b.wrap(err, "read metadata")
	}
	var (
		docID, key string
		vtype      int16
		n          int32
	)
	_, err = pgx.ForEachRow(rows, []any{&docID, &key, &vtype, &n}, func() error {
		if i, ok := byID[docID]; ok {
			sizes[i] = append(sizes[i], driver.MetaSize{Key: key, Type: docex.ValueType(vtype), Bytes: int(n)})
		}
		return nil
	})
	if err != nil {
		return nil, b.wrap(err, "read metadata")
	}
	var pairDocs, pairKeys []string // the (document, key) of each value kept
	cut := false
	for i := range docs {
		keep, omitted := driver.BoundMeta(sizes[i], metaBytes)
		out[i].MetadataOmitted = omitted
		cut = cut || omitted != nil
		for _, k := range keep {
			pairDocs, pairKeys = append(pairDocs, docs[i].ID), append(pairKeys, k)
		}
	}
	if !cut && keys == nil { // every value is kept
		if err := attachMeta(ctx, b, q, docs); err != nil {
			return nil, err
		}
	} else if len(pairDocs) > 0 {
		rows, err := q.Query(ctx, sqlMetaPairs, pgx.QueryExecModeExec, pairDocs, pairKeys)
		if err != nil {
			return nil, b.wrap(err, "read metadata")
		}
		if err := scanMeta(b, rows, byID, docs); err != nil {
			return nil, err
		}
	}
	for i := range docs {
		out[i].Document = docs[i]
	}
	return out, nil
}
