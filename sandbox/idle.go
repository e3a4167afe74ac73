package sandbox

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"time"
)

// instanceOverhead is the least an instance is charged besides its linear
// memory against Config.MaxIdleBytes. An instance is charged its module's
// estimate when larger (wasmcheck.Info.InstanceBytes: wazero's module
// instance, the host-side state, and per element entry and segment, data
// segment, import, function, global and table element what wazero keeps
// in every instance): an estimate from the module's shape, not a
// measurement of each instance. Before, every instance was charged 64
// KiB: an idle instance of a module with a passive element segment of 4
// million entries held 145 MB.
const instanceOverhead = 64 << 10

// idleCache holds the instances of every pool between invocations and
// the plugins' snapshots: at most Config.MaxIdleBytes of them in all,
// each unused for at most Config.IdleTTL (checked whenever an instance is
// taken or parked or a snapshot used, of any pool); when full, the least
// recently used entry is evicted first (an instance: closed; a snapshot:
// dropped, its plugin initialises anew and takes another). A snapshot is
// used when an instance is made from it, taken from a pool or parked after
// a reset to it, and charged
// for what it holds (snapshot.bytes, measured again when an instance is
// made from it and at every remeasureEvery-th reset of an instance). Every
// parked instance is in its initial state.
type idleCache struct {
	mu        sync.Mutex
	lru       list.List // of *idleEntry; front: most recently used
	bytes     int64     // instances and snapshots
	instances int
	snapBytes int64
	snaps     int
	max       int64
	ttl       time.Duration
	now       func() time.Time
}

// idleEntry is an idle instance (in, of pool pl) or a snapshot (snap).
type idleEntry struct {
	in   *instance
	pl   *pool
	snap *snapshot
	at   time.Time
	size int64
	elem *list.Element
}

func instanceBytes(in *instance) int64 {
	return int64(cap(in.mem.buf)) + max(in.overhead, instanceOverhead)
}

