package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

// Tenant SQL. It is unqualified and runs only inside inTenant, which has
// set the search_path to the tenant's schema; its text is the same for
// every tenant, so pgx's statement cache holds it once.
const (
	basketCols = `b.id, b.name, b.created_at, b.doc_count, b.bytes,
		coalesce((SELECT p.pipeline FROM basket_pipelines p WHERE p.basket_id = b.id), '')`
	docCols = `id, basket_id, name, content_type, size, checksum, status, created_at, updated_at`

	sqlBasketByID = `SELECT ` + basketCols + ` FROM baskets b WHERE b.id = $1`
	// sqlLockBasket waits for, and keeps out, transactions adding a
	// document to the basket (a document insert's foreign key check takes
	// a KEY SHARE lock on the basket, which FOR UPDATE blocks) or locking
	// it; sqlLockBasketShared (KEY SHARE) waits for and keeps out only
	// the FOR UPDATE lockers (a delete, a bind). Both return nothing: the
	// basket is read by the next statement, whose snapshot, taken after
	// the wait, sees what the waited-for transaction committed (a
	// statement's subqueries would not).
	sqlLockBasket       = `SELECT 1 FROM baskets WHERE id = $1 FOR UPDATE`
	sqlLockBasketShared = `SELECT 1 FROM baskets WHERE id = $1 FOR KEY SHARE`
	sqlBasketByName     = `SELECT ` + basketCols + ` FROM baskets b WHERE b.name = $1`
	sqlBaskets          = `SELECT ` + basketCols + ` FROM baskets b ORDER BY b.name LIMIT $1 OFFSET $2`

	sqlDocumentByID       = `SELECT ` + docCols + ` FROM documents WHERE id = $1`
	sqlDocumentByChecksum = `SELECT ` + docCols + ` FROM documents WHERE basket_id = $1 AND checksum = $2`
	// sqlMetaOf runs unprepared (pgx.QueryExecModeExec): planned for each
	// call with the table's current size. A prepared statement's cached
	// generic plan, made while a new tenant's table was small, stays a
	// sequential scan as the table grows (10 ms a call after 1,000
	// pipeline runs, until autovacuum analyzes the table again).
	sqlMetaOf           = `SELECT document_id, key, vtype, value FROM metadata WHERE document_id = ANY($1)`
	sqlContentRefs      = `SELECT count(*) FROM documents WHERE checksum = $1`
	sqlContentRefsAfter = `SELECT checksum, id, size FROM documents WHERE (checksum, id) > ($1, $2) ORDER BY checksum, id LIMIT $3`
	sqlAudit            = `SELECT ` + auditInsertCols + ` FROM audit ORDER BY time DESC, seq DESC LIMIT $1 OFFSET $2`
	sqlContent          = `SELECT data FROM content WHERE checksum = $1`
	sqlContents         = `SELECT checksum, data FROM content WHERE checksum = ANY($1)`
	sqlUnreferenced     = `SELECT c.checksum FROM content c WHERE c.checksum > $1
		AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.checksum = c.checksum) ORDER BY c.checksum LIMIT $2`
)

// orderBy returns the ORDER BY clause of a page order; ids are UUIDv7, so
// id order is creation order.
func orderBy(o docex.Order) string {
	switch o {
	case docex.OrderCreatedDesc:
		return `id DESC`
	case docex.OrderName:
		return `name, id`
	}
	return `id`
}

func sqlDocuments(o docex.Order) string {
	return `SELECT ` + docCols + ` FROM documents WHERE basket_id = $1 ORDER BY ` + orderBy(o) + ` LIMIT $2 OFFSET $3`
}

// matchSQL selects the ids of the documents of basket $1 that match every
// (key, type, canonical value) of the arrays $2, $3, $4. The first filter
// drives an index scan of metadata_find_idx, which yields ids in order, so
// a page by id stops early; with more than one filter ($5 filters), each
// candidate is checked against the others through the primary key.
func matchSQL(multi bool) string {
	q := `SELECT m.document_id FROM metadata m WHERE m.basket_id = $1 AND m.key = ($2::text[])[1]
		AND m.vtype = ($3::int2[])[1] AND md5(m.value) = md5(($4::text[])[1]) AND m.value = ($4::text[])[1]`
	if multi {
		q += ` AND (SELECT count(*) FROM unnest($2::text[], $3::int2[], $4::text[]) WITH ORDINALITY AS f(k, t, v, i)
			JOIN metadata o ON o.document_id = m.document_id AND o.key = f.k AND o.vtype = f.t AND o.value = f.v
			WHERE f.i > 1) = $5::int - 1`
	}
	return q
}

