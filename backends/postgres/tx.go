package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
)

// Tenant write SQL (unqualified, see queries.go).
const (
	sqlInsertBasket = `INSERT INTO baskets (id, name, created_at) VALUES ($1, $2, $3)`
	sqlDeleteBasket = `DELETE FROM baskets WHERE id = $1`

	// sqlInsertDocument adds the document and its metadata in one
	// statement (one round trip); the basket's counters are updated at the
	// end of the transaction (tx.flushCounts).
	sqlInsertDocument = `WITH d AS (
		INSERT INTO documents (id, basket_id, name, content_type, size, checksum, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, basket_id
	)
	INSERT INTO metadata (document_id, basket_id, key, vtype, value)
	SELECT d.id, d.basket_id, f.k, f.t, f.v FROM d, unnest($10::text[], $11::int2[], $12::text[]) AS f(k, t, v)`
	sqlAddBasketCounts = `UPDATE baskets SET doc_count = doc_count + $2, bytes = bytes + $3 WHERE id = $1`

	sqlLockDocument = `SELECT basket_id, size FROM documents WHERE id = $1 FOR UPDATE`
	// sqlLockDocsShared and sqlLockDocsExclusive run unprepared, as the
	// other lookups by an array (see checksums.go).
	sqlLockDocsShared    = `SELECT id, checksum FROM documents WHERE id = ANY($1) FOR KEY SHARE`
	sqlLockDocsExclusive = `SELECT id, checksum FROM documents WHERE id = ANY($1) FOR UPDATE`
	sqlUpdateContent     = `UPDATE documents SET size = $2, checksum = $3, content_type = $4, updated_at = $5 WHERE id = $1`
	sqlAddBasketBytes    = `UPDATE baskets SET bytes = bytes + $2 WHERE id = $1`
	sqlDeleteDocument    = `WITH d AS (DELETE FROM documents WHERE id = $1 RETURNING basket_id, size)
		UPDATE baskets SET doc_count = baskets.doc_count - 1, bytes = baskets.bytes - d.size FROM d WHERE baskets.id = d.basket_id RETURNING baskets.id`

	sqlTouchDocument = `UPDATE documents SET updated_at = $2 WHERE id = $1 RETURNING basket_id`
	// sqlSetMeta bumps the document's updated_at and upserts the keys in
	// one statement (one round trip); it returns no row when the document
	// is absent, and then writes nothing.
	sqlSetMeta = `WITH d AS (UPDATE documents SET updated_at = $2 WHERE id = $1 RETURNING id, basket_id),
	m AS (INSERT INTO metadata (document_id, basket_id, key, vtype, value)
		SELECT d.id, d.basket_id, f.k, f.t, f.v FROM d, unnest($3::text[], $4::int2[], $5::text[]) AS f(k, t, v)
		ON CONFLICT (document_id, key) DO UPDATE SET vtype = excluded.vtype, value = excluded.value)
	SELECT basket_id FROM d`
	// sqlSetMetaBatch is sqlSetMeta for many documents: it returns the ids
	// of those that exist. It runs unprepared, as the other lookups by an
	// array (see checksums.go).
	sqlSetMetaBatch = `WITH d AS (UPDATE documents SET updated_at = $1 WHERE id = ANY($2::text[]) RETURNING id, basket_id),
	m AS (INSERT INTO metadata (document_id, basket_id, key, vtype, value)
		SELECT d.id, d.basket_id, f.k, f.t, f.v FROM unnest($3::text[], $4::text[], $5::int2[], $6::text[]) AS f(doc, k, t, v) JOIN d ON d.id = f.doc
		ON CONFLICT (document_id, key) DO UPDATE SET vtype = excluded.vtype, value = excluded.value)
	SELECT id FROM d`
	// sqlMetaTotal and sqlMetaTotals are a document's metadata in total
	// (tx.MetadataTotals).
	sqlMetaTotal     = `SELECT document_id, count(*), sum(octet_length(key) + octet_length(value))::int8 FROM metadata WHERE document_id = $1 GROUP BY document_id`
	sqlMetaTotals    = `SELECT document_id, count(*), sum(octet_length(key) + octet_length(value))::int8 FROM metadata WHERE document_id = ANY($1) GROUP BY document_id`
	sqlDeleteMeta    = `DELETE FROM metadata WHERE document_id = $1 AND key = $2`
	sqlDocumentCount = `SELECT count(*) FROM documents WHERE id = $1`

	sqlAdvisoryLock       = `SELECT pg_advisory_xact_lock($1)`
	sqlAdvisoryLockShared = `SELECT pg_advisory_xact_lock_shared($1)`
	sqlAppendAudit        = `INSERT INTO audit (` + auditInsertCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	sqlPutContent         = `INSERT INTO content (checksum, data) VALUES ($1, $2) ON CONFLICT (checksum) DO NOTHING`
	sqlDelContent         = `DELETE FROM content WHERE checksum = $1`
)

