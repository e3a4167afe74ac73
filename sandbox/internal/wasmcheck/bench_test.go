package wasmcheck

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// genModule returns a module with one function of `locals` i64 locals and
// `loops` loops in sequence, each adding to a local (empty loops when
// loops is negative).
func genModule(locals, loops int) []byte {
	empty := loops < 0
	if empty {
		loops = -loops
	}
	body := []byte{}
	body = appendU32(body, 1)
	body = appendU32(body, uint32(locals))
	body = append(body, 0x7e)
	for i := 0; i < loops; i++ {
		// loop; local.get i%locals; i64.const 1; i64.add; local.set ; end
		body = append(body, 0x03, 0x40)
		if empty {
			body = append(body, 0x0b)
			continue
		}
		body = append(body, 0x20)
		body = appendU32(body, uint32(i%locals))
		body = append(body, 0x42, 0x01, 0x7c, 0x21)
		body = appendU32(body, uint32((i*7)%locals))
		body = append(body, 0x0b)
	}
	body = append(body, 0x0b)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 1, 4, 1, 0x60, 0, 0)
	m = append(m, 3, 2, 1, 0)
	m = append(m, 5, 3, 1, 0, 1)
	m = append(m, 7, 5, 1, 1, 'f', 0, 0)
	code := appendU32(nil, 1)
	code = appendU32(code, uint32(len(body)))
	code = append(code, body...)
	m = append(m, 10)
	m = appendU32(m, uint32(len(code)))
	return append(m, code...)
}

// bigModule returns a module of funcs functions of straight-line code of
// about bodySize bytes each.
func bigModule(funcs, bodySize int) []byte {
	body := appendU32(nil, 1)
	body = append(body, 2, 0x7f) // 2 i32 locals
	for len(body) < bodySize {
		// local.get 0; i32.const 7; i32.add; local.set 1
		body = append(body, 0x20, 0, 0x41, 7, 0x6a, 0x21, 1)
	}
	body = append(body, 0x0b)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 1, 4, 1, 0x60, 0, 0)
	fs := appendU32(nil, uint32(funcs))
	for range funcs {
		fs = append(fs, 0)
	}
	m = append(m, 3)
	m = appendU32(m, uint32(len(fs)))
	m = append(m, fs...)
	m = append(m, 5, 3, 1, 0, 1)
	m = append(m, 7, 5, 1, 1, 'f', 0, 0)
	code := appendU32(nil, uint32(funcs))
	for range funcs {
		code = appendU32(code, uint32(len(body)))
		code = append(code, body...)
	}
	m = append(m, 10)
	m = appendU32(m, uint32(len(code)))
	return append(m, code...)
}

// denseModule returns a module with one function of `locals` i64 locals
// and `loops` loops in sequence, each touching `touch` locals.
func denseModule(locals, loops, touch int) []byte {
	body := appendU32(nil, 1)
	body = appendU32(body, uint32(locals))
	body = append(body, 0x7e)
	k := 0
	for i := 0; i < loops; i++ {
		body = append(body, 0x03, 0x40)
		for j := 0; j < touch; j++ {
			body = append(body, 0x20)
			body = appendU32(body, uint32(k%locals))
			body = append(body, 0x42, 0x01, 0x7c, 0x21)
			body = appendU32(body, uint32((k+1)%locals))
			k += 7
		}
		body = append(body, 0x0b)
	}
	body = append(body, 0x0b)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 5, 1, 1, 'f', 0, 0)
	code := appendU32(nil, 1)
	code = appendU32(code, uint32(len(body)))
	code = append(code, body...)
	m = append(m, 10)
	m = appendU32(m, uint32(len(code)))
	return append(m, code...)
}

// bulkModule returns a module of one function of n bulk instructions in
// sequence, each of length 32 MiB: memory.fill when copy is false,
// memory.copy when true (memory of 512 pages).
func bulkModule(n int, copy bool) []byte {
	op := []byte{0x41, 0, 0x41, 0, 0x41, 0x80, 0x80, 0x80, 0x10, 0xfc, 11, 0}
	if copy {
		op = []byte{0x41, 0, 0x41, 0, 0x41, 0x80, 0x80, 0x80, 0x10, 0xfc, 10, 0, 0}
	}
	body := append([]byte{0}, bytes.Repeat(op, n)...)
	body = append(body, 0x0b)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 1, 4, 1, 0x60, 0, 0)
	m = append(m, 3, 2, 1, 0)
	m = append(m, 5, 4, 1, 0, 0x80, 4)
	m = append(m, 7, 5, 1, 1, 'f', 0, 0)
	code := appendU32(nil, 1)
	code = appendU32(code, uint32(len(body)))
	code = append(code, body...)
	m = append(m, 10)
	m = appendU32(m, uint32(len(code)))
	return append(m, code...)
}

