package sqlite

import "testing"

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
