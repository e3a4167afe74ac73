package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/internal/pgconfig"
	"github.com/docex-dev/docex/tenancy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Config.
const (
	DefaultBootstrapSchema    = "docex_system"
	DefaultMaxConns           = 8
	DefaultMaxConnLifetime    = 30 * time.Minute
	DefaultTenantSchemaPrefix = "docex_t_"
	// DefaultIdleInTransactionTimeout is Config.IdleInTransactionTimeout's
	// default.
	DefaultIdleInTransactionTimeout = 5 * time.Minute
	// DefaultLockTimeout is Config.LockTimeout's default.
	DefaultLockTimeout = 30 * time.Second
)

// Limits on configured schema names (bytes). A tenant schema is the prefix
// followed by a tenant id of at most tenancy.MaxTenantIDLen bytes; both stay
// below PostgreSQL's 63-byte identifier limit.
const (
	MaxBootstrapSchemaLen = pgconfig.MaxBootstrapSchemaLen
	MaxTenantPrefixLen    = pgconfig.MaxTenantPrefixLen
)

// Config configures the backend. It is a plain value; Open fills in the
// defaults.
type Config struct {
	// DSN is the pgx connection string (URL or key=value form). Required.
	// The password never appears in an error.
	DSN string

	// BootstrapSchema is the schema of the system tables (default
	// "docex_system"): lowercase ASCII letters, digits and '_', starting
	// with a letter (not "pg_"), at most 40 bytes. The local store of a single-tenant
	// system is the schema BootstrapSchema + "_local".
	BootstrapSchema string

	// MaxConns is the size of the connection pool (default 8).
	MaxConns int32

	// MaxConnLifetime closes connections after this long (default 30m).
	// PostgreSQL caches the catalog of every table a connection touches
	// (~22 KiB per tenant), so with many tenants this bounds the memory
	// of each server process.
	MaxConnLifetime time.Duration

	// TenantSchemaPrefix is prepended to a tenant id to name its schema
	// (default "docex_t_": tenant "acme" lives in "docex_t_acme"). Same
	// characters as BootstrapSchema, at most 23 bytes; the bootstrap
	// schema and the local schema must not start with it, nor may it
	// start tenant schemas with "pg_".
	TenantSchemaPrefix string

	// IdleInTransactionTimeout bounds how long a tenant transaction may
	// stay idle between two of its statements (default 5m): PostgreSQL
	// ends the session of one idle for longer
	// (idle_in_transaction_session_timeout, set in the transaction
	// itself), rolling it back. A write transaction holds its tenant's
	// registry row FOR SHARE (the suspension barrier) and its content
	// locks: without a bound, a client frozen inside one (SIGSTOP, a
	// stall, a machine gone without closing its connection) would keep
	// a suspension or deletion of the tenant waiting for ever. 0 means
	// the default: unlike PostgreSQL's setting, it does not disable it. docex's
	// own pauses inside a transaction are content work (S3 HEADs,
	// re-uploads and deletes, bounded by their request timeouts; fsyncs);
	// keep the bound above them.
	IdleInTransactionTimeout time.Duration

	// LockTimeout bounds how long suspending, resuming or deleting a
	// tenant waits for the tenant's transactions still open (default
	// 30s); past it the operation changes nothing and fails with an
	// error matching ErrBusy and docex.ErrStorageUnavailable that names
	// the transactions it waited for. 0 means the default: unlike
	// PostgreSQL's lock_timeout, it does not disable it.
	LockTimeout time.Duration
}

// withDefaults returns cfg with defaults applied, or an error matching
// docex.ErrInvalidConfig.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DSN == "" {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "postgres: DSN is required")
	}
	if cfg.BootstrapSchema == "" {
		cfg.BootstrapSchema = DefaultBootstrapSchema
	}
	if cfg.TenantSchemaPrefix == "" {
		cfg.TenantSchemaPrefix = DefaultTenantSchemaPrefix
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnLifetime == 0 {
		cfg.MaxConnLifetime = DefaultMaxConnLifetime
	}
	if cfg.IdleInTransactionTimeout == 0 {
		cfg.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	if cfg.LockTimeout == 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if err := pgconfig.CheckSchemas(cfg.BootstrapSchema, cfg.TenantSchemaPrefix); err != nil {
		return cfg, fmt.Errorf("%w: postgres: %w", docex.ErrInvalidConfig, err)
	}
	if cfg.MaxConns < 0 || cfg.MaxConnLifetime < 0 {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "postgres: negative pool size or connection lifetime")
	}
	if cfg.IdleInTransactionTimeout < time.Millisecond || cfg.LockTimeout < time.Millisecond ||
		cfg.IdleInTransactionTimeout.Milliseconds() > math.MaxInt32 || cfg.LockTimeout.Milliseconds() > math.MaxInt32 {
		// PostgreSQL takes whole milliseconds up to 2^31-1 (about 24
		// days); 0 would turn the bound off.
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "postgres: idle-in-transaction timeout %v, lock timeout %v: each must be 1ms to %v", cfg.IdleInTransactionTimeout, cfg.LockTimeout, time.Duration(math.MaxInt32)*time.Millisecond)
	}
	return cfg, nil
}

