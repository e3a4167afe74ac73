package builtin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestStepsSharingAModuleDoNotShareCache: the built-in steps share one
// module, so the step cache key must tell them apart. extract-text on a
// plain-text document outputs the same bytes, so redact-pii's input
// equals extract-text's, with the same (no) parameters; with a key of
// input, module and parameters only, redact-pii took extract-text's
// cached result and never ran: the email address stayed.
func TestStepsSharingAModuleDoNotShareCache(t *testing.T) {
	ctx := context.Background()
	eng := builtinEngine(t)
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	def := "name = \"p\"\n[[steps]]\nname = \"text\"\nplugin = \"extract-text\"\n[[steps]]\nname = \"red\"\nplugin = \"redact-pii\"\ninput = \"text\"\n"
	if _, err := s.CreatePipeline(ctx, []byte(def)); err != nil {
		t.Fatal(err)
	}
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.AddDocument(ctx, bk.ID, engine.NewDocument{Name: "a.txt", ContentType: "text/plain", Content: strings.NewReader("Write to jane.doe@example.com today.\n")})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.RunPipeline(ctx, "p", engine.RunTarget{DocumentIDs: []string{a.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if st := runJobs(t, eng, s, jobs); st.Succeeded != 1 || st.StepsRun != 2 || st.StepsCached != 0 {
		t.Fatalf("status %+v: want one job, both steps run", st)
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

// TestBuiltinStepsCached: no built-in step reads more than its input's
// content and its parameters (none has documents.lookup or metadata.read),
// so each is cached: a second job of a pipeline of all of them on the same
// document takes every step from the step cache.
func TestBuiltinStepsCached(t *testing.T) {
	ctx := context.Background()
	eng := builtinEngine(t)
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	var def strings.Builder
	def.WriteString("name = \"all\"\n")
	for _, st := range []string{"extract-text", "chunk", "redact-pii", "stats", "detect-type", "csv-to-json"} {
		fmt.Fprintf(&def, "[[steps]]\nname = %q\nplugin = %q\n", st, st)
	}
	def.WriteString("[[steps]]\nname = \"json-extract\"\nplugin = \"json-extract\"\ninput = \"csv-to-json\"\n[steps.params]\nfields = \"first=[0].name\"\n")
	if _, err := s.CreatePipeline(ctx, []byte(def.String())); err != nil {
		t.Fatal(err)
	}
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.AddDocument(ctx, bk.ID, engine.NewDocument{Name: "people.csv", ContentType: "text/csv", Content: strings.NewReader("name,email\nAnn,ann@example.com\nBob,bob@example.com\n")})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []engine.JobProgress{{StepsRun: 7}, {StepsCached: 7}} {
		jobs, err := s.RunPipeline(ctx, "all", engine.RunTarget{DocumentIDs: []string{a.Document.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if st := runJobs(t, eng, s, jobs); st.Succeeded != 1 {
			t.Fatalf("job %d: status %+v", i, st)
		}
		j, err := s.Job(ctx, jobs[0])
		if err != nil {
			t.Fatal(err)
		}
		if p := j.Progress; p.StepsRun != want.StepsRun || p.StepsCached != want.StepsCached || p.StepsFiltered != 0 {
			t.Errorf("job %d: progress %+v, steps %+v; want %d run, %d cached", i, p, j.Steps, want.StepsRun, want.StepsCached)
		}
	}
}
