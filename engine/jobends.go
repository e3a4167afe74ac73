package engine

import "sync"

// jobEnds tells the WaitJobs calls of this process that jobs they wait for
// were settled by this process's workers, so that a wait over an
// in-process worker returns when its last job ends rather than at the
// next poll. It only wakes waiters: what a waiter returns is always read
// from the tenant's job records. The zero value is ready to use.
type jobEnds struct {
	mu   sync.Mutex
	subs map[*endSub]struct{}
}

// endSub is one waiter: the jobs it waits for, by tenant.
type endSub struct {
	tenant string
	left   map[string]struct{} // the jobs not yet known to have ended
	wake   chan struct{}       // signalled (capacity 1) when left empties
}

// subscribe registers a waiter for ids of tenant. Call unsubscribe when
// done.
func (j *jobEnds) subscribe(tenant string, ids []string) *endSub {
	s := &endSub{tenant: tenant, left: make(map[string]struct{}, len(ids)), wake: make(chan struct{}, 1)}
	for _, id := range ids {
		s.left[id] = struct{}{}
	}
	j.mu.Lock()
	if j.subs == nil {
		j.subs = map[*endSub]struct{}{}
	}
	j.subs[s] = struct{}{}
	j.mu.Unlock()
	return s
}

func (j *jobEnds) unsubscribe(s *endSub) {
	j.mu.Lock()
	delete(j.subs, s)
	j.mu.Unlock()
}

// ended records that ids of tenant were settled (their final state is
// committed), waking the waiters left with nothing to wait for.
func (j *jobEnds) ended(tenant string, ids []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for s := range j.subs {
		if s.tenant == tenant {
			s.forget(ids)
		}
	}
}

// known records, under j's lock, that ids are final (a poll saw them so).
func (j *jobEnds) known(s *endSub, ids []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s.forget(ids)
}

// forget drops ids from s.left and signals s.wake when it empties; j.mu
// is held.
func (s *endSub) forget(ids []string) {
	if len(s.left) == 0 {
		return
	}
	for _, id := range ids {
		delete(s.left, id)
	}
	if len(s.left) == 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
