package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maxWriteAttempts bounds how often Write runs fn on serialisation
// failures and deadlocks.
const maxWriteAttempts = 5

// sqlSetPath sets the transaction-local search_path ($1) and
// idle_in_transaction_session_timeout ($2, milliseconds:
// Config.IdleInTransactionTimeout), so that a tenant transaction whose
// client stops between two statements (frozen, or gone without closing
// its connection) does not hold its locks (the registry row, contents)
// for ever: the server ends its session once it stayed idle that long.
const sqlSetPath = `SELECT set_config('search_path', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`

// checkSQL is the statement that checks a tenant transaction's schema,
// run right after sqlSetPath: it returns the schemas then effectively on
// the search_path (a missing schema does not appear), the identity and
// schema version recorded in the schema's meta table (unqualified: found
// through that search_path), and, for a tenant store, the tenant's
// registry row ($1) — locked FOR SHARE in a write transaction, so that a
// concurrent suspension or deletion waits for the write to commit (the
// barrier described in docs/isolation-postgres.md). Its text is the same
// for every tenant: pgx's statement cache holds it once, and the server
// plans it again only when a connection moves to another tenant.
func (b *Backend) checkSQL(tenant bool, mode pgx.TxAccessMode) string {
	q := `SELECT current_schemas(false), m.tid, m.inc, m.ver`
	if tenant {
		q += `, r.status, r.incarnation`
	}
	q += ` FROM (SELECT max(value) FILTER (WHERE key = 'tenant_id') AS tid,
			max(value) FILTER (WHERE key = 'incarnation') AS inc,
			max(value) FILTER (WHERE key = 'schema_version') AS ver FROM meta) AS m`
	if tenant {
		q += ` LEFT JOIN LATERAL (SELECT status, incarnation FROM ` + b.sys + `.tenants WHERE id = $1`
		if mode == pgx.ReadWrite {
			q += ` FOR SHARE`
		}
		q += `) AS r ON true`
	}
	return q
}

// checkSQLs are the backend's checkSQL variants.
type checkSQLs struct{ local, tenantRead, tenantWrite string }

func (b *Backend) newCheckSQLs() checkSQLs {
	return checkSQLs{local: b.checkSQL(false, pgx.ReadOnly), tenantRead: b.checkSQL(true, pgx.ReadOnly), tenantWrite: b.checkSQL(true, pgx.ReadWrite)}
}

// tenantCheck is what checkSQL returns.
type tenantCheck struct {
	path                           []string
	tid, inc, ver, status, regIncs *string
}

// inTenant is the only way to run SQL against a tenant schema. It begins a
// transaction, sets the transaction-local search_path to the quoted schema
// followed by pg_temp (never public) and checks (checkSQL) that the schema
// exists and is first on the path, that it holds the tenant incarnation
// the store was opened for with this binary's schema version, and that the
// registry still names that incarnation (and it is still active when the
// store was opened active). Then it runs fn and commits. The tenant SQL is
// unqualified: with the schema missing, every table lookup fails (42P01)
// instead of finding another schema's table. The search_path ends with the
// transaction, so nothing stays on the pooled connection.
//
// It returns fn's error, or an error matching docex.ErrCorrupt when the
// schema is missing or holds another tenant, docex.ErrSchemaVersion,
// docex.ErrTenantUnknown when the tenant was deleted (or deleted and
// created again) since the store was opened, docex.ErrTenantSuspended when
// it was suspended since. A statement that finds the schema or one of its
// tables gone is ErrTenantUnknown when the registry no longer names the
// store's incarnation, docex.ErrCorrupt when it does (see gone).
func (b *Backend) inTenant(ctx context.Context, s *store, mode pgx.TxAccessMode, fn func(q pgx.Tx) error) error {
	return b.inTenantCommit(ctx, s, mode, func(q pgx.Tx) (func(context.Context) error, error) { return nil, fn(q) })
}

// inTenantCommit is inTenant for an fn that may return its own commit: a
// function that commits the transaction (see pipe.commit), run instead of
// pgx's Commit. When it fails with the transaction still open, the
// transaction is rolled back.
func (b *Backend) inTenantCommit(ctx context.Context, s *store, mode pgx.TxAccessMode, fn func(q pgx.Tx) (func(context.Context) error, error)) error {
	return b.gone(ctx, s, b.runInTenant(ctx, s, mode, fn))
}

