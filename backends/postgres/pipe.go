package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipe sends the statements of a tenant write transaction. A statement
// whose caller needs neither a result nor a typed error (an audit entry, a
// content row, the content lock, the basket counters) is held back and
// sent ahead of the transaction's next statement, in the same round trip
// (a pipelined pgx batch), or by flush before the commit. The server runs
// them in the order they were given, so every later statement sees what a
// held one did, and a held lock is taken before any later statement runs.
//
// A held statement that fails aborts the transaction: its error (a
// heldError) is returned by the call that sent it and by every later one.
type pipe struct {
	b      *Backend
	q      pgx.Tx
	held   []heldStmt
	failed error
}

type heldStmt struct {
	what, sql string
	args      []any
}

// heldError is the error of a held statement, returned by a later call:
// its PostgreSQL code says nothing about that call's own statement (see
// stmtError), but retryable still sees it (a deadlock on the content lock).
type heldError struct{ err error }

func (e *heldError) Error() string { return e.err.Error() }
func (e *heldError) Unwrap() error { return e.err }

// isHeld reports whether err is the error of a held statement.
func isHeld(err error) bool {
	var he *heldError
	return errors.As(err, &he)
}

// stmtError is pgError for the error of a call's own statement: "" when
// err is the error of a held statement sent with it.
func stmtError(err error) (code, constraint string) {
	if isHeld(err) {
		return "", ""
	}
	return pgError(err)
}

// later holds a statement back until the next round trip. It returns the
// error of an earlier held statement, if one failed.
func (p *pipe) later(what, sql string, args ...any) error {
	if p.failed != nil {
		return p.failed
	}
	p.held = append(p.held, heldStmt{what: what, sql: sql, args: args})
	return nil
}

// flush sends the held statements; it returns the first one's error.
func (p *pipe) flush(ctx context.Context) error {
	if len(p.held) == 0 {
		return p.failed
	}
	br, err := p.send(ctx, &pgx.Batch{})
	if err != nil {
		return err
	}
	return p.b.wrap(br.Close(), "send held statements")
}

// commit sends the held statements and COMMIT, in one round trip. It
// returns the first held statement's error (the transaction is then still
// open, aborted), pgx.ErrTxCommitRollback when the server rolled the
// transaction back instead, or the commit's error.
func (p *pipe) commit(ctx context.Context, schema string) error {
	b := &pgx.Batch{}
	b.Queue("commit")
	br, err := p.send(ctx, b)
	if err != nil {
		return err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback
	}
	return p.b.wrap(err, "commit on %s", schema)
}

// send sends b preceded by the held statements, in one round trip, and
// returns b's results once the held statements' results are read. It
// returns the error of a held statement instead (and closes the results).
func (p *pipe) send(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	if p.failed != nil {
		return nil, p.failed
	}
	if len(p.held) == 0 {
		return p.q.SendBatch(ctx, b), nil
	}
	held := p.held
	p.held = nil
	all := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(held)+len(b.QueuedQueries))}
	for _, h := range held {
		all.Queue(h.sql, h.args...)
	}
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	br := p.q.SendBatch(ctx, all)
	for _, h := range held {
		if _, err := br.Exec(); err != nil {
			br.Close()
			p.failed = &heldError{err: p.b.wrap(err, "%s", h.what)}
			return nil, p.failed
		}
	}
	return br, nil
}

// Exec, Query and QueryRow make pipe a querier: with statements held,
// the statement is sent with them.

func (p *pipe) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if p.direct(args) {
		if err := p.flush(ctx); err != nil {
			return pgconn.CommandTag{}, err
		}
		return p.q.Exec(ctx, sql, args...)
	}
	br, err := p.send(ctx, batchOf(sql, args))
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (p *pipe) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if p.direct(args) {
		if err := p.flush(ctx); err != nil {
			return nil, err
		}
		return p.q.Query(ctx, sql, args...)
	}
	br, err := p.send(ctx, batchOf(sql, args))
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (p *pipe) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if p.direct(args) {
		if err := p.flush(ctx); err != nil {
			return errRow{err}
		}
		return p.q.QueryRow(ctx, sql, args...)
	}
	br, err := p.send(ctx, batchOf(sql, args))
	if err != nil {
		return errRow{err}
	}
	return batchRow{br}
}

// direct reports whether a statement is sent on its own: nothing is held
// (and nothing failed), or args begin with a pgx.QueryExecMode, which a
// batch does not take (the held statements are then flushed first).
func (p *pipe) direct(args []any) bool {
	if p.failed == nil && len(p.held) == 0 {
		return true
	}
	if len(args) > 0 {
		_, ok := args[0].(pgx.QueryExecMode)
		return ok
	}
	return false
}

func batchOf(sql string, args []any) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return b
}

// batchRows are the rows of a batch's last query; closing them closes
// the batch.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is the row of a batch's last query; Scan closes the batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
