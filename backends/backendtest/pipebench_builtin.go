package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/proccpu"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// builtinBenchPipeline is the showcase pipeline of docs/steps.md with a
// chunk size that cuts the benchmark's documents into about three chunks.
const builtinBenchPipeline = `name = "builtin"
description = "extract-text, chunk, redact-pii on each chunk"

[[steps]]
name = "text"
plugin = "extract-text"

[[steps]]
name = "chunks"
plugin = "chunk"
input = "text"
params = { size = 800, overlap = 80 }

[[steps]]
name = "redacted"
plugin = "redact-pii"
input = "chunks"
`

// builtinBenchSentences make the benchmark documents' prose, one a line.
const builtinBenchSentences = `The customer reported that the invoice total did not match the order confirmation sent last week.
Our support team reviewed the account history and found two payments recorded against the same order.
A refund for the duplicate amount was approved by the billing department this morning.
Please allow three to five working days for the refund to appear on the original payment method.
The shipping address on file was updated after the customer moved to a new office building.
Delivery of the replacement parts is scheduled for the second half of the month.
The technician noted that the device firmware was two releases behind the current version.
After the upgrade the error no longer appeared during the overnight synchronisation job.
The contract renewal includes an extended warranty and priority handling of future requests.
Meeting notes from the quarterly review were shared with everyone on the distribution list.
The auditors asked for copies of the signed agreements and the change log for the period.
No further action is needed from the customer unless the problem comes back.`

// builtinBenchDoc returns the i-th benchmark document of the built-in
// pipeline: a page of about 2 KiB, HTML, Markdown or plain text by i mod
// 3, whose paragraphs all name the case number i (every chunk of every
// document is distinct: no step result comes from the step cache) and
// hold an email address and a phone number for redact-pii.
func builtinBenchDoc(i int) (name, contentType string, content []byte) {
	sentences := strings.Split(builtinBenchSentences, "\n")
	paras := make([]string, 6)
	for k := range paras {
		var sb strings.Builder
		fmt.Fprintf(&sb, "Case %06d, note %d.", i, k+1)
		for j := range 3 {
			sb.WriteString(" ")
			sb.WriteString(sentences[(i*7+k*5+j*3)%len(sentences)])
		}
		switch k {
		case 1:
			fmt.Fprintf(&sb, " Write to casey.%06d@example.com with any question.", i)
		case 4:
			fmt.Fprintf(&sb, " The customer can be reached on +44 20 7946 %04d during office hours.", i%10000)
		}
		paras[k] = sb.String()
	}
	title := fmt.Sprintf("Case %06d: billing and delivery follow-up", i)
	var buf bytes.Buffer
	switch i % 3 {
	case 0:
		name, contentType = fmt.Sprintf("case-%06d.html", i), "text/html"
		fmt.Fprintf(&buf, "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>%s</title></head>\n<body>\n<h1>%s</h1>\n", title, title)
		for k, p := range paras {
			if k == 3 {
				buf.WriteString("<h2>Resolution</h2>\n")
			}
			fmt.Fprintf(&buf, "<p>%s</p>\n", p)
		}
		buf.WriteString("</body>\n</html>\n")
	case 1:
		name, contentType = fmt.Sprintf("case-%06d.md", i), "text/markdown"
		fmt.Fprintf(&buf, "# %s\n\n", title)
		for k, p := range paras {
			if k == 3 {
				buf.WriteString("## Resolution\n\n")
			}
			fmt.Fprintf(&buf, "%s\n\n", p)
		}
	default:
		name, contentType = fmt.Sprintf("case-%06d.txt", i), "text/plain"
		fmt.Fprintf(&buf, "%s\n\n", title)
		for _, p := range paras {
			fmt.Fprintf(&buf, "%s\n\n", p)
		}
	}
	return name, contentType, buf.Bytes()
}

// builtinBenchDocs returns benchmark documents from to to-1 (builtinBenchDoc)
// as documents to add.
func builtinBenchDocs(from, to int) []engine.NewDocument {
	docs := make([]engine.NewDocument, 0, to-from)
	for i := from; i < to; i++ {
		name, ct, content := builtinBenchDoc(i)
		docs = append(docs, engine.NewDocument{Name: name, ContentType: ct, Content: bytes.NewReader(content)})
	}
	return docs
}

// builtinPlugins are the three built-in steps of the benchmark, loaded on
// one sandbox.
type builtinPlugins struct {
	extract, chunk, redact *sandbox.Plugin
}