// isGone reports whether code is the SQLSTATE of a statement that refers
// to something no longer there: a table (undefined_table, 42P01), the
// schema (invalid_schema_name, 3F000), an index or other object
// (undefined_object, 42704), a function (undefined_function, 42883).
// A DROP SCHEMA ... CASCADE that commits while a transaction of the
// schema waits (or before it starts) leaves it one of these.
func isGone(code string) bool {
	switch code {
	case codeUndefinedTable, codeInvalidSchemaName, codeUndefinedObject, codeUndefinedFunction:
		return true
	}
	return false
}

// gone classifies err, the error of a transaction of s, when it is one
// of isGone's: the registry (read outside the failed transaction) no
// longer naming s's incarnation means the tenant was deleted (or deleted
// and created again) since s was opened, and gone returns
// docex.ErrTenantUnknown in the words of verify; a registry that still
// names it, or that cannot be read, means the schema lost what the
// tenant still needs, and gone returns err matching docex.ErrCorrupt (so
// for the local store, which has no registry row). Any other err (nil
// too) is returned as it is: gone never returns nil for an error.
func (b *Backend) gone(ctx context.Context, s *store, err error) error {
	if err == nil {
		return nil
	}
	if code, _ := pgError(err); !isGone(code) {
		return err
	}
	if s.tenant.ID != "" {
		t, terr := b.Tenant(ctx, s.tenant.ID)
		if errors.Is(terr, docex.ErrTenantNotFound) || terr == nil && t.Incarnation != s.tenant.Incarnation {
			return docex.Errorf(docex.ErrTenantUnknown, "tenant %q was deleted since the store was opened", s.tenant.ID)
		}
	}
	if errors.Is(err, docex.ErrCorrupt) {
		if errors.Is(err, driver.ErrStoreDamaged) {
			return err
		}
		return driver.StoreDamaged(err)
	}
	return driver.StoreDamaged(fmt.Errorf("%w: %w", docex.ErrCorrupt, err))
}

// runInTenant is inTenantCommit before gone.
func (b *Backend) runInTenant(ctx context.Context, s *store, mode pgx.TxAccessMode, fn func(q pgx.Tx) (func(context.Context) error, error)) error {
	schema := s.schema
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return b.wrap(err, "begin transaction on %s", schema)
	}
	defer conn.Release() // after the Rollback below
	_, checked := b.checked.Load(checkedKey{conn.Conn(), b.checkFor(s, mode)})
	tx, c, err := b.beginChecked(ctx, conn.Conn(), s, mode, b.pipelineCheck && checked)
	if err != nil {
		return err
	}
	defer func() {
		// pgx's Rollback is a no-op after its Commit; after a commit of
		// our own the connection is outside any transaction.
		if conn.Conn().PgConn().TxStatus() != 'I' {
			tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the transaction failed
		}
	}()
	start := time.Now()
	if err := b.verify(s, c); err != nil {
		return err
	}
	commit, err := fn(tx)
	if err != nil {
		return b.lostIdle(ctx, err, conn.Conn(), start)
	}
	if commit != nil {
		return commit(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return b.wrap(err, "commit on %s", schema)
	}
	return nil
}

// lostIdle returns err, the error of a transaction's work on conn begun
// at start, as one matching ErrIdleInTransaction when it is a lost
// connection (not a server's error) and the transaction has been open
// for at least Config.IdleInTransactionTimeout: the server ends such a
// transaction's session, and its FATAL (25P03) can be lost to the
// connection's reset. A commit's error is never passed here: a
// connection lost during a commit leaves the outcome unknown.
// A 25P03 not marked by wrap is marked here.
func (b *Backend) lostIdle(ctx context.Context, err error, conn *pgx.Conn, start time.Time) error {
	if errors.Is(err, ErrIdleInTransaction) {
		return err
	}
	code, _ := pgError(err)
	switch {
	case code == codeIdleInTransaction:
		return b.wrap(err, "transaction")
	case code != "" || !conn.IsClosed() || time.Since(start) < b.cfg.IdleInTransactionTimeout ||
		ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// A connection closed by a cancelled or timed-out context is
		// the caller's interruption.
		return err
	}
	return &idleErr{msg: mask(fmt.Sprintf("postgres: the connection was lost mid-transaction, the transaction open for longer than %v (database.postgres.idle_in_transaction_timeout_ms: PostgreSQL ends a transaction that stays idle between two statements that long), and nothing of it was kept: %v",
		b.cfg.IdleInTransactionTimeout, err), b.secret), err: err}
}

