package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/docex-dev/docex"
)

// TestDefaultMaxOpenTenants: the default bound of open tenant databases
// is what fits in half of the open-file limit, each holding all it may
// (docs/isolation.md, docex.yaml.example).
func TestDefaultMaxOpenTenants(t *testing.T) {
	for _, tc := range []struct{ limit, readConns, want int }{
		{0, 4, 256}, // unknown (Windows)
		{64, 4, 2},
		{256, 4, 11},
		{1024, 4, 46},
		{4096, 4, 186},
		{5631, 4, 255},
		{5632, 4, 256},
		{1 << 20, 4, 256},
		{16, 4, 1},
		{1024, 1, 102},
	} {
		if got := DefaultMaxOpenTenants(tc.limit, tc.readConns); got != tc.want {
			t.Errorf("DefaultMaxOpenTenants(%d, %d) = %d, want %d", tc.limit, tc.readConns, got, tc.want)
		}
	}
	if got := FilesPerDB(4); got != 11 {
		t.Errorf("FilesPerDB(4) = %d, want 11", got)
	}
}

// TestOpenFailedOtherCause: on an open connection, a file SQLite cannot
// open for another reason than the process running out of descriptors
// (ATTACH of a file in a missing directory: SQLITE_CANTOPEN) keeps
// SQLite's error, and errors of other codes are not probed: neither is
// ErrTooManyOpenFiles.
func TestOpenFailedOtherCause(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	sys, err := b.system(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing", "x.db")
	for _, tc := range []struct {
		query    string
		cantOpen bool
	}{
		{"ATTACH '" + missing + "' AS x", true},
		{"SELECT * FROM no_such_table", false},
	} {
		_, err := sys.w.ExecContext(ctx, tc.query)
		if err == nil || cantOpen(err) != tc.cantOpen || errors.Is(err, docex.ErrTooManyOpenFiles) {
			t.Errorf("%s: %v (cantOpen %v), want SQLite's error, cantOpen %v", tc.query, err, cantOpen(err), tc.cantOpen)
		}
	}
}
