package postgres

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/backends/backendtest"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// TestConformance runs the shared backend suite, each backend on a
// throw-away database.
func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) (driver.Backend, engine.Config) {
			return openBackend(t, Config{MaxConns: 4}), engine.Config{MultiTenancy: true}
		},
		Reopen: func(t *testing.T, be driver.Backend) driver.Backend {
			b2, err := Open(context.Background(), be.(*Backend).cfg)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { b2.Close() })
			return b2
		},
	})
}

// TestPipelineConformance runs the shared pipeline and job suite.
func TestPipelineConformance(t *testing.T) {
	backendtest.RunPipelines(t, backendtest.Harness{
		New: func(t *testing.T) (driver.Backend, engine.Config) {
			return openBackend(t, Config{MaxConns: 16}), engine.Config{MultiTenancy: true}
		},
	})
}
