package sandbox

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Plugin is a loaded, compiled plugin. It owns one instance pool per tenant.
// It is safe for concurrent use.
type Plugin struct {
	sb       *Sandbox
	manifest *Manifest
	limits   Limits
	caps     capSet
	c        *compiled

	mu     sync.Mutex
	pools  map[string]*pool
	closed bool
}

// Manifest returns a copy of the plugin's manifest.
func (p *Plugin) Manifest() *Manifest { return cloneManifest(p.manifest) }

// Limits returns the plugin's effective limits.
func (p *Plugin) Limits() Limits { return p.limits }

// Close discards the plugin's idle instances and releases its compiled
// module (shared with other Plugins of the same hash). Running invocations
// finish; later Runs return ErrClosed. It always returns nil.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closePools(ctx) {
		return nil
	}
	p.sb.mu.Lock()
	delete(p.sb.plugins, p)
	p.sb.mu.Unlock()
	p.sb.release(ctx, p.manifest.SHA256, p.c)
	return nil
}

// closePools marks p closed and closes idle instances; it reports whether
// this call closed p.
func (p *Plugin) closePools(ctx context.Context) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.closed = true
	pools := p.pools
	p.pools = nil
	p.mu.Unlock()
	for _, pl := range pools {
		pl.drain(ctx)
	}
	return true
}

// ReleaseTenant discards the idle instances this plugin keeps for tenantID
// (for example when a tenant is deleted or goes idle). It always returns nil.
func (p *Plugin) ReleaseTenant(ctx context.Context, tenantID string) error {
	p.mu.Lock()
	pl := p.pools[tenantID]
	delete(p.pools, tenantID)
	p.mu.Unlock()
	if pl != nil {
		pl.drain(ctx)
	}
	return nil
}

func (p *Plugin) pool(tenantID string) (*pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	pl := p.pools[tenantID]
	if pl == nil {
		n := p.sb.cfg.PoolSize
		pl = &pool{slots: make(chan struct{}, n), idle: make(chan *instance, n), count: &p.sb.idle, max: int64(p.sb.cfg.MaxIdle)}
		p.pools[tenantID] = pl
	}
	return pl, nil
}

// pool bounds the instances of one (tenant, plugin): at most cap(slots) in
// use at once and cap(idle) kept for reuse.
type pool struct {
	slots chan struct{}
	idle  chan *instance
	count *atomic.Int64 // Sandbox-wide idle instances
	max   int64
	mu    sync.Mutex
	dead  bool
}

func (pl *pool) acquireSlot(ctx context.Context) error {
	select {
	case pl.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (pl *pool) releaseSlot() { <-pl.slots }

func (pl *pool) takeIdle() *instance {
	select {
	case in := <-pl.idle:
		pl.count.Add(-1)
		return in
	default:
		return nil
	}
}

// put returns in to the pool, or closes it if the pool is full or dead.
func (pl *pool) put(ctx context.Context, in *instance) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if !pl.dead && pl.count.Add(1) <= pl.max {
		select {
		case pl.idle <- in:
			return
		default:
		}
		pl.count.Add(-1)
	} else if !pl.dead {
		pl.count.Add(-1)
	}
	in.close(ctx)
}

func (pl *pool) drain(ctx context.Context) {
	pl.mu.Lock()
	pl.dead = true
	pl.mu.Unlock()
	for {
		select {
		case in := <-pl.idle:
			pl.count.Add(-1)
			in.close(ctx)
		default:
			return
		}
	}
}

// instance is one instantiated guest, used by one goroutine at a time.
type instance struct {
	mod     api.Module
	run     api.Function
	stop    api.MutableGlobal // termFlag only
	closing context.Context   // the Sandbox's: done when it closes
	mem     *linearMemory
	out     *guestOutput
	stack   []uint64
}

func (in *instance) close(ctx context.Context) {
	_ = in.mod.Close(ctx)
	in.mem.Free()
}

// preempt arranges for the guest to stop when ctx is done (its deadline or
// the caller's cancellation) and returns a function that disarms it and
// reports whether it fired. With termCloseOnDone wazero does this itself.
func (in *instance) preempt(ctx context.Context) (disarm func() bool) {
	if in.stop == nil {
		return func() bool { return ctx.Err() != nil }
	}
	var mu sync.Mutex
	fired, done := false, false
	fire := func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			fired = true
			in.stop.Set(1) // the guest traps at its next loop head
		}
	}
	stopAfter := context.AfterFunc(ctx, fire)
	stopAfterClose := context.AfterFunc(in.closing, fire)
	return func() bool {
		stopAfter()
		stopAfterClose()
		mu.Lock()
		defer mu.Unlock()
		done = true
		return fired
	}
}

// minInitTimeout is the least time _initialize is given.
const minInitTimeout = time.Second

// instantiate creates a fresh instance of p and runs its _initialize under
// max(plugin timeout, minInitTimeout): a Go guest's runtime start takes
// ~5 ms, several times that under -race.
func (p *Plugin) instantiate(ctx context.Context) (*instance, error) {
	mem := &linearMemory{limit: uint64(p.limits.MemoryPages) * PageSize}
	out := &guestOutput{}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithSysNanotime(). // Go guests' GC needs a moving clock (NOTES §1)
		WithStdout(out.stdout()).
		WithStderr(out.stderr()).
		WithStartFunctions() // _initialize is called below, preemptible
	initTimeout := max(p.limits.Timeout, minInitTimeout)
	ictx, cancel := context.WithTimeout(ctx, initTimeout)
	defer cancel()
	defer context.AfterFunc(p.sb.closing, cancel)() // Sandbox.Close stops it
	actx := experimental.WithMemoryAllocator(ictx, experimental.MemoryAllocatorFunc(
		func(_, _ uint64) experimental.LinearMemory { return mem }))
	mod, err := p.sb.rt.InstantiateModule(actx, p.c.cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: instantiate: %v", ErrPluginTrap, err)
	}
	in := &instance{mod: mod, run: mod.ExportedFunction(p.manifest.Entry), mem: mem, out: out, stack: make([]uint64, 8), closing: p.sb.closing}
	if p.sb.cfg.termination == termFlag {
		g, ok := mod.ExportedGlobal(wasmcheck.StopGlobal).(api.MutableGlobal)
		if !ok {
			in.close(ctx)
			return nil, fmt.Errorf("%w: instrumented module lacks %s", ErrHostFailure, wasmcheck.StopGlobal)
		}
		in.stop = g
	}
	if !p.c.hasInit {
		return in, nil
	}
	if err := p.sb.enter(); err != nil {
		in.close(ctx)
		return nil, err
	}
	disarm := in.preempt(ictx)
	_, err = mod.ExportedFunction(InitExport).Call(ictx)
	fired := disarm()
	p.sb.inflight.Done()
	if err == nil {
		return in, nil
	}
	in.close(ctx)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case p.sb.closing.Err() != nil:
		return nil, ErrClosed
	case fired || ictx.Err() != nil:
		return nil, fmt.Errorf("%w: during %s after %s: %w", ErrPluginTimeout, InitExport, initTimeout, context.DeadlineExceeded)
	case mem.denied:
		return nil, fmt.Errorf("%w: during %s: %v", ErrPluginMemory, InitExport, firstLine(err))
	}
	return nil, fmt.Errorf("%w: %s: %v%s", ErrPluginTrap, InitExport, firstLine(err), out.panicText())
}