// Backend is the PostgreSQL driver.Backend. It is safe for concurrent use.
type Backend struct {
	pool   *pgxpool.Pool
	cfg    Config
	secret string // the password pgx sends, masked in every error
	dsn    string // the server, for messages (never the password)

	sys   string // quoted system schema
	local string // unquoted schema of the local store
	sql   systemSQL
	check checkSQLs
	// pipelineCheck is false when the connections' exec mode describes
	// every statement before running it (pgx.QueryExecModeDescribeExec):
	// checkSQL can then never be sent in the batch that sets the
	// search_path (see beginChecked).
	pipelineCheck bool
	// idleMS and lockMS are cfg.IdleInTransactionTimeout and
	// cfg.LockTimeout in milliseconds, the arguments of set_config.
	idleMS, lockMS string
	// checked holds the connections (*pgx.Conn) and the checkSQL variants
	// prepared on them (checkedKey), so that beginChecked pipelines a
	// variant from the start, and the oneTripSQL prepared on them (see
	// readOne); a connection leaves it when it closes. (A connection used
	// for reads has not prepared the write variant: its first write
	// begins in two round trips too, instead of a batch that fails to
	// prepare the check.)
	checked sync.Map

	tenantPluginSQL, systemPluginSQL pluginSQL

	queue *riverQueue // job delivery (River)

	// provisionHook, when set (tests only), runs before each step of
	// CreateTenant; an error aborts the provisioning there.
	provisionHook func(step string) error
}

var _ driver.Backend = (*Backend)(nil)

// Open connects to PostgreSQL and returns the backend. It does not create
// anything: run Bootstrap (docex init) once. It returns an error matching
// docex.ErrInvalidConfig for a bad cfg or DSN, and a connection error
// (with the password masked) when the server cannot be reached.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := pgconfig.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres: %w", docex.ErrInvalidConfig, err)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's message quotes the string: never shown.
		return nil, docex.Errorf(docex.ErrInvalidConfig, "postgres: the connection string's pool settings (pool_*) do not parse (the string is not shown: it may hold a password)")
	}
	b := &Backend{
		cfg:    cfg,
		secret: d.Password,
		dsn:    fmt.Sprintf("host=%s port=%d user=%s database=%s", d.Host, d.Port, d.User, d.Database),
		sys:    quote(cfg.BootstrapSchema),
		local:  cfg.BootstrapSchema + pgconfig.LocalSuffix,
	}
	b.sql = newSystemSQL(b.sys)
	b.idleMS = strconv.FormatInt(cfg.IdleInTransactionTimeout.Milliseconds(), 10)
	b.lockMS = strconv.FormatInt(cfg.LockTimeout.Milliseconds(), 10)
	b.check = b.newCheckSQLs()
	b.queue = &riverQueue{b: b, schema: jobSchemaFor(cfg.BootstrapSchema)}
	b.tenantPluginSQL, b.systemPluginSQL = newPluginSQL(""), newPluginSQL(b.sys+".")
	b.pipelineCheck = pc.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeDescribeExec
	pc.MaxConns = cfg.MaxConns
	pc.MaxConnLifetime = cfg.MaxConnLifetime
	pc.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	// An empty session search_path: an unqualified name outside a tenant
	// transaction resolves to nothing (pg_catalog only), never to public.
	pc.ConnConfig.RuntimeParams["search_path"] = ""
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "docex"
	}
	pc.AfterRelease = resetSession
	pc.BeforeClose = func(c *pgx.Conn) {
		for _, sql := range append([]string{b.check.local, b.check.tenantRead, b.check.tenantWrite}, oneTripSQL...) {
			b.checked.Delete(checkedKey{c, sql})
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, b.wrap(err, "connect to %s", b.dsn)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, b.wrap(err, "connect to %s", b.dsn)
	}
	b.pool = pool
	return b, nil
}

// resetSessionSQL undoes every session-level state a statement could have
// left on a connection, except the prepared statements of pgx's statement
// cache (DISCARD ALL would deallocate them behind pgx's back). RESET ALL
// restores the empty search_path given at connection start.
const resetSessionSQL = `CLOSE ALL; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES`

// resetSession is the pool's AfterRelease hook: it resets the connection's
// session state and reports whether the connection may be reused. pgxpool
// already destroys connections released inside a transaction.
func resetSession(c *pgx.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Exec(ctx, resetSessionSQL)
	return err == nil
}

