package engine_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

// pluginBench is an engine over SQLite (filesystem content,
// synchronous=normal) with the shared test sandbox, tenants t0..tN-1 each
// holding one small text document, and the tag (WAT) and wordcount (Go)
// plugins installed system-wide.
type pluginBench struct {
	eng      *engine.Engine
	sessions []*engine.Session
	docs     []string
}

func newPluginBench(b *testing.B, tenants int) *pluginBench {
	b.Helper()
	dir := b.TempDir()
	// Every tenant database stays open: the benchmark measures the plugin
	// path, not the backend reopening tenant files (MaxOpenTenants).
	be, err := sqlite.Open(benchCtx, sqlite.Config{Dir: filepath.Join(dir, "data"), Synchronous: "normal", MaxOpenTenants: tenants + 8})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content"), NoContentSync: true, Sandbox: testSandbox(b)}
	if _, err := engine.Bootstrap(benchCtx, be, cfg); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(benchCtx, be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	p := eng.Provisioner("bench")
	for _, name := range []string{"tag", "wordcount"} {
		manifest, module := pluginFiles(b, name)
		if _, err := p.InstallSystemPlugin(benchCtx, manifest, module); err != nil {
			b.Fatal(err)
		}
	}
	pb := &pluginBench{eng: eng}
	for i := range tenants {
		id := fmt.Sprintf("t%d", i)
		if _, err := p.Create(benchCtx, id, ""); err != nil {
			b.Fatal(err)
		}
		s := eng.As(docex.UserContext{UserID: "bench", TenantID: id, Roles: []string{"admin"}})
		bk, err := s.CreateBasket(benchCtx, "in")
		if err != nil {
			b.Fatal(err)
		}
		a, err := s.AddDocument(benchCtx, bk.ID, engine.NewDocument{Name: "small.txt", Content: strings.NewReader("one two three four five")})
		if err != nil {
			b.Fatal(err)
		}
		pb.sessions = append(pb.sessions, s)
		pb.docs = append(pb.docs, a.Document.ID)
	}
	return pb
}

// BenchmarkPluginRun: a warm plugin run through the engine against a bare
// write transaction of the same output, in one run. baseline-write is
// Session.SetMetadata of tagged=true (one transaction with its audit
// entry); wat runs the tag plugin, which sets the same key; go runs the
// wordcount Go guest, which sets one key too. Compare ns/op as ratios.
func BenchmarkPluginRun(b *testing.B) {
	pb := newPluginBench(b, 1)
	s, doc := pb.sessions[0], pb.docs[0]
	b.Run("baseline-write", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.SetMetadata(benchCtx, doc, map[string]docex.Value{"tagged": docex.Bool(true)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct{ name, plugin string }{{"wat", "tag"}, {"go", "wordcount"}} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := s.RunPlugin(benchCtx, c.plugin, doc, nil); err != nil { // compile and warm
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.RunPlugin(benchCtx, c.plugin, doc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPluginRunTenants: throughput of tag runs from 16 goroutines over
// 1 tenant and round-robin over 1,000 tenants, in one run, under the
// sandbox's default idle budget (512 MiB), with every tenant database kept
// open. Compare runs/s.
func BenchmarkPluginRunTenants(b *testing.B) {
	pb := newPluginBench(b, 1000)
	for i := range pb.sessions { // steady state: every tenant ran once
		if _, err := pb.sessions[i].RunPlugin(benchCtx, "tag", pb.docs[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(p *testing.PB) {
				for p.Next() {
					i := int(next.Add(1)) % n
					if _, err := pb.sessions[i].RunPlugin(benchCtx, "tag", pb.docs[i], nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b, b.N, "runs/s")
		})
	}
}
