package wasmcheck

import (
	"context"
	"io/fs"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// opShape is a chain of one instruction (with what feeds it): pre, then
// unit n times, then post, in a function of parameters i32, i64, f64,
// v128, f32 (local 0 to 4) whose chain ends in global 0 (an i64), so that
// wazero neither folds nor drops it.
type opShape struct{ name, pre, unit, post string }

// opShapes are the screen of docs/sandbox.md, "Compile memory": every
// instruction weighed plain, and those moved out of that class.
var opShapes = []opShape{
	{"i32.clz", "\x20\x00", "\x67", "\xad\x24\x00"},
	{"i32.ctz", "\x20\x00", "\x68", "\xad\x24\x00"},
	{"i32.popcnt", "\x20\x00", "\x69", "\xad\x24\x00"},
	{"i32.eqz", "\x20\x00", "\x45", "\xad\x24\x00"},
	{"i32.extend8_s", "\x20\x00", "\xc0", "\xad\x24\x00"},
	{"i32.extend16_s", "\x20\x00", "\xc1", "\xad\x24\x00"},
	{"i32.add", "\x20\x00", "\x20\x00\x6a", "\xad\x24\x00"},
	{"i32.sub", "\x20\x00", "\x20\x00\x6b", "\xad\x24\x00"},
	{"i32.mul", "\x20\x00", "\x20\x00\x6c", "\xad\x24\x00"},
	{"i32.and", "\x20\x00", "\x20\x00\x71", "\xad\x24\x00"},
	{"i32.or", "\x20\x00", "\x20\x00\x72", "\xad\x24\x00"},
	{"i32.xor", "\x20\x00", "\x20\x00\x73", "\xad\x24\x00"},
	{"i32.shl", "\x20\x00", "\x20\x00\x74", "\xad\x24\x00"},
	{"i32.shr_s", "\x20\x00", "\x20\x00\x75", "\xad\x24\x00"},
	{"i32.shr_u", "\x20\x00", "\x20\x00\x76", "\xad\x24\x00"},
	{"i32.rotl", "\x20\x00", "\x20\x00\x77", "\xad\x24\x00"},
	{"i32.rotr", "\x20\x00", "\x20\x00\x78", "\xad\x24\x00"},
	{"i32.eq", "\x20\x00", "\x20\x00\x46", "\xad\x24\x00"},
	{"i32.ne", "\x20\x00", "\x20\x00\x47", "\xad\x24\x00"},
	{"i32.lt_s", "\x20\x00", "\x20\x00\x48", "\xad\x24\x00"},
	{"i32.lt_u", "\x20\x00", "\x20\x00\x49", "\xad\x24\x00"},
	{"i32.gt_s", "\x20\x00", "\x20\x00\x4a", "\xad\x24\x00"},
	{"i32.gt_u", "\x20\x00", "\x20\x00\x4b", "\xad\x24\x00"},
	{"i32.le_s", "\x20\x00", "\x20\x00\x4c", "\xad\x24\x00"},
	{"i32.le_u", "\x20\x00", "\x20\x00\x4d", "\xad\x24\x00"},
	{"i32.ge_s", "\x20\x00", "\x20\x00\x4e", "\xad\x24\x00"},
	{"i32.ge_u", "\x20\x00", "\x20\x00\x4f", "\xad\x24\x00"},
	{"i64.clz", "\x20\x01", "\x79", "\x24\x00"},
	{"i64.ctz", "\x20\x01", "\x7a", "\x24\x00"},
	{"i64.popcnt", "\x20\x01", "\x7b", "\x24\x00"},
	{"i64.extend8_s", "\x20\x01", "\xc2", "\x24\x00"},
	{"i64.extend16_s", "\x20\x01", "\xc3", "\x24\x00"},
	{"i64.extend32_s", "\x20\x01", "\xc4", "\x24\x00"},
	{"i64.add", "\x20\x01", "\x20\x01\x7c", "\x24\x00"},
	{"i64.sub", "\x20\x01", "\x20\x01\x7d", "\x24\x00"},
	{"i64.mul", "\x20\x01", "\x20\x01\x7e", "\x24\x00"},
	{"i64.and", "\x20\x01", "\x20\x01\x83", "\x24\x00"},
	{"i64.or", "\x20\x01", "\x20\x01\x84", "\x24\x00"},
	{"i64.xor", "\x20\x01", "\x20\x01\x85", "\x24\x00"},
	{"i64.shl", "\x20\x01", "\x20\x01\x86", "\x24\x00"},
	{"i64.shr_s", "\x20\x01", "\x20\x01\x87", "\x24\x00"},
	{"i64.shr_u", "\x20\x01", "\x20\x01\x88", "\x24\x00"},
	{"i64.rotl", "\x20\x01", "\x20\x01\x89", "\x24\x00"},
	{"i64.rotr", "\x20\x01", "\x20\x01\x8a", "\x24\x00"},
	{"i64.eqz+i64.extend_i32_u", "\x20\x01", "\x50\xad", "\x24\x00"},
	{"i64.eq+extend_u", "\x20\x01", "\x20\x01\x51\xad", "\x24\x00"},
	{"i64.ne+extend_u", "\x20\x01", "\x20\x01\x52\xad", "\x24\x00"},
	{"i64.lt_s+extend_u", "\x20\x01", "\x20\x01\x53\xad", "\x24\x00"},
	{"i64.lt_u+extend_u", "\x20\x01", "\x20\x01\x54\xad", "\x24\x00"},
	{"i64.gt_s+extend_u", "\x20\x01", "\x20\x01\x55\xad", "\x24\x00"},
	{"i64.gt_u+extend_u", "\x20\x01", "\x20\x01\x56\xad", "\x24\x00"},
	{"i64.le_s+extend_u", "\x20\x01", "\x20\x01\x57\xad", "\x24\x00"},
	{"i64.le_u+extend_u", "\x20\x01", "\x20\x01\x58\xad", "\x24\x00"},
	{"i64.ge_s+extend_u", "\x20\x01", "\x20\x01\x59\xad", "\x24\x00"},
	{"i64.ge_u+extend_u", "\x20\x01", "\x20\x01\x5a\xad", "\x24\x00"},
	{"f32.abs", "\x20\x04", "\x8b", "\xbc\xad\x24\x00"},
	{"f32.neg", "\x20\x04", "\x8c", "\xbc\xad\x24\x00"},
	{"f32.ceil", "\x20\x04", "\x8d", "\xbc\xad\x24\x00"},
	{"f32.floor", "\x20\x04", "\x8e", "\xbc\xad\x24\x00"},
	{"f32.trunc", "\x20\x04", "\x8f", "\xbc\xad\x24\x00"},
	{"f32.nearest", "\x20\x04", "\x90", "\xbc\xad\x24\x00"},
	{"f32.sqrt", "\x20\x04", "\x91", "\xbc\xad\x24\x00"},
	{"f32.add", "\x20\x04", "\x20\x04\x92", "\xbc\xad\x24\x00"},
	{"f32.sub", "\x20\x04", "\x20\x04\x93", "\xbc\xad\x24\x00"},
	{"f32.mul", "\x20\x04", "\x20\x04\x94", "\xbc\xad\x24\x00"},
	{"f32.div", "\x20\x04", "\x20\x04\x95", "\xbc\xad\x24\x00"},
	{"f32.copysign", "\x20\x04", "\x20\x04\x98", "\xbc\xad\x24\x00"},
	{"f32.eq+reinterpret", "\x20\x04", "\x20\x04\x5b\xbe", "\xbc\xad\x24\x00"},
	{"f32.ne+reinterpret", "\x20\x04", "\x20\x04\x5c\xbe", "\xbc\xad\x24\x00"},
	{"f32.lt+reinterpret", "\x20\x04", "\x20\x04\x5d\xbe", "\xbc\xad\x24\x00"},
	{"f32.gt+reinterpret", "\x20\x04", "\x20\x04\x5e\xbe", "\xbc\xad\x24\x00"},
	{"f32.le+reinterpret", "\x20\x04", "\x20\x04\x5f\xbe", "\xbc\xad\x24\x00"},
	{"f32.ge+reinterpret", "\x20\x04", "\x20\x04\x60\xbe", "\xbc\xad\x24\x00"},
	{"f64.abs", "\x20\x02", "\x99", "\xbd\x24\x00"},
	{"f64.neg", "\x20\x02", "\x9a", "\xbd\x24\x00"},
	{"f64.ceil", "\x20\x02", "\x9b", "\xbd\x24\x00"},
	{"f64.floor", "\x20\x02", "\x9c", "\xbd\x24\x00"},
	{"f64.trunc", "\x20\x02", "\x9d", "\xbd\x24\x00"},
	{"f64.nearest", "\x20\x02", "\x9e", "\xbd\x24\x00"},
	{"f64.sqrt", "\x20\x02", "\x9f", "\xbd\x24\x00"},
	{"f64.add", "\x20\x02", "\x20\x02\xa0", "\xbd\x24\x00"},
	{"f64.sub", "\x20\x02", "\x20\x02\xa1", "\xbd\x24\x00"},
	{"f64.mul", "\x20\x02", "\x20\x02\xa2", "\xbd\x24\x00"},
	{"f64.div", "\x20\x02", "\x20\x02\xa3", "\xbd\x24\x00"},
	{"f64.copysign", "\x20\x02", "\x20\x02\xa6", "\xbd\x24\x00"},
	{"f64.eq+extend_u+reinterpret", "\x20\x02", "\x20\x02\x61\xad\xbf", "\xbd\x24\x00"},
	{"f64.ne+extend_u+reinterpret", "\x20\x02", "\x20\x02\x62\xad\xbf", "\xbd\x24\x00"},
	{"f64.lt+extend_u+reinterpret", "\x20\x02", "\x20\x02\x63\xad\xbf", "\xbd\x24\x00"},
	{"f64.gt+extend_u+reinterpret", "\x20\x02", "\x20\x02\x64\xad\xbf", "\xbd\x24\x00"},
	{"f64.le+extend_u+reinterpret", "\x20\x02", "\x20\x02\x65\xad\xbf", "\xbd\x24\x00"},
	{"f64.ge+extend_u+reinterpret", "\x20\x02", "\x20\x02\x66\xad\xbf", "\xbd\x24\x00"},
	{"i32.wrap_i64+i64.extend_i32_u", "\x20\x01", "\xa7\xad", "\x24\x00"},
	{"i32.wrap_i64+i64.extend_i32_s", "\x20\x01", "\xa7\xac", "\x24\x00"},
	{"f32.convert_i32_s+i32.reinterpret_f32", "\x20\x00", "\xb2\xbc", "\xad\x24\x00"},
	{"f32.convert_i32_u+i32.reinterpret_f32", "\x20\x00", "\xb3\xbc", "\xad\x24\x00"},
	{"f32.convert_i64_s+i32.reinterpret_f32+i64.extend_i32_u", "\x20\x01", "\xb4\xbc\xad", "\x24\x00"},
	{"f32.convert_i64_u+i32.reinterpret_f32+i64.extend_i32_u", "\x20\x01", "\xb5\xbc\xad", "\x24\x00"},
	{"f32.demote_f64+f64.promote_f32", "\x20\x02", "\xb6\xbb", "\xbd\x24\x00"},
	{"f64.convert_i32_s+i64.reinterpret_f64+i32.wrap_i64", "\x20\x00", "\xb7\xbd\xa7", "\xad\x24\x00"},
	{"f64.convert_i32_u+i64.reinterpret_f64+i32.wrap_i64", "\x20\x00", "\xb8\xbd\xa7", "\xad\x24\x00"},
	{"f64.convert_i64_s+i64.reinterpret_f64", "\x20\x01", "\xb9\xbd", "\x24\x00"},
	{"f64.convert_i64_u+i64.reinterpret_f64", "\x20\x01", "\xba\xbd", "\x24\x00"},
	{"f32.reinterpret_i32+i32.reinterpret_f32", "\x20\x00", "\xbe\xbc", "\xad\x24\x00"},
	{"f64.reinterpret_i64+i64.reinterpret_f64", "\x20\x01", "\xbf\xbd", "\x24\x00"},
	{"select", "\x20\x01", "\x20\x01\x20\x00\x1b", "\x24\x00"},
	{"select_t", "\x20\x01", "\x20\x01\x20\x00\x1c\x01\x7e", "\x24\x00"},
	{"local.tee", "\x20\x01", "\x22\x01", "\x24\x00"},
	{"local.get+local.set", "", "\x20\x01\x21\x01", ""},
	{"global.get+i64.const+i64.add+global.set", "", "\x23\x00\x42\x01\x7c\x24\x00", ""},
	{"memory.size+i32.add", "\x20\x00", "\x3f\x00\x6a", "\xad\x24\x00"},
	{"i32.const+i32.add", "\x20\x00", "\x41\x07\x6a", "\xad\x24\x00"},
	{"i64.const+i64.add", "\x20\x01", "\x42\x07\x7c", "\x24\x00"},
	{"f32.const+f32.add", "\x20\x04", "\x43\x00\x00\x80\x3f\x92", "\xbc\xad\x24\x00"},
	{"f64.const+f64.add", "\x20\x02", "\x44\x00\x00\x00\x00\x00\x00\xf0\x3f\xa0", "\xbd\x24\x00"},
	{"nop", "\x20\x00", "\x01", "\xad\x24\x00"},
	{"local.get+drop", "", "\x20\x00\x1a", ""},
	{"if-end", "", "\x20\x00\x04\x40\x0b", ""},
	{"if-unreachable-end", "", "\x20\x00\x04\x40\x00\x0b", ""},
	{"block-br_if", "", "\x02\x40\x20\x00\x0d\x00\x0b", ""},
	{"block-end", "", "\x02\x40\x0b", ""},
	{"if-else-end", "", "\x20\x00\x04\x40\x05\x0b", ""},
	{"ref.null+ref.is_null+i32.add", "\x20\x00", "\xd0\x70\xd1\x6a", "\xad\x24\x00"},
}

func (s opShape) module(n int) []byte {
	body := append([]byte{0}, s.pre...)
	body = append(body, rep(s.unit, n)...)
	body = append(append(body, s.post...), 0x41, 0, 0x0b)
	return testModule{
		types:    [][]byte{{0x60, 5, 0x7f, 0x7e, 0x7c, 0x7b, 0x7d, 1, 0x7f}},
		funcs:    []uint32{0},
		bodies:   [][]byte{body},
		nGlobals: 1, globals: []byte{0x7e, 1, 0x42, 0, 0x0b},
	}.bytes()
}

// compiledCode is the size of what wazero's compiler (one worker) writes
// to its cache for mod: its machine code and a small header.
func compiledCode(t *testing.T, mod []byte) uint64 {
	t.Helper()
	dir := t.TempDir()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := experimental.WithCompilationWorkers(context.Background(), 1)
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, mod); err != nil {
		t.Fatal(err)
	}
	var n uint64
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			var fi fs.FileInfo
			if fi, err = d.Info(); err == nil {
				n += uint64(fi.Size())
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The machine code estimate of every instruction (opCost) is an upper
// bound of what wazero v1.12.0 emits for it on amd64, where the weights
// were measured: each chain's code per unit (the difference between 800
// and 400 units) is at most its estimate per unit. Before, a pair of
// f64.convert_i64_u and i64.reinterpret_f64 compiled to 47 bytes against
// 32 estimated (P9), f64.copysign with its local.get to 46 against 32.
func TestOpCostBoundsMachineCode(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the weights are measured on amd64")
	}
	const n1, n2 = 400, 800
	for _, s := range opShapes {
		t.Run(s.name, func(t *testing.T) {
			var est [2]uint64
			for i, n := range []int{n1, n2} {
				st, err := Measure(s.module(n))
				if err != nil {
					t.Fatal(err)
				}
				est[i] = st.CompiledCode
			}
			got := compiledCode(t, s.module(n2)) - compiledCode(t, s.module(n1))
			if want := est[1] - est[0]; got > want {
				t.Errorf("%d units compile to %d bytes more than %d (%.1f per unit), estimated %d (%.1f per unit)",
					n2, got, n1, float64(got)/(n2-n1), want, float64(want)/(n2-n1))
			}
		})
	}
}