// loadBuiltins makes a sandbox with the built-in steps' test compilation
// cache (builtin.TestCacheDir: compiled once per machine, not per run) and
// loads extract-text, chunk and redact-pii on it; the shared module is
// compiled, or read from the cache, by the first Load. Both are closed at
// the end of the benchmark. It returns the built-in steps too, to install
// them in the engine.
func loadBuiltins(b *testing.B) (*sandbox.Sandbox, builtinPlugins, []builtin.Step) {
	sb, err := sandbox.New(bg, sandbox.Config{CacheDir: builtin.TestCacheDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sb.Close(context.Background()) })
	steps, err := builtin.Steps()
	if err != nil {
		b.Fatal(err)
	}
	loaded := map[string]*sandbox.Plugin{}
	for _, s := range steps {
		if s.Name != "extract-text" && s.Name != "chunk" && s.Name != "redact-pii" {
			continue
		}
		m, err := pluginapi.ParseManifest(s.Manifest)
		if err != nil {
			b.Fatal(err)
		}
		p, err := sb.Load(bg, m, s.Module)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close(context.Background()) })
		loaded[s.Name] = p
	}
	return sb, builtinPlugins{extract: loaded["extract-text"], chunk: loaded["chunk"], redact: loaded["redact-pii"]}, steps
}

