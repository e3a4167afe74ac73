package sandbox

import (
	"context"
	"errors"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// A Run that has begun when its plugin is closed finishes (docs/sandbox.md:
// "Running invocations finish"): it holds the compiled module until it
// ends, and the last of Close and the runs releases it. Before, Close
// closed the compiled module under a Run about to instantiate it: the run
// failed ("instantiate: source module must be compiled before
// instantiation", ErrPluginTrap) or the process crashed in wazero (index
// out of range). Both a plugin's first run (no snapshot) and a later one
// (the snapshot and idle instance Close drops) are closed under.
func TestCloseDuringRunStart(t *testing.T) {
	ctx := context.Background()
	for _, warm := range []bool{false, true} {
		name := map[bool]string{false: "cold", true: "warm"}[warm]
		t.Run(name, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			p := loadHex(t, sb, "sevens", sevensHex, 0)
			hash := p.manifest.SHA256
			if warm {
				if _, err := p.Run(ctx, pluginapi.Call{TenantID: "a"}); err != nil {
					t.Fatal(err)
				}
			}
			closed := false
			sb.beforeInstantiate = func(q *Plugin) {
				if q == p && !closed {
					closed = true
					q.Close(ctx)
				}
			}
			if _, err := p.Run(ctx, pluginapi.Call{TenantID: "a"}); err != nil {
				t.Fatalf("run begun before Close: %v, want it to finish", err)
			}
			if !closed {
				t.Fatal("the hook did not close the plugin")
			}
			if _, err := p.Run(ctx, pluginapi.Call{TenantID: "a"}); !errors.Is(err, pluginapi.ErrClosed) {
				t.Fatalf("run after Close: %v, want %v", err, pluginapi.ErrClosed)
			}
			sb.mu.Lock()
			_, held := sb.compiled[hash]
			code := sb.code
			sb.mu.Unlock()
			if held || code != 0 {
				t.Fatalf("after the run ended: compiled module held %v, code charged %d; want it released", held, code)
			}
		})
	}
}
