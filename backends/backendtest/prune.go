package backendtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// testPruneJobs: Session.PruneJobs deletes the finished jobs last updated
// before its cutoff, in chunks, with their completion keys, and nothing
// else: not a queued or running job, not a job that ended after the
// cutoff, not another tenant's jobs, not lineage edges or derived
// documents; a pruned job is not found (show, retry), and the pipeline
// runs again on the same document (its steps from the step cache, its
// outputs the documents the pruned job derived). One job.prune audit
// entry per prune records the counts and the cutoff; a refused prune
// changes nothing.
func (f *fixture) testPruneJobs(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme", "trap")
	_, err := admin.CreatePipeline(bg, []byte("name = \"bad\"\nmax_attempts = 1\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\ninput = \"s\"\n"))
	must(t, err)
	other := e.threeStepsTenant("other")
	b := e.basket(admin, "in")
	ob := e.basket(other, "in")
	d1 := e.add(admin, b.ID, "ok.txt", "one first, one second", nil)
	d2 := e.add(admin, b.ID, "bad.txt", "two first, two second", nil)
	d3 := e.add(admin, b.ID, "cancel.txt", "three first, three second", nil)
	d4 := e.add(admin, b.ID, "later.txt", "four first, four second", nil)
	od := e.add(other, ob.ID, "other.txt", "other first, other second", nil)

	run := func(s *engine.Session, pipeline, doc string) string {
		t.Helper()
		ids, err := s.RunPipeline(bg, pipeline, engine.RunTarget{DocumentIDs: []string{doc}})
		must(t, err)
		return ids[0]
	}
	// Jobs ended before the cutoff: one in each final state; the other
	// tenant's, succeeded.
	okJob, badJob := run(admin, "three", d1.ID), run(admin, "bad", d2.ID)
	if st := e.work(admin, []string{"acme"}, []string{okJob, badJob}); st.Succeeded != 1 || st.Failed != 1 {
		t.Fatalf("status %+v, want one succeeded, one failed", st)
	}
	cancelled := run(admin, "three", d3.ID)
	must(t, admin.CancelJob(bg, cancelled))
	otherJob := run(other, "three", od.ID)
	if st := e.work(other, []string{"other"}, []string{otherJob}); st.Succeeded != 1 {
		t.Fatalf("other tenant: %+v", st)
	}
	old := []string{okJob, badJob, cancelled}
	var oldSteps []driver.StepRecord
	var last time.Time
	for _, id := range old {
		j, err := admin.Job(bg, id)
		must(t, err)
		if j.UpdatedAt.After(last) {
			last = j.UpdatedAt
		}
	}
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	for _, id := range old {
		steps, err := st.JobSteps(bg, id)
		must(t, err)
		oldSteps = append(oldSteps, steps...)
	}
	if len(oldSteps) == 0 {
		t.Fatal("the finished jobs recorded no completion keys: nothing to check")
	}
	cutoff := last.Add(time.Microsecond)
	for !time.Now().Truncate(time.Microsecond).After(cutoff) { // a microsecond at most: jobs from now on end after the cutoff
	}
	newer := run(admin, "three", d4.ID)
	if st := e.work(admin, []string{"acme"}, []string{newer}); st.Succeeded != 1 {
		t.Fatalf("newer job: %+v", st)
	}
	linBefore := derivedOf(t, admin, d1.ID)
	if len(linBefore) == 0 || linBefore[0].JobID != okJob {
		t.Fatalf("lineage of the succeeded job's document: %+v", linBefore)
	}

	// Refused: changed nothing, audited as errors.
	writer := e.as("acme", "writer")
	_, err = writer.PruneJobs(bg, engine.PruneJobsOptions{Before: cutoff})
	wantErr(t, err, docex.ErrForbidden)
	for _, o := range []engine.PruneJobsOptions{
		{},
		{Before: time.Now().Add(time.Hour)},
		{Before: cutoff, States: []string{driver.JobRunning}},
		{Before: cutoff, States: []string{driver.JobSucceeded, driver.JobQueued}},
		{Before: cutoff, States: []string{"done"}},
		{Before: cutoff, Chunk: -1},
		{Before: cutoff, Chunk: engine.MaxPruneChunk + 1},
	} {
		_, err := admin.PruneJobs(bg, o)
		wantErr(t, err, docex.ErrInvalid)
	}
	// A dry run counts, deleting nothing.
	dry, err := admin.PruneJobs(bg, engine.PruneJobsOptions{Before: cutoff, DryRun: true})
	must(t, err)
	if dry.Jobs != 3 || dry.Steps != len(oldSteps) || !dry.DryRun || dry.Transactions != 0 {
		t.Fatalf("dry run: %+v, want 3 jobs and %d steps", dry, len(oldSteps))
	}
	dry, err = admin.PruneJobs(bg, engine.PruneJobsOptions{Before: cutoff, States: []string{driver.JobFailed}, DryRun: true})
	must(t, err)
	if dry.Jobs != 1 || !slices.Equal(dry.States, []string{driver.JobFailed}) {
		t.Fatalf("dry run of failed jobs: %+v", dry)
	}
	for _, id := range append(old, newer) {
		_, err := admin.Job(bg, id)
		must(t, err)
	}

	// The prune, two jobs per transaction.
	res, err := admin.PruneJobs(bg, engine.PruneJobsOptions{Before: cutoff, Chunk: 2})
	must(t, err)
	if res.Jobs != 3 || res.Steps != len(oldSteps) || res.Transactions != 2 || res.DryRun || !res.Before.Equal(cutoff) ||
		!slices.Equal(res.States, []string{driver.JobSucceeded, driver.JobFailed, driver.JobCancelled}) {
		t.Fatalf("prune: %+v, want 3 jobs, %d steps, 2 transactions", res, len(oldSteps))
	}
	for _, id := range old {
		_, err := admin.Job(bg, id)
		wantErr(t, err, docex.ErrNotFound)
		steps, err := st.JobSteps(bg, id)
		must(t, err)
		if len(steps) != 0 {
			t.Fatalf("pruned job %s kept %d completion keys", id, len(steps))
		}
	}
	for _, s := range oldSteps {
		_, err := st.JobStep(bg, s.Key)
		wantErr(t, err, docex.ErrNotFound)
	}
	wantErr(t, admin.RetryJob(bg, badJob), docex.ErrNotFound)
	if j, err := admin.Job(bg, newer); err != nil || j.State != driver.JobSucceeded || len(j.Steps) == 0 {
		t.Fatalf("job ended after the cutoff: %+v, %v", j, err)
	}
	if j, err := other.Job(bg, otherJob); err != nil || j.State != driver.JobSucceeded || len(j.Steps) == 0 {
		t.Fatalf("other tenant's job: %+v, %v", j, err)
	}
	// Lineage and derived documents stay; the edges name the pruned job.
	linAfter := derivedOf(t, admin, d1.ID)
	if fmt.Sprint(linAfter) != fmt.Sprint(linBefore) {
		t.Fatalf("lineage changed by the prune:\n%+v\nwant\n%+v", linAfter, linBefore)
	}
	for _, l := range linAfter {
		if l.DerivedGone {
			t.Fatalf("derived document %s gone after the prune", l.DerivedID)
		}
		if _, err := admin.Document(bg, l.DerivedID); err != nil {
			t.Fatalf("derived document %s: %v", l.DerivedID, err)
		}
	}
	// Again: nothing left to prune.
	again, err := admin.PruneJobs(bg, engine.PruneJobsOptions{Before: cutoff})
	must(t, err)
	if again.Jobs != 0 || again.Steps != 0 || again.Transactions != 1 {
		t.Fatalf("second prune: %+v, want nothing", again)
	}

	// The pipeline runs again on the pruned job's document: its steps
	// from the step cache, its outputs the documents derived before.
	rerun := run(admin, "three", d1.ID)
	if st := e.work(admin, []string{"acme"}, []string{rerun}); st.Succeeded != 1 || st.StepsCached == 0 || st.StepsRun != 0 {
		t.Fatalf("rerun after the prune: %+v, want succeeded from the step cache", st)
	}
	var derivedBefore, derivedAgain []string
	for _, l := range derivedOf(t, admin, d1.ID) {
		switch l.JobID {
		case okJob:
			derivedBefore = append(derivedBefore, l.DerivedID)
		case rerun:
			derivedAgain = append(derivedAgain, l.DerivedID)
		}
	}
	slices.Sort(derivedBefore)
	slices.Sort(derivedAgain)
	if len(derivedAgain) == 0 || !slices.Equal(derivedAgain, derivedBefore) {
		t.Fatalf("rerun derived %v, want the documents the pruned job derived, %v", derivedAgain, derivedBefore)
	}

	// A running job is never pruned, nor is it once released (queued),
	// however old its record.
	e.spinMinute(admin)
	_, err = admin.CreatePipeline(bg, []byte("name = \"slow\"\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\ninput = \"s\"\n"))
	must(t, err)
	slow := run(admin, "slow", d2.ID)
	_, stop := e.runningJob(admin, "acme", slow, 1)
	res, err = admin.PruneJobs(bg, engine.PruneJobsOptions{Before: time.Now()})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	if res.Jobs != 2 { // newer and rerun
		stop()
		t.Fatalf("prune while a job runs: %+v, want the 2 finished jobs", res)
	}
	if j, err := admin.Job(bg, slow); err != nil || j.State != driver.JobRunning || len(j.Steps) == 0 {
		stop()
		t.Fatalf("running job after a prune: %+v, %v", j, err)
	}
	stop()
	res, err = admin.PruneJobs(bg, engine.PruneJobsOptions{Before: time.Now()})
	must(t, err)
	if j, err := admin.Job(bg, slow); err != nil || driver.JobFinal(j.State) || len(j.Steps) == 0 || res.Jobs != 0 {
		t.Fatalf("released job after a prune (%+v): %+v, %v", res, j, err)
	}

	// One entry per prune, dry runs and refusals apart.
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	var oks, errs []docex.AuditEntry
	for _, a := range log {
		if a.Operation != "job.prune" {
			continue
		}
		if a.Outcome == docex.OutcomeOK {
			oks = append(oks, a)
		} else {
			errs = append(errs, a)
		}
	}
	if len(oks) != 4 || len(errs) != 8 {
		t.Fatalf("job.prune entries: %d ok, %d refused; want 4 and 8:\n%+v", len(oks), len(errs), append(oks, errs...))
	}
	first := oks[len(oks)-1] // the log is newest first
	if fmt.Sprint(first.Detail["jobs"]) != "3" || fmt.Sprint(first.Detail["steps"]) != fmt.Sprint(len(oldSteps)) ||
		first.Detail["before"] != cutoff.UTC().Format(time.RFC3339Nano) || first.UserID != "u-acme" {
		t.Fatalf("first prune's entry: %+v", first)
	}
	olog, err := other.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	for _, a := range olog {
		if a.Operation == "job.prune" {
			t.Fatalf("other tenant's log has a prune: %+v", a)
		}
	}
}
