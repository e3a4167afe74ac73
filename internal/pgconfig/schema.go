package pgconfig

import (
	"fmt"
	"strings"

	"github.com/docex-dev/docex/tenancy"
)

// Limits on configured schema names (bytes). A tenant schema is the prefix
// followed by a tenant id of at most tenancy.MaxTenantIDLen bytes; both stay
// within PostgreSQL's 63-byte identifier limit.
const (
	MaxBootstrapSchemaLen = 40
	MaxTenantPrefixLen    = 63 - tenancy.MaxTenantIDLen
)

// LocalSuffix names the local store's schema of a single-tenant system:
// the bootstrap schema followed by LocalSuffix.
const LocalSuffix = "_local"

// JobsSuffix names the schema of the job engine's tables (River's): the
// bootstrap schema followed by JobsSuffix.
const JobsSuffix = "_jobs"

// ValidSchemaName reports whether s is 1 to max bytes of lowercase ASCII
// letters, digits and '_', starting with a letter: a name that needs no
// quoting and cannot collide with PostgreSQL's own pg_ schemas.
func ValidSchemaName(s string, max int) bool {
	if s == "" || len(s) > max || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return !strings.HasPrefix(s, "pg_")
}

// SchemaError is a rejected schema setting: Key names the setting
// ("bootstrap_schema" or "tenant_schema_prefix"), Reason says why.
type SchemaError struct {
	Key, Value, Reason string
}

func (e *SchemaError) Error() string { return fmt.Sprintf("%s %q: %s", e.Key, e.Value, e.Reason) }

// CheckSchemas validates the bootstrap schema and the tenant schema prefix
// together: each must be a valid schema name within its limit, and none of
// the system's schemas (the bootstrap schema, the local store's, the job
// tables') may start with the prefix (a tenant could otherwise be named
// into one of them). It
// returns a *SchemaError, or nil.
func CheckSchemas(bootstrap, prefix string) error {
	if !ValidSchemaName(bootstrap, MaxBootstrapSchemaLen) {
		return &SchemaError{"bootstrap_schema", bootstrap, fmt.Sprintf("want 1 to %d bytes of a-z, 0-9 and '_', starting with a letter, not pg_", MaxBootstrapSchemaLen)}
	}
	if !ValidSchemaName(prefix, MaxTenantPrefixLen) {
		return &SchemaError{"tenant_schema_prefix", prefix, fmt.Sprintf("want 1 to %d bytes of a-z, 0-9 and '_', starting with a letter, not pg_", MaxTenantPrefixLen)}
	}
	if strings.HasPrefix("pg_", prefix) {
		return &SchemaError{"tenant_schema_prefix", prefix, "tenant schemas would start with pg_, which PostgreSQL reserves"}
	}
	for _, s := range []string{bootstrap, bootstrap + LocalSuffix, bootstrap + JobsSuffix} {
		if strings.HasPrefix(s, prefix) {
			return &SchemaError{"tenant_schema_prefix", prefix, fmt.Sprintf("the system's schema %q starts with it (the bootstrap schema %q, its local store's %q and its job tables' %q are the system's)", s, bootstrap, bootstrap+LocalSuffix, bootstrap+JobsSuffix)}
		}
	}
	return nil
}