// Constraint names (see tenantDDL) mapped to sentinels.
const (
	conDocumentsChecksum = "documents_basket_checksum_key"
	conBasketsName       = "baskets_name_key"
)

// tx is a driver.Tx: one tenant transaction opened by store.Write. It is
// usable only while fn runs.
type tx struct {
	b      *Backend
	q      pgx.Tx // River's inserts only; everything else goes through p
	p      *pipe
	schema string
	tenant string // "" for the local store
	done   atomic.Bool
	// refs is the reference count of a checksum that DocumentByChecksum
	// read in the round trip of its lookup, for a ContentRefs call of the
	// same checksum right after it (the engine adds a document that way:
	// lock the content, look it up in the basket, count its references);
	// every other call drops it (check).
	refs struct {
		sum string
		n   int64
		ok  bool
	}
	// counts are the basket counters' increments of the documents this
	// transaction inserted, applied at its end (flushCounts): a basket's
	// row is then locked only from there to the commit, so that
	// transactions adding documents to one basket (a worker's batches)
	// do not wait for each other's whole transactions.
	counts map[string]*[2]int64
	// contentLock is the tenant content lock this transaction holds
	// (lockContentKeys).
	contentLock int
	// refsOf are the reference counts of the checksums DocumentsByChecksums
	// read, for a ContentRefsOf call right after it; every other call
	// drops them (check).
	refsOf map[string]int64
}

var (
	_ driver.Tx      = (*tx)(nil)
	_ driver.BatchTx = (*tx)(nil)
)

// flushCounts holds (see pipe) the updates of the basket counters by the
// documents the transaction inserted, baskets in id order (so that two
// transactions never wait for each other's rows in opposite orders); they
// are sent with the commit, so that the rows stay locked for as short a
// time as can be. It returns the error of an earlier held statement.
func (t *tx) flushCounts() error {
	ids := make([]string, 0, len(t.counts))
	for id := range t.counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := t.counts[id]
		if err := t.p.later("count documents of basket "+id, sqlAddBasketCounts, id, c[0], c[1]); err != nil {
			return err
		}
	}
	t.counts = nil
	return nil
}

// check returns docex.ErrClosed once Write's fn has returned.
func (t *tx) check() error {
	t.refs.ok = false
	t.refsOf = nil
	if t.done.Load() {
		return docex.Errorf(docex.ErrClosed, "postgres: transaction on %s has ended", t.schema)
	}
	return nil
}

// Basket returns the basket with its counters, docex.ErrNotFound.
func (t *tx) Basket(ctx context.Context, id string) (docex.Basket, error) {
	if err := t.check(); err != nil {
		return docex.Basket{}, err
	}
	return getBasket(ctx, t.b, t.p, sqlBasketByID, id)
}

// LockDocuments locks the documents of ids FOR KEY SHARE (what a
// foreign key check takes: it blocks a DELETE and a FOR UPDATE lock, which
// a content update takes first, not an update of other columns) or,
// exclusive, FOR UPDATE, and returns the checksums of those that exist.
// Under READ COMMITTED a row being deleted is waited for and then
// skipped, and a row being updated is waited for and read as the update
// left it.
func (t *tx) LockDocuments(ctx context.Context, ids []string, exclusive bool) (map[string]string, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	q := sqlLockDocsShared
	if exclusive {
		q = sqlLockDocsExclusive
	}
	rows, err := t.p.Query(ctx, q, pgx.QueryExecModeExec, ids)
	if err != nil {
		return nil, t.b.wrap(err, "lock documents")
	}
	found := make(map[string]string, len(ids))
	var id, sum string
	if _, err := pgx.ForEachRow(rows, []any{&id, &sum}, func() error { found[id] = sum; return nil }); err != nil {
		return nil, t.b.wrap(err, "lock documents")
	}
	return found, nil
}