// sqlFind returns the page query of a find ($6 limit, $7 offset, or $5
// and $6 with one filter).
func sqlFind(o docex.Order, multi bool) string { return sqlFindCols(docCols, o, multi) }

// sqlFindCols is sqlFind selecting cols of the documents.
func sqlFindCols(cols string, o docex.Order, multi bool) string {
	lim := `LIMIT $5 OFFSET $6`
	if multi {
		lim = `LIMIT $6 OFFSET $7`
	}
	switch o {
	case docex.OrderName:
		return `SELECT ` + cols + ` FROM documents WHERE basket_id = $1 AND id IN (` + matchSQL(multi) + `) ORDER BY name, id ` + lim
	case docex.OrderCreatedDesc:
		return `SELECT ` + cols + ` FROM documents WHERE basket_id = $1 AND id IN (
			SELECT document_id FROM (` + matchSQL(multi) + ` ORDER BY m.document_id DESC ` + lim + `) AS p) ORDER BY id DESC`
	default:
		return `SELECT ` + cols + ` FROM documents WHERE basket_id = $1 AND id IN (
			SELECT document_id FROM (` + matchSQL(multi) + ` ORDER BY m.document_id ` + lim + `) AS p) ORDER BY id`
	}
}

// sqlFindCount returns the count query of a find.
func sqlFindCount(multi bool) string { return `SELECT count(*) FROM (` + matchSQL(multi) + `) AS x` }

// getBasket returns the basket selected by sql with args, or
// docex.ErrNotFound.
func getBasket(ctx context.Context, b *Backend, q querier, sql string, arg string) (docex.Basket, error) {
	bk, err := scanBasket(q.QueryRow(ctx, sql, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return bk, docex.Errorf(docex.ErrNotFound, "basket %q not found", arg)
	}
	return bk, b.wrap(err, "read basket %q", arg)
}

func scanBasket(row pgx.Row) (docex.Basket, error) {
	var bk docex.Basket
	err := row.Scan(&bk.ID, &bk.Name, &bk.CreatedAt, &bk.DocumentCount, &bk.Bytes, &bk.Pipeline)
	bk.CreatedAt = bk.CreatedAt.UTC()
	return bk, err
}

// listBaskets returns a page of baskets ordered by name, or docex.ErrInvalid
// for a bad page.
func listBaskets(ctx context.Context, b *Backend, q querier, page docex.Page) ([]docex.Basket, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sqlBaskets, page.Limit, page.Offset)
	if err != nil {
		return nil, b.wrap(err, "list baskets")
	}
	defer rows.Close()
	out := []docex.Basket{}
	for rows.Next() {
		bk, err := scanBasket(rows)
		if err != nil {
			return nil, b.wrap(err, "list baskets")
		}
		out = append(out, bk)
	}
	return out, b.wrap(rows.Err(), "list baskets")
}

// scanDoc scans docCols followed by extra destinations.
func scanDoc(row pgx.Row, extra ...any) (docex.Document, error) {
	var d docex.Document
	dest := append([]any{&d.ID, &d.BasketID, &d.Name, &d.ContentType, &d.Size, &d.Checksum, &d.Status, &d.CreatedAt, &d.UpdatedAt}, extra...)
	err := row.Scan(dest...)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	d.Metadata = map[string]docex.Value{}
	return d, err
}

// docWhat names a document by id in not-found errors.
func docWhat(id string) string { return fmt.Sprintf("document %q", id) }

// getDocument returns the document selected by sql with its metadata, or
// docex.ErrNotFound saying that what (`document "ID"`, in the words of
// every backend) was not found.
func getDocument(ctx context.Context, b *Backend, q querier, what, sql string, args ...any) (docex.Document, error) {
	d, err := scanDoc(q.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return docex.Document{}, docex.Errorf(docex.ErrNotFound, "%s not found", what)
	}
	if err != nil {
		return docex.Document{}, b.wrap(err, "read %s", what)
	}
	docs := []docex.Document{d}
	if err := attachMeta(ctx, b, q, docs); err != nil {
		return docex.Document{}, err
	}
	return docs[0], nil
}

