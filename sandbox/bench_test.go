package sandbox

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/internal/proccpu"
	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// nativeWordCount is the wordcount plugin's step as native Go: the same
// code as plugins/examples/wordcount.
func nativeWordCount(r io.Reader) int {
	n, _ := countWords(r, make([]byte, 4<<10))
	return n
}

func countWords(r io.Reader, buf []byte) (int, error) {
	words, inWord := 0, false
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			space := c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
			if !space && !inWord {
				words++
			}
			inWord = !space
		}
		if err == io.EOF {
			return words, nil
		}
		if err != nil {
			return words, err
		}
	}
}

var benchSizes = []struct {
	name string
	text string
}{
	{"tiny", "hello docex world"},
	{"1KiB", words(205)[:1024]},
	{"1MiB", words(209716)[:1<<20]},
}

// nativeNsPerOp times the native step outside the benchmark timer.
func nativeNsPerOp(text string) float64 {
	n := 0
	start := time.Now()
	for time.Since(start) < 100*time.Millisecond {
		nativeWordCount(strings.NewReader(text))
		n++
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func benchRun(b *testing.B, sb *Sandbox, p *Plugin, text string) {
	b.Helper()
	ctx := context.Background()
	inv := pluginapi.Call{TenantID: "bench", Input: textDoc("x", text)}
	if _, err := p.Run(ctx, inv); err != nil { // warm the pool
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		inv.Input.Content = strings.NewReader(text)
		if _, err := p.Run(ctx, inv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWordCount: warm-pool invocation of the Go wordcount guest, with
// the native Go step timed in the same run ("native-ns/op", "x-native").
func BenchmarkWordCount(b *testing.B) {
	sb := sharedSandbox(b)
	p := plugin(b, "wordcount")
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			native := nativeNsPerOp(s.text)
			benchRun(b, sb, p, s.text)
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(native, "native-ns/op")
			b.ReportMetric(perOp/native, "x-native")
		})
	}
}

// BenchmarkNativeWordCount is the native step alone, for reference.
func BenchmarkNativeWordCount(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.text)))
			for b.Loop() {
				nativeWordCount(strings.NewReader(s.text))
			}
		})
	}
}

// BenchmarkEchoWAT: warm-pool invocation of a hand-written WAT plugin: the
// sandbox's own per-call overhead (pool, deadline, host calls, result).
func BenchmarkEchoWAT(b *testing.B) {
	sb := sharedSandbox(b)
	p := plugin(b, "echo")
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) { benchRun(b, sb, p, s.text) })
	}
}

// BenchmarkPreemption compares where the metering checkpoints go, in one
// run on the Go wordcount guest (loop-heavy): at function entries and loop
// heads (the default: stops every guest, counts instruction units), at loop
// heads only (the former scheme: loop-free recursion ran on), and none
// (benchmark only: such guests cannot be stopped).
func BenchmarkPreemption(b *testing.B) {
	for _, mode := range []struct {
		name string
		opt  wasmcheck.Options
	}{{"entries+loops", wasmcheck.Options{}}, {"loops-only", wasmcheck.Options{LoopsOnly: true}}, {"none", wasmcheck.Options{None: true}}} {
		sb := newSandbox(b, Config{})
		sb.instrument = func(mod []byte) ([]byte, wasmcheck.Info, error) { return wasmcheck.InstrumentWith(mod, mode.opt) }
		sb.meteredDir = "" // its cache keys on the default instrumentation
		m, mod := readPlugin(b, "wordcount")
		p, err := sb.Load(context.Background(), m, mod)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range benchSizes {
			b.Run(mode.name+"/"+s.name, func(b *testing.B) { benchRun(b, sb, p, s.text) })
		}
	}
}

