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

// TestInputDeletedWhileJobRuns: a document deleted while a job processes
// it gets no derived documents afterwards. The job reads its completion
// keys and runs its step, then the input is deleted, then the job commits
// the step's derived documents: it must not add them (they would be derived from a document
// that no longer exists, and survive a cascade delete of it).
func TestInputDeletedWhileJobRuns(t *testing.T) {
	ctx := context.Background()
	sqlBE, dir := OpenTestSQLite(t)
	be := &hookBackend{Backend: sqlBE}
	s := acmeSessionOn(t, be, dir, newTestSandbox(t))
	installTestPlugins(t, s, "split")
	if _, err := s.CreatePipeline(ctx, []byte("name = \"p\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n")); err != nil {
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
	ids, err := s.RunPipeline(ctx, "p", RunTarget{DocumentIDs: []string{d.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	be.arm(func() {
		if err := s.DeleteDocument(ctx, d.Document.ID); err != nil {
			t.Errorf("delete the input: %v", err)
		}
	})
	r := &jobRunner{e: s.e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1)}
	p := &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: ids[0]}, done: make(chan struct{})}
	out := r.handleBatch(ctx, "acme", []*pending{p})[0]
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

// hookBackend is a SQLite backend whose tenant stores run an armed
// function once, right after an attempt reads its jobs' completion keys
// (StepsOfJobs), before the attempt's next write: after its steps ran,
// before their results are committed.
type hookBackend struct {
	*sqlite.Backend
	mu    sync.Mutex
	fn    func()
	ready bool // StepsOfJobs ran since fn was armed
	done  bool
}

func (b *hookBackend) arm(fn func()) {
	b.mu.Lock()
	b.fn = fn
	b.mu.Unlock()
}

func (b *hookBackend) fired() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

func (b *hookBackend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	st, err := b.Backend.OpenTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	full, ok := st.(recordFirstInner)
	if !ok {
		st.Close()
		return nil, docex.Errorf(docex.ErrInvalidConfig, "the SQLite tenant store is no longer a driver.BatchReader and driver.ContentRefsReader")
	}
	return &hookStore{recordFirstInner: full, b: b}, nil
}

type hookStore struct {
	recordFirstInner
	b *hookBackend
}

func (s *hookStore) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	steps, err := s.recordFirstInner.StepsOfJobs(ctx, jobIDs)
	if err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	s.b.ready = s.b.fn != nil
	s.b.mu.Unlock()
	return steps, nil
}

// Write runs the armed function first when it is the first write after
// StepsOfJobs: the attempt's commit of its steps' results.
func (s *hookStore) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	s.b.mu.Lock()
	hook := s.b.fn
	if !s.b.ready {
		hook = nil
	}
	if hook != nil {
		s.b.fn, s.b.ready, s.b.done = nil, false, true
	}
	s.b.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.recordFirstInner.Write(ctx, fn)
}
