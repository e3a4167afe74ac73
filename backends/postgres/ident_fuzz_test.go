package postgres

import (
	"strings"
	"testing"
)

// FuzzTenantSchema: every string either is refused or becomes a schema name
// of only [a-z0-9_-] within PostgreSQL's 63-byte limit, whose quoted form is
// the name in plain double quotes (nothing to escape).
func FuzzTenantSchema(f *testing.F) {
	for _, s := range []string{"acme", "a-b", "select", "", "a\"b", "a;drop", "../x", strings.Repeat("a", 41), "a\x00", "Ünï"} {
		f.Add(s)
	}
	b := &Backend{cfg: Config{TenantSchemaPrefix: DefaultTenantSchemaPrefix}}
	f.Fuzz(func(t *testing.T, id string) {
		schema, err := b.tenantSchema(id)
		if err != nil {
			return
		}
		if len(schema) > 63 {
			t.Fatalf("schema %q is %d bytes", schema, len(schema))
		}
		for _, c := range schema {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				t.Fatalf("schema %q has %q", schema, c)
			}
		}
		if q := quote(schema); q != `"`+schema+`"` {
			t.Fatalf("quote(%q) = %s", schema, q)
		}
	})
}