// BenchmarkCompileBudget compiles (with wazero, 2 workers) modules at the
// edges of what Load accepts: the most loops CompileBudget allows in one
// function, with few and with many locals, and a module of MaxModuleBytes
// of straight-line code; and one just past the budget, which Instrument
// refuses. Run with -benchtime 1x: each op takes seconds.
func BenchmarkCompileBudget(b *testing.B) {
	for _, c := range []struct {
		name string
		mod  []byte
	}{
		{"loops=2000,locals=20", genModule(20, 2000)},
		{"loops=1000,locals=500", genModule(500, 1000)},
		{"loops=122,locals=4096,dense", denseModule(4096, 122, 100)},
		{"16MiB-straight-line", bigModule(16000, 1024)},
		{"fills=2150", bulkModule(2150, false)},
		{"copies=6000", bulkModule(6000, true)},
		{"refused:loops=3000,locals=20", genModule(20, 3000)},
		{"refused:fills=20000", bulkModule(20000, false)},
		{"refused:fills=40000", bulkModule(40000, false)},
		{"refused:loops=200,locals=4000,dense", denseModule(4000, 200, 100)},
		// Over MaxFunctionCompileMemory (accepted before it).
		{"refused:loops=124,locals=4000,8MiB", denseModule(4000, 124, 4000)},
		{"refused:copies=8900", bulkModule(8900, true)},
		// P9: ifs whose true arm ends in unreachable, the most accepted
		// and the probe's 11,000 (accepted before the else blocks).
		{"ifs-unreachable=6489", ifChain("\x20\x00\x04\x40\x00\x0b", 6489, false)},
		{"refused:ifs-unreachable=11000", ifChain("\x20\x00\x04\x40\x00\x0b", 11000, false)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				h, err := Harden(c.mod)
				if err != nil {
					b.Fatal(err)
				}
				ins, _, err := Instrument(h)
				if strings.HasPrefix(c.name, "refused") {
					if err == nil {
						b.Fatal("accepted")
					}
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntime(context.Background())
				if _, err := rt.CompileModule(experimental.WithCompilationWorkers(context.Background(), 2), ins); err != nil {
					b.Fatal(err)
				}
				rt.Close(context.Background())
			}
		})
	}
}

// copyLoop is a module whose function f copies n bytes 100,000 times
// (memory.copy from 0 to 4096), n a constant when constLen, else read from
// a local, as Go's wasm backend copies structs (most of its memory.copy
// and memory.fill lengths are constants of 40 to 256 bytes).
func copyLoop(n int, constLen bool) []byte {
	body := []byte{1, 2, 0x7f}                                     // locals: i, n
	body = append(appendU32(append(body, 0x41), 100_000), 0x21, 0) // i = 100000
	body = append(appendS32(append(body, 0x41), int32(n)), 0x21, 1)
	body = append(body, 0x03, 0x40)                // loop
	body = append(body, 0x41, 0x80, 0x20, 0x41, 0) // dst 4096, src 0
	if constLen {
		body = appendS32(append(body, 0x41), int32(n))
	} else {
		body = append(body, 0x20, 1)
	}
	body = append(body, 0xfc, 10, 0, 0)
	body = append(body, 0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b, 0x0b)
	return testModule{funcs: []uint32{0}, bodies: [][]byte{body}, exports: appendExport(nil, "f", 0, 0), nExports: 1}.bytes()
}

func appendS32(b []byte, v int32) []byte { return appendS64(b, int64(v)) }

// BenchmarkBulkMeter: the cost of metering bulk instructions by length on
// a loop that does little but copy (100,000 copies per op), against
// charging each one unit (NoBulk, the former scheme).
func BenchmarkBulkMeter(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		n        int
		constLen bool
	}{{"48B-const", 48, true}, {"48B-var", 48, false}, {"4KiB-var", 4096, false}} {
		for _, mode := range []struct {
			name string
			opt  Options
		}{{"by-length", Options{}}, {"one-unit", Options{NoBulk: true}}} {
			b.Run(c.name+"/"+mode.name, func(b *testing.B) {
				h, err := Harden(copyLoop(c.n, c.constLen))
				if err != nil {
					b.Fatal(err)
				}
				ins, _, err := InstrumentWith(h, mode.opt)
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntime(ctx)
				defer rt.Close(ctx)
				m, err := rt.Instantiate(ctx, ins)
				if err != nil {
					b.Fatal(err)
				}
				m.ExportedGlobal(FuelGlobal).(api.MutableGlobal).Set(1 << 62)
				f := m.ExportedFunction("f")
				b.SetBytes(int64(c.n) * 100_000)
				for b.Loop() {
					if _, err := f.Call(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
