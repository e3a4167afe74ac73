package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/docex-dev/docex/driver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ driver.Compactor = (*store)(nil)

// Compact implements driver.Compactor: VACUUM on the store's write
// connection, taken from the pool for the whole run, so the process's own
// writers wait for it (other processes' writers wait up to the busy
// timeout). The connection keeps its temporary files in memory for
// writes (see dsn); VACUUM's copy of the database goes to a temporary file
// instead (temp_store FILE for its duration, in SQLite's temporary
// directory: SQLITE_TMPDIR or TMPDIR). A checkpoint then moves the
// rewritten pages from the WAL into the file and truncates both. The sizes
// are pages × page size.
// It returns the database's error; VACUUM is one transaction, so an
// interrupted or failed run leaves the database as it was. A VACUUM that
// committed while ctx was done (its last phase does not stop) is
// reported as done.
func (s *store) Compact(ctx context.Context) (driver.Compacted, error) {
	if s.h != nil {
		if err := s.b.checkRegistered(ctx, s.tenant); err != nil {
			return driver.Compacted{}, err
		}
	}
	conn, err := s.db.w.Conn(ctx)
	if err != nil {
		return driver.Compacted{}, err
	}
	defer conn.Close()
	var c driver.Compacted
	if c.Before, err = dbSize(ctx, conn); err != nil {
		return c, err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
		return c, err
	}
	_, err = conn.ExecContext(ctx, "VACUUM")
	// The driver reports ctx's error once ctx is done, also for a VACUUM
	// that went on to its commit (past its copy, VACUUM does not stop
	// for an interrupt). VACUUM is the only statement that makes the
	// database smaller (auto_vacuum is off), and this connection is the
	// process's only writer: a smaller database after the error means
	// that it committed.
	bg := context.WithoutCancel(ctx)
	err = committed(ctx, conn, c.Before, err)
	// Back to the write connection's setting, whatever VACUUM did; a
	// connection that cannot be reset is not given back to the pool.
	if _, rerr := conn.ExecContext(bg, "PRAGMA temp_store = MEMORY"); rerr != nil {
		_ = conn.Raw(func(any) error { return sqldriver.ErrBadConn })
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return c, vacuumErr(err)
	}
	// Readers of this or another process holding an old snapshot keep the
	// WAL from being truncated: the checkpoint then copies what it can,
	// and the file shrinks at a later checkpoint. It runs to its end
	// (the VACUUM committed), as does the size read after it.
	if _, err := conn.ExecContext(bg, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	c.After, err = dbSize(bg, conn)
	return c, err
}

// committed returns nil for err, VACUUM's, when ctx is done and the
// database is smaller than before bytes now (VACUUM committed); else err.
func committed(ctx context.Context, conn *sql.Conn, before int64, err error) error {
	if err != nil && ctx.Err() != nil {
		if size, serr := dbSize(context.WithoutCancel(ctx), conn); serr == nil && size < before {
			return nil
		}
	}
	return err
}

// vacuumErr is err, VACUUM's, saying where SQLite needed the space it
// did not find, or who held the lock it waited for.
func vacuumErr(err error) error {
	var se *sqlite.Error
	switch {
	case isBusy(err):
		return fmt.Errorf("vacuum: %w: another connection (a docex process writing to the tenant, or another docex compact) held the database for longer than database.sqlite.busy_timeout_ms; try again when it is done", err)
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL:
		return fmt.Errorf("vacuum: %w: VACUUM writes a temporary copy of the database to SQLite's temporary directory (%s) and the rewritten pages to the write-ahead log beside the database file; free space there, or point SQLITE_TMPDIR at a larger file system", err, sqliteTempDir())
	}
	return fmt.Errorf("vacuum: %w", err)
}

// sqliteTempDir names the directory SQLite keeps its temporary files in:
// on Unix the first of SQLITE_TMPDIR, TMPDIR, /var/tmp, /usr/tmp and /tmp
// that is a directory (its unixTempFileDir also skips one it may not
// write to), on Windows the user's temporary directory.
func sqliteTempDir() string {
	if runtime.GOOS == "windows" {
		return os.TempDir()
	}
	for _, d := range []string{os.Getenv("SQLITE_TMPDIR"), os.Getenv("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"} {
		if fi, err := os.Stat(d); d != "" && err == nil && fi.IsDir() {
			return d
		}
	}
	return "."
}

// dbSize returns the database's size in bytes: pages × page size.
func dbSize(ctx context.Context, conn *sql.Conn) (int64, error) {
	var size int64
	err := conn.QueryRowContext(ctx, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").Scan(&size)
	if err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	return size, nil
}
