package postgres

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/backends/backendtest"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

var pipelineBench = backendtest.BenchHarness{
	New: func(b *testing.B) (driver.Backend, engine.Config) {
		return openBackend(b, Config{MaxConns: 16}), engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}
	},
	Second: func(b *testing.B, be driver.Backend) driver.Backend {
		b2, err := Open(context.Background(), be.(*Backend).cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { b2.Close() })
		return b2
	},
}

// BenchmarkPipeline: documents/s through the 3-step pipeline over 1,000
// small documents, and the same plugin calls made directly (run with
// -benchtime=1x).
func BenchmarkPipeline(b *testing.B) { backendtest.BenchPipeline(b, pipelineBench) }

// BenchmarkPipelineBuiltin: documents/s through extract-text, chunk and
// redact-pii (the built-in steps) over 1,000 pages of about 2 KiB, and
// the same plugin calls made directly (run with -benchtime=1x).
func BenchmarkPipelineBuiltin(b *testing.B) { backendtest.BenchPipelineBuiltin(b, pipelineBench) }

// BenchmarkWorkers1 and BenchmarkWorkers2: the same run with one and with
// two workers on their own connection pools (River clients).
func BenchmarkWorkers1(b *testing.B) { backendtest.BenchWorkers(b, pipelineBench, 1) }
func BenchmarkWorkers2(b *testing.B) { backendtest.BenchWorkers(b, pipelineBench, 2) }

// BenchmarkFairness: tenant B's single document with tenant A's
// 10,000-document backlog, against B alone (run with -benchtime=1x).
func BenchmarkFairness(b *testing.B) { backendtest.BenchFairness(b, pipelineBench, 10000) }

// BenchmarkFairnessBuiltin: BenchmarkFairness with the built-in steps'
// pipeline (about 1 ms a plugin call) and a backlog of 2,000 pages.
func BenchmarkFairnessBuiltin(b *testing.B) {
	backendtest.BenchFairnessBuiltin(b, pipelineBench, 2000)
}

// BenchmarkPrune: job prune of 10,000 finished jobs (3 step records
// each), against recording them in the same run (run with -benchtime=1x).
func BenchmarkPrune(b *testing.B) { backendtest.BenchPrune(b, pipelineBench, 10000) }

// BenchmarkDerivedAfter: a page of 7 of driver.LineagePager.DerivedAfter
// over a lineage of 10,020 edges (ns/op per page).
func BenchmarkDerivedAfter(b *testing.B) { backendtest.BenchDerivedAfter(b, pipelineBench) }
