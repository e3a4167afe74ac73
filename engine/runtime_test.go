package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// goRuntime is an engine.PluginRuntime without wazero: its "modules" are
// names of Go functions. It shows that the engine needs nothing of the
// sandbox but the interface.
type goRuntime struct {
	mu       sync.Mutex
	loads    int
	released []string
}

func (r *goRuntime) LoadRunner(ctx context.Context, m *pluginapi.Manifest, module []byte) (pluginapi.Runner, error) {
	if err := m.VerifyModule(module); err != nil {
		return nil, err
	}
	if string(module) != "words" {
		return nil, fmt.Errorf("%w: unknown Go plugin %q", pluginapi.ErrInvalidModule, module)
	}
	r.mu.Lock()
	r.loads++
	r.mu.Unlock()
	return &goRunner{rt: r}, nil
}

type goRunner struct{ rt *goRuntime }

func (g *goRunner) Run(ctx context.Context, call pluginapi.Call) (*pluginapi.Result, error) {
	b, err := io.ReadAll(io.NewSectionReader(call.Input.Content, 0, call.Input.Size))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pluginapi.ErrHostFailure, err)
	}
	if strings.Contains(string(b), "fail") {
		return &pluginapi.Result{Status: pluginapi.StatusError, Message: "asked to fail"},
			fmt.Errorf("%w: asked to fail", pluginapi.ErrPluginStatusError)
	}
	return &pluginapi.Result{Status: pluginapi.StatusOK,
		Metadata: map[string]any{"words": float64(len(strings.Fields(string(b))))}}, nil
}

func (g *goRunner) ReleaseTenant(ctx context.Context, tenantID string) error {
	g.rt.mu.Lock()
	g.rt.released = append(g.rt.released, tenantID)
	g.rt.mu.Unlock()
	return nil
}

func (g *goRunner) Close(ctx context.Context) error { return nil }

func TestPluginRuntimeInterface(t *testing.T) {
	ctx := context.Background()
	be, dir := engine.OpenTestSQLite(t)
	rt := &goRuntime{}
	cfg := engine.Config{MultiTenancy: true, ContentDir: dir + "/content", NoContentSync: true, Sandbox: rt}
	eng := startEngine(t, be, cfg, "alpha")
	s := eng.As(docex.UserContext{UserID: "ann", TenantID: "alpha", Roles: []string{"admin"}})
	basket, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(module string) []byte {
		sum := sha256.Sum256([]byte(module))
		return []byte(fmt.Sprintf("name = \"gowords\"\nversion = \"1.0.0\"\nabi_version = 1\nmodule = \"m\"\nsha256 = %q\ncapabilities = [\"content.read\", \"metadata.write\"]\n", hex.EncodeToString(sum[:])))
	}
	if _, err := s.InstallPlugin(ctx, manifest("nope"), []byte("nope")); !errors.Is(err, docex.ErrPluginInvalid) {
		t.Fatalf("install of a module the runtime refuses: err = %v, want ErrPluginInvalid", err)
	}
	if _, err := s.InstallPlugin(ctx, manifest("words"), []byte("words")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content string
		wantErr       error
		wantWords     float64
	}{
		{name: "ok", content: "one two three", wantWords: 3},
		{name: "fails", content: "please fail", wantErr: docex.ErrPluginFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			add, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: tc.name + ".txt", Content: strings.NewReader(tc.content)})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.RunPlugin(ctx, "gowords", add.Document.ID, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, pluginapi.ErrPluginStatusError) {
					t.Fatalf("err = %v, want %v wrapping pluginapi.ErrPluginStatusError", err, tc.wantErr)
				}
				doc, err := s.Document(ctx, add.Document.ID)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := doc.Metadata["words"]; ok {
					t.Fatal("a failed run wrote metadata")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Document.Metadata["words"]; got != docex.Number(tc.wantWords) {
				t.Fatalf("words = %v, want %v", got, tc.wantWords)
			}
		})
	}
	if rt.loads != 1 {
		t.Errorf("LoadRunner called %d times for one installed plugin, want 1 (the engine caches it)", rt.loads)
	}
	if err := eng.Provisioner("ops").Suspend(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if len(rt.released) == 0 {
		t.Error("suspending the tenant did not release its plugin state (ReleaseTenant not called)")
	}
}
