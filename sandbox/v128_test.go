package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// Modules with v128 globals (built with wat2wasm).
const (
	// mutV128Hex: an immutable v128 global $k (5, 7) and a mutable one $g
	// that docex_run sets.
	//
	//	(module
	//	  (memory (export "memory") 1)
	//	  (global $k v128 (v128.const i64x2 5 7))
	//	  (global $g (mut v128) (v128.const i64x2 5 7))
	//	  (func (export "docex_run") (result i32)
	//	    (global.set $g (v128.const i64x2 0x4141 0x4242))
	//	    (i32.wrap_i64 (i64x2.extract_lane 1 (global.get $k)))))
	mutV128Hex = "0061736d010000000105016000017f030201000503010001062b027b00fd0c050000000000000007000000000000000b7b01fd0c050000000000000007000000000000000b071602066d656d6f7279020009646f6365785f72756e00000a1e011c00fd0c4141000000000000424200000000000024012300fd1d01a70b"
	// constV128Hex: the immutable $k and a mutable i64 global; docex_run
	// returns $k's high lane minus 7 (0).
	constV128Hex = "0061736d010000000105016000017f030201000503010001061b027b00fd0c050000000000000007000000000000000b7e0142010b071602066d656d6f7279020009646f6365785f72756e00000a11010f00420224012300fd1d01a741076b0b"
)

// A module with a mutable v128 global is refused at Load
// (ErrInvalidModule): the sandbox resets globals between invocations
// through wazero's api.MutableGlobal, whose Get and Set carry only the low
// 64 bits. Before, such a module loaded and its global's high half read 0
// from the first run on (the snapshot lost it), and was not reset between
// runs. An immutable v128 global is accepted and keeps its value.
func TestMutableV128GlobalRefused(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	mod, _ := hex.DecodeString(mutV128Hex)
	sum := sha256.Sum256(mod)
	m := &pluginapi.Manifest{Name: "v128", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "v128.wasm", SHA256: hex.EncodeToString(sum[:])}
	p, err := sb.Load(ctx, m, mod)
	const want = `plugin "v128", module v128.wasm: module defines a mutable v128 global, which the sandbox cannot reset between invocations (global 1)`
	if !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
		if p != nil {
			p.Close(ctx)
		}
		t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInvalidModule, want)
	}
	c := loadHex(t, sb, "constv128", constV128Hex, 0)
	defer c.Close(ctx)
	for range 2 {
		if _, err := c.Run(ctx, pluginapi.Call{TenantID: "a"}); err != nil {
			t.Fatalf("immutable v128 global: %v", err)
		}
	}
}
