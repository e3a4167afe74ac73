package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// TestJobOfDeletedIncarnation: a delivery of a job the tenant does not
// hold, made before the tenant was created (a job of a tenant of that id
// deleted since: on PostgreSQL a River job a killed worker held, rescued
// into the queue of the tenant created again), is cancelled as the
// deleted tenant's job, `cancelled: tenant "acme" was deleted`; one made
// since (a job pruned) as `cancelled: job ID no longer exists`. Before,
// both said the latter (probe P7 L3).
func TestJobOfDeletedIncarnation(t *testing.T) {
	ctx := context.Background()
	e := acmeSession(t, nil).e
	// A job of the first acme: its id made (UUIDv7) a minute before.
	u := uuid.Must(uuid.NewV7())
	ms := uint64(time.Now().Add(-time.Minute).UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (8 * (5 - i)))
	}
	old := u.String()
	p := e.Provisioner("ops")
	if err := p.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	pruned := newID() // a job of the acme created again, since gone
	r := &jobRunner{e: e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1)}
	for _, c := range []struct{ id, want string }{
		{old, `cancelled: tenant "acme" was deleted`},
		{pruned, fmt.Sprintf("cancelled: job %s no longer exists", pruned)},
	} {
		pd := &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: c.id}, done: make(chan struct{})}
		out := r.handleBatch(ctx, "acme", []*pending{pd})[0]
		if out.Kind != driver.Drop || out.Reason != c.want {
			t.Errorf("delivery of job %s: %+v, want dropped, %q", c.id, out, c.want)
		}
	}
}
