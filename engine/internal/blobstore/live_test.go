package blobstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/google/uuid"
)

// TestTenantLiveMakesNothingForDeleted: a namespace of FS.TenantLive is
// made only while live returns nil. Refused before (the tenant deleted
// already), staging makes nothing; refused after (deleted while the
// directory was made: the deletion may have removed the content before
// it was made), what was made is removed. Either way the error is live's,
// and a namespace that exists is used without asking.
func TestTenantLiveMakesNothingForDeleted(t *testing.T) {
	ctx := context.Background()
	gone := docex.Errorf(docex.ErrTenantUnknown, "tenant %q was deleted since the store was opened", "acme")
	for _, c := range []struct {
		name   string
		packed int64 // NewFSPacked's packMax: 0 packs nothing
		size   int
		okFor  int // calls of live that return nil
	}{
		{"before/packed", 64 << 10, 10, 0}, {"after/packed", 64 << 10, 10, 1},
		{"before/spilled", 64 << 10, 200 << 10, 0}, {"after/spilled", 64 << 10, 200 << 10, 1},
		{"before/files", 0, 10, 0}, {"after/files", 0, 10, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s := blobstore.NewFSPacked(root, true, c.packed)
			calls := 0
			live := func(context.Context) error {
				calls++
				if calls > c.okFor {
					return gone
				}
				return nil
			}
			tc, err := s.TenantLive(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}, live)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tc.Stage(ctx, strings.NewReader(strings.Repeat("x", c.size)), 1<<20)
			if err == nil {
				defer st.Discard()
				err = tc.Sync(ctx, []driver.Staged{st})
			}
			if !errors.Is(err, docex.ErrTenantUnknown) {
				t.Fatalf("stage and sync: %v, want %v", err, gone)
			}
			// The tenants directory, which every tenant shares, may stay.
			if ents, err := os.ReadDir(filepath.Join(root, "tenants")); err != nil && !os.IsNotExist(err) || len(ents) != 0 {
				var names []string
				filepath.WalkDir(root, func(p string, _ os.DirEntry, _ error) error {
					names = append(names, p)
					return nil
				})
				t.Errorf("left in the store: %v (%v), want nothing", names[1:], err)
			}
		})
	}
	t.Run("existing", func(t *testing.T) {
		root := t.TempDir()
		s := blobstore.NewFSPacked(root, true, 64<<10)
		tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
		made, err := s.Tenant(tn)
		if err != nil {
			t.Fatal(err)
		}
		st, err := made.Stage(ctx, strings.NewReader(strings.Repeat("x", 200<<10)), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		st.Discard()
		tc, err := s.TenantLive(tn, func(context.Context) error { t.Error("live asked for a namespace that exists"); return gone })
		if err != nil {
			t.Fatal(err)
		}
		st, err = tc.Stage(ctx, strings.NewReader(strings.Repeat("x", 200<<10)), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		st.Discard()
	})
}
