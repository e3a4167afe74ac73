package backendtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// testSuspendedWhileStepRuns: a tenant suspended while one of its jobs'
// plugin calls runs stops that call: the queue finds the tenant suspended
// (the tenant watch on PostgreSQL, the claim's registry check on SQLite)
// and cancels the context of the tenant's running deliveries with
// driver.TenantSuspendedCause. The job waits for its tenant (docs/jobs.md,
// invariant 3): queued, `waiting: tenant "acme" is suspended`, the stopped
// attempt not counted (a job of one attempt is not failed) and nothing of
// the step committed. Resumed, the job runs again and succeeds, once: one
// attempt, the step's outputs once, one job.succeeded entry. The plugin
// call of the first attempt blocks until its context is done: before, the
// suspension did not cancel it, and the job never waited (it ran until the
// worker stopped).
//
// Both with a worker of every tenant (--all) and with one of the tenant
// alone (--tenants acme).
func (f *fixture) testSuspendedWhileStepRuns(t *testing.T) {
	t.Run("all", func(t *testing.T) { f.suspendedWhileStepRuns(t, nil) })
	t.Run("given", func(t *testing.T) { f.suspendedWhileStepRuns(t, []string{"acme"}) })
}

func (f *fixture) suspendedWhileStepRuns(t *testing.T, tenants []string) {
	var (
		mu    sync.Mutex
		calls int
	)
	started := make(chan struct{})
	cause := make(chan error, 1) // the first call's context's cause, once it was done
	split := func(ctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n > 1 {
			return real.Run(ctx, call)
		}
		close(started)
		<-ctx.Done() // only the suspension (or the worker's stop) ends it
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	}
	e := f.hookedPipeEnv(t, map[string]runHook{"split": split}, nil)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split")
	_, err := admin.CreatePipeline(bg, []byte("name = \"one\"\nmax_attempts = 1\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "split me in two halves", nil)
	ids, err := admin.RunPipeline(bg, "one", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	stop := e.runWorker(engine.WorkerConfig{Tenants: tenants, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond,
		SuspendedWait: 50 * time.Millisecond, ShutdownTimeout: time.Hour})
	stopped := false
	defer func() {
		if !stopped {
			stop(driver.ErrStopNow)
		}
	}()
	guard := time.NewTimer(2 * time.Minute) // a bound on a hung test, not a measurement
	defer guard.Stop()
	select {
	case <-started:
	case <-guard.C:
		t.Fatal("the step never ran")
	}
	p := e.eng.Provisioner("ops")
	must(t, p.Suspend(bg, "acme"))
	select {
	case c := <-cause:
		if !errors.Is(c, docex.ErrTenantSuspended) || c.Error() != `tenant "acme" was suspended` {
			t.Fatalf("the plugin call's context ended with the cause %v; want `tenant \"acme\" was suspended`", c)
		}
	case <-guard.C:
		t.Fatal("the plugin call running when its tenant was suspended was never stopped")
	}
	// The job waits: queued, the attempt not counted.
	var rec driver.JobRecord
	for {
		st, err := e.be.OpenTenant(bg, "acme")
		must(t, err)
		rec, err = st.Job(bg, ids[0])
		st.Close()
		must(t, err)
		if rec.State != driver.JobRunning {
			break
		}
		select {
		case <-guard.C:
			t.Fatalf("the job stayed running: %+v", rec)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if rec.State != driver.JobQueued || rec.Attempts != 0 || rec.Error != waitingAcme || jobDetailHistory(t, rec) != 0 {
		t.Fatalf("job whose step was stopped by its tenant's suspension = %+v; want queued, %q, no attempt spent", rec, waitingAcme)
	}
	must(t, p.Resume(bg, "acme"))
	wctx, cancel := context.WithTimeout(bg, 2*time.Minute) // a bound on a hung test
	defer cancel()
	st, err := admin.WaitJobs(wctx, ids, 20*time.Millisecond, nil)
	must(t, err)
	stop(driver.ErrStopNow)
	stopped = true
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if st.Succeeded != 1 || j.State != driver.JobSucceeded || j.Attempts != 1 || len(j.History) != 1 || j.History[0].Error != "" || j.Progress.StepsRun != 1 {
		t.Fatalf("resumed job: %s, %d attempts, history %+v, progress %+v; want succeeded at its one counted attempt, its step run once", j.State, j.Attempts, j.History, j.Progress)
	}
	list, err := admin.Documents(bg, b.ID, docex.Page{Limit: 100})
	must(t, err)
	if len(list) != 3 {
		t.Errorf("basket holds %d documents; want 3: the input and its two halves, once", len(list))
	}
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	ends := 0
	for _, a := range log {
		if a.Target == ids[0] && strings.HasPrefix(a.Operation, "job.") && a.Operation != "job.enqueue" {
			ends++
			if a.Operation != "job.succeeded" {
				t.Errorf("audit entry %s of the job; want job.succeeded only", a.Operation)
			}
		}
	}
	if ends != 1 {
		t.Errorf("%d job.* entries for the job besides its job.enqueue; want one, job.succeeded", ends)
	}
}
