package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestStopWhileStartCommits: a worker stopped at once (its running jobs'
// context cancelled) as the start of a job's attempt commits releases
// the job queued, the attempt not counted nor in its history, as any
// attempt a shutdown interrupts. Before, the start's write ran under
// that context: the cancel made its error (PostgreSQL: pgx returns the
// context's error, the COMMIT having run) while the job was written
// running, and the worker released the delivery, leaving the job running
// with an attempt no worker ran. The next delivery recorded it lost
// (job.attempt_lost, an attempt spent): seen as conformance
// StaleDeliveryNeverStarts failing on PostgreSQL under load. The hook
// plays that commit: the write commits, then the stop cancels the
// context, and a write under a context that can be cancelled returns
// its error.
func TestStopWhileStartCommits(t *testing.T) {
	bg := context.Background()
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	ctx, stop := context.WithCancelCause(bg)
	defer stop(nil)
	hj.be.armJobsRead(func() {
		// The next write is the start of the attempt.
		hj.be.armAfterNextWrite(func(wctx context.Context, err error) error {
			stop(driver.ErrStopNow)
			if err == nil && wctx.Err() != nil {
				return fmt.Errorf("commit: %w", wctx.Err())
			}
			return err
		})
	})
	out := hj.attempt(ctx)
	if ctx.Err() == nil {
		t.Fatal("the worker was never stopped: the test did not exercise the race")
	}
	j, err := hj.s.Job(bg, hj.jobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != driver.JobQueued || j.Attempts != 0 || len(j.History) != 0 || out.Kind != driver.Again {
		t.Fatalf("job %s, %d attempts, history %+v, outcome %+v; want it queued, released (Again), no attempt counted or in its history",
			j.State, j.Attempts, j.History, out)
	}
	// Delivered again, it runs, its one attempt not taken for lost.
	if out := hj.attempt(bg); out.Kind != driver.Done {
		t.Fatalf("delivered again: outcome %+v", out)
	}
	if j, err = hj.s.Job(bg, hj.jobID); err != nil || j.State != driver.JobSucceeded || j.Attempts != 1 || len(j.History) != 1 || j.History[0].Error != "" {
		t.Fatalf("job delivered again: %s, %d attempts, history %+v, %v; want succeeded in one attempt", j.State, j.Attempts, j.History, err)
	}
	log, err := hj.s.Audit(bg, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range log {
		if a.Operation == "job.attempt_lost" {
			t.Errorf("an attempt recorded lost: %+v", a)
		}
	}
}

// TestStopWhileStartHangs: a stop while the start of an attempt waits
// for a database that does not answer ends the wait a grace after the
// stop: the worker can exit. The start ran without the stop's
// cancellation and nothing else before, and a stopping worker waited for
// ever.
func TestStopWhileStartHangs(t *testing.T) {
	bg := context.Background()
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	hj.stopGrace = 50 * time.Millisecond
	ctx, stop := context.WithCancelCause(bg)
	defer stop(nil)
	hj.be.armJobsRead(func() {
		// The next write is the start of the attempt: its answer never
		// comes while its context lasts.
		hj.be.armAfterNextWrite(func(wctx context.Context, err error) error {
			stop(driver.ErrStopNow)
			<-wctx.Done()
			return fmt.Errorf("commit: %w", wctx.Err())
		})
	})
	done := make(chan driver.Outcome, 1)
	go func() { done <- hj.attempt(ctx) }()
	select {
	case out := <-done:
		if out.Kind != driver.Again {
			t.Fatalf("outcome %+v; want the delivery released (Again)", out)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the attempt still waits for the start's write 2 minutes after the stop")
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

// TestContentUpdatedWhileJobRuns: a document whose content is replaced
// while a job's step runs on it gets nothing from that run: its outputs
// were made from content the document no longer holds. The step runs on
// the old content, the content is replaced, then the step commits: the
// commit must write nothing and the job run again, on the new content.
// Before, the halves of the old content were added as the document's
// derived documents, with lineage edges to it.
func TestContentUpdatedWhileJobRuns(t *testing.T) {
	ctx := context.Background()
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	s, be, bk, d := hj.s, hj.be, hj.basket, hj.doc
	const newer = "newer content, in two"
	be.armWrite(func() {
		if _, err := s.UpdateContent(ctx, d.Document.ID, strings.NewReader(newer), ""); err != nil {
			t.Errorf("update the input: %v", err)
		}
	})
	out := hj.attempt(ctx)
	if !be.fired() {
		t.Fatal("the input was never updated: the test did not exercise the race")
	}
	derivedText := func() string {
		t.Helper()
		docs, err := s.Documents(ctx, bk.ID, docex.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, doc := range docs {
			if doc.ID == d.Document.ID {
				continue
			}
			b, err := s.ReadContent(ctx, doc.ID)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, doc.Name+"="+string(b))
		}
		slices.Sort(parts)
		return strings.Join(parts, "|")
	}
	if got := derivedText(); got != "" {
		t.Fatalf("after the update, the basket holds %q derived from the content the update replaced (outcome %+v)", got, out)
	}
	j, err := s.Job(ctx, hj.jobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != driver.JobQueued || out.Kind != driver.Again || !strings.Contains(j.Error, "content changed") {
		t.Fatalf("job %s (%q), outcome %+v; want it queued to run again: its input's content changed", j.State, j.Error, out)
	}
	if l, err := s.Lineage(ctx, d.Document.ID); err != nil || len(l.Descendants) != 0 {
		t.Fatalf("lineage of the input: %+v, %v; want no derived documents", l.Descendants, err)
	}
	// The next attempt runs on the new content.
	if out := hj.attempt(ctx); out.Kind != driver.Done {
		t.Fatalf("second attempt: outcome %+v", out)
	}
	if j, err = s.Job(ctx, hj.jobID); err != nil || j.State != driver.JobSucceeded {
		t.Fatalf("job after the second attempt: %s (%q), %v", j.State, j.Error, err)
	}
	half := len(newer) / 2
	if got, want := derivedText(), "part-1="+newer[:half]+"|part-2="+newer[half:]; got != want {
		t.Fatalf("derived after the second attempt: %q, want %q", got, want)
	}
}

// TestRunWhileInputChanges: docex run writes nothing when its input is
// deleted or given new content while the plugin runs: its metadata and
// derived documents were made from content the document no longer holds
// (or from a document that is gone). Before, the derived documents were
// added with lineage edges to the replaced content's document, or to a
// deleted one.
func TestRunWhileInputChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ctx context.Context, s *Session, id string) error
		want   *docex.Error
	}{
		{"content updated", func(ctx context.Context, s *Session, id string) error {
			_, err := s.UpdateContent(ctx, id, strings.NewReader("newer content, in two"), "")
			return err
		}, docex.ErrConflict},
		{"deleted", func(ctx context.Context, s *Session, id string) error {
			return s.DeleteDocument(ctx, id)
		}, docex.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
			s, be, bk, d := hj.s, hj.be, hj.basket, hj.doc
			be.armNextWrite(func() {
				if err := tc.change(ctx, s, d.Document.ID); err != nil {
					t.Errorf("change the input: %v", err)
				}
			})
			res, err := s.RunPlugin(ctx, "split", d.Document.ID, nil)
			if !be.fired() {
				t.Fatal("the input never changed: the test did not exercise the race")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("run: %v (derived %d); want %v", err, len(res.Derived), tc.want)
			}
			docs, err := s.Documents(ctx, bk.ID, docex.Page{})
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range docs {
				if doc.ID != d.Document.ID {
					t.Fatalf("the basket holds %s (%s), derived by a run on content its input no longer holds", doc.Name, doc.ID)
				}
			}
		})
	}
}
