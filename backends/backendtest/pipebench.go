package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// BenchHarness makes a backend for the pipeline benchmarks; Second, when
// set, opens another backend over the same storage (a second worker
// process's connections).
type BenchHarness struct {
	New    func(b *testing.B) (driver.Backend, engine.Config)
	Second func(b *testing.B, be driver.Backend) driver.Backend
}

type benchEnv struct {
	b   *testing.B
	be  driver.Backend
	cfg engine.Config
	eng *engine.Engine
}

func newBenchEnv(b *testing.B, h BenchHarness) *benchEnv {
	return newBenchEnvOn(b, h, sharedSandbox(b))
}

// newBenchEnvOn is newBenchEnv with the engine's plugins run by sb.
func newBenchEnvOn(b *testing.B, h BenchHarness, sb engine.PluginRuntime) *benchEnv {
	be, cfg := h.New(b)
	cfg.MultiTenancy, cfg.BootstrapTenantID = true, "system"
	if cfg.ContentDir == "" {
		cfg.ContentDir = b.TempDir()
	}
	if cfg.ContentStorage == "" {
		cfg.ContentStorage = engine.ContentFilesystem
	}
	cfg.NoContentSync = true
	cfg.Sandbox = sb
	if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(bg, be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return &benchEnv{b: b, be: be, cfg: cfg, eng: eng}
}

func (e *benchEnv) tenant(id, pipeline string, plugins ...string) *engine.Session {
	if _, err := e.eng.Provisioner("bench").Create(bg, id, id); err != nil {
		e.b.Fatal(err)
	}
	s := e.eng.As(docex.UserContext{UserID: "u-" + id, TenantID: id, Roles: []string{"admin"}})
	for _, name := range plugins {
		manifest, module := benchPlugin(e.b, name)
		if _, err := s.InstallPlugin(bg, manifest, module); err != nil {
			e.b.Fatal(err)
		}
	}
	if _, err := s.CreatePipeline(bg, []byte(pipeline)); err != nil {
		e.b.Fatal(err)
	}
	return s
}

func benchPlugin(b *testing.B, name string) (manifest, module []byte) {
	fsys, err := testplugins.Dir(name)
	if err != nil {
		b.Fatal(err)
	}
	if manifest, err = fs.ReadFile(fsys, "plugin.toml"); err != nil {
		b.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(manifest)
	if err != nil {
		b.Fatal(err)
	}
	if module, err = fs.ReadFile(fsys, m.Module); err != nil {
		b.Fatal(err)
	}
	return manifest, module
}

// addDocs adds n small distinct documents to a new basket.
func addDocs(b *testing.B, s *engine.Session, basket string, n int, tag string) docex.Basket {
	bk, err := s.CreateBasket(bg, basket)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	for off := 0; off < n; off += batch {
		var docs []engine.NewDocument
		for i := off; i < min(n, off+batch); i++ {
			docs = append(docs, engine.NewDocument{Name: "d.txt", Content: strings.NewReader(fmt.Sprintf("%06d %s small document body number %d", i, tag, i))})
		}
		if _, err := s.AddDocuments(bg, bk.ID, docs); err != nil {
			b.Fatal(err)
		}
	}
	return bk
}

// runWorkers runs n workers (the second and later on their own backends
// when second is set) until ctx is done.
func (e *benchEnv) runWorkers(ctx context.Context, h BenchHarness, n int, cfg engine.WorkerConfig) func() {
	var wg sync.WaitGroup
	for i := range n {
		eng := e.eng
		if i > 0 && h.Second != nil {
			be2 := h.Second(e.b, e.be)
			var err error
			if eng, err = engine.New(bg, be2, e.cfg); err != nil {
				e.b.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := eng.Worker(cfg).Run(ctx); err != nil {
				e.b.Error(err)
			}
		}()
	}
	return wg.Wait
}

const benchThreeSteps = threeSteps

// BenchPipeline measures documents per second through the 3-step test
// pipeline (split, upper on each half, tag on each) over 1,000 small
// documents with one worker of concurrency 8, and, in the same run: the
// same with batches of one job (WorkerConfig.Batch 1: each job's steps
// commit on their own, as before batches), and the same plugin calls
// made directly on the sandbox in a loop (no jobs, lineage, audit, cache
// or persistence): the engine's overhead.
func BenchPipeline(b *testing.B, h BenchHarness) {
	const n = 1000
	for range b.N {
		one := pipelineRun(b, h, n, 1, 1)
		batched := pipelineRun(b, h, n, engine.DefaultBatch, 1)
		direct, calls := directLoop(b, n)
		if calls != batched.StepsRun || batched.StepsCached != 0 || one.StepsRun != calls {
			b.Fatalf("the direct loop made %d plugin calls, the engine %d and %d (and %d cached)", calls, batched.StepsRun, one.StepsRun, batched.StepsCached)
		}
		b.ReportMetric(float64(n)/batched.Elapsed.Seconds(), "docs/s")
		b.ReportMetric(float64(n)/one.Elapsed.Seconds(), "batch1-docs/s")
		b.ReportMetric(float64(n)/direct.Seconds(), "direct-docs/s")
		b.ReportMetric(one.Elapsed.Seconds()/batched.Elapsed.Seconds(), "batched/batch1")
		b.ReportMetric(batched.Elapsed.Seconds()/direct.Seconds(), "engine/direct")
		b.ReportMetric(float64(calls)/n, "calls/doc")
	}
}

// pipelineRun adds n documents to a new tenant's basket and runs the
// 3-step pipeline over them with the given number of workers (each of
// concurrency 8, batches of batch jobs); Elapsed is from RunPipeline to
// the last job's end.
func pipelineRun(b *testing.B, h BenchHarness, n, batch, workers int) engine.JobsStatus {
	e := newBenchEnv(b, h)
	s := e.tenant("bench", benchThreeSteps, "split", "upper", "tag")
	bk := addDocs(b, s, "in", n, "pipeline")
	ctx, cancel := context.WithCancel(bg)
	start := time.Now()
	ids, err := s.RunPipeline(bg, "three", engine.RunTarget{BasketID: bk.ID})
	if err != nil {
		b.Fatal(err)
	}
	wait := e.runWorkers(ctx, h, workers, engine.WorkerConfig{Concurrency: 8, TenantConcurrency: 8, Batch: batch, Poll: 20 * time.Millisecond})
	st, err := s.WaitJobs(bg, ids, 500*time.Millisecond, nil)
	st.Elapsed = time.Since(start)
	cancel()
	wait()
	if err != nil || st.Succeeded != n {
		b.Fatalf("pipeline: %+v %v", st, err)
	}
	return st
}

// directLoop calls split, upper and tag on the sandbox for n documents
// like the pipeline does, on two goroutines (one per core), nothing
// persisted. It returns the time taken and the number of plugin calls.
func directLoop(b *testing.B, n int) (time.Duration, int) {
	sb := sharedSandbox(b)
	load := func(name string) *sandbox.Plugin {
		manifest, module := benchPlugin(b, name)
		m, err := pluginapi.ParseManifest(manifest)
		if err != nil {
			b.Fatal(err)
		}
		p, err := sb.Load(bg, m, module)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	split, upper, tag := load("split"), load("upper"), load("tag")
	run := func(p *sandbox.Plugin, content []byte) *pluginapi.Result {
		res, err := p.Run(bg, pluginapi.Call{TenantID: "direct", UserID: "u",
			Input: pluginapi.Document{Name: "d.txt", ContentType: "text/plain", Size: int64(len(content)), Metadata: map[string]any{}, Content: bytes.NewReader(content)}})
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	start := time.Now()
	var wg sync.WaitGroup
	var calls [2]int
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 2 {
				calls[w]++
				for _, part := range run(split, fmt.Appendf(nil, "%06d direct small document body number %d", i, i)).Derived {
					calls[w]++
					for _, up := range run(upper, part.Content).Derived {
						calls[w]++
						run(tag, up.Content)
					}
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), calls[0] + calls[1]
}

// BenchWorkers measures documents per second through the 3-step pipeline
// with 1 and with 2 workers (the second on its own backend: its own
// connections, as a second process would have), each of concurrency 8.
func BenchWorkers(b *testing.B, h BenchHarness, workers int) {
	const n = 1000
	for range b.N {
		st := pipelineRun(b, h, n, engine.DefaultBatch, workers)
		b.ReportMetric(float64(n)/st.Elapsed.Seconds(), "docs/s")
	}
}

// BenchFairness measures how long tenant B's single document takes while
// tenant A has a backlog of backlog documents, against B alone (after a
// first, unmeasured, document of B that also waits for the worker to
// start), with one worker (concurrency 4, 2 per tenant, batches of
// benchBatch). The pipeline is one tag step. B's documents run one at a
// time, 7 alone then 7 with the backlog; ratio compares the medians, and
// the -max metrics are the slowest of each.
func BenchFairness(b *testing.B, h BenchHarness, backlog int) {
	const oneStep = "name = \"one\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n"
	for range b.N {
		e := newBenchEnv(b, h)
		sa := e.tenant("tenant-a", oneStep, "tag")
		sb := e.tenant("tenant-b", oneStep, "tag")
		fairness(b, e, h, "one", sa, addDocs(b, sa, "in", backlog, "a"), sb, addDocs(b, sb, "in", 1+2*fairSamples, "b"))
	}
}

// BenchFairnessBuiltin is BenchFairness with the built-in steps' pipeline
// (extract-text, chunk, redact-pii on each chunk: 5 plugin calls of about
// a millisecond each per document) on the benchmark pages of
// BenchPipelineBuiltin.
func BenchFairnessBuiltin(b *testing.B, h BenchHarness, backlog int) {
	sb0, _, steps := loadBuiltins(b)
	for range b.N {
		e := newBenchEnvOn(b, h, sb0)
		for _, s := range steps {
			if _, err := e.eng.Provisioner("bench").InstallSystemPlugin(bg, s.Manifest, s.Module); err != nil {
				b.Fatal(err)
			}
		}
		sa := e.tenant("tenant-a", builtinBenchPipeline)
		sb := e.tenant("tenant-b", builtinBenchPipeline)
		pages := func(s *engine.Session, from, n int) docex.Basket {
			bk, err := s.CreateBasket(bg, "in")
			if err != nil {
				b.Fatal(err)
			}
			for off := from; off < from+n; off += 500 {
				if _, err := s.AddDocuments(bg, bk.ID, builtinBenchDocs(off, min(from+n, off+500))); err != nil {
					b.Fatal(err)
				}
			}
			return bk
		}
		fairness(b, e, h, "builtin", sa, pages(sa, 0, backlog), sb, pages(sb, backlog, 1+2*fairSamples))
	}
}

// fairSamples is how many of B's documents run alone, and how many with
// A's backlog.
const fairSamples = 7

// fairness runs BenchFairness's measure: pipeline over A's basket bka
// (the backlog) and over B's documents in bkb, one at a time.
func fairness(b *testing.B, e *benchEnv, h BenchHarness, pipeline string, sa *engine.Session, bka docex.Basket, sb *engine.Session, bkb docex.Basket) {
	// B's documents: one for the worker's start, then samples alone
	// and samples with A's backlog (their medians are compared: one
	// sample of a few milliseconds, polled every 5 ms, is noise).
	docsB, err := sb.Documents(bg, bkb.ID, docex.Page{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	wait := e.runWorkers(ctx, h, 1, engine.WorkerConfig{Concurrency: 4, TenantConcurrency: 2, Batch: benchBatch(), Poll: 20 * time.Millisecond})
	timeB := func(doc string) time.Duration {
		start := time.Now()
		ids, err := sb.RunPipeline(bg, pipeline, engine.RunTarget{DocumentIDs: []string{doc}})
		if err != nil {
			b.Fatal(err)
		}
		if st, err := sb.WaitJobs(bg, ids, 5*time.Millisecond, nil); err != nil || st.Succeeded != 1 {
			b.Fatalf("%+v %v", st, err)
		}
		return time.Since(start)
	}
	median := func(docs []docex.Document) (med, worst time.Duration) {
		ts := make([]time.Duration, len(docs))
		for i, d := range docs {
			ts[i] = timeB(d.ID)
		}
		slices.Sort(ts)
		return ts[len(ts)/2], ts[len(ts)-1]
	}
	// The first job after the worker starts also waits for its start
	// (River: client, leader, queues): not counted.
	first := timeB(docsB[0].ID)
	alone, aloneMax := median(docsB[1 : 1+fairSamples])
	idsA, err := sa.RunPipeline(bg, pipeline, engine.RunTarget{BasketID: bka.ID})
	if err != nil {
		b.Fatal(err)
	}
	// Let A's backlog occupy the worker, then measure B.
	for {
		st, _ := sa.JobsStatus(bg, idsA[:50])
		if st.Succeeded > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	loaded, loadedMax := median(docsB[1+fairSamples:])
	stA, _ := sa.JobsStatus(bg, idsA)
	cancel()
	wait()
	if stA.Pending == 0 {
		b.Fatalf("A's backlog of %d was done before B's samples were: make it longer", len(idsA))
	}
	b.ReportMetric(float64(first.Microseconds())/1000, "b-first-ms")
	b.ReportMetric(float64(alone.Microseconds())/1000, "b-alone-ms")
	b.ReportMetric(float64(loaded.Microseconds())/1000, "b-with-backlog-ms")
	b.ReportMetric(float64(aloneMax.Microseconds())/1000, "b-alone-max-ms")
	b.ReportMetric(float64(loadedMax.Microseconds())/1000, "b-with-backlog-max-ms")
	b.ReportMetric(loaded.Seconds()/alone.Seconds(), "ratio")
	b.ReportMetric(float64(stA.Pending), "a-pending-after-b")
}

// BenchJobsStatus measures one JobsStatus poll (what pipeline run --wait
// does every interval) of a run over n documents whose jobs are all still
// queued (no worker runs), for n of 1,000 and of 20,000; the smaller is
// the baseline: per-job cost should not grow with the run.
func BenchJobsStatus(b *testing.B, h BenchHarness) {
	for _, n := range []int{1_000, 20_000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			e := newBenchEnv(b, h)
			s := e.tenant("bench", benchThreeSteps, "split", "upper", "tag")
			bk := addDocs(b, s, "in", n, "status")
			ids, err := s.RunPipeline(bg, "three", engine.RunTarget{BasketID: bk.ID})
			if err != nil || len(ids) != n {
				b.Fatalf("run: %d jobs, %v", len(ids), err)
			}
			for b.Loop() {
				st, err := s.JobsStatus(bg, ids)
				if err != nil || st.Pending != n {
					b.Fatalf("status: %+v %v", st, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/job")
		})
	}
}
