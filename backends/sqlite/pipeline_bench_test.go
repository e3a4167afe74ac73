package sqlite_test

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/backends/backendtest"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

var pipelineBench = backendtest.BenchHarness{
	New: func(b *testing.B) (driver.Backend, engine.Config) {
		return newBackend(b, b.TempDir()), engine.Config{}
	},
}

// pipelineBenchDB keeps content in the tenant's file (content_storage:
// database): no file per derived document.
var pipelineBenchDB = backendtest.BenchHarness{
	New: func(b *testing.B) (driver.Backend, engine.Config) {
		return newBackend(b, b.TempDir()), engine.Config{ContentStorage: engine.ContentDatabase}
	},
}

// BenchmarkPipeline: documents/s through the 3-step pipeline over 1,000
// small documents, and the same plugin calls made directly (run with
// -benchtime=1x).
func BenchmarkPipeline(b *testing.B) { backendtest.BenchPipeline(b, pipelineBench) }

// BenchmarkPipelineDBContent: BenchmarkPipeline with content stored in
// the tenant's file instead of one file per document.
func BenchmarkPipelineDBContent(b *testing.B) { backendtest.BenchPipeline(b, pipelineBenchDB) }

// BenchmarkFairness: tenant B's single document with tenant A's
// 10,000-document backlog, against B alone (run with -benchtime=1x).
func BenchmarkFairness(b *testing.B) { backendtest.BenchFairness(b, pipelineBench, 10000) }

// BenchmarkFairnessBuiltin: BenchmarkFairness with the built-in steps'
// pipeline (about 1 ms a plugin call) and a backlog of 2,000 pages.
func BenchmarkFairnessBuiltin(b *testing.B) {
	backendtest.BenchFairnessBuiltin(b, pipelineBench, 2000)
}

// BenchmarkPipelineBuiltin: documents/s through extract-text, chunk and
// redact-pii (the built-in steps) over 1,000 pages of about 2 KiB, and
// the same plugin calls made directly (run with -benchtime=1x).
func BenchmarkPipelineBuiltin(b *testing.B) { backendtest.BenchPipelineBuiltin(b, pipelineBench) }

// pipelineBenchNoSync is pipelineBench with synchronous=normal: no fsync
// per commit in WAL mode (the pipeline benchmarks never fsync content
// files: newBenchEnvOn sets NoContentSync). It tells the cost of waiting
// for the disk apart from the engine's CPU.
var pipelineBenchNoSync = backendtest.BenchHarness{
	New: func(b *testing.B) (driver.Backend, engine.Config) {
		be, err := sqlite.Open(context.Background(), sqlite.Config{Dir: b.TempDir(), MaxOpenTenants: 4, Synchronous: "normal"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { be.Close() })
		return be, engine.Config{}
	},
}

// BenchmarkPipelineBuiltinNoSync: BenchmarkPipelineBuiltin with
// synchronous=normal (what waiting for each commit's fsync costs).
func BenchmarkPipelineBuiltinNoSync(b *testing.B) {
	backendtest.BenchPipelineBuiltin(b, pipelineBenchNoSync)
}

// BenchmarkJobsStatus: one pipeline run --wait poll of 1,000 and of
// 20,000 queued jobs.
func BenchmarkJobsStatus(b *testing.B) { backendtest.BenchJobsStatus(b, pipelineBench) }

// BenchmarkPrune: job prune of 10,000 finished jobs (3 step records
// each), against recording them in the same run (run with -benchtime=1x).
func BenchmarkPrune(b *testing.B) { backendtest.BenchPrune(b, pipelineBench, 10000) }

// BenchmarkDerivedAfter: a page of 7 of driver.LineagePager.DerivedAfter
// over a lineage of 10,020 edges (ns/op per page).
func BenchmarkDerivedAfter(b *testing.B) { backendtest.BenchDerivedAfter(b, pipelineBench) }
