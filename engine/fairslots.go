package engine

import (
	"context"
	"sync"
)

// fairSlots hands out a fixed number of slots (a worker's plugin runs at
// once) to callers of several tenants. When every slot is taken, a freed
// slot goes to the waiting tenants in turn, oldest waiter first within a
// tenant: a tenant with a thousand runs queued and a tenant with one
// alternate, so the one waits behind at most one run per slot of the
// other, not behind all of them (a plain channel semaphore serves
// waiters in arrival order).
type fairSlots struct {
	mu    sync.Mutex
	free  int
	queue map[string][]chan struct{} // waiters by tenant, oldest first
	turns []string                   // tenants with waiters, next to serve first
}

func newFairSlots(n int) *fairSlots {
	return &fairSlots{free: n, queue: map[string][]chan struct{}{}}
}

// acquire takes a slot for tenant, waiting for one if need be; it returns
// ctx's error (and holds no slot) when ctx is done first.
func (f *fairSlots) acquire(ctx context.Context, tenant string) error {
	f.mu.Lock()
	if f.free > 0 {
		// No one waits while a slot is free: release hands a freed
		// slot straight to a waiter.
		f.free--
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{}, 1) // release hands the slot over without blocking
	if len(f.queue[tenant]) == 0 {
		f.turns = append(f.turns, tenant)
	}
	f.queue[tenant] = append(f.queue[tenant], ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	if f.dequeue(tenant, ch) {
		f.mu.Unlock()
		return ctx.Err()
	}
	f.mu.Unlock()
	// The slot was handed over as ctx ended: pass it on.
	<-ch
	f.release()
	return ctx.Err()
}

// dequeue removes a waiter that gave up; false when it is no longer
// queued (it was handed a slot). f.mu is held.
func (f *fairSlots) dequeue(tenant string, ch chan struct{}) bool {
	q := f.queue[tenant]
	for i, c := range q {
		if c != ch {
			continue
		}
		q = append(q[:i:i], q[i+1:]...)
		if len(q) > 0 {
			f.queue[tenant] = q
			return true
		}
		delete(f.queue, tenant)
		for j, t := range f.turns {
			if t == tenant {
				f.turns = append(f.turns[:j:j], f.turns[j+1:]...)
				break
			}
		}
		return true
	}
	return false
}

// release frees a slot taken by acquire: it goes to the oldest waiter of
// the tenant whose turn it is, which then takes its place at the back of
// the turns if it has more waiters.
func (f *fairSlots) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.turns) == 0 {
		f.free++
		return
	}
	tenant := f.turns[0]
	f.turns = f.turns[1:]
	q := f.queue[tenant]
	ch := q[0]
	if len(q) > 1 {
		f.queue[tenant] = q[1:]
		f.turns = append(f.turns, tenant)
	} else {
		delete(f.queue, tenant)
	}
	ch <- struct{}{}
}
