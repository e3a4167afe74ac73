package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
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
)

// Limits on configured schema names (bytes). A tenant schema is the prefix
// followed by a tenant id of at most tenancy.MaxTenantIDLen bytes; both stay
// below PostgreSQL's 63-byte identifier limit.
const (
	MaxBootstrapSchemaLen = 40
	MaxTenantPrefixLen    = 63 - tenancy.MaxTenantIDLen
)

// localSuffix names the local store's schema: BootstrapSchema + localSuffix.
const localSuffix = "_local"

// Config configures the backend. It is a plain value; Open fills in the
// defaults.
type Config struct {
	// DSN is the pgx connection string (URL or key=value form). Required.
	// The password never appears in an error.
	DSN string

	// BootstrapSchema is the schema of the system tables (default
	// "docex_system"): lowercase ASCII letters, digits and '_', starting
	// with a letter, at most 40 bytes. The local store of a single-tenant
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
	// schema and the local schema must not start with it.
	TenantSchemaPrefix string
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
	checks := []struct {
		what, name string
		max        int
	}{
		{"bootstrap schema", cfg.BootstrapSchema, MaxBootstrapSchemaLen},
		{"tenant schema prefix", cfg.TenantSchemaPrefix, MaxTenantPrefixLen},
	}
	for _, c := range checks {
		if !validSchemaName(c.name, c.max) {
			return cfg, docex.Errorf(docex.ErrInvalidConfig, "postgres: %s %q: want 1 to %d bytes of a-z, 0-9 and '_', starting with a letter", c.what, c.name, c.max)
		}
	}
	if strings.HasPrefix(cfg.BootstrapSchema, cfg.TenantSchemaPrefix) || strings.HasPrefix(cfg.BootstrapSchema+localSuffix, cfg.TenantSchemaPrefix) {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "postgres: bootstrap schema %q starts with the tenant schema prefix %q", cfg.BootstrapSchema, cfg.TenantSchemaPrefix)
	}
	if cfg.MaxConns < 0 || cfg.MaxConnLifetime < 0 {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "postgres: negative pool size or connection lifetime")
	}
	return cfg, nil
}

func validSchemaName(s string, max int) bool {
	if s == "" || len(s) > max || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Backend is the PostgreSQL driver.Backend. It is safe for concurrent use.
type Backend struct {
	pool   *pgxpool.Pool
	cfg    Config
	secret string // the DSN's password, masked in every error
	dsn    string // the DSN with the password masked, for messages

	sys   string // quoted system schema
	local string // unquoted schema of the local store
	sql   systemSQL

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
	secret := dsnPassword(cfg.DSN)
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: postgres: parse DSN: %s", docex.ErrInvalidConfig, mask(err.Error(), secret))
	}
	if p := pc.ConnConfig.Password; p != "" {
		secret = p
	}
	b := &Backend{
		cfg:    cfg,
		secret: secret,
		dsn:    fmt.Sprintf("host=%s port=%d user=%s database=%s", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.User, pc.ConnConfig.Database),
		sys:    quote(cfg.BootstrapSchema),
		local:  cfg.BootstrapSchema + localSuffix,
	}
	b.sql = newSystemSQL(b.sys)
	b.queue = &riverQueue{b: b, schema: jobSchemaFor(cfg.BootstrapSchema)}
	b.tenantPluginSQL, b.systemPluginSQL = newPluginSQL(""), newPluginSQL(b.sys+".")
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
// errors.Is and errors.As still see err. It returns nil for a nil err.
func (b *Backend) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &maskedError{msg: mask("postgres: "+fmt.Sprintf(format, args...)+": "+err.Error(), b.secret), err: err}
}

// maskedError is an error whose message has the password masked.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// mask replaces every occurrence of secret in s.
func mask(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, "xxxxx")
	if esc := url.QueryEscape(secret); esc != secret {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	if esc := url.PathEscape(secret); esc != secret {
		s = strings.ReplaceAll(s, esc, "xxxxx")
	}
	return s
}

var kvPassword = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// dsnPassword extracts the password of a DSN on a best-effort basis, so
// that it can be masked even when the DSN does not parse.
func dsnPassword(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			if p, ok := u.User.Password(); ok {
				return p
			}
			return u.Query().Get("password")
		}
		// Unparseable URL: mask what lies between "user:" and "@".
		rest := dsn[strings.Index(dsn, "://")+3:]
		if at := strings.LastIndex(rest, "@"); at > 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return rest[c+1 : at]
			}
		}
		return ""
	}
	if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[1], "'")
	}
	return ""
}
