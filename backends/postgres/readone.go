package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// oneTripSQL are the statements that readOne runs in the round trip of
// their transaction's BEGIN, search_path and check.
var oneTripSQL = []string{sqlContent}

// readOne runs one query (sql with args; scan reads its row) in a
// read-only tenant transaction of s, as inTenant does, and returns scan's
// error or inTenant's (a schema gone classified by gone). When the check
// and the query are prepared on the connection (b.checked), the
// transaction is one round trip: BEGIN, the
// search_path, the check, the query and COMMIT in one batch; the query's
// row is then read before the check's verdict, and scan's result is
// returned only when the check passes (a read-only transaction: nothing
// else is done before). Otherwise (or when the batch fails to prepare a
// statement evicted from pgx's cache: it cannot be prepared before the
// search_path is set) it runs through inTenant, which prepares them.
func (b *Backend) readOne(ctx context.Context, s *store, sql string, args []any, scan func(pgx.Row) error) error {
	if s.closed.Load() {
		return docex.Errorf(docex.ErrClosed, "postgres: store of %s is closed", s.schema)
	}
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return b.wrap(err, "begin transaction on %s", s.schema)
	}
	c := conn.Conn()
	_, checked := b.checked.Load(checkedKey{c, b.checkFor(s, pgx.ReadOnly)})
	_, prepared := b.checked.Load(checkedKey{c, sql})
	if b.pipelineCheck && checked && prepared {
		done, err := b.readOneBatch(ctx, c, s, sql, args, scan)
		if done {
			conn.Release()
			return b.gone(ctx, s, err)
		}
	}
	conn.Release()
	return b.inTenant(ctx, s, pgx.ReadOnly, func(q pgx.Tx) error {
		err := scan(q.QueryRow(ctx, sql, args...))
		if code, _ := pgError(err); code == "" {
			b.checked.Store(checkedKey{q.Conn(), sql}, struct{}{})
		}
		return err
	})
}

// readOneBatch is readOne's round trip; done is false when the batch
// failed to prepare a statement (nothing ran).
func (b *Backend) readOneBatch(ctx context.Context, c *pgx.Conn, s *store, sql string, args []any, scan func(pgx.Row) error) (done bool, err error) {
	var ck tenantCheck
	cargs, dest := checkArgs(s, &ck)
	var batch pgx.Batch
	batch.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
	batch.Queue(sqlSetPath, quote(s.schema)+", pg_temp", b.idleMS)
	batch.Queue(b.checkFor(s, pgx.ReadOnly), cargs...)
	batch.Queue(sql, args...)
	batch.Queue("commit")
	res := c.SendBatch(ctx, &batch)
	tx := res.Tx()
	defer func() {
		if c.PgConn().TxStatus() != 'I' {
			tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the transaction failed
		}
		if code, _ := pgError(err); code != "" {
			// A statement failed: pgx may have dropped the batch's
			// statements from its cache; the next transaction prepares
			// them again.
			b.checked.Delete(checkedKey{c, sql})
			b.checked.Delete(checkedKey{c, b.checkFor(s, pgx.ReadOnly)})
		}
	}()
	if _, err := res.Exec(); err != nil { // BEGIN
		res.Close()
		var pre pgx.ErrPreprocessingBatch
		if code, _ := pgError(err); errors.As(err, &pre) && code == codeUndefinedTable && c.PgConn().TxStatus() == 'I' {
			return false, nil
		}
		return true, b.wrap(err, "begin transaction on %s", s.schema)
	}
	_, cerr := res.Exec() // the search_path
	if cerr == nil {
		cerr = res.QueryRow().Scan(dest...)
	}
	var qerr, commitErr error
	if cerr == nil {
		qerr = scan(res.QueryRow())
		_, commitErr = res.Exec()
	}
	if err := res.Close(); commitErr == nil {
		commitErr = err
	}
	if cerr != nil {
		if code, _ := pgError(cerr); code == codeUndefinedTable || code == codeInvalidSchemaName {
			return true, driver.StoreDamaged(fmt.Errorf("%w: %w", docex.ErrCorrupt, b.wrap(cerr, "schema %s of the store is missing", s.schema)))
		}
		return true, b.wrap(cerr, "set search_path to %s", s.schema)
	}
	if err := b.verify(s, ck); err != nil {
		return true, err
	}
	if qerr != nil {
		return true, qerr
	}
	return true, b.wrap(commitErr, "commit on %s", s.schema)
}

// OpenContent returns a reader over database content, or
// docex.ErrNotFound: one round trip on a connection that read content
// before (readOne).
func (s *store) OpenContent(ctx context.Context, checksum string) (io.ReadCloser, error) {
	var data []byte
	err := s.b.readOne(ctx, s, sqlContent, []any{checksum}, func(row pgx.Row) error {
		err := row.Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			return docex.Errorf(docex.ErrNotFound, "content %q not found", checksum)
		}
		return s.b.wrap(err, "read content %q", checksum)
	})
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}
