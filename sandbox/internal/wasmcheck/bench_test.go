package wasmcheck

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
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
		{"loops=124,locals=4000,8MiB", denseModule(4000, 124, 4000)},
		{"16MiB-straight-line", bigModule(16000, 1024)},
		{"refused:loops=3000,locals=20", genModule(20, 3000)},
		{"refused:loops=200,locals=4000,dense", denseModule(4000, 200, 100)},
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
