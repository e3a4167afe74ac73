package builtin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox"
)

// showcaseDir holds the showcase pipeline of docs/steps.md, README and
// make demo, and its documents.
const showcaseDir = "../../examples/showcase"

// TestShowcasePipeline runs extract-text -> chunk -> redact-pii as a
// pipeline through the engine on the showcase's real PDFs and DOCX, checks
// that every kind of personal data in them is counted and none is left in
// the redacted chunks, and follows lineage from a redacted chunk back to
// its source document.
func TestShowcasePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline of the built-in steps")
	}
	ctx := context.Background()
	eng := builtinEngine(t)
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	def, err := os.ReadFile(filepath.Join(showcaseDir, "showcase.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePipeline(ctx, def); err != nil {
		t.Fatal(err)
	}
	basket, err := s.CreateBasket(ctx, "papers")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range []string{"ticket.pdf", "invoice.pdf", "onboarding.docx", "claim.docx"} {
		b, err := os.ReadFile(filepath.Join(showcaseDir, f))
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: filepath.Base(f), Content: strings.NewReader(string(b))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.Document.ID)
	}
	jobs, err := s.RunPipeline(ctx, "showcase", engine.RunTarget{DocumentIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	st := runJobs(t, eng, s, jobs)
	if st.Succeeded != len(ids) {
		t.Fatalf("jobs: %+v", st)
	}
	// Every chunk went through redact-pii (a redacted copy identical to
	// its chunk is the same document: content is stored once per basket).
	find := func(step string) []docex.Document {
		docs, _, err := s.FindDocuments(ctx, basket.ID, []docex.MetaFilter{{Key: "derived_by", Value: docex.String(step)}}, docex.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return docs
	}
	chunks, docs := find("chunk"), find("redact-pii")
	if len(chunks) < len(ids)+2 || len(docs) == 0 || st.StepsRun != 2*len(ids)+len(chunks) {
		t.Fatalf("%d chunks, %d redacted, jobs %+v", len(chunks), len(docs), st)
	}
	// Every kind is found somewhere, counted, and gone from the text.
	counts := map[string]float64{}
	for _, d := range docs {
		for k, v := range d.Metadata {
			if strings.HasPrefix(k, "pii_") {
				counts[k] += v.Num()
			}
		}
		text, err := s.ReadContent(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"jane.doe@example.com", "4111 1111 1111 1111", "7946 0958", "DE89 3704", "GB82 WEST", "NL91 ABNA", "5555 5555 5555 4444", "192.0.2.44", "2001:db8::4a:17", "EMP-004211"} {
			if strings.Contains(string(text), secret) {
				t.Errorf("%s still contains %q", d.Name, secret)
			}
		}
	}
	for _, kind := range []string{"pii_email", "pii_phone", "pii_card", "pii_iban", "pii_ipv4", "pii_ipv6", "pii_employee_ref"} {
		if counts[kind] == 0 {
			t.Errorf("no %s counted: %v", kind, counts)
		}
	}
	// Follow a redacted chunk back to the document it came from.
	lin, err := s.Lineage(ctx, docs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(lin.Ancestors) != 3 || !containsID(ids, lin.Ancestors[len(lin.Ancestors)-1].SourceID) {
		t.Fatalf("lineage of %s: %+v", docs[0].Name, lin.Ancestors)
	}
	t.Logf("%d jobs, %d steps run; %d chunks, %d with personal data redacted; lineage %s <- %s <- %s <- %s", st.Total, st.StepsRun, len(chunks), len(docs),
		docs[0].Name, lin.Ancestors[0].SourceName, lin.Ancestors[1].SourceName, lin.Ancestors[2].SourceName)
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestShowcaseDocumented: the pipeline docs/steps.md shows is the one make
// demo and the README run (examples/showcase/showcase.toml, less its
// comments).
func TestShowcaseDocumented(t *testing.T) {
	def, err := os.ReadFile(filepath.Join(showcaseDir, "showcase.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(def), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	want := strings.TrimSpace(strings.Join(lines, "\n"))
	doc, err := os.ReadFile("../../docs/steps.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```toml\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || strings.TrimSpace(block) != want {
		t.Fatalf("docs/steps.md's toml block:\n%s\nwant (examples/showcase/showcase.toml):\n%s", block, want)
	}
}

// builtinEngine returns an engine over a SQLite backend and filesystem
// content in a temporary directory, with the built-in steps installed as
// system plugins (compiled through the tests' cache) and a tenant "acme";
// everything is closed when the test ends.
// runJobs runs a worker for tenant acme until jobs have ended, then
// stops it, and returns their status; it fails the test when the worker
// or the wait fails.
func runJobs(t *testing.T, eng *engine.Engine, s *engine.Session, jobs []string) engine.JobsStatus {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond, ShutdownTimeout: time.Minute}).Run(ctx)
	}()
	st, err := s.WaitJobs(ctx, jobs, 50*time.Millisecond, nil)
	stop()
	if werr := <-done; werr != nil && !errors.Is(werr, context.Canceled) {
		t.Fatalf("worker: %v", werr)
	}
	if err != nil {
		t.Fatalf("waiting for the jobs: %v", err)
	}
	return st
}

func builtinEngine(t *testing.T) *engine.Engine {
	t.Helper()
	eng, _ := builtinEngineBackend(t)
	return eng
}

// builtinEngineBackend is builtinEngine, also returning its backend.
func builtinEngineBackend(t *testing.T) (*engine.Engine, driver.Backend) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(ctx) })
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem, ContentDir: filepath.Join(dir, "content"), Sandbox: sb}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ops := eng.Provisioner("ops")
	steps, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if _, err := ops.InstallSystemPlugin(ctx, s.Manifest, s.Module); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ops.Create(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	return eng, be
}