// attachMeta fills in the metadata of docs (whose maps are empty) in one
// query. It returns docex.ErrCorrupt for an undecodable stored value.
func attachMeta(ctx context.Context, b *Backend, q querier, docs []docex.Document) error {
	if len(docs) == 0 {
		return nil
	}
	ids := make([]string, len(docs))
	byID := make(map[string]int, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
		byID[d.ID] = i
	}
	rows, err := q.Query(ctx, sqlMetaOf, pgx.QueryExecModeExec, ids)
	if err != nil {
		return b.wrap(err, "read metadata")
	}
	return scanMeta(b, rows, byID, docs)
}

// scanMeta adds the metadata rows (document_id, key, vtype, value) to
// docs[byID[document_id]].Metadata and closes rows. It returns
// docex.ErrCorrupt for an undecodable stored value.
func scanMeta(b *Backend, rows pgx.Rows, byID map[string]int, docs []docex.Document) error {
	var (
		docID, key, text string
		vtype            int16
	)
	_, err := pgx.ForEachRow(rows, []any{&docID, &key, &vtype, &text}, func() error {
		v, err := docex.Decode(docex.ValueType(vtype), text)
		if err != nil {
			return err
		}
		if i, ok := byID[docID]; ok {
			docs[i].Metadata[key] = v
		}
		return nil
	})
	if err != nil && !errors.Is(err, docex.ErrCorrupt) {
		return b.wrap(err, "read metadata")
	}
	return err
}

