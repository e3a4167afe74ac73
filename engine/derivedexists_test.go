package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
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
	sqlBE, dir := OpenTestSQLite(t)
	be := &recordFirstBackend{Backend: sqlBE}
	s := acmeSessionOn(t, be, dir, newTestSandbox(t))
	installTestPlugins(t, s, "split", "upper")
	if _, err := s.CreatePipeline(ctx, []byte("name = \"race\"\nmax_derived = 2\n"+
		"[[steps]]\nname = \"split\"\nplugin = \"split\"\n[[steps]]\nname = \"upper\"\nplugin = \"upper\"\n")); err != nil {
		t.Fatal(err)
	}
	bk, err := s.CreateBasket(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", Content: strings.NewReader("first half, second half")})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.RunPipeline(ctx, "race", RunTarget{DocumentIDs: []string{d.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	key := ids[0] + "/split/" + d.Document.ID
	be.arm(driver.StepRecord{Key: key, JobID: ids[0], Step: "split", InputID: d.Document.ID,
		Outcome: StepRan, Outputs: []string{}, Detail: []byte("{}"), CreatedAt: time.Now().UTC()})

	r := &jobRunner{e: s.e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1)}
	p := &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: ids[0]}, done: make(chan struct{})}
	out := r.handleBatch(ctx, "acme", []*pending{p})[0]
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

// recordFirstBackend is a SQLite backend whose tenant stores play another
// worker once armed: right after an attempt reads its jobs' completion
// keys (StepsOfJobs), that worker records the armed key, so the
// attempt's own commit of that key meets docex.ErrExists.
type recordFirstBackend struct {
	*sqlite.Backend
	mu   sync.Mutex
	rec  *driver.StepRecord // the armed record; nil once recorded
	done bool               // the armed record was recorded
}

// arm makes the next StepsOfJobs that reads the job of rec record rec
// after its read.
func (b *recordFirstBackend) arm(rec driver.StepRecord) {
	b.mu.Lock()
	b.rec = &rec
	b.mu.Unlock()
}

func (b *recordFirstBackend) fired() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// store opens the acme tenant's store of the real backend, closed at the
// end of t.
func (b *recordFirstBackend) store(ctx context.Context, t *testing.T) driver.TenantStore {
	t.Helper()
	st, err := b.Backend.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (b *recordFirstBackend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	st, err := b.Backend.OpenTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	full, ok := st.(recordFirstInner)
	if !ok {
		st.Close()
		return nil, docex.Errorf(docex.ErrInvalidConfig, "the SQLite tenant store is no longer a driver.BatchReader and driver.ContentRefsReader")
	}
	return &recordFirstStore{recordFirstInner: full, b: b}, nil
}

// recordFirstInner is what the engine asks of a SQLite tenant store.
type recordFirstInner interface {
	driver.TenantStore
	driver.BatchReader
	driver.ContentRefsReader
}

type recordFirstStore struct {
	recordFirstInner
	b *recordFirstBackend
}

func (s *recordFirstStore) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	steps, err := s.recordFirstInner.StepsOfJobs(ctx, jobIDs)
	if err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	rec := s.b.rec
	if rec == nil {
		return steps, nil
	}
	for _, id := range jobIDs {
		if id != rec.JobID {
			continue
		}
		if err := s.recordFirstInner.Write(ctx, func(tx driver.Tx) error { return tx.InsertJobStep(ctx, *rec) }); err != nil {
			return nil, err
		}
		s.b.rec, s.b.done = nil, true
		break
	}
	return steps, nil
}
