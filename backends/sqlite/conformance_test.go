package sqlite_test

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/backends/backendtest"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

func newBackend(t testing.TB, dir string) *sqlite.Backend {
	t.Helper()
	be, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir, MaxOpenTenants: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) (driver.Backend, engine.Config) {
			return newBackend(t, t.TempDir()), engine.Config{}
		},
		Reopen: func(t *testing.T, be driver.Backend) driver.Backend {
			return newBackend(t, be.(*sqlite.Backend).Dir())
		},
	})
}

func TestPipelineConformance(t *testing.T) {
	backendtest.RunPipelines(t, backendtest.Harness{
		New: func(t *testing.T) (driver.Backend, engine.Config) {
			return newBackend(t, t.TempDir()), engine.Config{}
		},
	})
}
