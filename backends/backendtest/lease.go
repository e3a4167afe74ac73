package backendtest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// runHook replaces the runs of a plugin: it is called with the run's
// context and call, and the real runner.
type runHook func(ctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error)

// hookRuntime is a plugin runtime whose plugins named in hooks run
// through their hook.
type hookRuntime struct {
	engine.PluginRuntime
	hooks map[string]runHook
}

func (h hookRuntime) LoadRunner(ctx context.Context, m *pluginapi.Manifest, module []byte) (pluginapi.Runner, error) {
	r, err := h.PluginRuntime.LoadRunner(ctx, m, module)
	if err != nil {
		return nil, err
	}
	if hook, ok := h.hooks[m.Name]; ok {
		return hookRunner{Runner: r, hook: hook}, nil
	}
	return r, nil
}

type hookRunner struct {
	pluginapi.Runner
	hook runHook
}

func (r hookRunner) Run(ctx context.Context, call pluginapi.Call) (*pluginapi.Result, error) {
	return r.hook(ctx, call, r.Runner)
}

// watchedBackend is a backend whose job queue reports each delivery as
// the engine's handler gets it (delivered) and its outcome (ended).
type watchedBackend struct {
	driver.Backend
	delivered func(driver.Delivery)
	ended     func(driver.Delivery, driver.Outcome)
}

func (b watchedBackend) Jobs() driver.JobQueue { return watchedQueue{b.Backend.Jobs(), b} }

type watchedQueue struct {
	driver.JobQueue
	b watchedBackend
}

func (q watchedQueue) Work(ctx context.Context, cfg driver.WorkConfig, handle driver.JobHandler) error {
	return q.JobQueue.Work(ctx, cfg, func(ctx context.Context, d driver.Delivery) driver.Outcome {
		if q.b.delivered != nil {
			q.b.delivered(d)
		}
		out := handle(ctx, d)
		if q.b.ended != nil {
			q.b.ended(d, out)
		}
		return out
	})
}