// BenchPipelineBuiltin measures documents per second through the
// built-in steps' pipeline (extract-text, chunk of 800 characters,
// redact-pii on each chunk) over 1,000 distinct pages of about 2 KiB
// (HTML, Markdown, plain text) with one worker of concurrency 8 (batches
// of benchBatch jobs), and, in the same run (just before and
// just after the pipeline: their mean), the same plugin calls made
// directly on the same sandbox in a loop (no jobs, lineage, audit, cache
// or persistence): the engine's overhead on real steps. direct-spread is
// the slower direct loop's time over the faster's (the load's drift).
// The same loop storing the outputs (directSink: the derived documents
// and their metadata, added in batches with the public API to baskets of
// their own; first of all and last of all) gives direct-store-docs/s,
// engine/direct-store (what the engine's own work costs over storing the
// same results by hand: jobs, completion keys, lineage, step audit, cache)
// and direct-store/direct (what storing them costs); the benchmark fails
// unless the stored loops keep as many documents as the engine derived.
// engine-cpu/direct-cpu compares the process's CPU time (user and
// system) during the pipeline with the direct loops' mean: the engine's
// own work, whether or not it kept the cores busy; engine-core-use is the
// pipeline's CPU time over its wall time and GOMAXPROCS, direct-core-use
// and direct-store-core-use the same of the direct and stored loops
// (what a phase leaves idle: on SQLite, waits for the one writer);
// engine-cpu/direct-store-cpu compares the pipeline's CPU time with the
// stored loops' mean (on PostgreSQL both leave out the server's);
// written-KiB/doc
// is what the process wrote during the pipeline (write system calls:
// database, WAL, content files; on PostgreSQL the bytes sent to the
// server; also the sandbox's snapshot images, written to memfd), per input
// document, which depends on the load far less than the times. CPU
// profiles label the phases phase=engine, direct-before, direct-after,
// direct-store-before and direct-store-after.
// The shared module is compiled (or read from the compilation cache)
// before anything is timed, and every phase is timed warm: a direct loop
// over builtinWarmDocs documents starts the direct loops' instances, and
// the worker starts and runs the pipeline over builtinWarmDocs documents
// of its own (warmPipeline) before the engine's clock starts.
func BenchPipelineBuiltin(b *testing.B, h BenchHarness) {
	const n = 1000
	start := time.Now()
	sb, plugins, steps := loadBuiltins(b)
	b.Logf("built-in module loaded in %v (compiled, or read from %s)", time.Since(start).Round(time.Millisecond), builtin.TestCacheDir())
	for range b.N {
		e := newBenchEnvOn(b, h, sb)
		ops := e.eng.Provisioner("bench")
		for _, s := range steps {
			if _, err := ops.InstallSystemPlugin(bg, s.Manifest, s.Module); err != nil {
				b.Fatal(err)
			}
		}
		s := e.tenant("bench", builtinBenchPipeline)
		bk, err := s.CreateBasket(bg, "in")
		if err != nil {
			b.Fatal(err)
		}
		docs := builtinBenchDocs(0, n)
		for off := 0; off < n; off += 500 {
			if _, err := s.AddDocuments(bg, bk.ID, docs[off:min(n, off+500)]); err != nil {
				b.Fatal(err)
			}
		}
		// Warm the direct loops' instances (the engine's: warmPipeline).
		directLoopBuiltin(b, plugins, builtinWarmDocs, nil)
		// The direct loops run just before and just after the pipeline,
		// and their means are the baselines: on a shared machine the load
		// drifts during a run. The plain loop stores nothing; the stored
		// one keeps the outputs in baskets of their own.
		stored := func(phase, basket string) (wall, cpu time.Duration) {
			bk, err := s.CreateBasket(bg, basket)
			if err != nil {
				b.Fatal(err)
			}
			pprof.SetGoroutineLabels(pprof.WithLabels(bg, pprof.Labels("phase", phase)))
			defer pprof.SetGoroutineLabels(bg)
			c0 := proccpu.Self()
			wall, _ = directLoopBuiltin(b, plugins, n, &directSink{s: s, basket: bk.ID})
			return wall, proccpu.Self() - c0
		}
		storedBefore, storedCPUBefore := stored("direct-store-before", "direct-before")
		cpu0 := proccpu.Self()
		pprof.SetGoroutineLabels(pprof.WithLabels(bg, pprof.Labels("phase", "direct-before")))
		before, calls := directLoopBuiltin(b, plugins, n, nil)
		pprof.SetGoroutineLabels(bg)
		cpu1 := proccpu.Self()
		// Profiles tell the phases apart: go tool pprof -tagfocus
		// phase=engine (goroutines inherit their creator's labels). The
		// worker starts, and warms up on documents of its own, before the
		// clock does.
		ctx, cancel := context.WithCancel(pprof.WithLabels(bg, pprof.Labels("phase", "engine")))
		pprof.SetGoroutineLabels(ctx)
		wait := e.runWorkers(ctx, h, 1, engine.WorkerConfig{Concurrency: 8, TenantConcurrency: 8, Batch: benchBatch(), Poll: 20 * time.Millisecond})
		warmPipeline(b, s, n)
		cpuEngine := proccpu.Self()
		start, w0 := time.Now(), processWritten()
		ids, err := s.RunPipeline(bg, "builtin", engine.RunTarget{BasketID: bk.ID})
		if err != nil {
			b.Fatal(err)
		}
		st, err := s.WaitJobs(bg, ids, 500*time.Millisecond, nil)
		elapsed := time.Since(start)
		cpu2, w1 := proccpu.Self(), processWritten()
		pprof.SetGoroutineLabels(bg)
		cancel()
		wait()
		if err != nil || st.Succeeded != n {
			b.Fatalf("pipeline: %+v %v", st, err)
		}
		cpu3 := proccpu.Self()
		pprof.SetGoroutineLabels(pprof.WithLabels(bg, pprof.Labels("phase", "direct-after")))
		after, _ := directLoopBuiltin(b, plugins, n, nil)
		pprof.SetGoroutineLabels(bg)
		cpu4 := proccpu.Self()
		storedAfter, storedCPUAfter := stored("direct-store-after", "direct-after")
		// The stored loops keep the documents the engine derived: as many.
		derived := func(basket string) int64 {
			got, err := s.BasketByName(bg, basket)
			if err != nil {
				b.Fatal(err)
			}
			return got.DocumentCount
		}
		if in, bef, aft := derived("in")-n, derived("direct-before"), derived("direct-after"); in != bef || in != aft {
			b.Fatalf("the engine derived %d documents, the stored direct loops kept %d and %d", in, bef, aft)
		}
		if calls.total() != st.StepsRun || st.StepsCached != 0 {
			b.Fatalf("the direct loop made %d plugin calls (%+v), the engine %d (and %d cached)", calls.total(), calls, st.StepsRun, st.StepsCached)
		}
		direct := (before + after) / 2
		ratio := elapsed.Seconds() / direct.Seconds()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "docs/s")
		b.ReportMetric(float64(n)/direct.Seconds(), "direct-docs/s")
		b.ReportMetric(max(before, after).Seconds()/min(before, after).Seconds(), "direct-spread")
		b.ReportMetric(ratio, "engine/direct")
		b.ReportMetric((ratio-1)*100, "overhead-%")
		directStored := (storedBefore + storedAfter) / 2
		b.ReportMetric(float64(n)/directStored.Seconds(), "direct-store-docs/s")
		b.ReportMetric(elapsed.Seconds()/directStored.Seconds(), "engine/direct-store")
		b.ReportMetric(directStored.Seconds()/direct.Seconds(), "direct-store/direct")
		if directCPU := (cpu1 - cpu0 + cpu4 - cpu3) / 2; directCPU > 0 {
			// CPU time, not wall time: the engine's own work, whether or
			// not it kept both cores busy.
			b.ReportMetric(float64(cpu2-cpuEngine)/float64(directCPU), "engine-cpu/direct-cpu")
			b.ReportMetric(float64(cpu2-cpuEngine)/float64(elapsed)/float64(runtime.GOMAXPROCS(0)), "engine-core-use")
			b.ReportMetric(float64(directCPU)/float64(direct)/float64(runtime.GOMAXPROCS(0)), "direct-core-use")
		}
		if storedCPU := (storedCPUBefore + storedCPUAfter) / 2; storedCPU > 0 {
			b.ReportMetric(float64(cpu2-cpuEngine)/float64(storedCPU), "engine-cpu/direct-store-cpu")
			b.ReportMetric(float64(storedCPU)/float64(directStored)/float64(runtime.GOMAXPROCS(0)), "direct-store-core-use")
		}
		if w0 >= 0 && w1 >= 0 {
			// Bytes the process wrote during the pipeline (the database's
			// WAL and checkpoints, content files, sandbox snapshots), per
			// input document: mostly the persistence's volume.
			b.ReportMetric(float64(w1-w0)/1024/n, "written-KiB/doc")
		}
		b.ReportMetric(float64(calls.total())/n, "calls/doc")
		b.ReportMetric(float64(calls.redact)/n, "chunks/doc")
	}
}

