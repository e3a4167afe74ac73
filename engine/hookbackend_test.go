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

// hookBackend is a SQLite backend whose tenant stores run an armed hook
// once, to play another worker or user at a chosen point of a job's
// attempt: right after the attempt reads its jobs' completion keys
// (StepsOfJobs: armSteps), before the attempt's next write after that
// read, which commits its steps' results (armWrite), before the next
// write of any store (armNextWrite), after it (armAfterNextWrite),
// before the next isolated write of any store (armNextIsolated), or
// right after a
// worker reads the jobs of its batch, before it starts them (armJobsRead).
type hookBackend struct {
	*sqlite.Backend
	mu    sync.Mutex
	steps func(ctx context.Context, st driver.TenantStore, jobIDs []string) bool
	write func()
	read  func()
	// isolated runs before the next WriteIsolated of a store
	// (armNextIsolated).
	isolated func()
	// after runs after the next Write of a store, with the Write's
	// context and error, and returns what the Write returns
	// (armAfterNextWrite).
	after func(ctx context.Context, err error) error
	ready bool // StepsOfJobs ran since write was armed
	done  bool // a hook ran
}

// armSteps makes the next StepsOfJobs call steps, after its read, with the
// real store and the jobs read, until steps returns true (it ran).
func (b *hookBackend) armSteps(steps func(ctx context.Context, st driver.TenantStore, jobIDs []string) bool) {
	b.mu.Lock()
	b.steps = steps
	b.mu.Unlock()
}

// armWrite makes the first Write after the next StepsOfJobs call write
// first.
func (b *hookBackend) armWrite(write func()) {
	b.mu.Lock()
	b.write, b.ready = write, false
	b.mu.Unlock()
}

// armNextWrite makes the next Write of a store call write first.
func (b *hookBackend) armNextWrite(write func()) {
	b.mu.Lock()
	b.write, b.ready = write, true
	b.mu.Unlock()
}

// armNextIsolated makes the next WriteIsolated of a store call isolated
// first.
func (b *hookBackend) armNextIsolated(isolated func()) {
	b.mu.Lock()
	b.isolated = isolated
	b.mu.Unlock()
}

// armAfterNextWrite makes the next Write of a store call after once it
// returned (committed, or not), with its context and error, and return
// what after returns: a write cut short as it committed, say.
func (b *hookBackend) armAfterNextWrite(after func(ctx context.Context, err error) error) {
	b.mu.Lock()
	b.after = after
	b.mu.Unlock()
}

// armJobsRead makes the next JobsByID of a store (not of a transaction)
// call read after its read.
func (b *hookBackend) armJobsRead(read func()) {
	b.mu.Lock()
	b.read = read
	b.mu.Unlock()
}

func (b *hookBackend) fired() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// store opens the acme tenant's store of the real backend, closed at the
// end of t.
func (b *hookBackend) store(ctx context.Context, t *testing.T) driver.TenantStore {
	t.Helper()
	st, err := b.Backend.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (b *hookBackend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	st, err := b.Backend.OpenTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	full, ok := st.(hookInner)
	if !ok {
		st.Close()
		return nil, docex.Errorf(docex.ErrInvalidConfig, "the SQLite tenant store is no longer a driver.BatchReader and driver.ContentRefsReader")
	}
	return &hookStore{hookInner: full, b: b}, nil
}

// hookInner is what the engine asks of a SQLite tenant store.
type hookInner interface {
	driver.TenantStore
	driver.BatchReader
	driver.ContentRefsReader
}

type hookStore struct {
	hookInner
	b *hookBackend
}

func (s *hookStore) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	steps, err := s.hookInner.StepsOfJobs(ctx, jobIDs)
	if err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.ready = s.b.write != nil
	if s.b.steps != nil && s.b.steps(ctx, s.hookInner, jobIDs) {
		s.b.steps, s.b.done = nil, true
	}
	return steps, nil
}

func (s *hookStore) JobsByID(ctx context.Context, ids []string) ([]driver.JobRecord, error) {
	jobs, err := s.hookInner.JobsByID(ctx, ids)
	s.b.mu.Lock()
	hook := s.b.read
	s.b.read = nil
	s.b.done = s.b.done || hook != nil
	s.b.mu.Unlock()
	if hook != nil {
		hook()
	}
	return jobs, err
}

func (s *hookStore) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	s.b.mu.Lock()
	hook := s.b.write
	if !s.b.ready {
		hook = nil
	}
	if hook != nil {
		s.b.write, s.b.ready, s.b.done = nil, false, true
	}
	after := s.b.after
	s.b.after = nil
	s.b.done = s.b.done || after != nil
	s.b.mu.Unlock()
	if hook != nil {
		hook()
	}
	err := s.hookInner.Write(ctx, fn)
	if after != nil {
		return after(ctx, err)
	}
	return err
}

func (s *hookStore) WriteIsolated(ctx context.Context, fn func(tx driver.Tx) error) error {
	s.b.mu.Lock()
	hook := s.b.isolated
	s.b.isolated = nil
	s.b.done = s.b.done || hook != nil
	s.b.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.hookInner.WriteIsolated(ctx, fn)
}

// hookedJob is a job of the acme tenant on a hookBackend: pipeline src
// (with the test plugins named) run on one document of basket "one".
type hookedJob struct {
	stopGrace time.Duration // the runner's (0: auditGrace)
	s         *Session
	be        *hookBackend
	basket    docex.Basket
	doc       Added
	jobID     string
}

func newHookedJob(t *testing.T, src string, plugins ...string) *hookedJob {
	t.Helper()
	ctx := context.Background()
	sqlBE, dir := OpenTestSQLite(t)
	hj := &hookedJob{be: &hookBackend{Backend: sqlBE}}
	hj.s = acmeSessionOn(t, hj.be, dir, newTestSandbox(t))
	installTestPlugins(t, hj.s, plugins...)
	p, err := hj.s.CreatePipeline(ctx, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if hj.basket, err = hj.s.CreateBasket(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if hj.doc, err = hj.s.AddDocument(ctx, hj.basket.ID, NewDocument{Name: "a.txt", Content: strings.NewReader("first half, second half")}); err != nil {
		t.Fatal(err)
	}
	ids, err := hj.s.RunPipeline(ctx, p.Name, RunTarget{DocumentIDs: []string{hj.doc.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	hj.jobID = ids[0]
	return hj
}

// attempt runs one attempt of the job, as a worker does, and returns its
// outcome.
func (hj *hookedJob) attempt(ctx context.Context) driver.Outcome {
	r := &jobRunner{e: hj.s.e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1), stopGrace: hj.stopGrace}
	p := &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: hj.jobID}, done: make(chan struct{})}
	return r.handleBatch(ctx, "acme", []*pending{p})[0]
}