// LockBasket locks the basket with id FOR UPDATE, or FOR KEY SHARE when
// not exclusive, until the transaction ends, then reads it in the same
// round trip (sqlLockBasket); docex.ErrNotFound when absent.
func (t *tx) LockBasket(ctx context.Context, id string, exclusive bool) (docex.Basket, error) {
	if err := t.check(); err != nil {
		return docex.Basket{}, err
	}
	q := sqlLockBasketShared
	if exclusive {
		q = sqlLockBasket
	}
	if err := t.p.later("lock basket "+id, q, id); err != nil {
		return docex.Basket{}, err
	}
	return getBasket(ctx, t.b, t.p, sqlBasketByID, id)
}

// BasketByName returns the basket named name, docex.ErrNotFound.
func (t *tx) BasketByName(ctx context.Context, name string) (docex.Basket, error) {
	if err := t.check(); err != nil {
		return docex.Basket{}, err
	}
	return getBasket(ctx, t.b, t.p, sqlBasketByName, name)
}

// Baskets lists baskets ordered by name (byte order); docex.ErrInvalid for a bad page.
func (t *tx) Baskets(ctx context.Context, page docex.Page) ([]docex.Basket, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return listBaskets(ctx, t.b, t.p, page)
}

// Document returns the document with its metadata, or docex.ErrNotFound.
func (t *tx) Document(ctx context.Context, id string) (docex.Document, error) {
	if err := t.check(); err != nil {
		return docex.Document{}, err
	}
	return getDocument(ctx, t.b, t.p, docWhat(id), sqlDocumentByID, id)
}

// DocumentByChecksum returns the basket's document with the checksum, or
// docex.ErrNotFound. The tenant's references to the checksum are counted
// in the same round trip, for ContentRefs.
func (t *tx) DocumentByChecksum(ctx context.Context, basketID, checksum string) (docex.Document, error) {
	if err := t.check(); err != nil {
		return docex.Document{}, err
	}
	var batch pgx.Batch
	batch.Queue(sqlDocumentByChecksum, basketID, checksum)
	batch.Queue(sqlContentRefs, checksum)
	res, err := t.p.send(ctx, &batch)
	if err != nil {
		return docex.Document{}, err
	}
	d, err := scanDoc(res.QueryRow())
	var n int64
	nerr := res.QueryRow().Scan(&n)
	if cerr := res.Close(); nerr == nil {
		nerr = cerr
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = docex.Errorf(docex.ErrNotFound, "document with checksum %s not found", checksum)
	case err != nil:
		return docex.Document{}, t.b.wrap(err, "read document with checksum %s", checksum)
	default:
		docs := []docex.Document{d}
		if err := attachMeta(ctx, t.b, t.p, docs); err != nil {
			return docex.Document{}, err
		}
		d = docs[0]
	}
	if nerr != nil {
		return docex.Document{}, t.b.wrap(nerr, "count references to %q", checksum)
	}
	t.refs.sum, t.refs.n, t.refs.ok = checksum, n, true
	return d, err
}

// Documents lists a basket's documents with metadata in page order; docex.ErrInvalid for a bad page.
// DocumentsByName lists the basket's documents named name, in id order.
func (t *tx) DocumentsByName(ctx context.Context, basketID, name string, page docex.Page) ([]docex.Document, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return listDocumentsByName(ctx, t.b, t.p, basketID, name, page)
}

func (t *tx) Documents(ctx context.Context, basketID string, page docex.Page) ([]docex.Document, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return listDocuments(ctx, t.b, t.p, basketID, page)
}

// FindDocuments lists the basket's documents matching all filters and their total; docex.ErrInvalid without filters.
func (t *tx) FindDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error) {
	if err := t.check(); err != nil {
		return nil, 0, err
	}
	return findDocuments(ctx, t.b, t.p, basketID, filters, page)
}

// ContentRefsAfter lists documents' content references in (checksum, id) order.
func (t *tx) ContentRefsAfter(ctx context.Context, afterSum, afterID string, limit int) ([]driver.ContentRef, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return contentRefsAfter(ctx, t.b, t.p, afterSum, afterID, limit)
}

// ContentRefs counts the tenant's documents with the checksum: the count
// DocumentByChecksum read when it was the transaction's previous call, for
// the same checksum.
func (t *tx) ContentRefs(ctx context.Context, checksum string) (int64, error) {
	refs := t.refs
	if err := t.check(); err != nil {
		return 0, err
	}
	if refs.ok && refs.sum == checksum {
		return refs.n, nil
	}
	return contentRefs(ctx, t.b, t.p, checksum)
}

