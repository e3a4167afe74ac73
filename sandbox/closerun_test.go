package sandbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"unsafe"

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

// oobDataHex is a module whose active data segment ends past its memory
// (built with wat2wasm): valid, but every instantiation fails.
//
//	(module
//	  (memory (export "memory") 1)
//	  (data (i32.const 65535) "xx")
//	  (func (export "docex_run") (result i32) (i32.const 0)))
const oobDataHex = "0061736d010000000105016000017f030201000503010001071602066d656d6f7279020009646f6365785f72756e00000a0601040041000b0b0a010041ffff030b027878"

// A failed instantiation frees the memory reservation it made. Before,
// the reservation (the plugin's whole memory limit: 256 MiB by default)
// stayed mapped after every run of a module whose data segment is out of
// bounds, until the process ran out of address space.
func TestFailedInstantiateFreesReservation(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	var mu sync.Mutex
	live := map[*byte]bool{}
	made := 0
	real := sb.reserve
	sb.reserve = func(limit uint64) ([]byte, error) {
		m, err := real(limit)
		if err == nil {
			mu.Lock()
			live[unsafe.SliceData(m)] = true
			made++
			mu.Unlock()
		}
		return m, err
	}
	sb.onFree = func(m []byte) {
		mu.Lock()
		delete(live, unsafe.SliceData(m))
		mu.Unlock()
	}
	p := loadHex(t, sb, "oobdata", oobDataHex, 0)
	defer p.Close(ctx)
	for range 5 {
		_, err := p.Run(ctx, pluginapi.Call{TenantID: "a"})
		if !errors.Is(err, pluginapi.ErrPluginTrap) || !strings.Contains(err.Error(), "instantiate") {
			t.Fatalf("err = %v, want %v (instantiate)", err, pluginapi.ErrPluginTrap)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if made == 0 {
		t.Skip("no memory reservation on this system")
	}
	if len(live) != 0 {
		t.Fatalf("%d of %d reservations still mapped after the failed runs, want none", len(live), made)
	}
}
