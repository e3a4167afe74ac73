package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

// TestManyTenantsBoundedFiles provisions 100 tenants, touches every one
// of them twice, round-robin, and checks that the number of open file
// descriptors stays bounded by the handle cache (16), not by the tenant
// count, and that every read sees only its own tenant's data.
// TestScaleManyTenantsBoundedFiles (make test-scale) does it with 1,000.
func TestManyTenantsBoundedFiles(t *testing.T) { manyTenantsBoundedFiles(t, 100) }

func manyTenantsBoundedFiles(t *testing.T, tenants int) {
	const maxOpen = 16
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: dir, MaxOpenTenants: maxOpen, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	p := eng.Provisioner("test")
	for i := range tenants {
		if _, err := p.Create(ctx, fmt.Sprintf("t%04d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	baseline := openFDs(t)
	for round := range 2 {
		for i := range tenants {
			id := fmt.Sprintf("t%04d", i)
			s := eng.As(docex.UserContext{UserID: "u", TenantID: id, Roles: []string{"admin"}})
			if round == 0 {
				b, err := s.CreateBasket(ctx, "b")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.AddDocument(ctx, b.ID, engine.NewDocument{Name: "n", Content: strings.NewReader("owner=" + id)}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			b, err := s.BasketByName(ctx, "b")
			if err != nil {
				t.Fatal(err)
			}
			docs, err := s.Documents(ctx, b.ID, docex.Page{})
			if err != nil || len(docs) != 1 {
				t.Fatalf("%s: %d docs, %v", id, len(docs), err)
			}
			c, err := s.ReadContent(ctx, docs[0].ID)
			if err != nil || string(c) != "owner="+id {
				t.Fatalf("%s read %q, %v", id, c, err)
			}
		}
		if n := be.OpenTenants(); n > maxOpen {
			t.Fatalf("%d tenant databases open, bound %d", n, maxOpen)
		}
	}
	// Each open tenant costs a few descriptors (db, wal, shm per
	// connection); without the bound, 100 tenants would cost hundreds.
	if grown := openFDs(t) - baseline; grown > maxOpen*12 {
		t.Fatalf("open descriptors grew by %d for %d tenants (bound %d handles)", grown, tenants, maxOpen)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	return len(entries)
}
