package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Config configures the SQLite backend.
type Config struct {
	// Dir holds the system database and the tenant databases. Required.
	Dir string

	// SystemFile is the system database's file name in Dir (default
	// "system.db"; in local single-file mode typically "docex.db").
	SystemFile string

	// Synchronous is SQLite's synchronous setting: "full" (default: an
	// acknowledged write survives power loss) or "normal" (survives a
	// process crash such as kill -9, may lose the last commits on power
	// loss; faster).
	Synchronous string

	// MaxOpenTenants bounds the tenant databases kept open. Handles in use
	// are never closed; idle ones are closed least recently used first.
	// Default: as many as fit in half of the process's open-file limit at
	// Open (DefaultMaxOpenTenants), at most 256.
	MaxOpenTenants int

	// ReadConns is the number of read connections per database (default 4).
	// Each database also has exactly one write connection.
	ReadConns int

	// BusyTimeout is how long a write waits for another process's write
	// lock (default 5s).
	BusyTimeout time.Duration

	// LockTimeout bounds how long a tenant suspension or deletion waits
	// for the tenant's write in flight, whose process holds the tenant
	// database's write lock (default 30s, DefaultLockTimeout; a stopped
	// process, SIGSTOP, holds it until continued or killed). Past it, a
	// suspension returns an error matching ErrLockTimeout and
	// docex.ErrStorageUnavailable, the tenant suspended all the same; a
	// deletion deletes all the same and returns a *driver.DeleteWaitError.
	// Both name the processes holding the lock (on Linux).
	LockTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, docex.Errorf(docex.ErrInvalidConfig, "sqlite: data directory is empty")
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, docex.Errorf(docex.ErrInvalidConfig, "sqlite: data directory %q: %v", c.Dir, err)
	}
	c.Dir = abs
	if c.SystemFile == "" {
		c.SystemFile = "system.db"
	}
	if c.SystemFile != filepath.Base(c.SystemFile) || strings.HasPrefix(c.SystemFile, ".") {
		return c, docex.Errorf(docex.ErrInvalidConfig, "sqlite: system file %q must be a plain file name", c.SystemFile)
	}
	switch strings.ToLower(c.Synchronous) {
	case "":
		c.Synchronous = "full"
	case "full", "normal":
		c.Synchronous = strings.ToLower(c.Synchronous)
	default:
		return c, docex.Errorf(docex.ErrInvalidConfig, "sqlite: synchronous %q: want full or normal", c.Synchronous)
	}
	if c.ReadConns <= 0 {
		c.ReadConns = 4
	}
	if c.MaxOpenTenants <= 0 {
		c.MaxOpenTenants = DefaultMaxOpenTenants(fdlimit.Limit(), c.ReadConns)
	}
	if c.BusyTimeout <= 0 {
		c.BusyTimeout = 5 * time.Second
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	return c, nil
}

// FilesPerDB returns the most file descriptors one open database holds
// with readConns read connections: each connection holds the database
// file and its -wal file, and the process shares one -shm file per
// database (2 × (1 + readConns) + 1: 11 with the default 4 read
// connections; TestFilesPerDB counts them).
func FilesPerDB(readConns int) int { return 2*(1+readConns) + 1 }

// DefaultMaxOpenTenants returns the default of Config.MaxOpenTenants for
// a process that may hold limit files open (0: unknown) and databases
// with readConns read connections: the tenant databases that fit in half
// of limit when each holds all it may (FilesPerDB), at least 1 and at
// most 256; 256 when limit is unknown (Windows). The other half is left
// to the system database, the content store's directories (a quarter of
// it at most: the filesystem store keeps limit/8 of them), the content
// being read or written, sockets and the plugin cache. With the default
// 4 read connections: 46 tenants for a limit of 1,024 (at most 506
// descriptors), 186 for 4,096, 256 from 5,632 on.
func DefaultMaxOpenTenants(limit, readConns int) int {
	return fdlimit.Share(limit, 2, FilesPerDB(readConns), 256)
}

