package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex/driver"
)

// TestJobInitFailureReport: a pipeline step whose plugin's start function
// fails (starthost traps: a docex host call outside docex_run) fails the
// job, and the job's failure carries the report of that initialisation (a
// cold start, its time, the instance retired), as for a failure of the
// run itself. Before, the sandbox returned no report for a failed
// initialisation and the failure's report was all zeros, as for a step
// that never ran its plugin.
func TestJobInitFailureReport(t *testing.T) {
	ctx := context.Background()
	be, dir := OpenTestSQLite(t)
	s := acmeSessionOn(t, be, dir, newTestSandbox(t))
	installTestPlugins(t, s, "starthost")
	if _, err := s.CreatePipeline(ctx, []byte("name = \"init\"\nmax_attempts = 1\n[[steps]]\nname = \"start\"\nplugin = \"starthost\"\n")); err != nil {
		t.Fatal(err)
	}
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", Content: strings.NewReader("some words")})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.RunPipeline(ctx, "init", RunTarget{DocumentIDs: []string{d.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	runDirect(t, s.e, "acme", ids)
	j, err := s.Job(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	f := j.Failure
	if j.State != driver.JobFailed || f.Step != "start" || !strings.Contains(f.Error, "the start function") {
		t.Fatalf("job %s, failure %+v; want failed in step start's start function", j.State, f)
	}
	if r := f.Report; !r.ColdStart || !r.InstanceRetired || r.InitDurationMS <= 0 || r.PeakMemoryBytes == 0 || r.DurationMS != 0 || r.Instructions != 0 {
		t.Fatalf("failure report %+v, want the failed initialisation's", r)
	}
}