// verify returns nil when c, what checkSQL returned in a transaction of
// s, shows s's schema first on the search_path, holding s's tenant and
// incarnation at this binary's schema version, and the registry still
// naming that incarnation (and the tenant active, when s was opened
// active); else the errors described at inTenant.
func (b *Backend) verify(s *store, c tenantCheck) error {
	schema := s.schema
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch {
	case len(c.path) == 0 || c.path[0] != schema:
		return driver.StoreDamaged(docex.Errorf(docex.ErrCorrupt, "postgres: schema %s of the store is missing (search_path resolves to %q)", schema, c.path))
	case c.tid == nil || *c.tid != s.tenant.ID:
		return driver.StoreDamaged(docex.Errorf(docex.ErrCorrupt, "postgres: schema %s holds tenant %q, not %q (renamed?)", schema, str(c.tid), s.tenant.ID))
	case str(c.ver) != strconv.Itoa(driver.SchemaVersion):
		return docex.Errorf(docex.ErrSchemaVersion, "postgres: store %s has schema version %q, this binary uses %d", schema, str(c.ver), driver.SchemaVersion)
	case s.tenant.ID == "":
	case c.status == nil || str(c.regIncs) != s.tenant.Incarnation:
		// Users see this refusal and the next (a write, a job waiting for
		// its tenant): the words of the SQLite store, no "postgres:".
		return docex.Errorf(docex.ErrTenantUnknown, "tenant %q was deleted since the store was opened", s.tenant.ID)
	case str(c.inc) != s.tenant.Incarnation:
		return driver.StoreDamaged(docex.Errorf(docex.ErrCorrupt, "postgres: schema %s holds incarnation %q of tenant %q, the registry names %q", schema, str(c.inc), s.tenant.ID, s.tenant.Incarnation))
	case s.tenant.Status == docex.TenantActive && *c.status != string(docex.TenantActive):
		return docex.Errorf(docex.ErrTenantSuspended, "tenant %q is %s", s.tenant.ID, *c.status)
	}
	return nil
}

// checkArgs returns the arguments of s's checkSQL and ck's fields to
// scan its row into.
func checkArgs(s *store, ck *tenantCheck) (args, dest []any) {
	dest = []any{&ck.path, &ck.tid, &ck.inc, &ck.ver}
	if s.tenant.ID != "" {
		args = []any{s.tenant.ID}
		dest = append(dest, &ck.status, &ck.regIncs)
	}
	return args, dest
}

// checkFor returns the checkSQL variant of a transaction of s in mode.
func (b *Backend) checkFor(s *store, mode pgx.TxAccessMode) string {
	switch {
	case s.tenant.ID == "":
		return b.check.local
	case mode == pgx.ReadWrite:
		return b.check.tenantWrite
	}
	return b.check.tenantRead
}

// checkedKey is a connection and a checkSQL variant prepared on it.
type checkedKey struct {
	c   *pgx.Conn
	sql string
}