// builtinWarmDocs is how many documents warm each phase up before it is
// timed: more than the worker's concurrency (8) and the direct loop's two
// goroutines, so that every plugin runs on each of them.
const builtinWarmDocs = 12

// warmPipeline runs the built-in pipeline over builtinWarmDocs documents
// of its own (numbered from first, so no step of the timed run finds them
// in the step cache), in basket "warm", and waits for them: the worker's
// first claims, the tenant's plugin instances and their snapshots are
// made before the clock starts, as in a worker that has been running. It
// fails the benchmark unless every job succeeds.
func warmPipeline(b *testing.B, s *engine.Session, first int) {
	bk, err := s.CreateBasket(bg, "warm")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.AddDocuments(bg, bk.ID, builtinBenchDocs(first, first+builtinWarmDocs)); err != nil {
		b.Fatal(err)
	}
	ids, err := s.RunPipeline(bg, "builtin", engine.RunTarget{BasketID: bk.ID})
	if err != nil {
		b.Fatal(err)
	}
	st, err := s.WaitJobs(bg, ids, 100*time.Millisecond, nil)
	if err != nil || st.Succeeded != builtinWarmDocs {
		b.Fatalf("warm-up: %+v %v", st, err)
	}
}

// builtinCalls counts the direct loop's plugin calls by step, and the
// emails and phone numbers redact-pii found.
type builtinCalls struct{ extract, chunk, redact, emails, phones int }

func (c builtinCalls) total() int { return c.extract + c.chunk + c.redact }

// directStoreEvery is how many input documents' outputs a direct loop with
// a sink stores in one AddDocuments call (about 6 documents each): the
// engine's batches commit 32 jobs' runs of a step at once.
const directStoreEvery = 16

// directSink stores the direct loop's outputs the way a program that
// calls the plugins itself and keeps their results with the public API
// would: every derived document, with the metadata the plugins set on it
// and the metadata the next step set on it as its input, added to its
// basket in batches (one AddDocuments call per directStoreEvery input
// documents on each of the loop's two goroutines). What it leaves out is
// the engine's own work (jobs, completion keys, lineage edges,
// derived_from/derived_by, step audit entries, cache entries) and, to err
// on the baseline's side, the metadata extract-text sets on the stored
// input (text_extracted; and the text's keys when the text is the input
// itself: a plain-text input). A nil sink stores nothing (the plain
// direct loop).
type directSink struct {
	s      *engine.Session
	basket string
}

// doc appends an output document to out with the metadata maps merged
// (later ones win) as docex values.
func (k *directSink) doc(out []engine.NewDocument, d pluginapi.DerivedDocument, metas ...map[string]any) []engine.NewDocument {
	meta := map[string]docex.Value{}
	for _, m := range metas {
		for key, v := range m {
			switch v := v.(type) {
			case string:
				meta[key] = docex.String(v)
			case float64:
				meta[key] = docex.Number(v)
			case bool:
				meta[key] = docex.Bool(v)
			}
		}
	}
	return append(out, engine.NewDocument{Name: d.Name, ContentType: d.ContentType, Content: bytes.NewReader(d.Content), Metadata: meta})
}

