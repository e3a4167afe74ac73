package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// store is a driver.TenantStore over one tenant database (or, in local
// mode, over the system file).
type store struct {
	reader
	b      *Backend
	h      *handle // nil for the local store
	db     *db
	tenant docex.Tenant
	once   sync.Once
	// checked is the system database's generation at which the tenant's
	// registry check last passed for a read (see checkRead).
	checked atomic.Pointer[sysGen]
}

func (s *store) Tenant() docex.Tenant { return s.tenant }

func (s *store) Close() error {
	s.once.Do(func() {
		if s.h != nil {
			s.b.release(s.h)
		}
	})
	return nil
}

// Write implements driver.TenantStore: a BEGIN IMMEDIATE transaction on
// the database's single write connection, shared with concurrent writers
// through group commit (each in a savepoint of its own; see groupCommitter).
func (s *store) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	return s.write(ctx, fn, false)
}

// WriteIsolated implements driver.TenantStore: Write in a transaction of
// its own, never grouped with other writes.
func (s *store) WriteIsolated(ctx context.Context, fn func(tx driver.Tx) error) error {
	return s.write(ctx, fn, true)
}

func (s *store) write(ctx context.Context, fn func(tx driver.Tx) error, alone bool) error {
	s.db.wc.prepareMissed(ctx)
	enqueued := false
	err := s.db.group.run(ctx, s.db.w, func(t *sql.Tx) error {
		if s.h != nil {
			// Holding the write lock: a suspension or deletion that
			// committed before is seen here (see Backend.drain).
			if err := s.b.checkRegistered(ctx, s.tenant); err != nil {
				return err
			}
		}
		q := newCachedTx(t, s.db.wc)
		x := &tx{reader: reader{q: q, audit: s.audit}, t: q}
		err := fn(x)
		enqueued = x.enqueued
		return err
	}, alone)
	if isBusy(err) {
		err = busyError(err)
	}
	if err == nil && enqueued {
		s.b.queue.wake(s.tenant.ID) // a job was committed: workers of this process look at once
	}
	return err
}

// snap runs fn with a reader whose statements all read one snapshot: a
// read transaction on the read pool (in WAL mode it reads the database as
// of its first statement), or r itself when r is a transaction's. A read
// of a document's row, then of its metadata, so never returns halves of
// two commits. It returns fn's error, or the error of BEGIN.
//
// On a tenant store's pool (guardedPool) the store's checkRead runs first,
// once for the snapshot, and an error goes through its readFailed.
func (r reader) snap(ctx context.Context, fn func(r reader) error) error {
	switch p := r.q.(type) {
	case guardedPool:
		if err := p.s.checkRead(ctx); err != nil {
			return err
		}
		return p.s.readFailed(ctx, r.snapOn(ctx, p.cachedPool, fn))
	case cachedPool:
		return r.snapOn(ctx, p, fn)
	}
	return fn(r)
}

// snapOn runs fn in a read transaction on the pool p. The snapshot's
// statements come from the pool's statement cache (cachedTx: each
// connection prepares a statement once and keeps it); queries a snapshot
// met that the cache has not prepared yet are prepared here first, before
// BEGIN, since preparing on the pool needs a connection the snapshot does
// not hold. Without this, queries only ever run in snapshots were never
// prepared and each snapshot parsed them again.
func (r reader) snapOn(ctx context.Context, p cachedPool, fn func(r reader) error) error {
	p.c.prepareMissed(ctx)
	t, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer t.Rollback() //nolint:errcheck // a read transaction: nothing to keep
	return withCancel(ctx, fn(reader{q: newCachedTx(t, p.c), audit: r.audit}))
}

// reader implements driver.Reader over a pool or a transaction.
type reader struct {
	q     querier
	audit string
}

// basketCols: the stats are counters kept by the write methods, so reading
// a basket costs the same at 10 or 1M documents.
const basketCols = `b.id, b.name, b.created_at, b.doc_count, b.bytes,
	coalesce((SELECT p.pipeline FROM basket_pipelines p WHERE p.basket_id = b.id), '')`

