package builtin_test

import (
	"context"
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
