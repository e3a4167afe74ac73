package builtin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestStepPluginRefusesContentType: a step whose plugin does not accept
// its input's content type fails the job (invalid input, no retry) with
// the plugin's accepted types and how the pipeline skips such documents;
// with the step's accept list the same document is filtered and the job
// succeeds.
func TestStepPluginRefusesContentType(t *testing.T) {
	ctx := context.Background()
	eng := builtinEngine(t)
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	for _, def := range []string{
		"name = \"strict\"\n[[steps]]\nname = \"j\"\nplugin = \"csv-to-json\"\n",
		"name = \"skips\"\n[[steps]]\nname = \"j\"\nplugin = \"csv-to-json\"\naccept = [\"text/csv\"]\n",
	} {
		if _, err := s.CreatePipeline(ctx, []byte(def)); err != nil {
			t.Fatal(err)
		}
	}
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.AddDocument(ctx, bk.ID, engine.NewDocument{Name: "a.pdf", ContentType: "application/pdf", Content: strings.NewReader("%PDF-1.4 not really")})
	if err != nil {
		t.Fatal(err)
	}
	strict, err := s.RunPipeline(ctx, "strict", engine.RunTarget{DocumentIDs: []string{a.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	skips, err := s.RunPipeline(ctx, "skips", engine.RunTarget{DocumentIDs: []string{a.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if st := runJobs(t, eng, s, append(strict, skips...)); st.Failed != 1 || st.Succeeded != 1 {
		t.Fatalf("status %+v: want the strict job failed, the other succeeded", st)
	}
	j, err := s.Job(ctx, strict[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `step j on ` + a.Document.ID + `: content type not accepted: plugin "csv-to-json" accepts text/*, application/csv, application/octet-stream; the document is "application/pdf" (to skip such documents instead, give step j an accept list of the content types it takes)`
	if j.Attempts != 1 || j.ErrorCode != "invalid" || j.Error != want {
		t.Fatalf("strict job: attempts %d, code %q, error %q; want 1, invalid, %q", j.Attempts, j.ErrorCode, j.Error, want)
	}
	if k, err := s.Job(ctx, skips[0]); err != nil || k.Progress.StepsFiltered != 1 {
		t.Fatalf("job with accept: %+v, %v: want its step filtered", k, err)
	}
}