// BenchmarkColdStart: a fresh Sandbox, Load and first Run of the Go
// wordcount guest, with an empty on-disk cache, with a warm cache of
// compiled code only (instrumenting again), and with a warm cache of both.
// Run with -benchtime=3x: each no-cache iteration compiles ~2.7 MB of wasm.
func BenchmarkColdStart(b *testing.B) {
	ctx := context.Background()
	m, mod := readPlugin(b, "wordcount")
	warmDir := b.TempDir()
	for _, mode := range []string{"no-cache", "cache-compiled-only", "cache"} {
		b.Run(mode, func(b *testing.B) {
			dir := ""
			if mode != "no-cache" {
				dir = warmDir
				sb, err := New(ctx, Config{CacheDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sb.Load(ctx, m, mod); err != nil {
					b.Fatal(err)
				}
				sb.Close(ctx)
			}
			b.ResetTimer()
			for b.Loop() {
				sb, err := New(ctx, Config{CacheDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "cache-compiled-only" {
					sb.meteredDir = "" // Harden and Instrument again
				}
				p, err := sb.Load(ctx, m, mod)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "a b c")}); err != nil {
					b.Fatal(err)
				}
				sb.Close(ctx)
			}
		})
	}
	_ = os.RemoveAll(warmDir)
}

// BenchmarkStateReset compares, in one run, the ways an invocation can
// start from the post-initialisation state of the Go wordcount guest (3 MiB
// of memory): the reset after a warm call copying back only the pages the
// call wrote (copy-on-write image and pagemap, the default on Linux) or
// the whole memory ("reset-ns" is the reset alone, "run" the whole warm
// call), against creating a new instance from the snapshot or from
// scratch (start function and _initialize).
func BenchmarkStateReset(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"pages", "copy"} {
		b.Run("run-reset-"+mode, func(b *testing.B) {
			sb := newSandbox(b, Config{})
			sb.copyReset = mode == "copy"
			if mode == "pages" && sb.pm == nil {
				b.Skip("no pagemap: resets copy the whole memory")
			}
			var total time.Duration
			resets, dirty := 0, 0
			sb.onReset = func(d time.Duration, pages int) { total += d; resets++; dirty += pages }
			m, mod := readPlugin(b, "wordcount")
			p, err := sb.Load(ctx, m, mod)
			if err != nil {
				b.Fatal(err)
			}
			inv := pluginapi.Call{TenantID: "t", Input: textDoc("x", "hello docex world")}
			if _, err := p.Run(ctx, inv); err != nil {
				b.Fatal(err)
			}
			total, resets, dirty = 0, 0, 0
			cpu0, n := proccpu.Self(), 0
			for b.Loop() {
				inv.Input = textDoc("x", "hello docex world")
				if _, err := p.Run(ctx, inv); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64((proccpu.Self()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
			if resets > 0 {
				b.ReportMetric(float64(total.Nanoseconds())/float64(resets), "reset-ns")
				b.ReportMetric(float64(dirty)/float64(resets), "pages-written")
			}
		})
	}
	for _, mode := range []string{"pages", "copy"} {
		b.Run("instantiate-from-snapshot-"+mode, func(b *testing.B) {
			sb := newSandbox(b, Config{})
			sb.copyReset = mode == "copy"
			m, mod := readPlugin(b, "wordcount")
			p, err := sb.Load(ctx, m, mod)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "a b c")}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				in, err := p.instantiate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				in.close(ctx)
			}
		})
	}
	sb := newSandbox(b, Config{})
	m, mod := readPlugin(b, "wordcount")
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "a b c")}); err != nil {
		b.Fatal(err)
	}
	b.Run("instantiate-and-initialize", func(b *testing.B) {
		for b.Loop() {
			p.mu.Lock()
			s := p.snap
			p.snap = nil
			p.mu.Unlock()
			sb.idle.dropSnapshot(s)
			sb.copyReset = true // one instance, no image: the cost of initialising
			in, err := p.instantiate(ctx)
			if err != nil {
				b.Fatal(err)
			}
			in.close(ctx)
		}
	})
}