func scanBasket(row interface{ Scan(...any) error }) (docex.Basket, error) {
	var b docex.Basket
	var created int64
	err := row.Scan(&b.ID, &b.Name, &created, &b.DocumentCount, &b.Bytes, &b.Pipeline)
	b.CreatedAt = fromMicros(created)
	return b, err
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return docex.Errorf(docex.ErrNotFound, format, args...)
	}
	return err
}

func (r reader) Basket(ctx context.Context, id string) (docex.Basket, error) {
	b, err := scanBasket(r.q.QueryRowContext(ctx, `SELECT `+basketCols+` FROM baskets b WHERE b.id = ?`, id))
	return b, notFound(err, "basket %q not found", id)
}

func (r reader) BasketByName(ctx context.Context, name string) (docex.Basket, error) {
	b, err := scanBasket(r.q.QueryRowContext(ctx, `SELECT `+basketCols+` FROM baskets b WHERE b.name = ?`, name))
	return b, notFound(err, "basket %q not found", name)
}

func (r reader) Baskets(ctx context.Context, page docex.Page) ([]docex.Basket, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := r.q.QueryContext(ctx, `SELECT `+basketCols+` FROM baskets b ORDER BY b.name LIMIT ? OFFSET ?`, page.Limit, page.Offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []docex.Basket{}
	for rows.Next() {
		b, err := scanBasket(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

const docCols = `d.id, d.basket_id, d.name, d.content_type, d.size, d.checksum, d.status, d.created_at, d.updated_at`

func scanDoc(row interface{ Scan(...any) error }) (docex.Document, error) {
	var d docex.Document
	var c, u int64
	err := row.Scan(&d.ID, &d.BasketID, &d.Name, &d.ContentType, &d.Size, &d.Checksum, &d.Status, &c, &u)
	d.CreatedAt, d.UpdatedAt = fromMicros(c), fromMicros(u)
	return d, err
}

// Document returns the document with its metadata, or
// docex.ErrNotFound.
func (r reader) Document(ctx context.Context, id string) (docex.Document, error) {
	d, err := r.docWithMeta(ctx, `d.id = ?`, id)
	return d, notFound(err, "document %q not found", id)
}

// DocumentByChecksum returns the basket's document with that content and
// its metadata, or docex.ErrNotFound.
func (r reader) DocumentByChecksum(ctx context.Context, basketID, checksum string) (docex.Document, error) {
	d, err := r.docWithMeta(ctx, `d.basket_id = ? AND d.checksum = ?`, basketID, checksum)
	return d, notFound(err, "no document with checksum %s", checksum)
}

// docWithMeta returns the document where cond holds (at most one does)
// with its metadata, read by one statement (so of one commit: the row and
// the metadata read apart could be of two), or sql.ErrNoRows.
func (r reader) docWithMeta(ctx context.Context, cond string, args ...any) (docex.Document, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+docCols+`, m.key, m.vtype, m.value
		FROM documents d LEFT JOIN metadata m ON m.document_id = d.id WHERE `+cond, args...)
	if err != nil {
		return docex.Document{}, err
	}
	defer rows.Close()
	var d docex.Document
	found := false
	for rows.Next() {
		var c, u int64
		var key, text sql.NullString
		var vt sql.NullInt64
		if err := rows.Scan(&d.ID, &d.BasketID, &d.Name, &d.ContentType, &d.Size, &d.Checksum, &d.Status, &c, &u, &key, &vt, &text); err != nil {
			return docex.Document{}, err
		}
		if !found {
			found = true
			d.CreatedAt, d.UpdatedAt = fromMicros(c), fromMicros(u)
			d.Metadata = map[string]docex.Value{}
		}
		if key.Valid {
			v, err := docex.Decode(docex.ValueType(vt.Int64), text.String)
			if err != nil {
				return docex.Document{}, err
			}
			d.Metadata[key.String] = v
		}
	}
	if err := rows.Err(); err != nil {
		return docex.Document{}, err
	}
	if !found {
		return docex.Document{}, sql.ErrNoRows
	}
	return d, nil
}

func orderBy(o docex.Order, idCol, nameCol string) string {
	switch o {
	case docex.OrderCreatedDesc:
		return idCol + " DESC"
	case docex.OrderName:
		return nameCol + ", " + idCol
	}
	return idCol
}

func (r reader) Documents(ctx context.Context, basketID string, page docex.Page) ([]docex.Document, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return r.queryDocs(ctx, `SELECT `+docCols+` FROM documents d WHERE d.basket_id = ? ORDER BY `+orderBy(page.Order, "d.id", "d.name")+` LIMIT ? OFFSET ?`,
		basketID, page.Limit, page.Offset)
}

func (r reader) DocumentsByName(ctx context.Context, basketID, name string, page docex.Page) ([]docex.Document, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return r.queryDocs(ctx, `SELECT `+docCols+` FROM documents d WHERE d.basket_id = ? AND d.name = ? ORDER BY d.id LIMIT ? OFFSET ?`,
		basketID, name, page.Limit, page.Offset)
}

var _ driver.DocumentIDsReader = (*store)(nil)

var (
	_ driver.KeyedIDsReader = (*store)(nil)
	_ driver.KeyedIDsReader = (*tx)(nil)
)

// DocumentIDsWithKey implements driver.KeyedIDsReader: Documents's page
// as ids, each with whether it has metadata key key (a primary-key probe,
// no value read).
func (r reader) DocumentIDsWithKey(ctx context.Context, basketID string, page docex.Page, key string) ([]driver.KeyedID, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	rows, err := r.q.QueryContext(ctx, `SELECT d.id, EXISTS (SELECT 1 FROM metadata m WHERE m.document_id = d.id AND m.key = ?)
		FROM documents d WHERE d.basket_id = ? ORDER BY `+orderBy(page.Order, "d.id", "d.name")+` LIMIT ? OFFSET ?`,
		key, basketID, page.Limit, page.Offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.KeyedID{}
	for rows.Next() {
		var k driver.KeyedID
		if err := rows.Scan(&k.ID, &k.HasKey); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DocumentIDsByName implements driver.DocumentIDsReader: the ids of
// DocumentsByName's page, without metadata.
func (r reader) DocumentIDsByName(ctx context.Context, basketID, name string, page docex.Page) ([]string, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return r.queryIDs(ctx, `SELECT d.id FROM documents d WHERE d.basket_id = ? AND d.name = ? ORDER BY d.id LIMIT ? OFFSET ?`,
		basketID, name, page.Limit, page.Offset)
}

// FindDocumentIDs implements driver.DocumentIDsReader: the ids of
// FindDocuments's page, without the count and without metadata.
func (r reader) FindDocumentIDs(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]string, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	if len(filters) == 0 {
		return nil, docex.Errorf(docex.ErrInvalid, "no filters")
	}
	where, args := findWhere(basketID, filters)
	return r.queryIDs(ctx, `SELECT d.id FROM metadata m0 JOIN documents d ON d.id = m0.document_id WHERE `+where+
		` ORDER BY `+orderBy(page.Order, "m0.document_id", "d.name")+` LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
}

// queryIDs returns the ids query selects.
func (r reader) queryIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// findWhere builds the metadata match: the first filter drives the
// metadata_find index (rows come out in document id order), the others are
// primary-key probes.
func findWhere(basketID string, filters []docex.MetaFilter) (string, []any) {
	var sb strings.Builder
	args := []any{basketID, filters[0].Key, int(filters[0].Value.Type()), filters[0].Value.Canonical()}
	sb.WriteString(`m0.basket_id = ? AND m0.key = ? AND m0.vtype = ? AND m0.value = ?`)
	for _, f := range filters[1:] {
		sb.WriteString(` AND EXISTS (SELECT 1 FROM metadata m WHERE m.document_id = m0.document_id AND m.key = ? AND m.vtype = ? AND m.value = ?)`)
		args = append(args, f.Key, int(f.Value.Type()), f.Value.Canonical())
	}
	return sb.String(), args
}

// FindDocuments returns a page of the documents that match every filter,
// with their metadata, and how many match in all (one snapshot).
func (r reader) FindDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) (docs []docex.Document, total int64, err error) {
	err = r.snap(ctx, func(r reader) error {
		docs, total, err = r.findDocuments(ctx, basketID, filters, page)
		return err
	})
	return docs, total, err
}

func (r reader) findDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error) {
	return r.findDocumentsWith(ctx, basketID, filters, page, r.queryDocs)
}

// findDocumentsWith is findDocuments reading the page's documents with
// query (queryDocs, or scanDocs without their metadata).
func (r reader) findDocumentsWith(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page,
	query func(ctx context.Context, query string, args ...any) ([]docex.Document, error)) ([]docex.Document, int64, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, 0, err
	}
	if len(filters) == 0 {
		return nil, 0, docex.Errorf(docex.ErrInvalid, "no filters")
	}
	where, args := findWhere(basketID, filters)
	var total int64
	if err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM metadata m0 WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if total == 0 {
		return []docex.Document{}, 0, nil
	}
	docs, err := query(ctx, `SELECT `+docCols+` FROM metadata m0 JOIN documents d ON d.id = m0.document_id WHERE `+where+
		` ORDER BY `+orderBy(page.Order, "m0.document_id", "d.name")+` LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
	return docs, total, err
}

// queryDocs returns the documents query selects, with their metadata
// (one snapshot).
func (r reader) queryDocs(ctx context.Context, query string, args ...any) (docs []docex.Document, err error) {
	err = r.snap(ctx, func(r reader) error { docs, err = r.queryDocsIn(ctx, query, args...); return err })
	return docs, err
}

func (r reader) queryDocsIn(ctx context.Context, query string, args ...any) ([]docex.Document, error) {
	docs, err := r.scanDocs(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return docs, r.loadMeta(ctx, docs)
}

// scanDocs returns the documents query selects, without their metadata.
func (r reader) scanDocs(ctx context.Context, query string, args ...any) ([]docex.Document, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	docs := []docex.Document{}
	for rows.Next() {
		d, err := scanDoc(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		docs = append(docs, d)
	}
	rows.Close()
	return docs, rows.Err()
}

// loadMeta fills the Metadata of docs with one query.
func (r reader) loadMeta(ctx context.Context, docs []docex.Document) error {
	if len(docs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(docs))
	args := make([]any, len(docs))
	for i := range docs {
		docs[i].Metadata = map[string]docex.Value{}
		idx[docs[i].ID] = i
		args[i] = docs[i].ID
	}
	q := `SELECT document_id, key, vtype, value FROM metadata WHERE document_id IN (?` + strings.Repeat(",?", len(docs)-1) + `)`
	rows, err := r.q.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, key, text string
		var vt int
		if err := rows.Scan(&id, &key, &vt, &text); err != nil {
			return err
		}
		v, err := docex.Decode(docex.ValueType(vt), text)
		if err != nil {
			return err
		}
		docs[idx[id]].Metadata[key] = v
	}
	return rows.Err()
}

func (r reader) ContentRefsAfter(ctx context.Context, afterSum, afterID string, limit int) ([]driver.ContentRef, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT checksum, id, size FROM documents WHERE (checksum, id) > (?, ?) ORDER BY checksum, id LIMIT ?`, afterSum, afterID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.ContentRef{}
	for rows.Next() {
		var c driver.ContentRef
		if err := rows.Scan(&c.Checksum, &c.DocumentID, &c.Size); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UnreferencedContents implements driver.UnreferencedContentLister.
func (r reader) UnreferencedContents(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT c.checksum FROM content c WHERE c.checksum > ?
		AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.checksum = c.checksum) ORDER BY c.checksum LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	sums := []string{}
	for rows.Next() {
		var sum string
		if err := rows.Scan(&sum); err != nil {
			return nil, err
		}
		sums = append(sums, sum)
	}
	return sums, rows.Err()
}

func (r reader) ContentRefs(ctx context.Context, checksum string) (int64, error) {
	var n int64
	err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM documents WHERE checksum = ?`, checksum).Scan(&n)
	return n, err
}

func (r reader) Audit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error) {
	return listAudit(ctx, r.q, r.audit, page)
}

func (r reader) OpenContent(ctx context.Context, checksum string) (io.ReadCloser, error) {
	var data []byte
	err := r.q.QueryRowContext(ctx, `SELECT data FROM content WHERE checksum = ?`, checksum).Scan(&data)
	if err != nil {
		return nil, notFound(err, "content %s not found", checksum)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// ReadContents returns the content rows of checksums that exist, by
// checksum (driver.ContentsReader), in statements of up to maxInParams.
func (r reader) ReadContents(ctx context.Context, checksums []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(checksums))
	err := inChunks(checksums, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT checksum, data FROM content WHERE checksum IN (`+list+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sum string
			var data []byte
			if err := rows.Scan(&sum, &data); err != nil {
				return err
			}
			out[sum] = data
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// tx implements driver.Tx.
type tx struct {
	reader
	t        querier
	enqueued bool // InsertJob ran: wake the workers after commit
}

// isBusy reports whether err is SQLite's "database is locked" after the
// busy timeout.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// busyError is err, SQLite's "database is locked" after the busy timeout
// (another connection, usually another docex process, held the write lock
// for longer than database.sqlite.busy_timeout_ms), made an error that
// matches docex.ErrStorageUnavailable too: the CLI's storage_unavailable,
// exit 1, which pipeline jobs retry as transient, instead of an untyped
// internal error. Nothing of the write was kept. An err that is one
// already is returned as it is.
func busyError(err error) error {
	if be := (*busyErr)(nil); errors.As(err, &be) {
		return err // said once: a transaction's error passes through more than one layer
	}
	return &busyErr{err: err}
}

// ErrBusy marks a write refused because the database stayed locked by
// another writer for longer than the busy timeout (busyError); such an
// error also matches docex.ErrStorageUnavailable.
var ErrBusy = errors.New("sqlite: the database stayed locked for longer than the busy timeout")

type busyErr struct{ err error }

func (e *busyErr) Error() string {
	return fmt.Sprintf("the database stayed locked by another writer (another docex process, a docex compact) for longer than database.sqlite.busy_timeout_ms; nothing was written, try again: %v", e.err)
}

func (e *busyErr) Unwrap() []error { return []error{docex.ErrStorageUnavailable, ErrBusy, e.err} }

func isUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func (t *tx) InsertBasket(ctx context.Context, b docex.Basket) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO baskets(id, name, created_at) VALUES (?, ?, ?)`, b.ID, b.Name, micros(b.CreatedAt))
	if isUnique(err) {
		return docex.Errorf(docex.ErrExists, "basket %q already exists", b.Name)
	}
	return err
}

// LockDocuments returns the checksums of the documents of ids that
// exist. A write transaction holds the database's write lock from its
// start: no other transaction deletes, updates or locks them until this
// one ends.
func (t *tx) LockDocuments(ctx context.Context, ids []string, _ bool) (map[string]string, error) {
	found := make(map[string]string, len(ids))
	err := rowsAmong(ctx, t.t, `SELECT id, checksum FROM documents WHERE id IN (`, ids, func(rows *sql.Rows) error {
		var id, sum string
		if err := rows.Scan(&id, &sum); err != nil {
			return err
		}
		found[id] = sum
		return nil
	})
	return found, err
}

// LockBasket returns the basket with id, or docex.ErrNotFound. A write
// transaction holds the database's write lock from its start: no other
// transaction writes the basket until this one ends.
func (t *tx) LockBasket(ctx context.Context, id string, _ bool) (docex.Basket, error) {
	return t.Basket(ctx, id)
}

func (t *tx) DeleteBasket(ctx context.Context, id string) error {
	if _, err := t.t.ExecContext(ctx, `DELETE FROM metadata WHERE basket_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.t.ExecContext(ctx, `DELETE FROM documents WHERE basket_id = ?`, id); err != nil {
		return err
	}
	return affected(t.t.ExecContext(ctx, `DELETE FROM baskets WHERE id = ?`, id))("basket %q not found", id)
}

func affected(res sql.Result, err error) func(format string, args ...any) error {
	return func(format string, args ...any) error {
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return docex.Errorf(docex.ErrNotFound, format, args...)
		}
		return nil
	}
}

func (t *tx) InsertDocument(ctx context.Context, d docex.Document) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO documents(id, basket_id, name, content_type, size, checksum, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)`,
		d.ID, d.BasketID, d.Name, d.ContentType, d.Size, d.Checksum, d.Status, micros(d.CreatedAt), micros(d.UpdatedAt))
	if isUnique(err) {
		return docex.Errorf(docex.ErrDuplicateContent, "basket %s already holds content %s", d.BasketID, d.Checksum)
	}
	if err != nil {
		return fmt.Errorf("insert document: %w", err)
	}
	if err := t.count(ctx, d.BasketID, 1, d.Size); err != nil {
		return err
	}
	return t.putMeta(ctx, d.ID, d.BasketID, d.Metadata)
}

// rowsPerInsert bounds the rows of one multi-row INSERT (SQLite allows
// 32766 parameters; 10 columns x 64 rows stays far below). Full chunks
// share one statement text, so the transaction prepares each once.
const rowsPerInsert = 64

// insertRows runs "INSERT INTO <head> VALUES (?,...),(?,...) <tail>" for
// n rows of cols values each, args(i) giving row i's values, in chunks.
func (t *tx) insertRows(ctx context.Context, head, tail string, cols, n int, args func(i int, dst []any) []any) error {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	vals := make([]any, 0, cols*rowsPerInsert)
	for start := 0; start < n; start += rowsPerInsert {
		end := min(n, start+rowsPerInsert)
		vals = vals[:0]
		for i := start; i < end; i++ {
			vals = args(i, vals)
		}
		q := "INSERT INTO " + head + " VALUES " + strings.TrimSuffix(strings.Repeat(row+",", end-start), ",") + tail
		if _, err := t.t.ExecContext(ctx, q, vals...); err != nil {
			return err
		}
	}
	return nil
}

// InsertDocuments implements driver.BatchTx: multi-row INSERTs of the
// documents, their metadata and the audit entries, one count update per
// basket.
func (t *tx) InsertDocuments(ctx context.Context, docs []docex.Document, audit []docex.AuditEntry) error {
	err := t.insertRows(ctx, "documents(id, basket_id, name, content_type, size, checksum, status, created_at, updated_at)", "", 9, len(docs), func(i int, dst []any) []any {
		d := docs[i]
		return append(dst, d.ID, d.BasketID, d.Name, d.ContentType, d.Size, d.Checksum, d.Status, micros(d.CreatedAt), micros(d.UpdatedAt))
	})
	if isUnique(err) {
		return docex.Errorf(docex.ErrDuplicateContent, "a basket already holds content of a document being added")
	}
	if err != nil {
		return fmt.Errorf("insert document: %w", err)
	}
	type total struct{ docs, bytes int64 }
	totals := map[string]*total{}
	var order []string
	var meta []metaRow
	for _, d := range docs {
		tt := totals[d.BasketID]
		if tt == nil {
			tt = &total{}
			totals[d.BasketID] = tt
			order = append(order, d.BasketID)
		}
		tt.docs++
		tt.bytes += d.Size
		meta = appendMeta(meta, d.ID, d.BasketID, d.Metadata)
	}
	for _, b := range order {
		if err := t.count(ctx, b, totals[b].docs, totals[b].bytes); err != nil {
			return err
		}
	}
	if err := t.upsertMeta(ctx, meta); err != nil {
		return err
	}
	return insertAudits(ctx, t, t.audit, audit)
}

// ReplaceContents implements driver.BatchTx: multi-row upserts.
func (t *tx) ReplaceContents(ctx context.Context, checksums []string, data [][]byte) error {
	if len(checksums) != len(data) {
		return docex.Errorf(docex.ErrInvalid, "ReplaceContents: %d checksums, %d contents", len(checksums), len(data))
	}
	return t.insertRows(ctx, "content(checksum, data)", " ON CONFLICT (checksum) DO UPDATE SET data = excluded.data", 2, len(checksums), func(i int, dst []any) []any {
		return append(dst, checksums[i], data[i])
	})
}

// count adjusts a basket's document count and byte total.
func (t *tx) count(ctx context.Context, basketID string, docs, bytes int64) error {
	_, err := t.t.ExecContext(ctx, `UPDATE baskets SET doc_count = doc_count + ?, bytes = bytes + ? WHERE id = ?`, docs, bytes, basketID)
	return err
}

func (t *tx) putMeta(ctx context.Context, docID, basketID string, kv map[string]docex.Value) error {
	return t.upsertMeta(ctx, appendMeta(nil, docID, basketID, kv))
}

// metaRow is one metadata row to write.
type metaRow struct {
	doc, basket, key string
	v                docex.Value
}

// appendMeta appends the rows of a document's metadata kv, by key.
func appendMeta(rows []metaRow, docID, basketID string, kv map[string]docex.Value) []metaRow {
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		rows = append(rows, metaRow{docID, basketID, k, kv[k]})
	}
	return rows
}

// upsertMeta writes rows in multi-row upserts (a key a document has
// already takes the new value). Keys must not repeat within rows.
func (t *tx) upsertMeta(ctx context.Context, rows []metaRow) error {
	err := t.insertRows(ctx, "metadata(document_id, basket_id, key, vtype, value)",
		" ON CONFLICT (document_id, key) DO UPDATE SET vtype = excluded.vtype, value = excluded.value", 5, len(rows),
		func(i int, dst []any) []any {
			r := rows[i]
			return append(dst, r.doc, r.basket, r.key, int(r.v.Type()), r.v.Canonical())
		})
	if err != nil {
		return fmt.Errorf("set metadata: %w", err)
	}
	return nil
}

func (t *tx) UpdateContent(ctx context.Context, id string, size int64, checksum, contentType string, updatedAt time.Time) error {
	var basketID string
	var oldSize int64
	if err := t.t.QueryRowContext(ctx, `SELECT basket_id, size FROM documents WHERE id = ?`, id).Scan(&basketID, &oldSize); err != nil {
		return notFound(err, "document %q not found", id)
	}
	_, err := t.t.ExecContext(ctx, `UPDATE documents SET size = ?, checksum = ?, content_type = ?, updated_at = ? WHERE id = ?`,
		size, checksum, contentType, micros(updatedAt), id)
	if isUnique(err) {
		return docex.Errorf(docex.ErrDuplicateContent, "another document of the basket has content %s", checksum)
	}
	if err != nil {
		return err
	}
	return t.count(ctx, basketID, 0, size-oldSize)
}

func (t *tx) DeleteDocument(ctx context.Context, id string) error {
	var basketID string
	var size int64
	if err := t.t.QueryRowContext(ctx, `SELECT basket_id, size FROM documents WHERE id = ?`, id).Scan(&basketID, &size); err != nil {
		return notFound(err, "document %q not found", id)
	}
	if _, err := t.t.ExecContext(ctx, `DELETE FROM metadata WHERE document_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.t.ExecContext(ctx, `DELETE FROM documents WHERE id = ?`, id); err != nil {
		return err
	}
	return t.count(ctx, basketID, -1, -size)
}

// DeleteDocuments implements driver.DeleteBatchTx: per chunk of ids
// (maxInParams), one DELETE of their metadata and one of the documents
// (which returns their baskets and sizes); then one counter update per
// basket and the audit entries' multi-row INSERTs.
func (t *tx) DeleteDocuments(ctx context.Context, ids []string, audit []docex.AuditEntry) error {
	type total struct{ docs, bytes int64 }
	totals := map[string]*total{}
	var order []string
	deleted := make(map[string]bool, len(ids))
	err := inChunks(ids, func(list string, args []any) error {
		if _, err := t.t.ExecContext(ctx, `DELETE FROM metadata WHERE document_id IN (`+list+`)`, args...); err != nil {
			return err
		}
		rows, err := t.t.QueryContext(ctx, `DELETE FROM documents WHERE id IN (`+list+`) RETURNING id, basket_id, size`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, basketID string
			var size int64
			if err := rows.Scan(&id, &basketID, &size); err != nil {
				return err
			}
			deleted[id] = true
			tt := totals[basketID]
			if tt == nil {
				tt = &total{}
				totals[basketID] = tt
				order = append(order, basketID)
			}
			tt.docs--
			tt.bytes -= size
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !deleted[id] {
			return docex.Errorf(docex.ErrNotFound, "document %q not found", id)
		}
		delete(deleted, id) // an id given twice is not found the second time
	}
	for _, b := range order {
		if err := t.count(ctx, b, totals[b].docs, totals[b].bytes); err != nil {
			return err
		}
	}
	if len(audit) == 0 {
		return nil
	}
	return insertAudits(ctx, t, t.audit, audit)
}

var _ driver.DeleteBatchTx = (*tx)(nil)

func (t *tx) SetMetadata(ctx context.Context, docID string, kv map[string]docex.Value, updatedAt time.Time) error {
	var basketID string
	if err := t.t.QueryRowContext(ctx, `UPDATE documents SET updated_at = ? WHERE id = ? RETURNING basket_id`, micros(updatedAt), docID).Scan(&basketID); err != nil {
		return notFound(err, "document %q not found", docID)
	}
	return t.putMeta(ctx, docID, basketID, kv)
}

// MetadataTotals implements driver.Tx: one aggregate over the metadata
// primary key (document_id, key) per chunk of ids.
func (t *tx) MetadataTotals(ctx context.Context, ids []string) (map[string]driver.MetadataTotal, error) {
	out := make(map[string]driver.MetadataTotal, len(ids))
	err := inChunks(ids, func(list string, args []any) error {
		rows, err := t.t.QueryContext(ctx, `SELECT document_id, count(*), sum(octet_length(key) + octet_length(value)) FROM metadata WHERE document_id IN (`+list+`) GROUP BY document_id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var mt driver.MetadataTotal
			if err := rows.Scan(&id, &mt.Keys, &mt.Bytes); err != nil {
				return err
			}
			out[id] = mt
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("metadata totals: %w", err)
	}
	return out, nil
}

func (t *tx) DeleteMetadata(ctx context.Context, docID, key string, updatedAt time.Time) error {
	if err := affected(t.t.ExecContext(ctx, `UPDATE documents SET updated_at = ? WHERE id = ?`, micros(updatedAt), docID))("document %q not found", docID); err != nil {
		return err
	}
	return affected(t.t.ExecContext(ctx, `DELETE FROM metadata WHERE document_id = ? AND key = ?`, docID, key))("document %q has no metadata key %q", docID, key)
}

// LockContent is a no-op: SQLite write transactions are serialised.
func (t *tx) LockContent(context.Context, string) error { return nil }

func (t *tx) AppendAudit(ctx context.Context, e docex.AuditEntry) error {
	return insertAudit(ctx, t.t, t.audit, e)
}

func (t *tx) PutContent(ctx context.Context, checksum string, data []byte) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO content(checksum, data) VALUES (?, ?) ON CONFLICT (checksum) DO NOTHING`, checksum, data)
	return err
}

func (t *tx) DeleteContent(ctx context.Context, checksum string) error {
	_, err := t.t.ExecContext(ctx, `DELETE FROM content WHERE checksum = ?`, checksum)
	return err
}

// SetMetadataBatch implements driver.MetadataBatchTx: one UPDATE of the
// documents' updated_at (which also says which exist, and their baskets)
// and one multi-row upsert of their keys, merged in order.
func (t *tx) SetMetadataBatch(ctx context.Context, sets []driver.MetadataSet, updatedAt time.Time) error {
	merged, order := driver.MergeMetadataSets(sets)
	if len(order) == 0 {
		return nil
	}
	baskets := make(map[string]string, len(order))
	err := inChunks(order, func(list string, ids []any) error {
		args := append([]any{micros(updatedAt)}, ids...)
		rows, err := t.t.QueryContext(ctx, `UPDATE documents SET updated_at = ? WHERE id IN (`+list+`) RETURNING id, basket_id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, basket string
			if err := rows.Scan(&id, &basket); err != nil {
				return err
			}
			baskets[id] = basket
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("set metadata: %w", err)
	}
	var all []metaRow
	for _, id := range order {
		basket, ok := baskets[id]
		if !ok {
			return docex.Errorf(docex.ErrNotFound, "document %q not found", id)
		}
		all = appendMeta(all, id, basket, merged[id])
	}
	return t.upsertMeta(ctx, all)
}