// Audit lists the tenant's audit log, newest first; docex.ErrInvalid for a bad page.
func (t *tx) Audit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return listAudit(ctx, t.b, t.p, page)
}

// OpenContent returns a reader over database content, or docex.ErrNotFound.
func (t *tx) OpenContent(ctx context.Context, checksum string) (io.ReadCloser, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return openContent(ctx, t.b, t.p, checksum)
}

// InsertBasket adds a basket; docex.ErrExists when the name (or id) is
// taken.
func (t *tx) InsertBasket(ctx context.Context, bk docex.Basket) error {
	if err := t.check(); err != nil {
		return err
	}
	_, err := t.p.Exec(ctx, sqlInsertBasket, bk.ID, bk.Name, utcMicro(bk.CreatedAt))
	switch code, con := stmtError(err); {
	case code == codeUniqueViolation && con == conBasketsName:
		// The words of every backend: the driver's text names a constraint.
		return docex.Errorf(docex.ErrExists, "basket %q already exists", bk.Name)
	case code == codeUniqueViolation:
		return fmt.Errorf("%w: %w", docex.ErrExists, t.b.wrap(err, "basket %q", bk.Name))
	}
	return t.b.wrap(err, "insert basket %q", bk.Name)
}

// DeleteBasket removes a basket, its documents and their metadata
// (ON DELETE CASCADE); docex.ErrNotFound when absent.
func (t *tx) DeleteBasket(ctx context.Context, id string) error {
	if err := t.check(); err != nil {
		return err
	}
	tag, err := t.p.Exec(ctx, sqlDeleteBasket, id)
	if err != nil {
		return t.b.wrap(err, "delete basket %q", id)
	}
	if tag.RowsAffected() == 0 {
		return docex.Errorf(docex.ErrNotFound, "basket %q not found", id)
	}
	return nil
}

// metaArrays returns kv as parallel arrays, or docex.ErrInvalid for an
// invalid value.
func metaArrays(kv map[string]docex.Value) (keys []string, types []int16, values []string, err error) {
	keys, types, values = make([]string, 0, len(kv)), make([]int16, 0, len(kv)), make([]string, 0, len(kv))
	for k, v := range kv {
		if !v.Valid() {
			return nil, nil, nil, docex.Errorf(docex.ErrInvalid, "metadata %q: invalid value", k)
		}
		keys, types, values = append(keys, k), append(types, int16(v.Type())), append(values, v.Canonical())
	}
	return keys, types, values, nil
}

// InsertDocument adds a document with its metadata and updates the
// basket's counters. It returns docex.ErrDuplicateContent when the basket
// holds the checksum, docex.ErrExists for a taken id, docex.ErrNotFound
// when the basket does not exist, docex.ErrInvalid for an invalid value.
func (t *tx) InsertDocument(ctx context.Context, d docex.Document) error {
	if err := t.check(); err != nil {
		return err
	}
	args, err := documentArgs(d)
	if err != nil {
		return err
	}
	_, err = t.p.Exec(ctx, sqlInsertDocument, args...)
	return t.inserted(d, err)
}

// statusOf is d's status, active when unset.
func statusOf(d docex.Document) string {
	if d.Status == "" {
		return docex.DocumentActive
	}
	return d.Status
}

// documentArgs are sqlInsertDocument's arguments for d.
func documentArgs(d docex.Document) ([]any, error) {
	keys, types, values, err := metaArrays(d.Metadata)
	if err != nil {
		return nil, err
	}
	return []any{d.ID, d.BasketID, d.Name, d.ContentType, d.Size, d.Checksum, statusOf(d),
		utcMicro(d.CreatedAt), utcMicro(d.UpdatedAt), keys, types, values}, nil
}

