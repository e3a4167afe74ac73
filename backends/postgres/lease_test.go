package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// TestWorkerRenewsLeases: a worker renews the lease of a job it holds
// (River's attempted_at, from which its rescuer counts) while the job
// runs or waits in the worker, so that River rescues only the jobs of a
// worker that stopped (killed), not one held longer than the lease; the
// delivery carries the lease, which bounds the job's own run. River set
// attempted_at only when it fetched the job: a job held past the lease
// was rescued and delivered again while its worker still had it.
func TestWorkerRenewsLeases(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t, Config{}, true)
	if err := b.CreateTenant(ctx, docex.Tenant{ID: "acme", DisplayName: "acme", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	st, err := b.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	id, now := uuid.Must(uuid.NewV7()).String(), time.Now()
	err = st.Write(ctx, func(tx driver.Tx) error {
		return tx.InsertJob(ctx, driver.JobRecord{ID: id, Pipeline: "p", Version: 1, DocumentID: uuid.Must(uuid.NewV7()).String(),
			State: driver.JobQueued, MaxAttempts: 3, RunAt: now, User: docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"writer"}},
			CreatedAt: now, UpdatedAt: now})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	const lease = 300 * time.Millisecond
	delivered := make(chan driver.Delivery, 1)
	release := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Jobs().Work(wctx, driver.WorkConfig{Tenants: []string{"acme"}, Lease: lease, Poll: 20 * time.Millisecond},
			func(ctx context.Context, d driver.Delivery) driver.Outcome {
				delivered <- d
				<-release
				return driver.Outcome{Kind: driver.Drop, Reason: "test over"}
			})
	}()
	defer func() {
		close(release)
		stop()
		if err := <-done; err != nil {
			t.Errorf("Work: %v", err)
		}
	}()
	bound := time.After(time.Minute) // a bound on a hung test, not a measurement
	var d driver.Delivery
	select {
	case d = <-delivered:
	case <-bound:
		t.Fatal("the job was never delivered")
	}
	if d.JobID != id || d.Lease != lease {
		t.Fatalf("delivery %+v, want job %s with lease %v", d, id, lease)
	}
	attempted := func() time.Time {
		t.Helper()
		var at time.Time
		if err := b.pool.QueryRow(ctx, `SELECT attempted_at FROM `+quote(b.queue.schema)+`.river_job WHERE args->>'job' = $1 AND state = 'running'`, id).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	fetched := attempted()
	for !attempted().After(fetched) {
		select {
		case <-bound:
			t.Fatalf("the lease of a job the worker holds was never renewed (attempted_at %v, as fetched)", fetched)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
