package sqlite

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"

	"github.com/docex-dev/docex"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// openFailed returns err, the error of a statement, a commit or a row
// read on a connection to the database file name, wrapped in
// docex.ErrTooManyOpenFiles (Backend.outOfFiles, naming name and the
// open-file limit) when SQLite could not open a file it needed (result
// code SQLITE_CANTOPEN, any extended code) and
// the process is out of file descriptors right now: a connection opens
// files after it connects too (the temporary file of VACUUM with
// temp_store FILE or of a large sort, once the data outgrows the cache),
// and SQLite reports such an open that failed for want of a descriptor
// as "unable to open database file (14)", without the errno.
// It returns err otherwise (nil for nil).
func (b *Backend) openFailed(name string, err error) error {
	if err == nil || !cantOpen(err) || errors.Is(err, docex.ErrTooManyOpenFiles) {
		return err
	}
	if ferr := b.outOfFiles(name, err); ferr != nil {
		return ferr
	}
	return err
}

// cantOpen reports whether err is a SQLite error saying that a file could
// not be opened: SQLITE_CANTOPEN with any extended code, the code SQLite's
// Unix and Windows VFSes return for every open that failed (the database,
// -wal, -shm, journal and temporary files; SQLITE_IOERR_SHMOPEN is
// defined but no longer returned).
func cantOpen(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CANTOPEN
}

// sqliteConn is what the SQLite driver's connections implement and
// database/sql uses.
type sqliteConn interface {
	sqldriver.Conn
	sqldriver.ConnBeginTx
	sqldriver.ConnPrepareContext
	sqldriver.ExecerContext
	sqldriver.QueryerContext
	sqldriver.Pinger
	sqldriver.SessionResetter
	sqldriver.Validator
}

// fdConn is a connection (connector.Connect) whose statements, commits
// and row reads return their errors through Backend.openFailed: the one
// place where a SQLite error of an open connection is told to be the
// process running out of file descriptors.
type fdConn struct {
	c    sqliteConn
	b    *Backend
	name string // the database file's name
}

func (c *fdConn) fail(err error) error { return c.b.openFailed(c.name, err) }

func (c *fdConn) Prepare(q string) (sqldriver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *fdConn) PrepareContext(ctx context.Context, q string) (sqldriver.Stmt, error) {
	s, err := c.c.PrepareContext(ctx, q)
	if err != nil {
		return nil, c.fail(err)
	}
	if cs, ok := s.(sqliteStmt); ok {
		return &fdStmt{s: cs, c: c}, nil
	}
	return s, nil
}

func (c *fdConn) Close() error { return c.c.Close() }

func (c *fdConn) Begin() (sqldriver.Tx, error) {
	return c.BeginTx(context.Background(), sqldriver.TxOptions{})
}

func (c *fdConn) BeginTx(ctx context.Context, opts sqldriver.TxOptions) (sqldriver.Tx, error) {
	t, err := c.c.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.fail(err)
	}
	return fdTx{t: t, c: c}, nil
}

func (c *fdConn) ExecContext(ctx context.Context, q string, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	r, err := c.c.ExecContext(ctx, q, args)
	return r, c.fail(err)
}

func (c *fdConn) QueryContext(ctx context.Context, q string, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	r, err := c.c.QueryContext(ctx, q, args)
	if err != nil {
		return nil, c.fail(err)
	}
	return fdRows{Rows: r, c: c}, nil
}

func (c *fdConn) Ping(ctx context.Context) error { return c.fail(c.c.Ping(ctx)) }

func (c *fdConn) ResetSession(ctx context.Context) error { return c.c.ResetSession(ctx) }

func (c *fdConn) IsValid() bool { return c.c.IsValid() }

// sqliteStmt is what the SQLite driver's statements implement and
// database/sql uses.
type sqliteStmt interface {
	sqldriver.Stmt
	sqldriver.StmtExecContext
	sqldriver.StmtQueryContext
}

// fdStmt is a prepared statement of an fdConn.
type fdStmt struct {
	s sqliteStmt
	c *fdConn
}

func (s *fdStmt) Close() error  { return s.s.Close() }
func (s *fdStmt) NumInput() int { return s.s.NumInput() }

func (s *fdStmt) Exec(args []sqldriver.Value) (sqldriver.Result, error) {
	r, err := s.s.Exec(args) //nolint:staticcheck // database/sql calls ExecContext; here for driver.Stmt
	return r, s.c.fail(err)
}

func (s *fdStmt) Query(args []sqldriver.Value) (sqldriver.Rows, error) {
	r, err := s.s.Query(args) //nolint:staticcheck // database/sql calls QueryContext; here for driver.Stmt
	if err != nil {
		return nil, s.c.fail(err)
	}
	return fdRows{Rows: r, c: s.c}, nil
}

func (s *fdStmt) ExecContext(ctx context.Context, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	r, err := s.s.ExecContext(ctx, args)
	return r, s.c.fail(err)
}

func (s *fdStmt) QueryContext(ctx context.Context, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	r, err := s.s.QueryContext(ctx, args)
	if err != nil {
		return nil, s.c.fail(err)
	}
	return fdRows{Rows: r, c: s.c}, nil
}

// fdTx is a transaction of an fdConn.
type fdTx struct {
	t sqldriver.Tx
	c *fdConn
}

func (t fdTx) Commit() error   { return t.c.fail(t.t.Commit()) }
func (t fdTx) Rollback() error { return t.c.fail(t.t.Rollback()) }

// fdRows are the rows of a query on an fdConn (a later step of a query
// may open a file: a sort spilling to a temporary file). io.EOF is
// returned as it is.
type fdRows struct {
	sqldriver.Rows
	c *fdConn
}

func (r fdRows) Next(dest []sqldriver.Value) error { return r.c.fail(r.Rows.Next(dest)) }