// InsertDocuments implements driver.BatchTx: the documents with their
// metadata in one statement and the audit entries in another (see
// sqlInsertDocuments), sent in one round trip.
func (t *tx) InsertDocuments(ctx context.Context, docs []docex.Document, audit []docex.AuditEntry) error {
	if err := t.check(); err != nil {
		return err
	}
	var batch pgx.Batch
	if len(docs) > 0 {
		args, err := documentsArgs(docs)
		if err != nil {
			return err
		}
		batch.Queue(sqlInsertDocuments, args...)
	}
	if len(audit) > 0 {
		args, err := auditsArgs(audit)
		if err != nil {
			return err
		}
		batch.Queue(sqlAppendAudits, args...)
	}
	if batch.Len() == 0 {
		return nil
	}
	res, err := t.p.send(ctx, &batch)
	if err != nil {
		return err
	}
	defer res.Close()
	if len(docs) > 0 {
		if _, err := res.Exec(); err != nil {
			return t.inserted(culprit(docs, err), err)
		}
		for _, d := range docs {
			_ = t.inserted(d, nil)
		}
	}
	if len(audit) > 0 {
		if _, err := res.Exec(); err != nil {
			return t.b.wrap(err, "append audit")
		}
	}
	return t.b.wrap(res.Close(), "insert documents")
}

// ReplaceContents implements driver.BatchTx: one multi-row upsert (see
// sqlReplaceContents; of a checksum given twice, the last data), held
// (see pipe) and sent with the transaction's next statement.
func (t *tx) ReplaceContents(ctx context.Context, checksums []string, data [][]byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(checksums) != len(data) {
		return docex.Errorf(docex.ErrInvalid, "ReplaceContents: %d checksums, %d contents", len(checksums), len(data))
	}
	if len(checksums) == 0 {
		return nil
	}
	last := make(map[string]int, len(checksums))
	for i, sum := range checksums {
		last[sum] = i
	}
	sums, blobs := make([]string, 0, len(last)), make([][]byte, 0, len(last))
	for i, sum := range checksums {
		if last[sum] != i {
			continue
		}
		d := data[i]
		if d == nil {
			d = []byte{}
		}
		sums, blobs = append(sums, sum), append(blobs, d)
	}
	what := "store content " + sums[0]
	if len(sums) > 1 {
		what = fmt.Sprintf("store %d contents", len(sums))
	}
	return t.p.later(what, sqlReplaceContents, sums, blobs)
}

// inserted maps the error of inserting d, and counts d in its basket's
// counters when it was inserted.
func (t *tx) inserted(d docex.Document, err error) error {
	switch code, con := stmtError(err); {
	case err == nil:
		if t.counts == nil {
			t.counts = map[string]*[2]int64{}
		}
		c := t.counts[d.BasketID]
		if c == nil {
			c = &[2]int64{}
			t.counts[d.BasketID] = c
		}
		c[0]++
		c[1] += d.Size
		return nil
	case code == codeUniqueViolation && con == conDocumentsChecksum:
		return fmt.Errorf("%w: %w", docex.ErrDuplicateContent, t.b.wrap(err, "document %q in basket %q", d.Name, d.BasketID))
	case code == codeUniqueViolation:
		return fmt.Errorf("%w: %w", docex.ErrExists, t.b.wrap(err, "document %q", d.ID))
	case code == codeForeignKeyViolation:
		return fmt.Errorf("%w: %w", docex.ErrNotFound, t.b.wrap(err, "basket %q", d.BasketID))
	default:
		return t.b.wrap(err, "insert document %q", d.ID)
	}
}

// UpdateContent replaces a document's content fields and adjusts the
// basket's byte count. It returns docex.ErrNotFound when the document is
// absent and docex.ErrDuplicateContent when another document of the basket
// has the checksum.
func (t *tx) UpdateContent(ctx context.Context, id string, size int64, checksum, contentType string, updatedAt time.Time) error {
	if err := t.check(); err != nil {
		return err
	}
	var basketID string
	var oldSize int64
	err := t.p.QueryRow(ctx, sqlLockDocument, id).Scan(&basketID, &oldSize)
	if errors.Is(err, pgx.ErrNoRows) {
		return docex.Errorf(docex.ErrNotFound, "document %q not found", id)
	}
	if err != nil {
		return t.b.wrap(err, "update document %q", id)
	}
	_, err = t.p.Exec(ctx, sqlUpdateContent, id, size, checksum, contentType, utcMicro(updatedAt))
	if code, con := stmtError(err); code == codeUniqueViolation && con == conDocumentsChecksum {
		return fmt.Errorf("%w: %w", docex.ErrDuplicateContent, t.b.wrap(err, "update document %q", id))
	}
	if err != nil {
		return t.b.wrap(err, "update document %q", id)
	}
	if size != oldSize {
		if _, err := t.p.Exec(ctx, sqlAddBasketBytes, basketID, size-oldSize); err != nil {
			return t.b.wrap(err, "update basket %q", basketID)
		}
	}
	return nil
}

