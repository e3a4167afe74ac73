package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

// TestSpoolDirRelativeRefused: a relative Config.SpoolDir is
// docex.ErrInvalidConfig (it would depend on the working directory), at
// Bootstrap and New, before anything is created.
func TestSpoolDirRelativeRefused(t *testing.T) {
	ctx := context.Background()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{ContentStorage: engine.ContentDatabase, SpoolDir: "spool"}
	if _, err := engine.Bootstrap(ctx, be, cfg); !errors.Is(err, docex.ErrInvalidConfig) || !strings.Contains(err.Error(), `"spool"`) {
		t.Fatalf("Bootstrap with a relative spool directory: %v, want ErrInvalidConfig naming it", err)
	}
	if _, err := engine.New(ctx, be, cfg); !errors.Is(err, docex.ErrInvalidConfig) {
		t.Fatalf("New with a relative spool directory: %v, want ErrInvalidConfig", err)
	}
}
