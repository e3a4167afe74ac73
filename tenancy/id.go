package tenancy

import (
	"strings"

	"github.com/docex-dev/docex"
)

// MaxTenantIDLen is the longest tenant id. It keeps every identifier derived
// from an id (for example the PostgreSQL schema "docex_t_<id>") within
// PostgreSQL's 63-byte limit with room to spare.
const MaxTenantIDLen = 40

// reservedIDs are ids that could be confused with system objects.
var reservedIDs = [...]string{
	"system", "public", "default", "admin", "root", "bootstrap", "template0",
	"template1", "information_schema", "postgres", "sqlite", "main", "temp",
	"all", "none", "null",
}

// reservedPrefixes are prefixes of system objects in PostgreSQL and SQLite.
var reservedPrefixes = [...]string{"pg_", "pg-", "docex", "sqlite"}

// ValidateTenantID checks the tenant id rule:
//
//   - 1 to MaxTenantIDLen bytes;
//   - lowercase ASCII letters, digits, '-' and '_' only;
//   - starts with a letter, ends with a letter or digit, no two separators
//     ('-' or '_') in a row;
//   - not a reserved id (system, public, default, ...) and not starting with
//     a reserved prefix (pg_, pg-, docex, sqlite).
//
// It returns an error matching docex.ErrInvalidID (and docex.ErrInvalid) that
// says which part of the rule was broken.
func ValidateTenantID(id string) error {
	if err := ValidateSyntax(id); err != nil {
		return err
	}
	for _, r := range reservedIDs {
		if id == r {
			return docex.Errorf(docex.ErrInvalidID, "tenant id %q is reserved", id)
		}
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(id, p) {
			return docex.Errorf(docex.ErrInvalidID, "tenant id %q uses the reserved prefix %q", id, p)
		}
	}
	return nil
}

// ValidateSyntax checks the character and length rules of ValidateTenantID
// but not the reserved ids; the bootstrap tenant's configured id must pass
// it. It returns an error matching docex.ErrInvalidID.
func ValidateSyntax(id string) error {
	if id == "" {
		return docex.Errorf(docex.ErrInvalidID, "tenant id is empty")
	}
	if len(id) > MaxTenantIDLen {
		return docex.Errorf(docex.ErrInvalidID, "tenant id is %d bytes, longer than %d", len(id), MaxTenantIDLen)
	}
	if c := id[0]; c < 'a' || c > 'z' {
		return docex.Errorf(docex.ErrInvalidID, "tenant id %q must start with a lowercase letter a-z", printable(id))
	}
	prevSep := false
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevSep = false
		case c == '-' || c == '_':
			if prevSep {
				return docex.Errorf(docex.ErrInvalidID, "tenant id %q has two separators in a row", printable(id))
			}
			prevSep = true
		default:
			return docex.Errorf(docex.ErrInvalidID, "tenant id %q has a character outside a-z, 0-9, '-' and '_' at byte %d", printable(id), i)
		}
	}
	if prevSep {
		return docex.Errorf(docex.ErrInvalidID, "tenant id %q must end with a letter or digit", printable(id))
	}
	return nil
}

// printable bounds and escapes an id for an error message.
func printable(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