// DeleteDocument removes a document and its metadata and updates the
// basket's counters; docex.ErrNotFound when absent.
func (t *tx) DeleteDocument(ctx context.Context, id string) error {
	if err := t.check(); err != nil {
		return err
	}
	tag, err := t.p.Exec(ctx, sqlDeleteDocument, id)
	if err != nil {
		return t.b.wrap(err, "delete document %q", id)
	}
	if tag.RowsAffected() == 0 {
		return docex.Errorf(docex.ErrNotFound, "document %q not found", id)
	}
	return nil
}

// SetMetadata upserts metadata keys and bumps the document's updated_at;
// docex.ErrNotFound when the document is absent, docex.ErrInvalid for an
// invalid value.
func (t *tx) SetMetadata(ctx context.Context, docID string, kv map[string]docex.Value, updatedAt time.Time) error {
	if err := t.check(); err != nil {
		return err
	}
	keys, types, values, err := metaArrays(kv)
	if err != nil {
		return err
	}
	var basketID string
	err = t.p.QueryRow(ctx, sqlSetMeta, docID, utcMicro(updatedAt), keys, types, values).Scan(&basketID)
	if errors.Is(err, pgx.ErrNoRows) {
		return docex.Errorf(docex.ErrNotFound, "document %q not found", docID)
	}
	return t.b.wrap(err, "set metadata of %q", docID)
}

// SetMetadataBatch implements driver.MetadataBatchTx in one statement
// (sqlSetMetaBatch), the sets merged by document first (a multi-row
// upsert may not touch a key twice).
func (t *tx) SetMetadataBatch(ctx context.Context, sets []driver.MetadataSet, updatedAt time.Time) error {
	if err := t.check(); err != nil {
		return err
	}
	merged, order := driver.MergeMetadataSets(sets)
	if len(order) == 0 {
		return nil
	}
	var docs, keys, values []string
	var types []int16
	for _, id := range order {
		k, ty, v, err := metaArrays(merged[id])
		if err != nil {
			return err
		}
		for range k {
			docs = append(docs, id)
		}
		keys, types, values = append(keys, k...), append(types, ty...), append(values, v...)
	}
	rows, err := t.p.Query(ctx, sqlSetMetaBatch, pgx.QueryExecModeExec, utcMicro(updatedAt), order, docs, keys, types, values)
	if err != nil {
		return t.b.wrap(err, "set metadata")
	}
	found, err := idSet(rows, len(order))
	if err != nil {
		return t.b.wrap(err, "set metadata")
	}
	for _, id := range order {
		if !found[id] {
			return docex.Errorf(docex.ErrNotFound, "document %q not found", id)
		}
	}
	return nil
}

// MetadataTotals implements driver.Tx: one aggregate over the metadata
// primary key (document_id, key), sent with the held statements; a list
// of more than one id runs unprepared, as the other lookups by an array
// (see sqlMetaOf). octet_length reads a stored value's length without
// reading the value.
func (t *tx) MetadataTotals(ctx context.Context, ids []string) (map[string]driver.MetadataTotal, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := make(map[string]driver.MetadataTotal, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows pgx.Rows
	var err error
	if len(ids) == 1 {
		rows, err = t.p.Query(ctx, sqlMetaTotal, ids[0])
	} else {
		rows, err = t.p.Query(ctx, sqlMetaTotals, pgx.QueryExecModeExec, ids)
	}
	if err != nil {
		return nil, t.b.wrap(err, "metadata totals")
	}
	var id string
	var mt driver.MetadataTotal
	_, err = pgx.ForEachRow(rows, []any{&id, &mt.Keys, &mt.Bytes}, func() error {
		out[id] = mt
		return nil
	})
	if err != nil {
		return nil, t.b.wrap(err, "metadata totals")
	}
	return out, nil
}

// DeleteMetadata removes one key and bumps the document's updated_at;
// docex.ErrNotFound when the document or the key is absent.
func (t *tx) DeleteMetadata(ctx context.Context, docID, key string, updatedAt time.Time) error {
	if err := t.check(); err != nil {
		return err
	}
	tag, err := t.p.Exec(ctx, sqlDeleteMeta, docID, key)
	if err != nil {
		return t.b.wrap(err, "delete metadata %q of %q", key, docID)
	}
	if tag.RowsAffected() == 0 {
		var n int64
		if err := t.p.QueryRow(ctx, sqlDocumentCount, docID).Scan(&n); err != nil {
			return t.b.wrap(err, "delete metadata %q of %q", key, docID)
		}
		if n == 0 {
			return docex.Errorf(docex.ErrNotFound, "document %q not found", docID)
		}
		return docex.Errorf(docex.ErrNotFound, "document %q has no metadata %q", docID, key)
	}
	var basketID string
	err = t.p.QueryRow(ctx, sqlTouchDocument, docID, utcMicro(updatedAt)).Scan(&basketID)
	return t.b.wrap(err, "delete metadata %q of %q", key, docID)
}

// LockContent takes a transaction-scoped advisory lock on a hash of
// (schema, checksum). A hash collision only serialises more than needed.
// The lock statement is held (see pipe): the lock is taken before the
// transaction's next statement runs, in that statement's round trip.
func (t *tx) LockContent(ctx context.Context, checksum string) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.lockContentKeys([]int64{lockKey("content", t.schema, checksum)})
}