// beginChecked begins a transaction on c, sets its search_path and runs
// checkSQL, in one round trip (a pgx batch): pipelined, when checkSQL is
// already prepared on c (pgx's statement cache; b.checked), or else (with
// pipelined false, or when the batch fails to prepare it, as after an
// eviction from the cache: it cannot be prepared before the search_path
// is set) in two, which prepares it. It returns
// the transaction (to roll back when the caller is done) and the check's
// result, or an error (the transaction then rolled back): docex.ErrCorrupt
// when the schema is missing.
func (b *Backend) beginChecked(ctx context.Context, c *pgx.Conn, s *store, mode pgx.TxAccessMode, pipelined bool) (pgx.Tx, tenantCheck, error) {
	var ck tenantCheck
	sql := b.checkFor(s, mode)
	args, dest := checkArgs(s, &ck)
	var batch pgx.Batch
	batch.BeginTx(txOptions(mode))
	batch.Queue(sqlSetPath, quote(s.schema)+", pg_temp", b.idleMS)
	if pipelined {
		batch.Queue(sql, args...)
	}
	res := c.SendBatch(ctx, &batch)
	tx := res.Tx()
	if _, err := res.Exec(); err != nil {
		res.Close()
		var pre pgx.ErrPreprocessingBatch
		if code, _ := pgError(err); pipelined && errors.As(err, &pre) && code == codeUndefinedTable && c.PgConn().TxStatus() == 'I' {
			return b.beginChecked(ctx, c, s, mode, false)
		}
		return nil, ck, b.wrap(err, "begin transaction on %s", s.schema)
	}
	_, err := res.Exec()
	if err == nil {
		if pipelined {
			err = res.QueryRow().Scan(dest...)
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil && !pipelined {
		if err = tx.QueryRow(ctx, sql, args...).Scan(dest...); err == nil {
			b.checked.Store(checkedKey{c, sql}, struct{}{})
		}
	}
	if err != nil {
		res.Close()
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the error is err
		if code, _ := pgError(err); code == codeUndefinedTable || code == codeInvalidSchemaName {
			return nil, ck, driver.StoreDamaged(fmt.Errorf("%w: %w", docex.ErrCorrupt, b.wrap(err, "schema %s of the store is missing", s.schema)))
		}
		return nil, ck, b.wrap(err, "set search_path to %s", s.schema)
	}
	return tx, ck, nil
}

// store is a driver.TenantStore bound to one schema.
type store struct {
	b      *Backend
	schema string       // unquoted, validated
	tenant docex.Tenant // zero for the local store
	closed atomic.Bool
}

var _ driver.TenantStore = (*store)(nil)

// Tenant returns the registry record the store was opened for (the zero
// Tenant for the local store).
func (s *store) Tenant() docex.Tenant { return s.tenant }

// Close marks the store closed; later calls return docex.ErrClosed.
func (s *store) Close() error {
	s.closed.Store(true)
	return nil
}

// read runs fn in a read-only tenant transaction.
func (s *store) read(ctx context.Context, fn func(q pgx.Tx) error) error {
	if s.closed.Load() {
		return docex.Errorf(docex.ErrClosed, "postgres: store of %s is closed", s.schema)
	}
	return s.b.inTenant(ctx, s, pgx.ReadOnly, fn)
}

// Write runs fn in one read-write transaction (READ COMMITTED, so that
// statements after LockContent see what the lock's previous holder
// committed). It runs fn again, up to 5 times in all, when the transaction
// fails with a serialisation failure (40001) or a deadlock (40P01). It
// returns fn's error, docex.ErrClosed on a closed store, or a database
// error.
func (s *store) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	if s.closed.Load() {
		return docex.Errorf(docex.ErrClosed, "postgres: store of %s is closed", s.schema)
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = s.b.inTenantCommit(ctx, s, pgx.ReadWrite, func(q pgx.Tx) (func(context.Context) error, error) {
			t := &tx{b: s.b, q: q, p: &pipe{b: s.b, q: q}, schema: s.schema, tenant: s.tenant.ID}
			defer t.done.Store(true)
			if err := fn(t); err != nil {
				return nil, err
			}
			if err := t.flushCounts(); err != nil {
				return nil, err
			}
			return func(ctx context.Context) error { return t.p.commit(ctx, s.schema) }, nil
		})
		if err == nil || attempt == maxWriteAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		backoff := time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// WriteIsolated is Write: every PostgreSQL write is a transaction of its
// own.
func (s *store) WriteIsolated(ctx context.Context, fn func(tx driver.Tx) error) error {
	return s.Write(ctx, fn)
}

// Basket returns the basket with its counters, docex.ErrNotFound, or docex.ErrClosed.
func (s *store) Basket(ctx context.Context, id string) (b docex.Basket, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { b, err = getBasket(ctx, s.b, q, sqlBasketByID, id); return err })
	return b, err
}

// BasketByName returns the basket named name, docex.ErrNotFound, or docex.ErrClosed.
func (s *store) BasketByName(ctx context.Context, name string) (b docex.Basket, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { b, err = getBasket(ctx, s.b, q, sqlBasketByName, name); return err })
	return b, err
}

// Baskets lists baskets ordered by name (byte order); docex.ErrInvalid for a bad page.
func (s *store) Baskets(ctx context.Context, page docex.Page) (out []docex.Basket, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = listBaskets(ctx, s.b, q, page); return err })
	return out, err
}

// Document returns the document with its metadata, or docex.ErrNotFound.
func (s *store) Document(ctx context.Context, id string) (d docex.Document, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { d, err = getDocument(ctx, s.b, q, docWhat(id), sqlDocumentByID, id); return err })
	return d, err
}

// DocumentByChecksum returns the basket's document with the checksum, or docex.ErrNotFound.
func (s *store) DocumentByChecksum(ctx context.Context, basketID, checksum string) (d docex.Document, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		d, err = getDocument(ctx, s.b, q, "document with checksum "+checksum, sqlDocumentByChecksum, basketID, checksum)
		return err
	})
	return d, err
}

