package builtin_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox"
)

// TestStepsSharingAModuleDoNotShareCache: the built-in steps share one
// module, so the step cache key must tell them apart. extract-text on a
// plain-text document outputs the same bytes, so redact-pii's input
// equals extract-text's, with the same (no) parameters; with a key of
// input, module and parameters only, redact-pii took extract-text's
// cached result and never ran: the email address stayed.
func TestStepsSharingAModuleDoNotShareCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem, ContentDir: filepath.Join(dir, "content"), Sandbox: sb}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ops := eng.Provisioner("ops")
	steps, _ := builtin.Steps()
	for _, s := range steps {
		if _, err := ops.InstallSystemPlugin(ctx, s.Manifest, s.Module); err != nil {
			t.Fatal(err)
		}
	}
	ops.Create(ctx, "acme", "Acme")
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	def := "name = \"p\"\n[[steps]]\nname = \"text\"\nplugin = \"extract-text\"\n[[steps]]\nname = \"red\"\nplugin = \"redact-pii\"\ninput = \"text\"\n"
	if _, err := s.CreatePipeline(ctx, []byte(def)); err != nil {
		t.Fatal(err)
	}
	bk, _ := s.CreateBasket(ctx, "in")
	a, err := s.AddDocument(ctx, bk.ID, engine.NewDocument{Name: "a.txt", ContentType: "text/plain", Content: strings.NewReader("Write to jane.doe@example.com today.\n")})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.RunPipeline(ctx, "p", engine.RunTarget{DocumentIDs: []string{a.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	go eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond}).Run(wctx)
	st, err := s.WaitJobs(wctx, jobs, 50*time.Millisecond, nil)
	if err != nil || st.Succeeded != 1 || st.StepsRun != 2 || st.StepsCached != 0 {
		t.Fatalf("status %+v, %v: want one job, both steps run", st, err)
	}
	docs, err := s.Documents(ctx, bk.ID, docex.Page{})
	if err != nil {
		t.Fatal(err)
	}
	redacted := false
	for _, d := range docs {
		c, err := s.ReadContent(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != a.Document.ID && !strings.Contains(string(c), "jane.doe@example.com") {
			redacted = true
		}
	}
	if !redacted {
		t.Fatalf("no redacted document among %d", len(docs))
	}
}
