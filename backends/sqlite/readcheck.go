package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/docex-dev/docex"
)

// sysGen is a generation of the system database: two generations read
// in the same epoch (one opening of sysVersion) are equal only when no
// connection, of this process or another, committed to the system
// database in between. state is what the platform's readGen reads: on
// Unix the wal-index header, on other systems PRAGMA data_version.
type sysGen struct {
	epoch uint64
	state [walHdrSize]byte
}

// walHdrSize is the size of one copy of the wal-index header at the start
// of a WAL database's -shm file (https://sqlite.org/walformat.html).
const walHdrSize = 48

// errGenUnsettled: the generation cannot be read right now (a commit is
// writing the wal-index header); the caller checks the registry instead.
var errGenUnsettled = errors.New("system database generation changing")

// errGenFormat: the -shm file does not hold a wal-index header this code
// knows; the caller checks the registry instead, every time.
var errGenFormat = errors.New("unknown wal-index header")

// sysVersion reads the system database's generation. It holds a
// connection of its own to the system database, opened once: while it is
// open, no other connection can reinitialise or remove the -shm file,
// and its PRAGMA data_version counts every other connection's commits (it
// never commits itself). A new opening starts a new epoch.
type sysVersion struct {
	mu     sync.RWMutex
	db     *sql.DB
	conn   *sql.Conn
	stmt   *sql.Stmt // PRAGMA data_version on conn
	shm    []byte    // Unix: the start of the system database's -shm file, mapped
	epoch  uint64
	closed bool
}

// systemGen returns the system database's current generation. It returns
// docex.ErrClosed after Close, errGenUnsettled while a commit writes the
// header, errGenFormat for a header it does not know, or the error of
// opening or reading (the connection is then closed; the next call opens
// another).
func (b *Backend) systemGen(ctx context.Context) (sysGen, error) {
	v := &b.sysVer
	v.mu.RLock()
	if v.stmt != nil {
		g, err := v.readGen(ctx)
		v.mu.RUnlock()
		if err != nil && !errors.Is(err, errGenUnsettled) && !errors.Is(err, errGenFormat) {
			v.mu.Lock()
			if v.epoch == g.epoch {
				v.dropLocked()
			}
			v.mu.Unlock()
		}
		return g, err
	}
	v.mu.RUnlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return sysGen{}, docex.ErrClosed
	}
	if v.stmt == nil {
		if err := v.openLocked(ctx, b.dsn(b.SystemPath(), "rw", false), b.SystemPath()+"-shm"); err != nil {
			v.dropLocked()
			return sysGen{}, fmt.Errorf("read system database generation: %w", err)
		}
	}
	return v.readGen(ctx)
}

func (v *sysVersion) openLocked(ctx context.Context, dsn, shm string) error {
	if v.db == nil {
		d, err := sql.Open("sqlite", dsn)
		if err != nil {
			return err
		}
		d.SetMaxOpenConns(1)
		d.SetMaxIdleConns(1)
		v.db = d
	}
	c, err := v.db.Conn(ctx)
	if err != nil {
		return err
	}
	v.conn = c
	s, err := c.PrepareContext(ctx, `PRAGMA data_version`)
	if err != nil {
		return err
	}
	v.stmt = s
	v.epoch++
	// A first read maps the -shm file and holds it for the connection's
	// life; the file opened after it is the one every connection uses.
	var n int64
	if err := s.QueryRowContext(ctx).Scan(&n); err != nil {
		return err
	}
	return v.openShm(shm)
}

func (v *sysVersion) dropLocked() {
	v.unmapShm()
	if v.stmt != nil {
		v.stmt.Close()
		v.stmt = nil
	}
	if v.conn != nil {
		v.conn.Close()
		v.conn = nil
	}
}

func (v *sysVersion) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	v.dropLocked()
	if v.db != nil {
		return v.db.Close()
	}
	return nil
}

// checkRead returns nil when a read of s may proceed: what
// Backend.checkRegistered returns (the check every write makes), run
// again only when the system database changed since it last passed for s
// (a read of PRAGMA data_version otherwise). The local store has no
// registry: always nil.
func (s *store) checkRead(ctx context.Context) error {
	if s.h == nil {
		return nil
	}
	g, err := s.b.systemGen(ctx)
	if err != nil {
		return s.b.checkRegistered(ctx, s.tenant) // no generation: check every time
	}
	if c := s.checked.Load(); c != nil && *c == g {
		return nil
	}
	if err := s.b.checkRegistered(ctx, s.tenant); err != nil {
		return err
	}
	s.checked.Store(&g)
	return nil
}

// readFailed returns the refusal of checkRegistered, read again, when a
// read of s failed with err (not sql.ErrNoRows, the context not done) and
// the tenant was deleted or suspended meanwhile (a read that passed the
// check before a deletion may meet the file gone: "unable to open
// database file"); err otherwise.
func (s *store) readFailed(ctx context.Context, err error) error {
	if err == nil || s.h == nil || errors.Is(err, sql.ErrNoRows) || ctx.Err() != nil {
		return err
	}
	if rerr := s.b.checkRegistered(ctx, s.tenant); errors.Is(rerr, docex.ErrTenantUnknown) || errors.Is(rerr, docex.ErrTenantSuspended) {
		return rerr
	}
	return err
}

// guardedPool is the read pool of a tenant store: every statement is
// preceded by the store's checkRead, and a failed one goes through
// readFailed.
type guardedPool struct {
	cachedPool
	s *store
}

func (p guardedPool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := p.s.checkRead(ctx); err != nil {
		return nil, err
	}
	res, err := p.cachedPool.ExecContext(ctx, q, args...)
	return res, p.s.readFailed(ctx, err)
}

func (p guardedPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := p.s.checkRead(ctx); err != nil {
		return nil, err
	}
	rows, err := p.cachedPool.QueryContext(ctx, q, args...)
	return rows, p.s.readFailed(ctx, err)
}

func (p guardedPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if err := p.s.checkRead(ctx); err != nil {
		return errRow(err)
	}
	row := p.cachedPool.QueryRowContext(ctx, q, args...)
	if err := row.Err(); err != nil {
		if ferr := p.s.readFailed(ctx, err); ferr != err {
			return errRow(ferr)
		}
	}
	return row
}

// errRow returns a *sql.Row whose Scan returns err (database/sql has no
// other way to make one): the row of a query on a pool whose connector
// fails with err.
func errRow(err error) *sql.Row {
	d := sql.OpenDB(failConnector{err})
	defer d.Close()
	return d.QueryRowContext(context.Background(), "")
}

type failConnector struct{ err error }

func (c failConnector) Connect(context.Context) (sqldriver.Conn, error) { return nil, c.err }
func (c failConnector) Driver() sqldriver.Driver                        { return failDriver(c) }

type failDriver failConnector

func (d failDriver) Open(string) (sqldriver.Conn, error) { return nil, d.err }
