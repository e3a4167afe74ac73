package engine

import (
	"context"
	"sync"
	"time"

	"github.com/docex-dev/docex/driver"
)

// batcher gathers the deliveries that a backend's job queue hands to a
// worker concurrently into batches of one tenant, so that the jobs of a
// batch run their steps together and commit each step's outputs in one
// transaction (docs/jobs.md, "Batches"). A delivery waits while its
// tenant has perTenant batches running or the worker has total; the first
// waiting delivery to get a slot takes every waiting delivery of its
// tenant, up to max, as its batch. A lone delivery runs at once, alone.
// Once stop is closed (the worker is stopping) no batch starts: a
// delivery not yet in a batch returns Again at once, its job not started.
type batcher struct {
	max   int                                       // deliveries in one batch
	total chan struct{}                             // batches running on this worker
	run   func(context.Context, string, []*pending) // runs a batch; sets out and closes done of each
	stop  <-chan struct{}

	mu        sync.Mutex
	perTenant int
	tenants   map[string]*tenantBatches
}

// tenantBatches are one tenant's waiting deliveries and batch slots.
type tenantBatches struct {
	waiting []*pending
	slots   chan struct{}
	users   int // deliveries submitted and not yet returned
}

// pending is one delivery waiting for, or running in, a batch.
type pending struct {
	ctx  context.Context
	d    driver.Delivery
	out  driver.Outcome
	done chan struct{}
}

func newBatcher(max, total, perTenant int, stop <-chan struct{}, run func(context.Context, string, []*pending)) *batcher {
	return &batcher{max: max, total: make(chan struct{}, total), run: run, stop: stop, perTenant: perTenant, tenants: map[string]*tenantBatches{}}
}

// released is the outcome of a delivery let go unstarted because the
// worker is stopping: delivered again later, no attempt spent.
var released = driver.Outcome{Kind: driver.Again}

// submit runs d in a batch of its tenant and returns its outcome. It
// returns when d's batch has run, whichever delivery's goroutine ran it,
// or, once the worker is stopping (b.stop), at once with Again when d is
// in no batch yet.
func (b *batcher) submit(ctx context.Context, d driver.Delivery) driver.Outcome {
	if b.stopping() {
		return released
	}
	p := &pending{ctx: ctx, d: d, done: make(chan struct{})}
	b.mu.Lock()
	tb := b.tenants[d.TenantID]
	if tb == nil {
		tb = &tenantBatches{slots: make(chan struct{}, b.perTenant)}
		b.tenants[d.TenantID] = tb
	}
	tb.waiting = append(tb.waiting, p)
	tb.users++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if tb.users--; tb.users == 0 {
			delete(b.tenants, d.TenantID)
		}
		b.mu.Unlock()
	}()
	for {
		select {
		case <-p.done:
			return p.out
		case <-b.stop:
			return b.withdraw(tb, p)
		case tb.slots <- struct{}{}:
		}
		// A slot of the tenant; then one of the worker.
		select {
		case <-p.done:
			<-tb.slots
			return p.out
		case <-b.stop:
			<-tb.slots
			return b.withdraw(tb, p)
		case b.total <- struct{}{}:
		}
		if b.stopping() { // both slots were free as the worker stopped
			<-b.total
			<-tb.slots
			return b.withdraw(tb, p)
		}
		b.mu.Lock()
		n := min(len(tb.waiting), b.max)
		batch := tb.waiting[:n:n]
		tb.waiting = tb.waiting[n:]
		b.mu.Unlock()
		if n > 0 {
			bctx, release := batchContext(batch)
			b.run(bctx, d.TenantID, batch)
			release()
		}
		<-b.total
		<-tb.slots
		if n == 0 {
			// Another goroutine took p into its batch: wait for it.
			<-p.done
			return p.out
		}
	}
}

func (b *batcher) stopping() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// withdraw takes p out of its tenant's waiting deliveries and returns
// Again (released); when a batch took p already, it waits for p's
// outcome.
func (b *batcher) withdraw(tb *tenantBatches, p *pending) driver.Outcome {
	b.mu.Lock()
	for i, w := range tb.waiting {
		if w == p {
			tb.waiting = append(tb.waiting[:i:i], tb.waiting[i+1:]...)
			b.mu.Unlock()
			return released
		}
	}
	b.mu.Unlock()
	<-p.done
	return p.out
}

// leaseKey is the context key of a batch's lease (batchLease).
type leaseKey struct{}

// batchContext returns the context a batch runs under: done when the
// first of its deliveries' contexts is done (a shutdown cancels them all
// at once), with that context's cause. It carries the deliveries' lease,
// the shortest that is set (batchLease): it bounds each job's own run,
// not the batch's (see leaseClock). The caller calls release when the
// batch has run.
func batchContext(batch []*pending) (ctx context.Context, release func()) {
	var lease time.Duration
	for _, p := range batch {
		if l := p.d.Lease; l > 0 && (lease == 0 || l < lease) {
			lease = l
		}
	}
	ctx = context.WithoutCancel(batch[0].ctx)
	if lease > 0 {
		ctx = context.WithValue(ctx, leaseKey{}, lease)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stops := make([]func() bool, len(batch))
	for i, p := range batch {
		stops[i] = context.AfterFunc(p.ctx, func() { cancel(context.Cause(p.ctx)) })
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(context.Canceled)
	}
}

// batchLease returns the lease of the batch whose context ctx is (0:
// none).
func batchLease(ctx context.Context) time.Duration {
	l, _ := ctx.Value(leaseKey{}).(time.Duration)
	return l
}
