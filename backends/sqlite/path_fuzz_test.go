package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzTenantPath: a tenant id and incarnation either are refused or name a
// file exactly two levels below the tenants directory.
func FuzzTenantPath(f *testing.F) {
	inc := uuid.NewString()
	for _, s := range []string{"acme", "a-b", "..", "../x", "a/b", "", "a\x00", strings.Repeat("z", 41), "."} {
		f.Add(s, inc)
	}
	f.Add("acme", "../../etc/passwd")
	f.Add("acme", "00000000-0000-0000-0000-000000000000/..")
	b := &Backend{cfg: Config{Dir: "/data"}}
	f.Fuzz(func(t *testing.T, id, incarnation string) {
		p, err := b.tenantPath(id, incarnation)
		if err != nil {
			return
		}
		rel, err := filepath.Rel(b.tenantsDir(), p)
		if err != nil || filepath.Dir(filepath.Dir(rel)) != "." || filepath.Dir(rel) != id || strings.Contains(rel, "..") {
			t.Fatalf("tenantPath(%q, %q) = %q escapes %s", id, incarnation, p, b.tenantsDir())
		}
	})
}
