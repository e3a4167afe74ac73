package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
)

// TestBatcher: every delivery gets its own outcome; batches hold one
// tenant's deliveries, at most max; at most perTenant batches of a tenant
// and total batches in all run at once; deliveries that arrive while a
// tenant's slots are busy are gathered into batches.
func TestBatcher(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		max, total, perTenant        int
		tenants, perTenantDeliveries int
	}{
		{"one tenant", 8, 4, 2, 1, 200},
		{"many tenants", 16, 3, 1, 7, 60},
		{"batch of one", 1, 2, 2, 3, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu             sync.Mutex
				running        int
				runningTenant  = map[string]int{}
				maxRunning     int
				maxTenant      int
				batches, multi atomic.Int64
			)
			var b *batcher
			b = newBatcher(tc.max, tc.total, tc.perTenant, nil, func(ctx context.Context, tenant string, batch []*pending) {
				if len(batch) == 0 || len(batch) > tc.max {
					t.Errorf("batch of %d", len(batch))
				}
				mu.Lock()
				running++
				runningTenant[tenant]++
				maxRunning, maxTenant = max(maxRunning, running), max(maxTenant, runningTenant[tenant])
				mu.Unlock()
				batches.Add(1)
				if len(batch) > 1 {
					multi.Add(1)
				}
				time.Sleep(time.Millisecond) // let others arrive
				for _, p := range batch {
					if p.d.TenantID != tenant {
						t.Errorf("delivery of %q in a batch of %q", p.d.TenantID, tenant)
					}
					p.out = driver.Outcome{Reason: p.d.JobID}
					close(p.done)
				}
				mu.Lock()
				running--
				runningTenant[tenant]--
				mu.Unlock()
			})
			var wg sync.WaitGroup
			for tn := range tc.tenants {
				for j := range tc.perTenantDeliveries {
					wg.Add(1)
					go func() {
						defer wg.Done()
						d := driver.Delivery{TenantID: fmt.Sprintf("t%d", tn), JobID: fmt.Sprintf("t%d-j%d", tn, j)}
						if out := b.submit(context.Background(), d); out.Reason != d.JobID {
							t.Errorf("delivery %s got the outcome of %q", d.JobID, out.Reason)
						}
					}()
				}
			}
			wg.Wait()
			if maxRunning > tc.total || maxTenant > tc.perTenant {
				t.Errorf("at most %d batches (%d of one tenant) ran at once, want at most %d (%d)", maxRunning, maxTenant, tc.total, tc.perTenant)
			}
			if tc.max > 1 && multi.Load() == 0 {
				t.Errorf("%d batches, none of more than one delivery", batches.Load())
			}
			if len(b.tenants) != 0 {
				t.Errorf("tenants left behind: %d", len(b.tenants))
			}
			t.Logf("%d deliveries in %d batches", tc.tenants*tc.perTenantDeliveries, batches.Load())
		})
	}
}

// TestBatchContext: a batch's context ends when any of its deliveries'
// does, with that one's cause, and carries the shortest lease of its
// deliveries, not a deadline (a lease bounds each job's own run);
// release stops watching them.
func TestBatchContext(t *testing.T) {
	c1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	c2, cancel2 := context.WithCancelCause(context.Background())
	defer cancel2(nil)
	batch := []*pending{
		{ctx: c1, d: driver.Delivery{Lease: time.Hour}},
		{ctx: c2, d: driver.Delivery{Lease: time.Minute}},
		{ctx: c1},
	}
	ctx, release := batchContext(batch)
	if _, ok := ctx.Deadline(); ok {
		t.Fatal("the batch has a deadline")
	}
	if got := batchLease(ctx); got != time.Minute {
		t.Fatalf("batch lease %v, want 1m (the shortest)", got)
	}
	if ctx.Err() != nil {
		t.Fatal("done before any delivery is")
	}
	stopped := errors.New("stopped")
	cancel2(stopped)
	<-ctx.Done() // a hung test fails on the test timeout
	if !errors.Is(context.Cause(ctx), stopped) {
		t.Fatalf("cause %v, want the delivery's", context.Cause(ctx))
	}
	release()

	c3, cancel3 := context.WithCancel(context.Background())
	ctx, release = batchContext([]*pending{{ctx: c3}})
	if got := batchLease(ctx); got != 0 {
		t.Fatalf("lease %v of a batch whose deliveries have none", got)
	}
	release()
	if ctx.Err() == nil {
		t.Fatal("release leaves the context running")
	}
	cancel3()
}

// TestBatcherStop: once the worker stops, a delivery waiting for a slot
// is released at once (Again, its batch never run), and one submitted
// afterwards too; the batch running finishes and keeps its outcome.
func TestBatcherStop(t *testing.T) {
	stop := make(chan struct{})
	running, finish := make(chan struct{}), make(chan struct{})
	var ran sync.Map
	b := newBatcher(4, 1, 1, stop, func(ctx context.Context, tenant string, batch []*pending) {
		for _, p := range batch {
			ran.Store(p.d.JobID, true)
		}
		if batch[0].d.JobID == "first" {
			close(running)
			<-finish
		}
		for _, p := range batch {
			p.out = driver.Outcome{Reason: "ran"}
			close(p.done)
		}
	})
	first := make(chan driver.Outcome, 1)
	go func() { first <- b.submit(context.Background(), driver.Delivery{TenantID: "t", JobID: "first"}) }()
	<-running
	waiting := make(chan driver.Outcome, 2)
	for _, id := range []string{"w1", "w2"} {
		go func() { waiting <- b.submit(context.Background(), driver.Delivery{TenantID: "t", JobID: id}) }()
	}
	for { // both wait for the tenant's slot
		b.mu.Lock()
		n := 0
		if tb := b.tenants["t"]; tb != nil {
			n = len(tb.waiting)
		}
		b.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	for range 2 {
		if out := <-waiting; out.Kind != driver.Again || out.Reason != "" {
			t.Fatalf("a waiting delivery after the stop: %+v, want released (Again)", out)
		}
	}
	if out := b.submit(context.Background(), driver.Delivery{TenantID: "t", JobID: "late"}); out.Kind != driver.Again {
		t.Fatalf("a delivery after the stop: %+v, want released (Again)", out)
	}
	close(finish)
	if out := <-first; out.Reason != "ran" {
		t.Fatalf("the running batch: %+v, want its own outcome", out)
	}
	for _, id := range []string{"w1", "w2", "late"} {
		if _, ok := ran.Load(id); ok {
			t.Errorf("delivery %s ran after the stop", id)
		}
	}
	if len(b.tenants) != 0 {
		t.Errorf("tenants left behind: %d", len(b.tenants))
	}
}
