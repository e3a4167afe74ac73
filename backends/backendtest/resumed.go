package backendtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// testResumedNotWaiting: a job that waited for its suspended tenant,
// read after the tenant was resumed and before a worker ran it again,
// is queued with no error: it said `waiting: tenant "acme" is
// suspended` (job show, job list) until it ran, up to SuspendedWait
// after the resume.
func (f *fixture) testResumedNotWaiting(t *testing.T) {
	e := f.pipeEnv(t)
	admin, _, ids := e.tagJob(t, "resume me")
	p := e.eng.Provisioner("ops")
	must(t, p.Suspend(bg, "acme"))
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond, SuspendedWait: time.Hour}).Run(ctx)
	}()
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		j, err := st.Job(bg, ids[0])
		must(t, err)
		if strings.HasPrefix(j.Error, "waiting:") {
			break
		}
		if time.Now().After(deadline) { // a bound, not a measurement
			t.Fatalf("job never waited for the suspended tenant: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.Close()
	cancel()
	must(t, <-done)
	must(t, p.Resume(bg, "acme"))
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.State != driver.JobQueued || j.Error != "" || j.ErrorCode != "" {
		t.Fatalf("job show after resume: state %s, error %q (%s); want queued, no error", j.State, j.Error, j.ErrorCode)
	}
	js, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{})
	must(t, err)
	if len(js) != 1 || js[0].State != driver.JobQueued || js[0].Error != "" || js[0].ErrorCode != "" {
		t.Fatalf("job list after resume: %+v; want one job, queued, no error", js)
	}
}

// testResumedRunningNotWaiting: a job that waited for its suspended
// tenant and runs again after the tenant was resumed says no error while
// it runs (job show, job list, and its record): it said `waiting: tenant
// "acme" is suspended` until the attempt ended (fleet probe F2), the
// worker not clearing the text when the attempt started.
func (f *fixture) testResumedRunningNotWaiting(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.spinMinute(admin)
	_, err := admin.CreatePipeline(bg, []byte("name = \"spin\"\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "spin on me", nil)
	ids, err := admin.RunPipeline(bg, "spin", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	p := e.eng.Provisioner("ops")
	must(t, p.Suspend(bg, "acme"))
	readJob := func() driver.JobRecord {
		t.Helper()
		st, err := e.be.OpenTenant(bg, "acme")
		must(t, err)
		defer st.Close()
		j, err := st.Job(bg, ids[0])
		must(t, err)
		return j
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond, SuspendedWait: 20 * time.Millisecond}).Run(ctx)
	}()
	for deadline := time.Now().Add(2 * time.Minute); !strings.HasPrefix(readJob().Error, "waiting:"); {
		if time.Now().After(deadline) { // a bound, not a measurement
			cancel()
			<-done
			t.Fatalf("job never waited for the suspended tenant: %+v", readJob())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	must(t, <-done)
	must(t, p.Resume(bg, "acme"))
	j, stop := e.runningJob(admin, "acme", ids[0], 0)
	defer stop()
	// Running, its attempt started (SQLite's queue claims a job running
	// before the worker starts its attempt).
	for deadline := time.Now().Add(2 * time.Minute); j.Attempts == 0; {
		if time.Now().After(deadline) { // a bound, not a measurement
			t.Fatalf("the job's attempt never started: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
		j, err = admin.Job(bg, ids[0])
		must(t, err)
	}
	rec := readJob()
	if j.Error != "" || j.ErrorCode != "" || rec.State != driver.JobRunning || rec.Error != "" || rec.ErrorCode != "" {
		t.Errorf("job running after resume: job show %s, error %q (%s); record %s, error %q (%s); want running, no error",
			j.State, j.Error, j.ErrorCode, rec.State, rec.Error, rec.ErrorCode)
	}
	js, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{})
	must(t, err)
	if len(js) != 1 || js[0].State != driver.JobRunning || js[0].Error != "" || js[0].ErrorCode != "" {
		t.Errorf("job list while it runs after resume: %+v; want one job, running, no error", js)
	}
}
