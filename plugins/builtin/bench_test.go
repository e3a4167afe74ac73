package builtin_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// benchInputs are the extractor benchmarks' inputs, one per format: real
// files, the small text ones repeated to about 128 KiB so that the figure is
// the extractor's rather than the invocation's.
func benchInputs(t testing.TB) []benchInput {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	repeat := func(b []byte, header bool) []byte {
		var out bytes.Buffer
		first := []byte{}
		if header {
			i := bytes.IndexByte(b, '\n') + 1
			first, b = b[:i], b[i:]
		}
		out.Write(first)
		for out.Len() < 128<<10 {
			out.Write(b)
		}
		return out.Bytes()
	}
	return []benchInput{
		{"text", "text/plain", repeat(read("quality/ref/pdf/gs-apt-get.8.pdf.txt"), false)},
		{"markdown", "text/markdown", repeat(read("files/charis-design.md"), false)},
		{"html", "text/html", read("quality/html/html-autolink.html")},
		{"docx", ctDOCX, read("quality/docx/html-arch.docx")},
		{"pdf", "application/pdf", read("quality/pdf/refcard-a4.pdf")},
		{"xlsx", ctXLSX, read("files/sheet.xlsx")},
		{"csv", "text/csv", repeat(read("files/debian.csv"), true)},
		{"json", "application/json", read("files/iso_3166-1.json")},
	}
}

type benchInput struct {
	format, contentType string
	data                []byte
}

// native runs extract-text's Go code (steps.ExtractText, what the guest
// runs) outside the sandbox, with an in-memory environment.
func native(in benchInput) error {
	return steps.ExtractText(&memEnv{in: steps.Input{Name: "x", ContentType: in.contentType, Size: int64(len(in.data)), Content: bytes.NewReader(in.data)}})
}

// memEnv is steps.Env in memory: the host functions' native double.
type memEnv struct {
	in      steps.Input
	emitted int
}

func (e *memEnv) Input() steps.Input            { return e.in }
func (e *memEnv) Param(string) (string, bool)   { return "", false }
func (e *memEnv) SetMetadata(string, any) error { return nil }
func (e *memEnv) Log(string)                    {}
func (e *memEnv) Emit(_, _ string, data []byte, _ []steps.KV) error {
	e.emitted += len(data)
	return nil
}

