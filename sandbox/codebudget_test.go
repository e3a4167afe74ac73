package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestCompiledCodeBudget: the machine code of the modules a Sandbox holds
// is bounded together (Config.MaxCompiledCode), not only per module. A
// Load past the budget fails with ErrTooManyModules and holds nothing; a
// module loaded again shares its code; closing a module's last Plugin
// frees its share. Before, any number of modules (up to MaxCompiled, 256)
// each at the 160 MiB cap could be held.
func TestCompiledCodeBudget(t *testing.T) {
	ctx := context.Background()
	mu, wu := readPlugin(t, "upper")
	mt, wt := readPlugin(t, "tag")
	// Each module's estimate, as a Sandbox without a budget charges it.
	code := func(m *pluginapi.Manifest, w []byte) int64 {
		sb := newSandbox(t, Config{})
		p, err := sb.Load(ctx, m, w)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		if p.c.code <= 0 || uint64(p.c.code) != p.c.info.CompiledCode {
			t.Fatalf("%s: charged %d, estimate %d", m.Name, p.c.code, p.c.info.CompiledCode)
		}
		return p.c.code
	}
	cu, ct := code(mu, wu), code(mt, wt)

	sb := newSandbox(t, Config{MaxCompiledCode: cu + ct - 1})
	held := func(want int64) {
		t.Helper()
		sb.mu.Lock()
		got, n := sb.code, len(sb.compiled)
		sb.mu.Unlock()
		if got != want {
			t.Fatalf("held code %d (%d modules), want %d", got, n, want)
		}
	}
	p1, err := sb.Load(ctx, mu, wu)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := sb.Load(ctx, mu, wu) // the same module: its code is shared
	if err != nil {
		t.Fatal(err)
	}
	held(cu)
	_, err = sb.Load(ctx, mt, wt)
	if !errors.Is(err, pluginapi.ErrTooManyModules) || !strings.Contains(err.Error(), "estimated machine code would be") {
		t.Fatalf("load past the budget: %v, want ErrTooManyModules naming the machine code", err)
	}
	held(cu)
	sb.mu.Lock()
	_, kept := sb.compiled[mt.SHA256]
	sb.mu.Unlock()
	if kept {
		t.Fatal("the refused module is held")
	}
	p1.Close(ctx)
	if _, err := sb.Load(ctx, mt, wt); !errors.Is(err, pluginapi.ErrTooManyModules) {
		t.Fatalf("one of two Plugins of the first module closed: %v, want still refused", err)
	}
	p2.Close(ctx)
	held(0)
	p3, err := sb.Load(ctx, mt, wt)
	if err != nil {
		t.Fatalf("after the first module's last Plugin closed: %v", err)
	}
	held(ct)
	r, err := p3.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "hello")})
	if err != nil || r.Status != pluginapi.StatusOK {
		t.Fatalf("run: %v %+v", err, r)
	}
	p3.Close(ctx)
	held(0)
}