// AppendAudit records e in the tenant's audit log; the insert is held
// (see pipe) and sent with the transaction's next statement.
func (t *tx) AppendAudit(ctx context.Context, e docex.AuditEntry) error {
	if err := t.check(); err != nil {
		return err
	}
	args, err := auditArgs(e)
	if err != nil {
		return err
	}
	return t.p.later("append audit", sqlAppendAudit, args...)
}

// PutContent stores content; an existing checksum is left as it is. The
// insert is held (see pipe) and sent with the transaction's next
// statement.
func (t *tx) PutContent(ctx context.Context, checksum string, data []byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if data == nil {
		data = []byte{}
	}
	return t.p.later("store content "+checksum, sqlPutContent, checksum, data)
}

// DeleteContent removes stored content; absent is not an error. The
// delete is held (see pipe) and sent with the transaction's next
// statement.
func (t *tx) DeleteContent(ctx context.Context, checksum string) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.p.later("delete content "+checksum, sqlDelContent, checksum)
}

// sqlDeleteDocuments is sqlDeleteDocument for many documents (their
// metadata go by the foreign key's ON DELETE CASCADE); the basket
// counters are updated at the end of the transaction (tx.flushCounts).
// It runs unprepared, as the other lookups by an array (see sqlMetaOf).
const sqlDeleteDocuments = `DELETE FROM documents WHERE id = ANY($1) RETURNING id, basket_id, size`

// DeleteDocuments implements driver.DeleteBatchTx: one statement for the
// documents and their metadata, the audit entries' multi-row insert held
// (see pipe) and sent with the transaction's next statement, and the
// basket counters' updates with the commit (flushCounts, baskets in id
// order).
func (t *tx) DeleteDocuments(ctx context.Context, ids []string, audit []docex.AuditEntry) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(ids) > 0 {
		rows, err := t.p.Query(ctx, sqlDeleteDocuments, pgx.QueryExecModeExec, ids)
		if err != nil {
			return t.b.wrap(err, "delete documents")
		}
		var (
			id, basketID string
			size         int64
		)
		deleted := make(map[string]bool, len(ids))
		counts := map[string]*[2]int64{}
		_, err = pgx.ForEachRow(rows, []any{&id, &basketID, &size}, func() error {
			deleted[id] = true
			c := counts[basketID]
			if c == nil {
				c = &[2]int64{}
				counts[basketID] = c
			}
			c[0]--
			c[1] -= size
			return nil
		})
		if err != nil {
			return t.b.wrap(err, "delete documents")
		}
		for _, id := range ids {
			if !deleted[id] {
				return docex.Errorf(docex.ErrNotFound, "document %q not found", id)
			}
			delete(deleted, id) // an id given twice is not found the second time
		}
		if t.counts == nil {
			t.counts = map[string]*[2]int64{}
		}
		for basketID, c := range counts {
			if have := t.counts[basketID]; have != nil {
				have[0] += c[0]
				have[1] += c[1]
			} else {
				t.counts[basketID] = c
			}
		}
	}
	if len(audit) == 0 {
		return nil
	}
	args, err := auditsArgs(audit)
	if err != nil {
		return err
	}
	return t.p.later("append audit", sqlAppendAudits, args...)
}

var _ driver.DeleteBatchTx = (*tx)(nil)