// Close closes the pool. Stores still open become unusable.
func (b *Backend) Close() error {
	b.pool.Close()
	return nil
}

// quote returns the quoted SQL identifier of name.
func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// tenantSchema returns the unquoted schema of tenant id. It returns an
// error matching docex.ErrInvalidID when id is not a syntactically valid
// tenant id: no other string ever becomes an identifier.
func (b *Backend) tenantSchema(id string) (string, error) {
	if err := tenancy.ValidateSyntax(id); err != nil {
		return "", err
	}
	return b.cfg.TenantSchemaPrefix + id, nil
}

// lockKey returns the advisory lock key of (namespace, parts...).
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

// PostgreSQL error codes the backend maps.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeDuplicateSchema      = "42P06"
	codeUndefinedTable       = "42P01"
	codeInvalidSchemaName    = "3F000"
	codeUndefinedObject      = "42704"
	codeUndefinedFunction    = "42883"
	codeBadEncoding          = "22021" // character_not_in_repertoire: not UTF-8, or a NUL byte
	codeUntranslatable       = "22P05"
	codeLockNotAvailable     = "55P03" // lock_timeout
	codeIdleInTransaction    = "25P03" // idle_in_transaction_session_timeout
)

// pgError returns the PostgreSQL error code and constraint of err ("" when
// err is not a server error).
func pgError(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

// retryable reports whether a transaction failed on a serialisation
// failure or a deadlock and may be run again.
func retryable(err error) bool {
	code, _ := pgError(err)
	return code == codeSerializationFailure || code == codeDeadlockDetected
}

// wrap adds context to err and masks the DSN's password in its message;
// errors.Is and errors.As still see err. It returns nil for a nil err,
// and the error of a held statement (see pipe) as it is. Text the server
// refuses to hold (not UTF-8, or a NUL byte) is docex.ErrNotFound: the
// engine validates the text it writes, so only a lookup sends such text,
// and no object has such a name (SQLite finds no row either).
func (b *Backend) wrap(err error, format string, args ...any) error {
	if err == nil || isHeld(err) {
		return err
	}
	if code, _ := pgError(err); code == codeBadEncoding || code == codeUntranslatable {
		return docex.Errorf(docex.ErrNotFound, "%s: no such name (text that is not UTF-8 or holds a NUL byte names nothing)", mask(fmt.Sprintf(format, args...), b.secret))
	}
	// A connection not made for want of a descriptor (EMFILE or ENFILE:
	// "dial tcp: socket: too many open files") is ErrTooManyOpenFiles.
	msg := err.Error()
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		msg = oneLine(msg)
	}
	if code, _ := pgError(err); code == codeIdleInTransaction && !errors.Is(err, ErrIdleInTransaction) {
		// The statement named is only the one that found the session
		// ended (often a held one sent with the commit: an audit entry).
		return &idleErr{msg: mask(fmt.Sprintf("postgres: PostgreSQL ended the transaction: it stayed idle between two statements for longer than %v (database.postgres.idle_in_transaction_timeout_ms), and nothing of it was kept; its next statement (%s) got: %s",
			b.cfg.IdleInTransactionTimeout, fmt.Sprintf(format, args...), msg), b.secret), err: err}
	}
	return fdlimit.Wrap(&maskedError{msg: mask("postgres: "+fmt.Sprintf(format, args...)+": "+msg, b.secret), err: err})
}

// ErrIdleInTransaction marks the error of a tenant transaction that
// PostgreSQL ended because it stayed idle between two of its statements
// for longer than Config.IdleInTransactionTimeout (SQLSTATE 25P03, or
// the connection it closed, lost mid-transaction after that long): the
// transaction was rolled back, nothing of it was kept. Such an error also
// matches docex.ErrStorageUnavailable (exit 1): the operation may
// succeed when run again, or with a higher bound.
var ErrIdleInTransaction = errors.New("postgres: the server ended a transaction idle for longer than the idle-in-transaction timeout")

type idleErr struct {
	msg string
	err error
}

func (e *idleErr) Error() string { return e.msg }
func (e *idleErr) Unwrap() []error {
	return []error{docex.ErrStorageUnavailable, ErrIdleInTransaction, e.err}
}

// oneLine returns a connection error's message s on one line, each
// attempt once: pgx puts each connection attempt on a line of its own
// ("failed to connect to ...:\n\tATTEMPT\n\tATTEMPT"), the same one twice
// when the attempts with TLS and without are refused alike.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	out := ""
	for i, l := range lines {
		switch {
		case i == 0:
		case strings.HasSuffix(out, ":"):
			out += " "
		default:
			out += "; "
		}
		out += l
	}
	return out
}

// maskedError is an error whose message has the password masked.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// mask replaces the password in s (see pgconfig.Mask).
func mask(s, secret string) string { return pgconfig.Mask(s, secret) }