// hookedPipeEnv is pipeEnv with the runs of the plugins named in hooks
// going through their hook, and the engine's job queue watched by be
// (its Backend is set here; nil: not watched).
func (f *fixture) hookedPipeEnv(t *testing.T, hooks map[string]runHook, be *watchedBackend) *pipeEnv {
	t.Helper()
	real, cfg := f.config(t, true)
	cfg.Sandbox = hookRuntime{PluginRuntime: sharedSandbox(t), hooks: hooks}
	if _, err := engine.Bootstrap(bg, real, cfg); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	var ebe driver.Backend = real
	if be != nil {
		be.Backend = real
		ebe = *be
	}
	eng, err := engine.New(bg, ebe, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return &pipeEnv{&env{t: t, be: real, cfg: cfg, eng: eng}}
}

// renamed returns an edit of a test plugin's manifest that names it
// name instead of from.
func renamed(from, name string) func(string) string {
	return func(m string) string {
		return strings.Replace(m, fmt.Sprintf("name = %q", from), fmt.Sprintf("name = %q", name), 1)
	}
}

// runWorker runs a worker of the env's engine with cfg until stop is
// called (with cause; nil: a plain stop), which returns once the worker
// has.
func (e *pipeEnv) runWorker(cfg engine.WorkerConfig) (stop func(cause error)) {
	ctx, cancel := context.WithCancelCause(bg)
	done := make(chan error, 1)
	go func() { done <- e.eng.Worker(cfg).Run(ctx) }()
	return func(cause error) {
		cancel(cause)
		if err := <-done; err != nil {
			e.t.Errorf("worker: %v", err)
		}
	}
}

// testLeaseCountsOwnRun: a job's lease counts the job's own run, not its
// waits in the worker (docs/jobs.md, "Workers"). A batch of more jobs
// than the worker runs plugins at once, each job's step taking a quarter
// of the lease (the rest is room for a loaded machine): the last jobs of
// the batch wait for the first ones, and finish past a lease after the
// worker took them. Every job succeeds, at its first attempt. PostgreSQL counted the lease from
// when River fetched the job: the jobs that waited failed with "the job
// did not finish within the worker's lease" (SQLite renews its lease
// and bounds no job).
func (f *fixture) testLeaseCountsOwnRun(t *testing.T) {
	const lease = 8 * time.Second
	slow := func(ctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error) {
		select {
		case <-time.After(lease / 4):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return real.Run(ctx, call)
	}
	e := f.hookedPipeEnv(t, map[string]runHook{"slowtag": slow}, nil)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.installEdited(admin, "tag", renamed("tag", "slowtag"))
	_, err := admin.CreatePipeline(bg, []byte("name = \"slow\"\nmax_attempts = 1\n[[steps]]\nname = \"t\"\nplugin = \"slowtag\"\n"))
	must(t, err)
	b := e.basket(admin, "in")
	n := 6*runtime.GOMAXPROCS(0) + 1 // seven rounds of plugin runs at least: the last ones past the lease
	var docs []string
	for i := range n {
		docs = append(docs, e.add(admin, b.ID, fmt.Sprintf("d%d.txt", i), fmt.Sprintf("document %d", i), nil).ID)
	}
	ids, err := admin.RunPipeline(bg, "slow", engine.RunTarget{DocumentIDs: docs})
	must(t, err)
	stop := e.runWorker(engine.WorkerConfig{Tenants: []string{"acme"}, Concurrency: 1, TenantConcurrency: 1, Batch: n,
		Lease: lease, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(bg, 3*time.Minute) // a bound on a hung test, not a measurement
	defer cancel()
	st, err := admin.WaitJobs(ctx, ids, 20*time.Millisecond, nil)
	stop(nil)
	must(t, err)
	if st.Succeeded != n {
		t.Errorf("%d of %d jobs succeeded: %+v", st.Succeeded, n, st.Failures)
	}
	for _, id := range ids {
		j, err := admin.Job(bg, id)
		must(t, err)
		if j.Attempts != 1 || len(j.History) != 1 || j.History[0].Error != "" {
			t.Errorf("job %s: %s, %d attempts %+v: want one attempt, no error", id, j.State, j.Attempts, j.History)
		}
	}
}

// testLeaseExpiry: a job whose own run never fits its lease spends an
// attempt at each expiry, whatever else happens at that moment, and
// fails once they are spent: max_attempts attempts and at most as many
// runs (an attempt whose lease ran out before the plugin started runs
// nothing), each attempt's error naming the lease and the flag that
// gives more, code plugin_failed, the failure naming the step. Backends whose queue
// bounds no job by its lease (SQLite) skip it.
func (f *fixture) testLeaseExpiry(t *testing.T) {
	var (
		mu   sync.Mutex
		runs = map[string]int{} // by input document name
	)
	hang := func(ctx context.Context, call pluginapi.Call, _ pluginapi.Runner) (*pluginapi.Result, error) {
		mu.Lock()
		runs[call.Input.Name]++
		mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	leased := make(chan time.Duration, 1)
	watch := &watchedBackend{delivered: func(d driver.Delivery) {
		select {
		case leased <- d.Lease:
		default:
		}
	}}
	e := f.hookedPipeEnv(t, map[string]runHook{"hang": hang}, watch)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.installEdited(admin, "tag", renamed("tag", "hang"))
	const maxAttempts = 2
	_, err := admin.CreatePipeline(bg, []byte(fmt.Sprintf("name = \"hang\"\nmax_attempts = %d\n[[steps]]\nname = \"h\"\nplugin = \"hang\"\n", maxAttempts)))
	must(t, err)
	b := e.basket(admin, "in")
	var docs []string
	for i := range 4 {
		docs = append(docs, e.add(admin, b.ID, fmt.Sprintf("d%d.txt", i), fmt.Sprintf("document %d", i), nil).ID)
	}
	ids, err := admin.RunPipeline(bg, "hang", engine.RunTarget{DocumentIDs: docs})
	must(t, err)
	stop := e.runWorker(engine.WorkerConfig{Tenants: []string{"acme"}, Concurrency: 2, Batch: 2,
		Lease: 200 * time.Millisecond, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, ShutdownTimeout: time.Hour})
	select {
	case l := <-leased:
		if l == 0 {
			stop(driver.ErrStopNow) // the jobs hang until stopped: released
			t.Skip("this backend's queue bounds no job by its lease")
		}
	case <-time.After(2 * time.Minute): // a bound on a hung test, not a measurement
		stop(driver.ErrStopNow)
		t.Fatal("no job was delivered")
	}
	ctx, cancel := context.WithTimeout(bg, 3*time.Minute) // a bound on a hung test, not a measurement
	defer cancel()
	st, err := admin.WaitJobs(ctx, ids, 20*time.Millisecond, nil)
	stop(nil)
	must(t, err)
	if st.Failed != len(ids) {
		t.Fatalf("%d of %d jobs failed: %+v", st.Failed, len(ids), st)
	}
	for _, id := range ids {
		j, err := admin.Job(bg, id)
		must(t, err)
		name := ""
		for i, d := range docs {
			if d == j.DocumentID {
				name = fmt.Sprintf("d%d.txt", i)
			}
		}
		mu.Lock()
		n := runs[name]
		mu.Unlock()
		// An attempt whose lease ran out before its run reached the
		// plugin (a loaded machine) runs nothing: fewer runs than
		// attempts is allowed, more is the defect (an expiry not counted).
		if n > maxAttempts || j.Attempts != maxAttempts || len(j.History) != maxAttempts {
			t.Errorf("job %s ran %d times, %d attempts counted, history %+v: want %d attempts and at most as many runs (an expiry not counted runs the job again)", id, n, j.Attempts, j.History, maxAttempts)
		}
		for i, a := range j.History {
			if !strings.Contains(a.Error, "the job did not finish within the worker's lease") || a.ErrorCode != "plugin_failed" || a.Transient != (i < maxAttempts-1) {
				t.Errorf("job %s attempt %d: %+v: want the lease's error, plugin_failed, transient but the last", id, a.N, a)
			}
		}
		if j.ErrorCode != "plugin_failed" || !strings.Contains(j.Error, "docex worker --lease") || j.Failure.Step != "h" || j.Failure.InputID != j.DocumentID {
			t.Errorf("job %s: code %q, error %q, failure %+v: want plugin_failed, the flag named, the step", id, j.ErrorCode, j.Error, j.Failure)
		}
	}
}

// testStopReleasesWaiting: a worker told to stop lets the job it runs
// finish, and releases at once a job it had taken but not started (it
// waited for the tenant's slot): no attempt spent, run later by another
// worker (docs/jobs.md, "Workers"). It started it once the running one
// ended.
func (f *fixture) testStopReleasesWaiting(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := func(ctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error) {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return real.Run(ctx, call)
	}
	var (
		mu        sync.Mutex
		delivered = map[string]chan struct{}{}
		outcomes  = map[string]chan driver.Outcome{}
	)
	chans := func(id string) (chan struct{}, chan driver.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		if delivered[id] == nil {
			delivered[id], outcomes[id] = make(chan struct{}), make(chan driver.Outcome, 1)
		}
		return delivered[id], outcomes[id]
	}
	watch := &watchedBackend{
		delivered: func(d driver.Delivery) {
			c, _ := chans(d.JobID)
			select {
			case <-c:
			default:
				close(c)
			}
		},
		ended: func(d driver.Delivery, out driver.Outcome) {
			_, c := chans(d.JobID)
			select {
			case c <- out:
			default:
			}
		},
	}
	e := f.hookedPipeEnv(t, map[string]runHook{"hold": hold}, watch)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "tag")
	e.installEdited(admin, "tag", renamed("tag", "hold"))
	for _, def := range []string{
		"name = \"held\"\n[[steps]]\nname = \"h\"\nplugin = \"hold\"\n",
		"name = \"quick\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\n",
	} {
		_, err := admin.CreatePipeline(bg, []byte(def))
		must(t, err)
	}
	b := e.basket(admin, "in")
	d1, d2 := e.add(admin, b.ID, "a.txt", "held", nil), e.add(admin, b.ID, "b.txt", "waits", nil)
	a, err := admin.RunPipeline(bg, "held", engine.RunTarget{DocumentIDs: []string{d1.ID}})
	must(t, err)
	// One batch at a time, of up to 2 jobs: the queue hands the worker a
	// second job while the first runs, which waits for the slot.
	stop := e.runWorker(engine.WorkerConfig{Tenants: []string{"acme"}, Concurrency: 1, TenantConcurrency: 1, Batch: 2,
		Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, ShutdownTimeout: time.Hour})
	bound := time.After(2 * time.Minute) // a bound on a hung test, not a measurement
	select {
	case <-entered:
	case <-bound:
		close(release)
		stop(nil)
		t.Fatal("the first job never ran")
	}
	w, err := admin.RunPipeline(bg, "quick", engine.RunTarget{DocumentIDs: []string{d2.ID}})
	must(t, err)
	wDelivered, wOut := chans(w[0])
	select {
	case <-wDelivered:
	case <-bound:
		close(release)
		stop(nil)
		t.Fatal("the second job was never delivered to the worker")
	}
	stopped := make(chan struct{})
	go func() { stop(nil); close(stopped) }()
	var out driver.Outcome
	select {
	case out = <-wOut:
	case <-time.After(time.Minute): // a bound on a hung test, not a measurement
		close(release)
		<-stopped
		t.Fatal("the job waiting in the worker was not released while the running one ran on after the stop")
	}
	close(release)
	<-stopped
	if out.Kind != driver.Again {
		t.Errorf("the waiting job's outcome %+v, want Again (released)", out)
	}
	ja, err := admin.Job(bg, a[0])
	must(t, err)
	if ja.State != driver.JobSucceeded {
		t.Errorf("the running job after the stop: %s %q, want succeeded (it was let finish)", ja.State, ja.Error)
	}
	jw, err := admin.Job(bg, w[0])
	must(t, err)
	if jw.State != driver.JobQueued || jw.Attempts != 0 || len(jw.History) != 0 || len(jw.Steps) != 0 {
		t.Fatalf("the released job: %s, %d attempts %+v, steps %+v: want queued, never started", jw.State, jw.Attempts, jw.History, jw.Steps)
	}
	if st := e.work(admin, []string{"acme"}, w); st.Succeeded != 1 {
		t.Fatalf("the released job, run again: %+v", st)
	}
}
