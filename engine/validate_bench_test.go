package engine_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox"
)

// BenchmarkPipelineCreateValidate: pipeline create of the showcase
// pipeline (extract-text -> chunk -> redact-pii, with params) with the
// built-in steps' docex_validate_NAME ("validate") and with the manifest
// checks only ("manifest": an engine without a sandbox, which neither
// loads nor calls the plugins, as pipeline create did before
// docex_validate), in the same run. warm: one engine, plugins loaded and
// instances pooled (a long-lived process: docex mcp); cold: each create on
// a new engine and sandbox sharing only the on-disk compilation cache (a
// docex pipeline create process: validate loads the steps' module from
// the cache and starts an instance per step). Compare the ns/op.
func BenchmarkPipelineCreateValidate(b *testing.B) {
	showcase, err := os.ReadFile("../examples/showcase/showcase.toml")
	if err != nil {
		b.Fatal(err)
	}
	steps, err := builtin.Steps()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	setup := func(b *testing.B, validate bool) (*engine.Session, func()) {
		be, dir := engine.OpenTestSQLite(b)
		sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir()})
		if err != nil {
			b.Fatal(err)
		}
		cfg := engine.Config{MultiTenancy: true, ContentDir: dir + "/content", Sandbox: sb}
		if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
			b.Fatal(err)
		}
		eng, err := engine.New(ctx, be, cfg)
		if err != nil {
			b.Fatal(err)
		}
		ops := eng.Provisioner("ops")
		if _, err := ops.Create(ctx, "acme", ""); err != nil {
			b.Fatal(err)
		}
		for _, s := range steps {
			if _, err := ops.InstallSystemPlugin(ctx, s.Manifest, s.Module); err != nil {
				b.Fatal(err)
			}
		}
		eng.Close()
		// A new engine and sandbox: nothing loaded, as in a new process.
		sb.Close(ctx)
		cfg.Sandbox = nil
		if validate {
			if sb, err = sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir()}); err != nil {
				b.Fatal(err)
			}
			cfg.Sandbox = sb
		}
		if eng, err = engine.New(ctx, be, cfg); err != nil {
			b.Fatal(err)
		}
		s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
		return s, func() { eng.Close(); sb.Close(ctx); be.Close() }
	}
	for _, mode := range []string{"warm", "cold"} {
		for _, validate := range []bool{false, true} {
			name := mode + "/manifest"
			if validate {
				name = mode + "/validate"
			}
			b.Run(name, func(b *testing.B) {
				if mode == "warm" {
					s, done := setup(b, validate)
					defer done()
					if _, err := s.CreatePipeline(ctx, showcase); err != nil { // loads the plugins
						b.Fatal(err)
					}
					b.ResetTimer()
					for range b.N {
						if _, err := s.CreatePipeline(ctx, showcase); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				var total time.Duration
				for range b.N {
					b.StopTimer()
					s, done := setup(b, validate)
					b.StartTimer()
					start := time.Now()
					if _, err := s.CreatePipeline(ctx, showcase); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					b.StopTimer()
					done()
					b.StartTimer()
				}
				b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "create-ms/op")
			})
		}
	}
}
