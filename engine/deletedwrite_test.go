package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestDeletedTenantWriteMakesNoDirectory: a write through a store of a
// tenant deleted since the store was opened (a worker's step of it
// finishing) fails with docex.ErrTenantUnknown, in the words of a store
// of a deleted tenant, and makes no content directory of the tenant:
// before, staging its content made tenants/<id>/<incarnation>/tmp (and
// a pack directory) again, which only docex gc --grace 0s removed. For
// content packed (small), spilled to a file (larger than a pack's), and
// with packing off.
func TestDeletedTenantWriteMakesNoDirectory(t *testing.T) {
	for _, c := range []struct {
		name    string
		packMax int64
		size    int
	}{{"packed", 0, 10}, {"spilled", 0, 200 << 10}, {"files", -1, 10}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			be, dir := engine.OpenTestSQLite(t)
			content := filepath.Join(dir, "content")
			eng := startEngine(t, be, engine.Config{MultiTenancy: true, ContentDir: content, ContentPackMax: c.packMax, NoContentSync: true}, "acme")
			s := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
			b, err := s.CreateBasket(ctx, "in")
			if err != nil {
				t.Fatal(err)
			}
			// A first document: the tenant's directory exists, and goes
			// with the deletion.
			if _, err := s.AddDocument(ctx, b.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("first")}); err != nil {
				t.Fatal(err)
			}
			tenantDir := filepath.Join(content, "tenants", "acme")
			if _, err := os.Stat(tenantDir); err != nil {
				t.Fatalf("the tenant's content directory before the deletion: %v", err)
			}
			_, err = s.AddThroughDeletedStoreForTest(ctx, b.ID, []engine.NewDocument{{Name: "b.txt", Content: strings.NewReader(strings.Repeat("x", c.size))}}, func() {
				if err := eng.Provisioner("ops").Delete(ctx, "acme"); err != nil {
					t.Fatal(err)
				}
			})
			if !errors.Is(err, docex.ErrTenantUnknown) || !strings.Contains(err.Error(), `tenant "acme" was deleted since the store was opened`) {
				t.Errorf("write through a store of the deleted tenant: %v, want %v: tenant \"acme\" was deleted since the store was opened", err, docex.ErrTenantUnknown)
			}
			if ents, err := os.ReadDir(filepath.Join(content, "tenants")); err != nil || len(ents) != 0 {
				var names []string
				filepath.WalkDir(filepath.Join(content, "tenants"), func(p string, _ os.DirEntry, _ error) error {
					names = append(names, p)
					return nil
				})
				t.Errorf("content directories after the write of the deleted tenant: %v (%v), want none", names, err)
			}
		})
	}
}
