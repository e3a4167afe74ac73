package sandbox

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"time"
)

// instanceOverhead is what an instance costs besides its linear memory
// (wazero's module instance, tables, globals, host-side state), as
// charged against Config.MaxIdleBytes: an estimate, not a measurement of
// each instance.
const instanceOverhead = 64 << 10

// idleCache holds the instances of every pool between invocations: at
// most Config.MaxIdleBytes of them in all, each for at most
// Config.IdleTTL; when full, the least recently parked instance of any
// pool is closed first. Every parked instance is in its initial state.
type idleCache struct {
	mu    sync.Mutex
	lru   list.List // of *idleEntry; front: most recently parked
	bytes int64
	max   int64
	ttl   time.Duration
	now   func() time.Time
}

type idleEntry struct {
	in   *instance
	pl   *pool
	at   time.Time
	size int64
	elem *list.Element
}

func instanceBytes(in *instance) int64 { return int64(cap(in.mem.buf)) + instanceOverhead }

// take returns the most recently parked instance of pl, or nil. Instances
// found expired on the way are closed.
func (c *idleCache) take(ctx context.Context, pl *pool) *instance {
	var expired []*instance
	defer func() {
		for _, in := range expired {
			in.close(ctx)
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for len(pl.idle) > 0 {
		e := pl.idle[len(pl.idle)-1]
		c.remove(e)
		if now.Sub(e.at) > c.ttl {
			expired = append(expired, e.in)
			continue
		}
		return e.in
	}
	return nil
}

// remove takes e out of the cache and of its pool; c.mu is held.
func (c *idleCache) remove(e *idleEntry) {
	c.lru.Remove(e.elem)
	c.bytes -= e.size
	if i := slices.Index(e.pl.idle, e); i >= 0 {
		e.pl.idle = slices.Delete(e.pl.idle, i, i+1)
	}
}

// put parks in for pl (at most perPool per pool) and evicts what no longer
// fits or has expired, or closes in when pl is closed or it is too big.
func (c *idleCache) put(ctx context.Context, pl *pool, in *instance, perPool int) {
	var closing []*instance
	defer func() {
		for _, in := range closing {
			in.close(ctx)
		}
	}()
	size := instanceBytes(in)
	c.mu.Lock()
	defer c.mu.Unlock()
	if pl.dead || size > c.max || len(pl.idle) >= perPool {
		closing = append(closing, in)
		return
	}
	now := c.now()
	e := &idleEntry{in: in, pl: pl, at: now, size: size}
	e.elem = c.lru.PushFront(e)
	c.bytes += size
	pl.idle = append(pl.idle, e)
	for back := c.lru.Back(); back != nil; back = c.lru.Back() {
		old := back.Value.(*idleEntry)
		if c.bytes <= c.max && now.Sub(old.at) <= c.ttl {
			break
		}
		c.remove(old)
		closing = append(closing, old.in)
	}
}

// drain marks pl closed and closes its idle instances.
func (c *idleCache) drain(ctx context.Context, pl *pool) {
	c.mu.Lock()
	pl.dead = true
	idle := slices.Clone(pl.idle)
	for _, e := range idle {
		c.remove(e)
	}
	c.mu.Unlock()
	for _, e := range idle {
		e.in.close(ctx)
	}
}

// stats returns the instances and bytes parked.
func (c *idleCache) stats() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
