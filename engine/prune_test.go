package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
)

// TestPruneInterrupted: a prune interrupted between its chunks keeps what
// it deleted, says how many it deleted, and audits them (outcome error,
// with the counts) though its context is done: history was destroyed,
// besides the entry its first chunk wrote (what it set out to delete). A
// second prune deletes the rest, with an entry of its own.
func TestPruneInterrupted(t *testing.T) {
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	bg := context.Background()
	ids := []string{hj.jobID}
	for range 2 {
		more, err := hj.s.RunPipeline(bg, "p", RunTarget{DocumentIDs: []string{hj.doc.Document.ID}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, more...)
	}
	for _, id := range ids {
		if err := hj.s.CancelJob(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := time.Now() // the cancels ended before it
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	// Chunk 1 commits, then the prune is interrupted before chunk 2.
	hj.be.armNextWrite(func() { hj.be.armNextWrite(cancel) })
	res, err := hj.s.PruneJobs(ctx, PruneJobsOptions{Before: cutoff, Chunk: 1})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "prune stopped after deleting 1 jobs (run it again to delete the rest)") {
		t.Fatalf("interrupted prune: %v", err)
	}
	if res.Jobs != 1 || res.Transactions != 1 {
		t.Fatalf("interrupted prune: %+v, want 1 job in 1 transaction", res)
	}
	res, err = hj.s.PruneJobs(bg, PruneJobsOptions{Before: cutoff})
	if err != nil || res.Jobs != 2 {
		t.Fatalf("second prune: %+v, %v; want the 2 jobs left", res, err)
	}
	for _, id := range ids {
		if _, err := hj.s.Job(bg, id); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("job %s after the prunes: %v", id, err)
		}
	}
	log, err := hj.s.Audit(bg, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if e.Operation == "job.prune" {
			got = append(got, fmt.Sprintf("%s %v %v", e.Outcome, e.Detail["jobs"], e.Detail["states"]))
		}
	}
	// Newest first: the second prune's; the first one's interruption,
	// with what it deleted; the first one's entry, written with its first
	// chunk, with what it set out to delete.
	want := []string{"ok 2 [succeeded failed cancelled]", "error 1 [succeeded failed cancelled]", "ok 3 [succeeded failed cancelled]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("job.prune entries %q, want %q", got, want)
	}
}

// TestPruneKilledIsRecorded: a job prune killed after its first chunk
// committed (kill -9, a crash: neither its last chunk nor the error path
// of an interrupted prune runs) leaves its job.prune entry, written in the
// first chunk's transaction with what the prune set out to delete.
func TestPruneKilledIsRecorded(t *testing.T) {
	hj := newHookedJob(t, "name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n", "split")
	bg := context.Background()
	ids := []string{hj.jobID}
	for range 2 {
		more, err := hj.s.RunPipeline(bg, "p", RunTarget{DocumentIDs: []string{hj.doc.Document.ID}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, more...)
	}
	for _, id := range ids {
		if err := hj.s.CancelJob(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := time.Now()
	// Chunk 1 commits; the process dies before chunk 2.
	hj.be.armNextWrite(func() { hj.be.armNextWrite(func() { panic(pruneCrash{}) }) })
	if !crashed(func() { _, _ = hj.s.PruneJobs(bg, PruneJobsOptions{Before: cutoff, Chunk: 1}) }) {
		t.Fatal("the prune did not reach its second chunk")
	}
	left := 0
	for _, id := range ids {
		if _, err := hj.s.Job(bg, id); err == nil {
			left++
		} else if !errors.Is(err, docex.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if left != len(ids)-1 {
		t.Fatalf("%d of %d jobs left, want the first chunk's one deleted", left, len(ids))
	}
	log, err := hj.s.Audit(bg, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if e.Operation == "job.prune" {
			got = append(got, fmt.Sprintf("%s %v", e.Outcome, e.Detail["jobs"]))
		}
	}
	if want := []string{fmt.Sprintf("ok %d", len(ids))}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("job.prune entries %q after a prune killed after its first chunk, want %q", got, want)
	}
}
