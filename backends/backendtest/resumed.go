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