// TestStoredPipelineCustomSSN: a pipeline stored before ssn was a
// built-in kind of redact-pii, with its own pattern named ssn (written
// to the store as it was, past today's checks), still runs: its pattern
// and the built-in ssn detector both redact, counted together in
// pii_ssn (the run failed: the name was refused as a built-in kind's).
func TestStoredPipelineCustomSSN(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a pipeline of the built-in steps")
	}
	ctx := context.Background()
	eng, be := builtinEngineBackend(t)
	def := `name = "legacy"

[[steps]]
name = "redacted"
plugin = "redact-pii"
[steps.params]
patterns = '{"ssn": "SSN#[0-9]{9}", "employee": "EMP-[0-9]{6}"}'
`
	ts, err := be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	err = ts.Write(ctx, func(tx driver.Tx) error {
		return tx.InsertPipeline(ctx, driver.PipelineRecord{Name: "legacy", Version: 1, Definition: []byte(def),
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), CreatedBy: "alice"})
	})
	ts.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	basket, err := s.CreateBasket(ctx, "hr")
	if err != nil {
		t.Fatal(err)
	}
	text := "Jane Roe, SSN#123456789 (old form), SSN 078-05-1121, EMP-004211, call 555-123-4567.\n"
	a, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "jane.txt", ContentType: "text/plain", Content: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.RunPipeline(ctx, "legacy", engine.RunTarget{DocumentIDs: []string{a.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if st := runJobs(t, eng, s, jobs); st.Succeeded != 1 {
		t.Fatalf("jobs: %+v", st)
	}
	docs, _, err := s.FindDocuments(ctx, basket.ID, []docex.MetaFilter{{Key: "derived_by", Value: docex.String("redact-pii")}}, docex.Page{Limit: 10})
	if err != nil || len(docs) != 1 {
		t.Fatalf("redacted documents: %v, %v", docs, err)
	}
	got, err := s.ReadContent(ctx, docs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Jane Roe, [SSN] (old form), SSN [SSN], [EMPLOYEE], call [PHONE].\n"; string(got) != want {
		t.Errorf("redacted:\n got %q\nwant %q", got, want)
	}
	want := map[string]float64{"pii_ssn": 2, "pii_employee": 1, "pii_phone": 1, "pii_email": 0, "pii_total": 4}
	for k, v := range want {
		if m, ok := docs[0].Metadata[k]; !ok || m.Num() != v {
			t.Errorf("%s = %v (set: %v), want %v (%v)", k, m.Num(), ok, v, docs[0].Metadata)
		}
	}
}
