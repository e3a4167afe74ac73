package pgconfig

import (
	"errors"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnparsable is returned for a connection string pgx cannot parse. Its
// message never contains the string, which may hold a password.
var ErrUnparsable = errors.New("the PostgreSQL connection string does not parse (it is not shown: it may hold a password)")

// settingKeys are the keys pgconn interprets itself (all others become
// run-time parameters), minus the secret ones: password and sslpassword.
var settingKeys = []string{
	"host", "port", "database", "dbname", "user", "passfile", "connect_timeout",
	"sslmode", "ssl", "sslkey", "sslcert", "sslcertmode", "sslrootcert", "sslnegotiation",
	"sslsni", "krbspn", "krbsrvname", "target_session_attrs", "service", "servicefile",
	"min_protocol_version", "max_protocol_version", "channel_binding", "require_auth",
}

// DSN is a parsed PostgreSQL connection string.
type DSN struct {
	// HasSecret is true when the string itself carries a password or an SSL
	// key password (in either the URL or the keyword/value form, however
	// it is spelled or quoted). Passwords pgx would take from the
	// environment or a password file do not count.
	HasSecret bool
	// Password is the password pgx would send, from the string, the
	// environment (PGPASSWORD) or a password file; "" when none.
	Password string
	// Host, Port, User and Database describe the server for messages.
	Host     string
	Port     uint16
	User     string
	Database string
}

// ParseDSN parses dsn with pgx's parser (pgconn.ParseConfig). It returns
// ErrUnparsable when pgx refuses the string.
func ParseDSN(dsn string) (DSN, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return DSN{}, ErrUnparsable
	}
	d := DSN{Password: cfg.Password, Host: cfg.Host, Port: cfg.Port, User: cfg.User, Database: cfg.Database}
	// Parse again allowing every key the string holds except the secret
	// ones: pgx then refuses the string exactly when it names a secret key
	// (pgx checks only the keys written in the string, not the environment).
	allowed := append([]string(nil), settingKeys...)
	for k := range cfg.RuntimeParams {
		allowed = append(allowed, k)
	}
	if _, err := pgconn.ParseConfigWithOptions(dsn, pgconn.ParseConfigOptions{ConnStringAllowedKeys: allowed}); err != nil {
		d.HasSecret = true
	}
	return d, nil
}

// HasPassword reports whether dsn itself carries a password (see
// DSN.HasSecret). It returns ErrUnparsable for a string pgx cannot parse.
func HasPassword(dsn string) (bool, error) {
	d, err := ParseDSN(dsn)
	return d.HasSecret, err
}

// Mask returns s with every occurrence of each non-empty secret, raw or in
// the escaped forms a URL or a keyword/value string would spell it,
// replaced by "xxxxx".
func Mask(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		userinfo := strings.TrimSuffix(strings.TrimPrefix((&url.URL{User: url.UserPassword("", secret)}).String(), "//:"), "@")
		keyword := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret)
		seen := map[string]bool{}
		for _, f := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), userinfo, keyword} {
			if f != "" && !seen[f] {
				seen[f] = true
				s = strings.ReplaceAll(s, f, "xxxxx")
			}
		}
	}
	return s
}
