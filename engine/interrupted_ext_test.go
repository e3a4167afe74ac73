package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex/engine"
)

// TestInterruptedProvisionIsOneLine: a tenant create or delete
// interrupted as it failed returned errors.Join(err, ctx.Err()), a
// message of two lines ("...: context canceled\ncontext canceled") that
// the CLI printed with a literal \n. Now it is one line, and still
// matches context.Canceled.
func TestInterruptedProvisionIsOneLine(t *testing.T) {
	be, dir := engine.OpenTestSQLite(t)
	eng := startEngine(t, be, engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content")}, "acme")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := eng.Provisioner("ops")
	_, cerr := p.Create(ctx, "globex", "")
	for name, err := range map[string]error{"create": cerr, "delete": p.Delete(ctx, "acme"), "verify": func() error { _, err := p.Verify(ctx, ""); return err }()} {
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "\n") || !errors.Is(err, context.Canceled) {
			t.Errorf("%s interrupted: %q, want one line matching context.Canceled", name, err)
		}
	}
}