// Backend is the SQLite implementation of driver.Backend.
type Backend struct {
	cfg      Config
	now      func() time.Time
	testHook func(point string) error // nil outside tests

	tmplMu sync.Mutex
	tmpl   []byte // empty tenant database, see tenantTemplate

	drv sqldriver.Driver // modernc's, which sqlOpen's pools connect with

	sysMu sync.Mutex
	sys   *db // the system database, opened lazily

	sysVer sysVersion // the system database's generation, see systemGen

	queue *jobQueue // the job queue over the tenants' job tables

	mu      sync.Mutex
	handles map[string]*handle // by tenant id + "/" + incarnation
	lru     *list.List         // of *handle, most recently used first
	closed  bool
}

// Open returns a backend over cfg.Dir. It creates nothing: Bootstrap
// creates the directory and the system database. It returns
// docex.ErrInvalidConfig for a bad cfg.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	reg, err := sql.Open("sqlite", "") // connects to nothing: the registered driver
	if err != nil {
		return nil, err
	}
	drv := reg.Driver()
	reg.Close()
	b := &Backend{cfg: cfg, drv: drv, now: time.Now, handles: map[string]*handle{}, lru: list.New()}
	b.queue = &jobQueue{b: b}
	return b, nil
}

// Dir returns the absolute data directory.
func (b *Backend) Dir() string { return b.cfg.Dir }

// SystemPath returns the path of the system database.
func (b *Backend) SystemPath() string { return filepath.Join(b.cfg.Dir, b.cfg.SystemFile) }

func (b *Backend) tenantsDir() string { return filepath.Join(b.cfg.Dir, "tenants") }

// tenantPath returns the file of a tenant incarnation. The id and the
// incarnation are validated first; nothing else reaches the path.
func (b *Backend) tenantPath(id, incarnation string) (string, error) {
	if err := tenancy.ValidateSyntax(id); err != nil {
		return "", err
	}
	if u, err := uuid.Parse(incarnation); err != nil || u.String() != incarnation {
		return "", docex.Errorf(docex.ErrCorrupt, "tenant %q: invalid incarnation %q", id, incarnation)
	}
	return filepath.Join(b.tenantsDir(), id, incarnation+".db"), nil
}

// db is one SQLite file: a single write connection and a read pool.
type db struct {
	w, r   *sql.DB
	wc, rc *stmtCache
	group  groupCommitter
}

func (d *db) close() error {
	d.wc.close()
	d.rc.close()
	return errors.Join(d.r.Close(), d.w.Close())
}

// reads is the read pool with prepared statements.
func (d *db) reads() querier { return cachedPool{db: d.r, c: d.rc} }

// walAutocheckpoint is the WAL size, in pages, past which a commit of the
// write connection copies the WAL back into the database (SQLite's
// default is 1,000). A page changed by several commits between two
// checkpoints is copied once: at 4,000 a pipeline run wrote about 11%
// fewer bytes (docs/benchmarks.md), and the WAL, at most about 16 MiB a
// busy tenant, still fits one wal-index hash table (4,096 frames).
const walAutocheckpoint = 4000

// dsn builds a modernc DSN for path. mode is "rw" (fail if missing) or
// "rwc" (create).
func (b *Backend) dsn(path, mode string, write bool) string {
	u := url.URL{Scheme: "file", Path: path}
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(b.cfg.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+b.cfg.Synchronous+")")
	if write {
		// The write connection keeps its temporary files in memory, among
		// them the sub-journal: SQLite copies every page a statement or
		// savepoint may have to roll back there first (group commit uses
		// savepoints only after a write of a batch failed). On disk that
		// copy was half of all bytes a pipeline wrote (docs/benchmarks.md);
		// in memory it is bounded by the pages one transaction changes.
		q.Add("_pragma", "temp_store(memory)")
		q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walAutocheckpoint)+")")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	u.RawQuery = q.Encode()
	// url.URL escapes '?' and '#' and '%' in the path; SQLite decodes them.
	return u.String()
}

// openDB opens path. With create, a missing file is created (WAL mode is
// set on it); without, a missing file is an error matching fs.ErrNotExist.
func (b *Backend) openDB(ctx context.Context, path string, create bool) (*db, error) {
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
	}
	mode := "rw"
	if create {
		mode = "rwc"
		// Create the file owner-only before SQLite does (it would use
		// 0644); SQLite gives its -wal and -shm files the database file's
		// permissions.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	w := b.sqlOpen(path, b.dsn(path, mode, true))
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	r := b.sqlOpen(path, b.dsn(path, "rw", false))
	r.SetMaxOpenConns(b.cfg.ReadConns)
	r.SetMaxIdleConns(b.cfg.ReadConns)
	d := &db{w: w, r: r, wc: newStmtCache(w), rc: newStmtCache(r)}
	d.group.hook = b.hook
	return d, nil
}