// decodeMeta returns the metadata of parallel arrays of keys, value types
// and canonical values (array_agg over a document's metadata rows: nil
// without any). It returns docex.ErrCorrupt for an undecodable value.
func decodeMeta(keys []string, types []int16, vals []string) (map[string]docex.Value, error) {
	out := make(map[string]docex.Value, len(keys))
	if len(types) != len(keys) || len(vals) != len(keys) {
		return nil, docex.Errorf(docex.ErrCorrupt, "metadata: %d keys, %d types, %d values", len(keys), len(types), len(vals))
	}
	for i, k := range keys {
		v, err := docex.Decode(docex.ValueType(types[i]), vals[i])
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// listDocuments returns a page of a basket's documents with metadata, or
// docex.ErrInvalid for a bad page.
func listDocuments(ctx context.Context, b *Backend, q querier, basketID string, page docex.Page) ([]docex.Document, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return queryDocuments(ctx, b, q, basketID, sqlDocuments(page.Order), basketID, page.Limit, page.Offset)
}

// sqlDocumentsByName pages through a basket's documents of one name
// (documents_basket_name_idx).
const sqlDocumentsByName = `SELECT ` + docCols + ` FROM documents WHERE basket_id = $1 AND name = $2 ORDER BY id LIMIT $3 OFFSET $4`

func listDocumentsByName(ctx context.Context, b *Backend, q querier, basketID, name string, page docex.Page) ([]docex.Document, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return queryDocuments(ctx, b, q, basketID, sqlDocumentsByName, basketID, name, page.Limit, page.Offset)
}

// sqlDocumentIDsByName is sqlDocumentsByName selecting the ids only.
const sqlDocumentIDsByName = `SELECT id FROM documents WHERE basket_id = $1 AND name = $2 ORDER BY id LIMIT $3 OFFSET $4`

// listDocumentIDsWithKey is listDocuments as ids, each with whether the
// document has metadata key key (a primary-key probe, no value read).
func listDocumentIDsWithKey(ctx context.Context, b *Backend, q querier, basketID string, page docex.Page, key string) ([]driver.KeyedID, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT d.id, EXISTS (SELECT 1 FROM metadata m WHERE m.document_id = d.id AND m.key = $4)
		FROM documents d WHERE d.basket_id = $1 ORDER BY `+orderBy(page.Order)+` LIMIT $2 OFFSET $3`,
		basketID, page.Limit, page.Offset, key)
	if err != nil {
		return nil, b.wrap(err, "list documents of basket %q", basketID)
	}
	out := []driver.KeyedID{}
	var k driver.KeyedID
	if _, err := pgx.ForEachRow(rows, []any{&k.ID, &k.HasKey}, func() error { out = append(out, k); return nil }); err != nil {
		return nil, b.wrap(err, "list documents of basket %q", basketID)
	}
	return out, nil
}

// listDocumentIDsByName is listDocumentsByName without metadata: the ids.
func listDocumentIDsByName(ctx context.Context, b *Backend, q querier, basketID, name string, page docex.Page) ([]string, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return queryIDs(ctx, b, q, basketID, sqlDocumentIDsByName, basketID, name, page.Limit, page.Offset)
}

// findDocumentIDs is findDocuments without the total and the metadata:
// the page's ids.
func findDocumentIDs(ctx context.Context, b *Backend, q querier, basketID string, filters []docex.MetaFilter, page docex.Page) ([]string, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	keys, types, values, ok, err := filterArrays(filters)
	if err != nil || !ok {
		return []string{}, err
	}
	multi := len(keys) > 1
	args := []any{basketID, keys, types, values}
	if multi {
		args = append(args, len(keys))
	}
	return queryIDs(ctx, b, q, basketID, sqlFindCols("id", page.Order, multi), append(args, page.Limit, page.Offset)...)
}

// queryIDs returns the ids a document query selects.
func queryIDs(ctx context.Context, b *Backend, q querier, basketID, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, b.wrap(err, "list documents of basket %q", basketID)
	}
	out := []string{}
	var id string
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { out = append(out, id); return nil }); err != nil {
		return nil, b.wrap(err, "list documents of basket %q", basketID)
	}
	return out, nil
}

// queryDocuments runs a document query and attaches the metadata.
func queryDocuments(ctx context.Context, b *Backend, q querier, basketID, sql string, args ...any) ([]docex.Document, error) {
	out, err := scanDocuments(ctx, b, q, basketID, sql, args...)
	if err != nil {
		return nil, err
	}
	return out, attachMeta(ctx, b, q, out)
}

// scanDocuments runs a document query, without attaching the metadata.
func scanDocuments(ctx context.Context, b *Backend, q querier, basketID, sql string, args ...any) ([]docex.Document, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, b.wrap(err, "list documents of basket %q", basketID)
	}
	out := []docex.Document{}
	for rows.Next() {
		d, err := scanDoc(rows)
		if err != nil {
			rows.Close()
			return nil, b.wrap(err, "list documents of basket %q", basketID)
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, b.wrap(err, "list documents of basket %q", basketID)
	}
	return out, nil
}

// filterArrays turns filters into parallel arrays of distinct keys. ok is
// false when two filters ask for different values of one key (nothing can
// match). It returns docex.ErrInvalid without filters or for an invalid
// value.
func filterArrays(filters []docex.MetaFilter) (keys []string, types []int16, values []string, ok bool, err error) {
	if len(filters) == 0 {
		return nil, nil, nil, false, docex.Errorf(docex.ErrInvalid, "find needs at least one metadata filter")
	}
	seen := make(map[string]int, len(filters))
	for _, f := range filters {
		if !f.Value.Valid() {
			return nil, nil, nil, false, docex.Errorf(docex.ErrInvalid, "metadata filter %q: invalid value", f.Key)
		}
		t, v := int16(f.Value.Type()), f.Value.Canonical()
		if i, dup := seen[f.Key]; dup {
			if types[i] != t || values[i] != v {
				ok = false
				return keys, types, values, false, nil
			}
			continue
		}
		seen[f.Key] = len(keys)
		keys, types, values = append(keys, f.Key), append(types, t), append(values, v)
	}
	// The first filter drives the index scan: move bools, which rarely
	// narrow much, behind the others.
	for i, j := 0, len(keys)-1; i < j; {
		switch {
		case types[i] != int16(docex.TypeBool):
			i++
		case types[j] == int16(docex.TypeBool):
			j--
		default:
			keys[i], keys[j] = keys[j], keys[i]
			types[i], types[j] = types[j], types[i]
			values[i], values[j] = values[j], values[i]
		}
	}
	return keys, types, values, true, nil
}

// findDocuments returns a page of the basket's documents matching every
// filter, with metadata, and the total number of matches. It returns
// docex.ErrInvalid without filters or for a bad page.
func findDocuments(ctx context.Context, b *Backend, q querier, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error) {
	out, total, err := findDocumentRows(ctx, b, q, basketID, filters, page)
	if err != nil {
		return nil, 0, err
	}
	return out, total, attachMeta(ctx, b, q, out)
}

// findDocumentRows is findDocuments without attaching the metadata.
func findDocumentRows(ctx context.Context, b *Backend, q querier, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, 0, err
	}
	keys, types, values, ok, err := filterArrays(filters)
	if err != nil || !ok {
		return []docex.Document{}, 0, err
	}
	multi := len(keys) > 1
	args := []any{basketID, keys, types, values}
	if multi {
		args = append(args, len(keys))
	}
	rows, err := q.Query(ctx, sqlFind(page.Order, multi), append(args, page.Limit, page.Offset)...)
	if err != nil {
		return nil, 0, b.wrap(err, "find documents in basket %q", basketID)
	}
	out := []docex.Document{}
	for rows.Next() {
		d, err := scanDoc(rows)
		if err != nil {
			rows.Close()
			return nil, 0, b.wrap(err, "find documents in basket %q", basketID)
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, b.wrap(err, "find documents in basket %q", basketID)
	}
	// A partial page that is not past the end gives the total for free.
	total := int64(page.Offset + len(out))
	if len(out) == page.Limit || (len(out) == 0 && page.Offset > 0) {
		if err := q.QueryRow(ctx, sqlFindCount(multi), args...).Scan(&total); err != nil {
			return nil, 0, b.wrap(err, "count documents in basket %q", basketID)
		}
	}
	return out, total, nil
}

// contentRefs counts the tenant's documents with the checksum.
func contentRefs(ctx context.Context, b *Backend, q querier, checksum string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, sqlContentRefs, checksum).Scan(&n)
	return n, b.wrap(err, "count references to %q", checksum)
}

// unreferencedContents returns up to limit checksums of content rows no
// document refers to, after the checksum after, in checksum order.
func unreferencedContents(ctx context.Context, b *Backend, q querier, after string, limit int) ([]string, error) {
	rows, err := q.Query(ctx, sqlUnreferenced, after, limit)
	if err != nil {
		return nil, b.wrap(err, "list unreferenced content")
	}
	sums, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return sums, b.wrap(err, "list unreferenced content")
}

// listAudit returns a page of the tenant's audit log, newest first, or
// docex.ErrInvalid for a bad page.
func listAudit(ctx context.Context, b *Backend, q querier, page docex.Page) ([]docex.AuditEntry, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sqlAudit, page.Limit, page.Offset)
	if err != nil {
		return nil, b.wrap(err, "list audit")
	}
	out, err := scanAudit(rows)
	return out, b.wrap(err, "list audit")
}

// openContent returns a reader over the stored content, or
// docex.ErrNotFound.
func openContent(ctx context.Context, b *Backend, q querier, checksum string) (io.ReadCloser, error) {
	var data []byte
	err := q.QueryRow(ctx, sqlContent, checksum).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, docex.Errorf(docex.ErrNotFound, "content %q not found", checksum)
	}
	if err != nil {
		return nil, b.wrap(err, "read content %q", checksum)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// auditArgs returns the insert arguments of e (auditInsertCols).
func auditArgs(e docex.AuditEntry) ([]any, error) {
	roles := e.Roles
	if roles == nil {
		roles = []string{}
	}
	detail, err := driver.EncodeDetail(e.Detail)
	if err != nil {
		return nil, err
	}
	return []any{e.ID, utcMicro(e.Time), e.TenantID, e.UserID, roles, e.Operation, e.Target, e.Outcome, e.Error, detail}, nil
}

// scanAudit reads audit rows (auditInsertCols) and closes rows.
func scanAudit(rows pgx.Rows) ([]docex.AuditEntry, error) {
	defer rows.Close()
	out := []docex.AuditEntry{}
	for rows.Next() {
		var e docex.AuditEntry
		var detail string
		if err := rows.Scan(&e.ID, &e.Time, &e.TenantID, &e.UserID, &e.Roles, &e.Operation, &e.Target, &e.Outcome, &e.Error, &detail); err != nil {
			return nil, err
		}
		var err error
		if e.Detail, err = driver.DecodeDetail(detail); err != nil {
			return nil, err
		}
		e.Time = e.Time.UTC()
		if e.Roles == nil {
			e.Roles = []string{}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// contentRefsAfter lists documents' content references in (checksum, id)
// order after (afterSum, afterID).
func contentRefsAfter(ctx context.Context, b *Backend, q querier, afterSum, afterID string, limit int) ([]driver.ContentRef, error) {
	rows, err := q.Query(ctx, sqlContentRefsAfter, afterSum, afterID, limit)
	if err != nil {
		return nil, b.wrap(err, "list content references")
	}
	out := []driver.ContentRef{}
	var c driver.ContentRef
	_, err = pgx.ForEachRow(rows, []any{&c.Checksum, &c.DocumentID, &c.Size}, func() error { out = append(out, c); return nil })
	return out, b.wrap(err, "list content references")
}
