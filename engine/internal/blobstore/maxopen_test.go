package blobstore_test

import (
	"testing"

	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/fdlimit"
)

// TestMaxOpenNamespaces: a store keeps at most an eighth of the process's
// open-file limit of namespace directories open, at most 256 (256 when
// the limit is unknown), and a new store takes its bound from the limit.
func TestMaxOpenNamespaces(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{
		{0, 256}, {8, 1}, {64, 8}, {256, 32}, {1024, 128}, {2047, 255}, {2048, 256}, {1 << 20, 256},
	} {
		if got := blobstore.MaxOpenNamespaces(tc.limit); got != tc.want {
			t.Errorf("MaxOpenNamespaces(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
	s := blobstore.NewFS(t.TempDir(), true)
	if got, want := blobstore.MaxOpen(s), blobstore.MaxOpenNamespaces(fdlimit.Limit()); got != want {
		t.Errorf("a new store holds up to %d directories open, want %d (limit %d)", got, want, fdlimit.Limit())
	}
}