// system returns the system database; with create it is created with its
// schema when missing. Without, a missing system database is
// docex.ErrNotInitialized.
func (b *Backend) system(ctx context.Context, create bool) (*db, error) {
	b.sysMu.Lock()
	defer b.sysMu.Unlock()
	if b.sys != nil {
		return b.sys, nil
	}
	if create {
		if err := os.MkdirAll(b.cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	d, err := b.openDB(ctx, b.SystemPath(), create)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, docex.Errorf(docex.ErrNotInitialized, "no docex system database at %s (run docex init)", b.SystemPath())
	}
	if err != nil {
		if ferr := b.outOfFiles("open system database", err); ferr != nil {
			return nil, ferr
		}
		return nil, fmt.Errorf("open system database: %w", err)
	}
	b.sys = d
	return d, nil
}

// outOfFiles returns err wrapped in docex.ErrTooManyOpenFiles, with what
// failed and the open-file limit, when the process ran out of file
// descriptors: err is EMFILE or ENFILE, or the process cannot open the 3
// files a connection may need to open (the database file, its -wal and
// -shm files) right now (fdlimit.Exhausted; SQLite reports an open that
// failed for want of a descriptor as "unable to open database file
// (14)", as it does a missing directory or a permission refused, and
// closes what it had opened); err already matching ErrTooManyOpenFiles (a
// connect that failed so, sqlOpen) is wrapped with what alone. It
// returns nil otherwise.
func (b *Backend) outOfFiles(what string, err error) error {
	if errors.Is(err, docex.ErrTooManyOpenFiles) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !fdlimit.IsExhaustion(err) && !fdlimit.Exhausted(3) {
		return nil
	}
	return fmt.Errorf("%s: %w (open-file limit %d; each open database holds up to %d, and up to %d tenant databases are kept open): %w",
		what, docex.ErrTooManyOpenFiles, fdlimit.Limit(), FilesPerDB(b.cfg.ReadConns), b.cfg.MaxOpenTenants, err)
}

// sqlOpen returns a pool of connections to the database file at path
// (dsn: its DSN) whose connect that failed because the process ran out
// of file descriptors is docex.ErrTooManyOpenFiles (outOfFiles), naming
// the file: database/sql connects when its pool needs a connection, at
// any query (a read that finds every open read connection busy), not
// only when the database is opened. The errors of its connections'
// statements, commits and row reads go through openFailed (fdConn).
func (b *Backend) sqlOpen(path, dsn string) *sql.DB {
	return sql.OpenDB(&connector{b: b, drv: b.drv, dsn: dsn, name: filepath.Base(path)})
}

// connector connects to one database file for sql.OpenDB (sqlOpen).
type connector struct {
	b         *Backend
	drv       sqldriver.Driver
	dsn, name string
}

// Connect opens a connection; an error matches docex.ErrTooManyOpenFiles
// when the process ran out of file descriptors (Backend.outOfFiles). The
// connection's own errors go through Backend.openFailed (fdConn).
func (c *connector) Connect(context.Context) (sqldriver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		if ferr := c.b.outOfFiles("connect to "+c.name, err); ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	if sc, ok := conn.(sqliteConn); ok {
		return &fdConn{c: sc, b: c.b, name: c.name}, nil
	}
	return conn, nil
}

// Driver returns the SQLite driver.
func (c *connector) Driver() sqldriver.Driver { return c.drv }

// Close closes every database. Stores still open become unusable.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	var errs []error
	for k, h := range b.handles {
		if h.db != nil {
			errs = append(errs, h.db.close())
		}
		delete(b.handles, k)
	}
	b.lru.Init()
	b.mu.Unlock()
	b.sysMu.Lock()
	if b.sys != nil {
		errs = append(errs, b.sys.close())
		b.sys = nil
	}
	b.sysMu.Unlock()
	errs = append(errs, b.sysVer.close())
	return errors.Join(errs...)
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