// Documents lists a basket's documents with metadata in page order; docex.ErrInvalid for a bad page.
// DocumentsByName lists the basket's documents named name, in id order.
func (s *store) DocumentsByName(ctx context.Context, basketID, name string, page docex.Page) (out []docex.Document, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = listDocumentsByName(ctx, s.b, q, basketID, name, page); return err })
	return out, err
}

func (s *store) Documents(ctx context.Context, basketID string, page docex.Page) (out []docex.Document, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = listDocuments(ctx, s.b, q, basketID, page); return err })
	return out, err
}

// FindDocuments lists the basket's documents matching all filters and their total; docex.ErrInvalid without filters.
func (s *store) FindDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) (out []docex.Document, total int64, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		out, total, err = findDocuments(ctx, s.b, q, basketID, filters, page)
		return err
	})
	return out, total, err
}

// DocumentIDsByName implements driver.DocumentIDsReader.
func (s *store) DocumentIDsByName(ctx context.Context, basketID, name string, page docex.Page) (out []string, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = listDocumentIDsByName(ctx, s.b, q, basketID, name, page); return err })
	return out, err
}

// FindDocumentIDs implements driver.DocumentIDsReader.
func (s *store) FindDocumentIDs(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) (out []string, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = findDocumentIDs(ctx, s.b, q, basketID, filters, page); return err })
	return out, err
}

var _ driver.DocumentIDsReader = (*store)(nil)

// DocumentIDsWithKey implements driver.KeyedIDsReader.
func (s *store) DocumentIDsWithKey(ctx context.Context, basketID string, page docex.Page, key string) (out []driver.KeyedID, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = listDocumentIDsWithKey(ctx, s.b, q, basketID, page, key); return err })
	return out, err
}

// DocumentIDsWithKey implements driver.KeyedIDsReader.
func (t *tx) DocumentIDsWithKey(ctx context.Context, basketID string, page docex.Page, key string) ([]driver.KeyedID, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return listDocumentIDsWithKey(ctx, t.b, t.p, basketID, page, key)
}

var (
	_ driver.KeyedIDsReader = (*store)(nil)
	_ driver.KeyedIDsReader = (*tx)(nil)
)

// ContentRefsAfter lists documents' content references in (checksum, id) order.
func (s *store) ContentRefsAfter(ctx context.Context, afterSum, afterID string, limit int) (out []driver.ContentRef, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = contentRefsAfter(ctx, s.b, q, afterSum, afterID, limit); return err })
	return out, err
}

// UnreferencedContents implements driver.UnreferencedContentLister.
func (s *store) UnreferencedContents(ctx context.Context, after string, limit int) (sums []string, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { sums, err = unreferencedContents(ctx, s.b, q, after, limit); return err })
	return sums, err
}

// ContentRefs counts the tenant's documents with the checksum.
func (s *store) ContentRefs(ctx context.Context, checksum string) (n int64, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { n, err = contentRefs(ctx, s.b, q, checksum); return err })
	return n, err
}

// ContentRefsOf implements driver.ContentRefsReader in one query.
func (s *store) ContentRefsOf(ctx context.Context, checksums []string) (refs map[string]int64, err error) {
	if len(checksums) == 0 {
		return map[string]int64{}, nil
	}
	err = s.read(ctx, func(q pgx.Tx) error {
		refs, err = checksumLookup(ctx, s.b, q, "", checksums, map[string]docex.Document{})
		return err
	})
	return positive(refs), err
}

var _ driver.ContentRefsReader = (*store)(nil)

// Audit lists the tenant's audit log, newest first; docex.ErrInvalid for a bad page.
func (s *store) Audit(ctx context.Context, page docex.Page) (out []docex.AuditEntry, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { out, err = listAudit(ctx, s.b, q, page); return err })
	return out, err
}

// utcMicro returns t in UTC truncated to microseconds, PostgreSQL's
// timestamp precision, so stored times compare equal to what was given.
func utcMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// newIncarnation returns a fresh incarnation id.
func newIncarnation() (string, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// txOptions returns the options of a transaction of mode: a read-only one
// is REPEATABLE READ, so that its statements (a document's row, then its
// metadata) read one snapshot, never two commits' halves; a read-write
// one is READ COMMITTED (see store.Write).
func txOptions(mode pgx.TxAccessMode) pgx.TxOptions {
	if mode == pgx.ReadOnly {
		return pgx.TxOptions{AccessMode: mode, IsoLevel: pgx.RepeatableRead}
	}
	return pgx.TxOptions{AccessMode: mode}
}