// take returns the most recently parked instance of pl, or nil, and
// marks the snapshot it was reset to used. Instances and snapshots (of any
// pool and plugin) unused past the TTL are closed first.
func (c *idleCache) take(ctx context.Context, pl *pool) *instance {
	var ev evicted
	defer ev.close(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.trim(now, &ev)
	for len(pl.idle) > 0 {
		e := pl.idle[len(pl.idle)-1]
		c.remove(e)
		if now.Sub(e.at) > c.ttl {
			ev.ins = append(ev.ins, e.in)
			continue
		}
		if e.in.snap != nil {
			c.use(e.in.snap, now, false)
		}
		return e.in
	}
	return nil
}

// remove takes e out of the cache and of its pool; c.mu is held.
func (c *idleCache) remove(e *idleEntry) {
	c.lru.Remove(e.elem)
	c.bytes -= e.size
	if e.snap != nil {
		c.snaps--
		c.snapBytes -= e.size
		e.snap.entry, e.snap.gone = nil, true
		return
	}
	c.instances--
	if i := slices.Index(e.pl.idle, e); i >= 0 {
		e.pl.idle = slices.Delete(e.pl.idle, i, i+1)
	}
}

// evicted is what an eviction took out of the cache, to close once c.mu
// is released.
type evicted struct {
	ins   []*instance
	snaps []*snapshot
}

func (ev *evicted) close(ctx context.Context) {
	for _, in := range ev.ins {
		in.close(ctx)
	}
	for _, s := range ev.snaps {
		s.owner.forget(s)
	}
}

// trim evicts, least recently used first, until the cache fits its
// budget, and the instances and snapshots unused past the TTL (the least
// recently used are the oldest); c.mu is held.
func (c *idleCache) trim(now time.Time, ev *evicted) {
	for back := c.lru.Back(); back != nil; back = c.lru.Back() {
		old := back.Value.(*idleEntry)
		if c.bytes <= c.max && now.Sub(old.at) <= c.ttl {
			break
		}
		c.remove(old)
		if old.snap != nil {
			ev.snaps = append(ev.snaps, old.snap)
		} else {
			ev.ins = append(ev.ins, old.in)
		}
	}
}

// remeasureEvery is how often a reset to a snapshot measures it again
// (an fstat): every 64th, and every instance made from it.
const remeasureEvery = 64

// use marks s used now and, when measure is set, charges what it holds
// now; c.mu is held.
func (c *idleCache) use(s *snapshot, now time.Time, measure bool) {
	e := s.entry
	if e == nil {
		return
	}
	if measure {
		size := s.bytes()
		c.bytes += size - e.size
		c.snapBytes += size - e.size
		e.size = size
	}
	e.at = now
	c.lru.MoveToFront(e.elem)
}

// addSnapshot charges s to the cache, evicting what no longer fits; it
// reports false (s is not kept) when s alone exceeds the budget or was
// dropped meanwhile.
func (c *idleCache) addSnapshot(ctx context.Context, s *snapshot) bool {
	var ev evicted
	defer ev.close(ctx)
	size := s.bytes()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.gone || size > c.max {
		s.gone = true
		return false
	}
	now := c.now()
	e := &idleEntry{snap: s, at: now, size: size}
	e.elem = c.lru.PushFront(e)
	s.entry = e
	c.bytes += size
	c.snaps++
	c.snapBytes += size
	c.trim(now, &ev)
	return true
}

// touchSnapshot marks s used (an instance was made from it).
func (c *idleCache) touchSnapshot(ctx context.Context, s *snapshot) {
	var ev evicted
	defer ev.close(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.use(s, now, true)
	c.trim(now, &ev)
}

// evictOldest evicts the least recently used entry, an idle instance
// (closed) or a snapshot (dropped: its plugin initialises anew), to return
// what it reserves to the system; it reports whether there was one.
func (c *idleCache) evictOldest(ctx context.Context) bool {
	var ev evicted
	defer ev.close(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	back := c.lru.Back()
	if back == nil {
		return false
	}
	old := back.Value.(*idleEntry)
	c.remove(old)
	if old.snap != nil {
		ev.snaps = append(ev.snaps, old.snap)
	} else {
		ev.ins = append(ev.ins, old.in)
	}
	return true
}

// evictImage evicts the least recently used snapshot that holds a memfd,
// closing it (its plugin initialises anew); it reports whether there was
// one.
func (c *idleCache) evictImage(ctx context.Context) bool {
	var ev evicted
	defer ev.close(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Back(); e != nil; e = e.Prev() {
		old := e.Value.(*idleEntry)
		if old.snap != nil && old.snap.img != nil {
			c.remove(old)
			ev.snaps = append(ev.snaps, old.snap)
			return true
		}
	}
	return false
}

// dropSnapshot takes s out of the cache and closes it (its plugin closed).
func (c *idleCache) dropSnapshot(s *snapshot) {
	c.mu.Lock()
	if s.entry != nil {
		c.remove(s.entry)
	}
	s.gone = true
	c.mu.Unlock()
	s.close()
}

// put parks in for pl (at most perPool per pool), marks the snapshot it
// was reset to used, and evicts what no longer fits or has expired, or
// closes in when pl is closed or it is too big.
func (c *idleCache) put(ctx context.Context, pl *pool, in *instance, perPool int) {
	var ev evicted
	defer ev.close(ctx)
	size := instanceBytes(in)
	c.mu.Lock()
	defer c.mu.Unlock()
	if pl.dead || size > c.max || len(pl.idle) >= perPool {
		ev.ins = append(ev.ins, in)
		return
	}
	now := c.now()
	if in.snap != nil {
		in.resets++
		c.use(in.snap, now, in.resets%remeasureEvery == 0)
	}
	e := &idleEntry{in: in, pl: pl, at: now, size: size}
	e.elem = c.lru.PushFront(e)
	c.bytes += size
	c.instances++
	pl.idle = append(pl.idle, e)
	c.trim(now, &ev)
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

// stats returns the instances parked and the bytes charged (instances
// and snapshots).
func (c *idleCache) stats() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instances, c.bytes
}

// snapStats returns the snapshots kept and the bytes charged for them.
func (c *idleCache) snapStats() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snaps, c.snapBytes
}
