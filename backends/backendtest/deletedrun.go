package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// testDeletedWhileStepRuns: a tenant deleted while one of its jobs' plugin
// calls runs stops that call: the queue finds the tenant deleted (the
// tenant watch on PostgreSQL, the claim's registry check on SQLite) and
// cancels the context of the tenant's running deliveries with
// driver.TenantDeletedCause, and the delivery ends cancelled with the
// reason `cancelled: tenant "acme" was deleted` (docs/jobs.md, invariant
// 3). The plugin is loop, which spins until its timeout (a minute here):
// before, the call ran to that timeout (ending by itself, its context
// never cancelled) before the job was cancelled. The stopped call
// returns no output, so nothing of the step was committed.
//
// Both with a worker of every tenant (--all) and with one of the tenant
// alone (--tenants acme), which then stops, having no tenant left
// (driver.TenantsDeletedError), once the call stopped.
func (f *fixture) testDeletedWhileStepRuns(t *testing.T) {
	t.Run("all", func(t *testing.T) { f.deletedWhileStepRuns(t, nil) })
	t.Run("given", func(t *testing.T) { f.deletedWhileStepRuns(t, []string{"acme"}) })
}

func (f *fixture) deletedWhileStepRuns(t *testing.T, tenants []string) {
	type callEnd struct {
		res   *pluginapi.Result
		err   error
		cause error // of the call's context once it returned; nil while not done
	}
	started := make(chan struct{}, 1)
	ended := make(chan callEnd, 1)
	spin := func(ctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		res, err := real.Run(ctx, call)
		var cause error
		if ctx.Err() != nil {
			cause = context.Cause(ctx)
		}
		select {
		case ended <- callEnd{res: res, err: err, cause: cause}:
		default:
		}
		return res, err
	}
	var (
		mu   sync.Mutex
		outs []driver.Outcome
	)
	watch := &watchedBackend{ended: func(_ driver.Delivery, o driver.Outcome) {
		mu.Lock()
		outs = append(outs, o)
		mu.Unlock()
	}}
	e := f.hookedPipeEnv(t, map[string]runHook{"loop": spin}, watch)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.spinMinute(admin)
	_, err := admin.CreatePipeline(bg, []byte("name = \"spin\"\nmax_attempts = 1\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "spin on me", nil)
	_, err = admin.RunPipeline(bg, "spin", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	// Its shutdown timeout an hour: only the deletion can stop the call
	// before its own timeout.
	wctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: tenants, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, ShutdownTimeout: time.Hour}).Run(wctx)
	}()
	defer func() {
		var err error
		if tenants != nil && !t.Failed() {
			// The worker of acme alone stops by itself, having no tenant
			// left; cancelled before it noticed, it would return nil.
			bound := time.NewTimer(5 * time.Minute) // a bound on a hung test, not a measurement
			defer bound.Stop()
			select {
			case err = <-done:
			case <-bound.C:
				cancel()
				err = fmt.Errorf("did not stop by itself (then, cancelled: %v)", <-done)
			}
		} else {
			cancel()
			err = <-done
		}
		if tenants == nil && err != nil || tenants != nil && !errors.As(err, new(*driver.TenantsDeletedError)) {
			t.Errorf("worker of tenants %v: %v", tenants, err)
		}
	}()
	guard := time.NewTimer(5 * time.Minute) // a bound on a hung test, not a measurement
	defer guard.Stop()
	select {
	case <-started:
	case <-guard.C:
		t.Fatal("the step never ran")
	}
	must(t, e.eng.Provisioner("ops").Delete(bg, "acme"))
	var end callEnd
	select {
	case end = <-ended:
	case <-guard.C:
		t.Fatal("the plugin call never ended")
	}
	if end.cause == nil || !errors.Is(end.cause, docex.ErrTenantUnknown) || end.cause.Error() != `tenant "acme" was deleted` {
		t.Fatalf("plugin call ended with %v (result %v), its context's cause %v: want the call stopped by the tenant's deletion, cause `tenant \"acme\" was deleted`, not run to its own end", end.err, end.res, end.cause)
	}
	if end.res != nil && (end.res.Status != "error" || len(end.res.Derived) > 0 || len(end.res.Metadata) > 0) {
		t.Fatalf("stopped plugin call returned %+v, %v: want no output (nothing to commit)", end.res, end.err)
	}
	want := fmt.Sprintf("cancelled: tenant %q was deleted", "acme")
	for {
		mu.Lock()
		got := append([]driver.Outcome(nil), outs...)
		mu.Unlock()
		if len(got) > 0 {
			if len(got) != 1 || got[0].Kind != driver.Drop || got[0].Reason != want {
				t.Fatalf("deliveries ended %+v; want one, dropped with the reason %q", got, want)
			}
			break
		}
		select {
		case <-guard.C:
			t.Fatal("the delivery never ended")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// testRetryRunningNoError: a job running its next attempt after a
// transient failure shows no error (job show, job list, and the record
// itself): the failed attempt's error is in its history, and the current
// attempt has not failed (docs/json.md, Job). Released by a worker's stop,
// queued again, the job shows the failed attempt's error again. Before, the
// running job kept the failed attempt's error, as if it had failed.
func (f *fixture) testRetryRunningNoError(t *testing.T) {
	var (
		mu    sync.Mutex
		calls int
	)
	second := make(chan struct{}, 1)
	flaky := func(ctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			return real.Run(ctx, call) // loop: times out, transient (retry_timeout)
		}
		select {
		case second <- struct{}{}:
		default:
		}
		<-ctx.Done() // until the worker stops
		return nil, ctx.Err()
	}
	e := f.hookedPipeEnv(t, map[string]runHook{"loop": flaky}, nil)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "loop")
	_, err := admin.CreatePipeline(bg, []byte("name = \"flaky\"\nmax_attempts = 3\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\nretry_timeout = true\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "fail once", nil)
	ids, err := admin.RunPipeline(bg, "flaky", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	stop := e.runWorker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, ShutdownTimeout: time.Hour})
	stopped := false
	defer func() {
		if !stopped {
			stop(driver.ErrStopNow)
		}
	}()
	select {
	case <-second:
	case <-time.After(5 * time.Minute): // a bound on a hung test, not a measurement
		t.Fatal("the job's second attempt never ran")
	}
	// The second attempt's start committed before its plugin call.
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.State != driver.JobRunning || j.Attempts != 2 || len(j.History) != 2 {
		t.Fatalf("job = %s, %d attempts, history %+v: want running its second attempt", j.State, j.Attempts, j.History)
	}
	first := j.History[0]
	if first.Error == "" || first.ErrorCode == "" || !first.Transient || !j.History[1].EndedAt.IsZero() || j.History[1].Error != "" {
		t.Fatalf("attempt history %+v: want the first attempt's transient error in it, the second running", j.History)
	}
	if j.Error != "" || j.ErrorCode != "" {
		t.Errorf("job show of a job running its second attempt: error %q (%s); want none (the first attempt's is in its history)", j.Error, j.ErrorCode)
	}
	js, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{})
	must(t, err)
	if len(js) != 1 || js[0].State != driver.JobRunning || js[0].Error != "" || js[0].ErrorCode != "" {
		t.Errorf("job list of a job running its second attempt: %+v; want running, no error", js)
	}
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	rec, err := st.Job(bg, ids[0])
	st.Close()
	must(t, err)
	if rec.Error != "" || rec.ErrorCode != "" {
		t.Errorf("record of a job running its second attempt: error %q (%s); want none", rec.Error, rec.ErrorCode)
	}
	// Released at the worker's stop: queued, the second attempt not
	// counted, the first one's error shown again.
	stop(driver.ErrStopNow)
	stopped = true
	// The worker may return before the release is recorded (on
	// PostgreSQL River's StopAndCancel waits a bounded time).
	deadline := time.Now().Add(5 * time.Minute) // a bound on a hung test, not a measurement
	for j, err = admin.Job(bg, ids[0]); err == nil && j.State == driver.JobRunning && time.Now().Before(deadline); j, err = admin.Job(bg, ids[0]) {
		time.Sleep(10 * time.Millisecond)
	}
	must(t, err)
	if j.State != driver.JobQueued || j.Attempts != 1 || j.Error != first.Error || j.ErrorCode != first.ErrorCode {
		t.Errorf("job released at a stop = %s, %d attempts, error %q (%s); want queued, 1 attempt, the first attempt's error %q (%s)", j.State, j.Attempts, j.Error, j.ErrorCode, first.Error, first.ErrorCode)
	}
}
