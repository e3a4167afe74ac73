package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// TestInputDeletedWhileJobRuns: a document deleted while a job processes
// it gets no derived documents afterwards. The job reads its completion
// keys and runs its step, then the input is deleted, then the job commits
// the step's derived documents: it must not add them (they would be derived from a document
// that no longer exists, and survive a cascade delete of it).
func TestInputDeletedWhileJobRuns(t *testing.T) {
	ctx := context.Background()
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	s, be, bk, d, ids := hj.s, hj.be, hj.basket, hj.doc, []string{hj.jobID}
	be.armWrite(func() {
		if err := s.DeleteDocument(ctx, d.Document.ID); err != nil {
			t.Errorf("delete the input: %v", err)
		}
	})
	out := hj.attempt(ctx)
	if !be.fired() {
		t.Fatal("the input was never deleted: the test did not exercise the race")
	}
	docs, err := s.Documents(ctx, bk.ID, docex.Page{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 0 {
		var names []string
		for _, d := range docs {
			names = append(names, d.Name)
		}
		t.Fatalf("the basket holds %v after its only document was deleted (job %s, outcome %+v): derived from a deleted document", names, j.State, out)
	}
	if j.State != driver.JobCancelled || !strings.Contains(j.Error, "deleted") {
		t.Fatalf("job %s (%q), outcome %+v; want it cancelled: its document was deleted", j.State, j.Error, out)
	}
}

// TestCancelWhileStarting: a job cancelled after a worker read it, before
// the worker started it, stays cancelled and does not run. The start
// wrote "running" over the cancel before, the job then ran, and ended
// succeeded, although its cancel had succeeded.
func TestCancelWhileStarting(t *testing.T) {
	ctx := context.Background()
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	hj.be.armJobsRead(func() {
		if err := hj.s.CancelJob(ctx, hj.jobID); err != nil {
			t.Errorf("cancel: %v", err)
		}
	})
	out := hj.attempt(ctx)
	if !hj.be.fired() {
		t.Fatal("the job was never cancelled: the test did not exercise the race")
	}
	j, err := hj.s.Job(ctx, hj.jobID)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := hj.s.Documents(ctx, hj.basket.ID, docex.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != driver.JobCancelled || out.Kind != driver.Done || len(docs) != 1 {
		t.Fatalf("job %s (%q), outcome %+v, %d documents in the basket; want it cancelled, not run (1 document)", j.State, j.Error, out, len(docs))
	}
}
