package backendtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
)

// testOtherTenantWriteHeld: a worker serving two tenants runs the jobs of
// one while the other's write transaction is held open (a long document
// add, a compaction, a cascade delete, a slow disk). On SQLite the
// worker claimed the tenants one after the other, each claim waiting for
// its tenant's writer: held by acme's transaction, the whole loop waited
// and globex's jobs stayed queued until acme's transaction committed.
//
// The worker has one job slot, serves acme first, and acme has a job of
// its own queued: its claim waits behind the held write.
func (f *fixture) testOtherTenantWriteHeld(t *testing.T) {
	e := f.pipeEnv(t)
	acme := e.threeStepsTenant("acme")
	globex := e.threeStepsTenant("globex")
	ab, err := acme.CreateBasketWithPipeline(bg, "inbox", "three")
	must(t, err)
	e.add(acme, ab.ID, "a.txt", "acme queued before its write is held", nil)
	gb, err := globex.CreateBasketWithPipeline(bg, "inbox", "three")
	must(t, err)

	// Hold acme's write transaction open.
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- st.Write(bg, func(tx driver.Tx) error {
			err := tx.InsertBasket(bg, docex.Basket{ID: uuid.NewString(), Name: "held", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)})
			close(entered)
			<-release
			return err
		})
	}()
	released := false
	unhold := func() {
		if !released {
			released = true
			close(release)
			must(t, <-held)
		}
	}
	defer unhold()
	<-entered

	for i := range 3 {
		e.add(globex, gb.ID, "g.txt", fmt.Sprintf("globex document %d", i), nil)
	}
	var ids []string
	js, err := globex.Jobs(bg, engine.JobFilter{}, docex.Page{})
	must(t, err)
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	if len(ids) != 3 {
		t.Fatalf("globex has %d jobs, want 3", len(ids))
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme", "globex"}, Concurrency: 1, Poll: 20 * time.Millisecond}).Run(ctx)
	}()
	stop := func() {
		cancel()
		must(t, <-done)
	}
	// A bound, not a measurement: the jobs take well under a second, and
	// the old code waited as long as the write was held (for ever here);
	// 3 minutes leave room for a River start on a loaded machine.
	wctx, wcancel := context.WithTimeout(bg, 3*time.Minute)
	stj, err := e.as("globex", "reader").WaitJobs(wctx, ids, 20*time.Millisecond, nil)
	wcancel()
	if err != nil || stj.Succeeded != len(ids) {
		unhold()
		stop()
		t.Fatalf("globex's jobs while acme's write was held (3 min): %+v, %v", stj, err)
	}
	// acme's job runs once its write is done.
	unhold()
	js, err = acme.Jobs(bg, engine.JobFilter{}, docex.Page{})
	must(t, err)
	var aids []string
	for _, j := range js {
		aids = append(aids, j.ID)
	}
	sta, err := acme.WaitJobs(bg, aids, 20*time.Millisecond, nil)
	must(t, err)
	if sta.Succeeded != len(aids) {
		t.Fatalf("acme's jobs: %+v", sta)
	}
	stop()
}
