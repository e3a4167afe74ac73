package engine

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// TestMaxDerivedRecordedOutputs: a run whose completion key another
// worker recorded first counts the recorded outputs towards the job's
// max_derived, not its own. Pipeline "race" (max_derived = 2) runs split
// (2 documents) then upper (1 document), both on the input. Right after
// the attempt reads its completion keys, "another worker" records split's
// key with no outputs: the attempt's split run derives 2 documents, its
// commit meets the key (ErrExists) and takes the recorded outcome, so the
// job derived 0 documents, then 1 with upper: it succeeds. Counting the
// run's own 2 outputs would make upper's one too many (too_large).
func TestMaxDerivedRecordedOutputs(t *testing.T) {
	ctx := context.Background()
	hj := newHookedJob(t, "name = \"race\"\nmax_derived = 2\n"+
		"[[steps]]\nname = \"split\"\nplugin = \"split\"\n[[steps]]\nname = \"upper\"\nplugin = \"upper\"\n", "split", "upper")
	s, be, d, ids := hj.s, hj.be, hj.doc, []string{hj.jobID}
	key := ids[0] + "/split/" + d.Document.ID
	// Another worker records split's key right after the attempt read
	// its completion keys.
	other := driver.StepRecord{Key: key, JobID: ids[0], Step: "split", InputID: d.Document.ID,
		Outcome: StepRan, Outputs: []string{}, Detail: []byte("{}"), CreatedAt: time.Now().UTC()}
	be.armSteps(func(ctx context.Context, st driver.TenantStore, jobIDs []string) bool {
		if !slices.Contains(jobIDs, other.JobID) {
			return false
		}
		if err := st.Write(ctx, func(tx driver.Tx) error { return tx.InsertJobStep(ctx, other) }); err != nil {
			t.Errorf("record the other worker's key: %v", err)
		}
		return true
	})

	out := hj.attempt(ctx)
	if !be.fired() {
		t.Fatal("the other worker's completion key was never recorded: the test did not exercise the ErrExists path")
	}
	j, err := s.Job(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind != driver.Done || j.State != driver.JobSucceeded {
		t.Fatalf("outcome %+v, job %s: %+v; want it succeeded (0 recorded outputs of split, then 1 of upper, max_derived = 2)", out, j.State, j.Error)
	}
	// The job's stored progress (job list, the run summary) counts the
	// other worker's split run (no outputs) and its own upper run (one
	// document), as Job's, counted from the recorded steps, does.
	list, err := s.Jobs(ctx, JobFilter{}, docex.Page{})
	if err != nil || len(list) != 1 {
		t.Fatalf("jobs %+v, %v", list, err)
	}
	for _, p := range []JobProgress{j.Progress, list[0].Progress} {
		if p.StepsRun != 2 || p.Derived != 1 || p.StepsCached != 0 || p.StepsFiltered != 0 {
			t.Errorf("job progress %+v (job show), %+v (job list); want 2 steps run, 1 derived", j.Progress, list[0].Progress)
		}
	}
	rec, err := be.store(ctx, t).JobStep(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Outputs) != 0 {
		t.Fatalf("split's completion key: outputs %v, want the other worker's (none)", rec.Outputs)
	}
	l, err := s.Lineage(ctx, d.Document.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Descendants) != 1 || l.Descendants[0].Step != "upper" {
		t.Fatalf("descendants %+v; want upper's one (split's run was rolled back)", l.Descendants)
	}
}
