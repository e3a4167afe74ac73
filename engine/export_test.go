package engine

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/backends/sqlite"
)

// OpenTestSQLite opens a SQLite backend in a new temporary directory of t,
// closed at the end of t, and returns it with that directory (the tests
// of package engine_test use it too).
func OpenTestSQLite(t testing.TB) (*sqlite.Backend, string) {
	t.Helper()
	dir := t.TempDir()
	be, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be, dir
}