// BenchmarkExtract compares each extractor inside the sandbox with the same
// Go code run natively, in one run (MB/s of input). TestExtractThroughput
// reports the same as one table with ratios.
func BenchmarkExtract(b *testing.B) {
	for _, f := range benchInputs(b) {
		b.Run(f.format+"/native", func(b *testing.B) {
			b.SetBytes(int64(len(f.data)))
			for b.Loop() {
				if err := native(f); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.format+"/sandbox", func(b *testing.B) {
			doc := bytesDoc("x", f.contentType, f.data)
			run(b, "extract-text", doc, nil) // warm: compiled and instantiated
			b.SetBytes(int64(len(f.data)))
			for b.Loop() {
				if _, err := run(b, "extract-text", doc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestExtractThroughput reports, for every format extract-text reads, its
// MB/s in the sandbox against the same Go code natively, in one run: the
// two alternate round by round (so that a change of machine load affects
// both), after a warm-up run of each. Reports only (DOCEX_STEPS_REPORT=1).
func TestExtractThroughput(t *testing.T) {
	reportsOnly(t)
	const rounds = 5
	t.Logf("load average at start: %s", loadAverage())
	t.Logf("%-9s %8s %14s %14s %8s", "format", "KiB", "native MB/s", "sandbox MB/s", "ratio")
	for _, f := range benchInputs(t) {
		doc := bytesDoc("x", f.contentType, f.data)
		if _, err := run(t, "extract-text", doc, nil); err != nil { // warm
			t.Fatalf("%s: %v", f.format, err)
		}
		if err := native(f); err != nil {
			t.Fatalf("%s: %v", f.format, err)
		}
		var tn, ts time.Duration
		var nn, ns int
		for range rounds {
			// About 0.3 s of each per round, at least one run.
			for start := time.Now(); nn == 0 || time.Since(start) < 300*time.Millisecond; nn++ {
				t0 := time.Now()
				if err := native(f); err != nil {
					t.Fatal(err)
				}
				tn += time.Since(t0)
			}
			for start := time.Now(); ns == 0 || time.Since(start) < 300*time.Millisecond; ns++ {
				t0 := time.Now()
				if _, err := run(t, "extract-text", doc, nil); err != nil {
					t.Fatal(err)
				}
				ts += time.Since(t0)
			}
		}
		mb := float64(len(f.data)) / 1e6
		nat, box := mb*float64(nn)/tn.Seconds(), mb*float64(ns)/ts.Seconds()
		t.Logf("%-9s %8d %14.2f %14.2f %7.1fx", f.format, len(f.data)>>10, nat, box, nat/box)
	}
	t.Logf("load average at end: %s", loadAverage())
}

// loadAverage is /proc/loadavg's first three fields ("?" elsewhere).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkChunkRedact runs chunk and redact-pii on extracted text.
func BenchmarkChunkRedact(b *testing.B) {
	text, err := os.ReadFile("testdata/quality/ref/pdf/gs-apt-get.8.pdf.txt")
	if err != nil {
		b.Fatal(err)
	}
	for _, step := range []string{"chunk", "redact-pii", "stats"} {
		b.Run(step, func(b *testing.B) {
			doc := bytesDoc("x.txt", "text/plain", text)
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := run(b, step, doc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestColdStart reports what the first run of a built-in costs: compiling
// the shared module without and with the on-disk compilation cache, and
// creating an instance; and, for the one-module decision, the compile of a
// single-step Go guest (testplugins/lookup), which seven modules would pay
// seven times. It only reports (no timing thresholds).
func TestColdStart(t *testing.T) {
	reportsOnly(t)
	ctx := context.Background()
	all, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(all[0].Manifest)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	load := func(m *pluginapi.Manifest, module []byte) (time.Duration, *sandbox.Sandbox, *sandbox.Plugin) {
		sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close(ctx) })
		start := time.Now()
		p, err := sb.Load(ctx, m, module)
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), sb, p
	}
	cold, _, _ := load(m, all[0].Module)
	warm, _, p := load(m, all[0].Module)
	start := time.Now()
	res, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: bytesDoc("a.txt", "text/plain", []byte("hello world"))})
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	start = time.Now()
	if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: bytesDoc("a.txt", "text/plain", []byte("hello world"))}); err != nil {
		t.Fatal(err)
	}
	second := time.Since(start)
	fsys, _ := testplugins.Dir("lookup")
	raw, err := fs.ReadFile(fsys, pluginapi.ManifestFile)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := pluginapi.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	lmod, err := fs.ReadFile(fsys, lm.Module)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	single, _, _ := load(lm, lmod)
	t.Logf("shared module %d KiB: compile %v without cache, %v from the file cache; first run %v (instance created: %v), next run %v",
		len(all[0].Module)>>10, cold.Round(time.Millisecond), warm.Round(time.Millisecond), first.Round(time.Millisecond), res.Report.ColdStart, second.Round(time.Microsecond))
	t.Logf("one-step Go guest (lookup, %d KiB): compile %v without cache; seven such modules: ~%v, %d KiB",
		len(lmod)>>10, single.Round(time.Millisecond), (7 * single).Round(time.Millisecond), 7*len(lmod)>>10)
}

// TestVersusPdftotext reports extract-text (in the sandbox and natively)
// against poppler's pdftotext, whole process, on the corpus PDFs.
func TestVersusPdftotext(t *testing.T) {
	reportsOnly(t)
	dir := os.Getenv("DOCEX_CORPUS")
	if dir == "" {
		t.Skip("set DOCEX_CORPUS")
	}
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext not installed")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "pdf", "*.pdf"))
	slices.Sort(files)
	var tPop, tBox, tNat time.Duration
	var bytesIn int64
	for _, f := range files {
		data, _ := os.ReadFile(f)
		bytesIn += int64(len(data))
		start := time.Now()
		if err := exec.Command("pdftotext", "-enc", "UTF-8", f, filepath.Join(t.TempDir(), "out.txt")).Run(); err != nil {
			t.Fatal(err)
		}
		tPop += time.Since(start)
		start = time.Now()
		res, err := run(t, "extract-text", bytesDoc(filepath.Base(f), "application/pdf", data), nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d := time.Since(start)
		tBox += d
		start = time.Now()
		if _, err := steps.ExtractFormat(steps.Input{Name: "x", ContentType: "application/pdf", Size: int64(len(data)), Content: bytes.NewReader(data)}, ""); err != nil {
			t.Fatal(err)
		}
		tNat += time.Since(start)
		t.Logf("%-28s %6d KiB %4v pages: sandbox %v, peak guest memory %d MiB", filepath.Base(f), len(data)>>10, res.Derived[0].Metadata["source_pages"], d.Round(time.Millisecond), res.Report.PeakMemoryBytes>>20)
	}
	mb := float64(bytesIn) / (1 << 20)
	t.Logf("%d PDFs, %.1f MiB: pdftotext %v (%.1f MB/s), extract-text in the sandbox %v (%.1f MB/s, %.2fx pdftotext's time), natively %v (%.1f MB/s)",
		len(files), mb, tPop.Round(time.Millisecond), mb/tPop.Seconds(), tBox.Round(time.Millisecond), mb/tBox.Seconds(), tBox.Seconds()/tPop.Seconds(), tNat.Round(time.Millisecond), mb/tNat.Seconds())
}

// reportsOnly skips tests that only measure unless DOCEX_STEPS_REPORT=1
// (make corpus-test sets it): they take minutes and assert nothing timed.
func reportsOnly(t *testing.T) {
	if os.Getenv("DOCEX_STEPS_REPORT") != "1" {
		t.Skip("a measurement: set DOCEX_STEPS_REPORT=1 (make corpus-test)")
	}
}

// TestLargePDF extracts the corpus's large PDFs (a 442-page, 2.8 MiB file
// joined by pdfunite; Octave's 1158-page manual) in the sandbox within
// extract-text's shipped memory limit, reporting time, instructions, guest
// memory and host RSS. The wall-clock limit is raised for the test (it
// must pass at any machine load); the time is reported, not asserted. The
// first file is extracted twice: the same text, instruction units and
// guest memory each time (the guest's clocks are its instruction units,
// docs/sandbox.md "Determinism"; with the host's clock the units differed
// on every run and the memory with the load, up to the limit).
func TestLargePDF(t *testing.T) {
	dir := os.Getenv("DOCEX_CORPUS")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: DOCEX_CORPUS is not set")
		}
		t.Skip("set DOCEX_CORPUS")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "large", "*.pdf"))
	if len(files) == 0 {
		t.Fatalf("no PDFs in %s/large", dir)
	}
	ctx := context.Background()
	all, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(all[0].Manifest)
	if err != nil {
		t.Fatal(err)
	}
	memLimit := int64(m.Limits.MemoryPages) * 65536 // 64 KiB wasm pages
	m.Limits.TimeoutMS = 30 * 60 * 1000
	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir(), Ceilings: pluginapi.Limits{Timeout: 30 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	p, err := sb.Load(ctx, m, all[0].Module)
	if err != nil {
		t.Fatal(err)
	}
	var first *pluginapi.Result
	for _, f := range append(files[:1:1], files...) {
		doc := fileDoc(t, f, "application/pdf")
		base, _ := rss()
		resetPeak()
		start := time.Now()
		res, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: doc})
		took := time.Since(start)
		_, peak := rss()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pages := res.Derived[0].Metadata["source_pages"].(float64)
		if pages < 400 || res.Report.PeakMemoryBytes > memLimit {
			t.Fatalf("%s: %v pages, %d bytes of guest memory (limit %d)", f, pages, res.Report.PeakMemoryBytes, memLimit)
		}
		t.Logf("%s: %d KiB, %v pages, %d KiB of text in %v (shipped limit %d s), %d instructions; guest memory %d MiB (limit %d MiB); host peak RSS %d MiB (%+d MiB)",
			filepath.Base(f), doc.Size>>10, pages, len(res.Derived[0].Content)>>10, took.Round(time.Millisecond), 60,
			res.Report.Instructions, res.Report.PeakMemoryBytes>>20, memLimit>>20, peak, peak-base)
		if first == nil {
			first = res
		} else if f == files[0] {
			if !bytes.Equal(res.Derived[0].Content, first.Derived[0].Content) ||
				res.Report.Instructions != first.Report.Instructions || res.Report.PeakMemoryBytes != first.Report.PeakMemoryBytes {
				t.Errorf("%s again: %d bytes of text, %d units, %d bytes of guest memory; first run %d, %d, %d", filepath.Base(f),
					len(res.Derived[0].Content), res.Report.Instructions, res.Report.PeakMemoryBytes,
					len(first.Derived[0].Content), first.Report.Instructions, first.Report.PeakMemoryBytes)
			}
		}
	}
}

// BenchmarkExtractLargeText runs extract-text on 8 and 32 MiB of plain
// text (extracted text, repeated), natively and in the sandbox (MB/s of
// input; units/MiB: the sandbox's instruction units per MiB, the same on
// every run).
func BenchmarkExtractLargeText(b *testing.B) {
	page, err := os.ReadFile("testdata/quality/ref/pdf/gs-apt-get.8.pdf.txt")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{8 << 20, 32 << 20} {
		in := benchInput{"text", "text/plain", bytes.Repeat(page, size/len(page)+1)[:size]}
		name := strconv.Itoa(size>>20) + "MiB"
		b.Run(name+"/native", func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := native(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/sandbox", func(b *testing.B) {
			doc := bytesDoc("x", in.contentType, in.data)
			b.SetBytes(int64(size))
			var units int64
			for b.Loop() {
				res, err := run(b, "extract-text", doc, nil)
				if err != nil {
					b.Fatal(err)
				}
				units = res.Report.Instructions
			}
			b.ReportMetric(float64(units)/float64(size>>20), "units/MiB")
		})
	}
}