// outputs appends chunk ch, with the metadata redact-pii set on it, and
// red's derived documents to out. A redacted document with the chunk's
// bytes (nothing redacted) is the chunk itself, as in the engine: its
// metadata goes on the chunk.
func (k *directSink) outputs(out []engine.NewDocument, ch pluginapi.DerivedDocument, red *pluginapi.Result) []engine.NewDocument {
	metas := []map[string]any{ch.Metadata, red.Metadata}
	for _, r := range red.Derived {
		if bytes.Equal(r.Content, ch.Content) {
			metas = append(metas, r.Metadata)
			continue
		}
		out = k.doc(out, r, r.Metadata)
	}
	return k.doc(out, ch, metas...)
}

// store adds docs to the sink's basket in one call and returns docs[:0].
func (k *directSink) store(docs []engine.NewDocument) ([]engine.NewDocument, error) {
	if len(docs) == 0 {
		return docs[:0], nil
	}
	if _, err := k.s.AddDocuments(bg, k.basket, docs); err != nil {
		return nil, fmt.Errorf("store the direct loop's outputs: %w", err)
	}
	return docs[:0], nil
}

// directLoopBuiltin makes the pipeline's plugin calls for the n benchmark
// documents on p (extract-text, chunk on its text, redact-pii on each
// chunk), on two goroutines (one per core), nothing persisted. It returns
// the time taken and the calls made; it fails the benchmark unless
// redact-pii found an email address and a phone number per document.
func directLoopBuiltin(b *testing.B, p builtinPlugins, n int, sink *directSink) (time.Duration, builtinCalls) {
	inputs := make([][]byte, n)
	types := make([]string, n)
	names := make([]string, n)
	for i := range n {
		names[i], types[i], inputs[i] = builtinBenchDoc(i)
	}
	// The chunk step's parameters as the engine passes them.
	chunkParams := map[string]string{"size": "800", "overlap": "80"}
	run := func(pl *sandbox.Plugin, name, contentType string, content []byte, meta map[string]any, params map[string]string) (*pluginapi.Result, error) {
		if meta == nil {
			meta = map[string]any{}
		}
		res, err := pl.Run(bg, pluginapi.Call{TenantID: "direct", UserID: "u", Params: params,
			Input: pluginapi.Document{Name: name, ContentType: contentType, Size: int64(len(content)), Metadata: meta, Content: bytes.NewReader(content)}})
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", pl.Manifest().Name, name, err)
		}
		return res, nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	var calls [2]builtinCalls
	var errs [2]error
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &calls[w]
			errs[w] = func() error {
				var out []engine.NewDocument // this goroutine's outputs not yet stored
				for i := w; i < n; i += 2 {
					c.extract++
					texts, err := run(p.extract, names[i], types[i], inputs[i], nil, nil)
					if err != nil {
						return err
					}
					for _, text := range texts.Derived {
						c.chunk++
						chunks, err := run(p.chunk, text.Name, text.ContentType, text.Content, text.Metadata, chunkParams)
						if err != nil {
							return err
						}
						for _, ch := range chunks.Derived {
							c.redact++
							red, err := run(p.redact, ch.Name, ch.ContentType, ch.Content, ch.Metadata, nil)
							if err != nil {
								return err
							}
							e, _ := red.Metadata["pii_email"].(float64)
							ph, _ := red.Metadata["pii_phone"].(float64)
							c.emails, c.phones = c.emails+int(e), c.phones+int(ph)
							if sink != nil {
								out = sink.outputs(out, ch, red)
							}
						}
						if sink != nil && !bytes.Equal(text.Content, inputs[i]) {
							// (A plain-text input's text is the input
							// itself: the engine adds no document.)
							out = sink.doc(out, text, text.Metadata, chunks.Metadata)
						}
					}
					if sink != nil && ((i/2)%directStoreEvery == directStoreEvery-1 || i+2 >= n) {
						if out, err = sink.store(out); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	var sum builtinCalls
	for _, c := range calls {
		sum.extract, sum.chunk, sum.redact = sum.extract+c.extract, sum.chunk+c.chunk, sum.redact+c.redact
		sum.emails, sum.phones = sum.emails+c.emails, sum.phones+c.phones
	}
	// Every document holds an email address and a phone number: redact-pii
	// has work in every document.
	if sum.emails < n || sum.phones < n {
		b.Fatalf("redact-pii found %d emails and %d phone numbers in %d documents, want at least one of each per document", sum.emails, sum.phones, n)
	}
	return elapsed, sum
}

// benchBatch is the worker's batch size in BenchPipelineBuiltin,
// BenchFairness and BenchFairnessBuiltin: DOCEX_BENCH_BATCH when set to a number (to measure other
// sizes), engine.DefaultBatch otherwise.
func benchBatch() int {
	if v, err := strconv.Atoi(os.Getenv("DOCEX_BENCH_BATCH")); err == nil {
		return v
	}
	return engine.DefaultBatch
}
