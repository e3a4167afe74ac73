package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"

	"github.com/docex-dev/docex/driver"
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
// interrupted or failed run leaves the database as it was.
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
	// Back to the write connection's setting, whatever VACUUM did; a
	// connection that cannot be reset is not given back to the pool.
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = MEMORY"); rerr != nil {
		_ = conn.Raw(func(any) error { return sqldriver.ErrBadConn })
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return c, fmt.Errorf("vacuum: %w", err)
	}
	// Readers of this or another process holding an old snapshot keep the
	// WAL from being truncated: the checkpoint then copies what it can,
	// and the file shrinks at a later checkpoint.
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	c.After, err = dbSize(ctx, conn)
	return c, err
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
