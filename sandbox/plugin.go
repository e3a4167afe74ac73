package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Plugin is a loaded, compiled plugin. It owns one instance pool per tenant.
// It is safe for concurrent use.
type Plugin struct {
	sb       *Sandbox
	manifest *pluginapi.Manifest
	limits   pluginapi.Limits
	caps     capSet
	c        *compiled
	validate string // the export that checks parameters, "" if none

	mu     sync.Mutex
	pools  map[string]*pool
	snap   *snapshot // state after initialisation; nil until the first instance
	noSnap bool      // the snapshot alone exceeded Config.MaxIdleBytes: none is kept
	closed bool
	// runs counts the Runs (and Validates) between their start and their
	// end; each holds the compiled module, as Close's reference does until
	// closeDone: the last of Close and those runs releases it.
	runs      int
	closeDone bool
	// fdsInit: an instance's initialisation changed the descriptor
	// table, so that the module never has a snapshot and initialises every
	// instance anew, as one that changes tables does; later ones under
	// the plugin's own limits too (initLimits). Not set by an eviction of
	// the snapshot, nor by noSnap: those initialise under InitTimeout.
	fdsInit bool
}

// Manifest returns a copy of the plugin's manifest.
func (p *Plugin) Manifest() *pluginapi.Manifest { return cloneManifest(p.manifest) }

// Limits returns the plugin's effective limits.
func (p *Plugin) Limits() pluginapi.Limits { return p.limits }

// Close discards the plugin's idle instances and releases its compiled
// module (shared with other Plugins of the same hash). Running invocations
// (those begun before Close, even if not yet instantiated) finish, and
// the compiled module is released when the last of them ends; later Runs
// return pluginapi.ErrClosed. It always returns nil.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closePools(ctx) {
		return nil
	}
	p.sb.mu.Lock()
	delete(p.sb.plugins, p)
	p.sb.mu.Unlock()
	p.mu.Lock()
	p.closeDone = true
	last := p.runs == 0
	p.mu.Unlock()
	if last {
		p.sb.release(ctx, p.manifest.SHA256, p.c)
	}
	return nil
}

// begin starts a run of p for tenantID: it returns the tenant's pool and
// holds p's compiled module until the matching end, so that a Close
// meanwhile leaves it to the run (which may still instantiate it).
func (p *Plugin) begin(tenantID string) (*pool, error) {
	p.mu.Lock()
	pl, err := p.poolLocked(tenantID)
	if err == nil {
		p.runs++ // under the lock that saw p open: Close's release comes after
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if p.sb.beforeInstantiate != nil {
		p.sb.beforeInstantiate(p)
	}
	return pl, nil
}

// end ends a run begun by begin; the last run to end after Close releases
// the compiled module.
func (p *Plugin) end(ctx context.Context) {
	p.mu.Lock()
	p.runs--
	last := p.runs == 0 && p.closeDone
	p.mu.Unlock()
	if last {
		p.sb.release(context.WithoutCancel(ctx), p.manifest.SHA256, p.c)
	}
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
	snap := p.snap
	p.snap = nil
	p.mu.Unlock()
	if snap != nil {
		p.sb.idle.dropSnapshot(snap)
	}
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
	return p.poolLocked(tenantID)
}

// poolLocked is pool with p.mu held.
func (p *Plugin) poolLocked(tenantID string) (*pool, error) {
	if p.closed {
		return nil, pluginapi.ErrClosed
	}
	pl := p.pools[tenantID]
	if pl == nil {
		pl = &pool{slots: make(chan struct{}, p.sb.cfg.PoolSize), cache: &p.sb.idle}
		p.pools[tenantID] = pl
	}
	return pl, nil
}

// pool bounds the instances of one (tenant, plugin): at most cap(slots) in
// use at once, and as many idle in the Sandbox's idle cache.
type pool struct {
	slots chan struct{}
	cache *idleCache
	idle  []*idleEntry // guarded by cache.mu; the most recent last
	dead  bool         // guarded by cache.mu
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

func (pl *pool) takeIdle(ctx context.Context) *instance { return pl.cache.take(ctx, pl) }

// put parks in for reuse, or closes it.
func (pl *pool) put(ctx context.Context, in *instance) { pl.cache.put(ctx, pl, in, cap(pl.slots)) }

func (pl *pool) drain(ctx context.Context) { pl.cache.drain(ctx, pl) }

// instance is one instantiated guest, used by one goroutine at a time.
type instance struct {
	mod     api.Module
	run     api.Function
	stop    api.MutableGlobal // preemption flag (wasmcheck.StopGlobal)
	fuel    api.MutableGlobal // instruction units left in the slice
	reserve api.MutableGlobal // and after it
	globals []api.MutableGlobal
	mem     *linearMemory
	out     *guestOutput
	stack   []uint64
	clock   *guestClock
	// overhead is what the instance holds besides its linear memory, as
	// charged against Config.MaxIdleBytes (instanceBytes).
	overhead int64

	// snap is the snapshot the instance was made from or taken of: only
	// to that one can it be reset (its memory may map snap's image).
	snap   *snapshot
	resets int // to snap, counted by the idle cache (guarded by its mu)

	// State reset (restore): pagemap entries and the pages the last call
	// wrote (-1: the whole memory was copied); fullCopy forces the copy
	// (benchmarks compare both).
	pmBuf      []byte
	dirty      []int
	dirtyPages int
	fullCopy   bool

	// initDur and initUnits: the wall time and units of the start function
	// and _initialize, when they ran to make this instance (else zero).
	initDur   time.Duration
	initUnits int64

	// fdsChanged: the guest called a WASI function that can change its
	// descriptor table (fdTableFuncs), which no reset restores; the
	// instance is not reused.
	fdsChanged bool

	mu       sync.Mutex // guards armed and fired against a late timer
	armed    bool
	fired    bool
	deadline time.Time // of the armed call
}

func (in *instance) close(ctx context.Context) {
	_ = in.mod.Close(ctx)
	in.mem.Free()
}

// fire stops the guest at its next slow path, unless the call it was armed
// for has already ended.
func (in *instance) fire() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.armed {
		in.fired = true
		in.stop.Set(1)
	}
}

// expired reports whether the armed call is stopped: fired, or past its
// deadline (then it fires it, in case the timer has not run yet). Host
// code that loops on the guest's behalf checks it, as the guest's own code
// checks the stop flag.
func (in *instance) expired() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.armed && !in.fired && !time.Now().Before(in.deadline) {
		in.fired = true
		in.stop.Set(1)
	}
	return in.armed && in.fired
}

// outcome is what one metered call into the guest did.
type outcome struct {
	err   error
	fired bool          // preempted (deadline, caller's ctx or Close)
	used  int64         // instruction units
	spent bool          // the instruction budget ran out
	dur   time.Duration // wall time of the call
}

// invoke calls fn under a deadline of timeout and a budget of instruction
// units. One timer per call (and a context.AfterFunc only when ctx can be
// cancelled) arm the preemption; Sandbox.Close fires every running instance.
func (in *instance) invoke(ctx context.Context, sb *Sandbox, fn api.Function, stack []uint64, timeout time.Duration, budget int64) outcome {
	first := min(budget, wasmcheck.Slice)
	in.fuel.Set(uint64(first))
	in.reserve.Set(uint64(budget - first))
	in.stop.Set(0)
	in.clock.begin(budget)
	in.mu.Lock()
	in.armed, in.fired, in.deadline = true, false, time.Now().Add(timeout)
	in.mu.Unlock()
	if sb.isClosed() { // Close fired the running instances before this one armed
		in.fire()
	}
	timer := time.AfterFunc(timeout, in.fire)
	stopCtx := func() bool { return false }
	if ctx.Done() != nil {
		stopCtx = context.AfterFunc(ctx, in.fire)
	}
	start := time.Now()
	err := fn.CallWithStack(ctx, stack)
	dur := time.Since(start)
	timer.Stop()
	stopCtx()
	in.mu.Lock()
	in.armed = false
	fired := in.fired
	in.mu.Unlock()
	left := int64(in.fuel.Get()) + int64(in.reserve.Get())
	used := min(budget-left, budget)
	in.clock.end(max(used, 0))
	return outcome{err: err, fired: fired, used: used, spent: left < 0, dur: dur}
}

// restore returns the instance to s. It reports false when it cannot (the
// memory grew past the snapshot: wasm memory cannot shrink); the instance
// must then be discarded. An instance whose memory maps s.img gets back
// only the pages the call wrote (the private copies pagemap reports); any
// other, or if pagemap fails, the whole memory is copied.
func (in *instance) restore(pm *pagemap, s *snapshot) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || in.snap != s {
		return false
	}
	if n := len(in.mem.buf); n != s.size {
		if n > s.size {
			return false
		}
		if _, ok := in.mod.Memory().Grow(uint32((s.size - n) / pageSize)); !ok || len(in.mem.buf) != s.size {
			return false
		}
	}
	in.dirtyPages = -1
	in.clock.elapsed, in.clock.rng = s.clock.elapsed, s.clock.rng
	if in.mem.cow && pm != nil && !in.fullCopy {
		if in.resetPages(pm, s) {
			for i, g := range in.globals {
				g.Set(s.globals[i])
			}
			return true
		}
	}
	s.copyTo(in.mem.buf[:s.size])
	for i, g := range in.globals {
		g.Set(s.globals[i])
	}
	return true
}

// resetPages copies back the pages of a mapped memory that the call wrote.
// When more than a quarter of them are private copies it drops them all
// instead (they read as the snapshot again; later writes copy them anew).
// Pages past the image that read zero are not counted: only read (the
// zero page) or written back to zero, they are as the snapshot has them.
// s.mu is read-locked.
func (in *instance) resetPages(pm *pagemap, s *snapshot) bool {
	mem := in.mem.buf[:s.size]
	if n := len(mem) / pageBytes * 8; len(in.pmBuf) < n {
		in.pmBuf = make([]byte, n)
	}
	dirty, err := pm.dirty(mem, in.pmBuf, in.dirty[:0])
	if err != nil {
		return false
	}
	// Past the image the mapping is anonymous: a page there that the call
	// only read maps the kernel's zero page, which pagemap reports as a
	// private page like a written one. One that reads zero is as the
	// snapshot has it (zero past the image): not written, nothing to reset.
	n := 0
	for _, i := range dirty {
		if off := i * pageBytes; off >= s.img.size && isZero(mem[off:off+pageBytes]) {
			continue
		}
		dirty[n] = i
		n++
	}
	dirty = dirty[:n]
	in.dirty, in.dirtyPages = dirty, len(dirty)
	if len(dirty)*4 > len(mem)/pageBytes {
		return dropPages(mem) == nil
	}
	for _, i := range dirty {
		off := i * pageBytes
		s.page(mem[off:off+pageBytes], off)
	}
	return true
}

// instantiate returns an instance of p in its initial state: from p's
// snapshot when it has one, else by running the module's start function
// and _initialize (under Config.InitTimeout and the ceiling's instruction
// budget) and taking the snapshot.
func (p *Plugin) instantiate(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	snap, noSnap := p.snap, p.noSnap
	p.mu.Unlock()
	mem := &linearMemory{limit: uint64(p.limits.MemoryPages) * pageSize, onFree: p.sb.onFree}
	if snap != nil && snap.img != nil && !p.sb.copyReset {
		if m, err := snap.img.mapping(mem.limit); err == nil {
			mem.mapped, mem.cow = m, true
		}
	}
	if mem.mapped == nil && mem.limit > 0 {
		// Reserve the whole limit so that no grow allocates or copies
		// (docs/sandbox.md, "Pools and instances"). Go memory only where
		// the system has no way to reserve; a reservation that fails is
		// retried after each idle instance or snapshot closed to make room
		// (least recently used first), then the run's failure, not a
		// fallback to memory a grow would copy.
		m, err := p.sb.reserve(mem.limit)
		for err != nil && !errors.Is(err, errors.ErrUnsupported) && p.sb.idle.evictOldest(ctx) {
			m, err = p.sb.reserve(mem.limit)
		}
		switch {
		case err == nil:
			mem.mapped = m
		case !errors.Is(err, errors.ErrUnsupported):
			return nil, &hostMemoryError{msg: fmt.Sprintf("%v: plugin %q: cannot reserve its memory limit of %d pages: %v", pluginapi.ErrHostMemory, p.manifest.Name, p.limits.MemoryPages, err)}
		}
	}
	out := &guestOutput{}
	clock := newGuestClock()
	cfg := wazero.NewModuleConfig().
		WithName("").
		// Deterministic clocks, sleeps and randomness (clock.go). A Go
		// guest's GC needs a moving monotonic clock: this one moves with
		// the instruction units the guest runs.
		WithNanotime(clock.nanotime, 1).
		WithWalltime(clock.walltime, 1).
		WithNanosleep(clock.sleep).
		WithRandSource(clock).
		WithStdout(out.stdout()).
		WithStderr(out.stderr()).
		WithStartFunctions() // start and _initialize are called below, metered
	actx := experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(
		func(_, _ uint64) experimental.LinearMemory { return mem }))
	mod, err := p.sb.rt.InstantiateModule(actx, p.c.cm, cfg)
	if err != nil {
		mem.Free() // wazero does not, when instantiation fails (a data segment out of bounds)
		return nil, fmt.Errorf("%w: instantiate: %v", pluginapi.ErrPluginTrap, err)
	}
	in := &instance{mod: mod, run: mod.ExportedFunction(p.manifest.Entry), mem: mem, out: out, stack: make([]uint64, 8), clock: clock,
		overhead: int64(min(p.c.info.InstanceBytes, 1<<40))}
	out.in = in
	clock.in = in
	global := func(name string) api.MutableGlobal {
		g, _ := mod.ExportedGlobal(name).(api.MutableGlobal)
		return g
	}
	in.stop, in.fuel, in.reserve = global(wasmcheck.StopGlobal), global(wasmcheck.FuelGlobal), global(wasmcheck.ReserveGlobal)
	for _, i := range p.c.info.MutableGlobals {
		in.globals = append(in.globals, global(wasmcheck.GlobalPrefix+strconv.FormatUint(uint64(i), 10)))
	}
	if in.stop == nil || in.fuel == nil || in.reserve == nil || in.run == nil || slices.Contains(in.globals, nil) {
		in.close(ctx)
		return nil, fmt.Errorf("%w: instrumented module lacks its metering exports", pluginapi.ErrHostFailure)
	}
	if snap != nil {
		in.snap = snap
		if !in.restore(p.sb.pm, snap) {
			in.close(ctx)
			if snap.isClosed() { // evicted meanwhile: initialise anew
				return p.instantiate(ctx)
			}
			return nil, fmt.Errorf("%w: cannot restore the initial state", pluginapi.ErrHostFailure)
		}
		p.sb.idle.touchSnapshot(ctx, snap)
		return in, nil
	}
	if err := p.sb.enter(in); err != nil {
		in.close(ctx)
		return nil, err
	}
	is := &initState{in: in, limit: p.limits.MaxHostCalls}
	for _, name := range []string{wasmcheck.StartExport, initExport} {
		fn := mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		if err = p.initCall(ctx, is, fn, name); err != nil {
			break
		}
	}
	if err != nil {
		ie := &initError{err: err, dur: in.initDur, units: in.initUnits, mem: in.mem.size()}
		in.close(ctx) // before exit: Sandbox.Close waits for it, then closes the runtime
		p.sb.exit(in)
		return nil, ie
	}
	p.sb.exit(in)
	if in.fdsChanged {
		p.mu.Lock()
		p.fdsInit = true
		p.mu.Unlock()
	}
	if p.c.info.MutatesTables || in.fdsChanged {
		// No snapshot: a fresh instance per invocation, initialised anew
		// (for fdsChanged, so that every invocation sees the descriptor
		// table initialisation left, as on this instance).
		return in, nil
	}
	if noSnap {
		return in, nil
	}
	snap = in.capture(p.sb.snapshotFiles(ctx))
	snap.owner = p
	p.mu.Lock()
	closed, other := p.closed, p.snap
	if !closed && other == nil {
		p.snap = snap
	}
	p.mu.Unlock()
	if closed || other != nil {
		snap.close()
		if closed {
			return in, nil
		}
		in.close(ctx) // another instance took the snapshot first
		return p.instantiate(ctx)
	}
	if !p.sb.idle.addSnapshot(ctx, snap) {
		// Larger than the whole idle budget: not kept, every invocation
		// initialises a new instance.
		p.mu.Lock()
		if p.snap == snap {
			p.snap, p.noSnap = nil, true
		}
		p.mu.Unlock()
		snap.close()
		return in, nil
	}
	if snap.img != nil {
		// This instance does not map the image (a reset copies it all): start
		// over from the image so that resets copy only what a call wrote.
		// The call still reports the initialisation it waited for.
		in.close(ctx)
		nin, err := p.instantiate(ctx)
		if err != nil {
			return nil, err
		}
		nin.initDur, nin.initUnits = in.initDur, in.initUnits
		return nin, nil
	}
	in.snap = snap
	return in, nil
}

// initError is the failure of a new instance's start function or
// _initialize, with what they used until then: Run reports it as the
// failed run's ResourceReport (InitDuration, InitInstructions,
// PeakMemoryBytes) and returns err.
type initError struct {
	err   error
	dur   time.Duration
	units int64
	mem   int64 // the guest's linear memory when initialisation stopped
}

func (e *initError) Error() string { return e.err.Error() }
func (e *initError) Unwrap() error { return e.err }

// initLimits returns the time and instruction units an instance's start
// function and _initialize may each use: Config.InitTimeout and the
// ceiling's budget; at most the plugin's own timeout and instruction
// budget too for a module with no snapshot, which initialises every
// instance, so for every run (one that can change a table from the start;
// one whose initialisation changed the descriptor table, after its first
// instance), so that it cannot spend InitTimeout on every run. A module
// whose snapshot was evicted (Config.MaxIdleBytes) or is too large to keep
// initialises again under InitTimeout alone: its limits were never meant
// for initialisation, and another tenant's runs can cause the eviction.
func (p *Plugin) initLimits() (time.Duration, int64) {
	timeout, budget := p.sb.cfg.InitTimeout, p.sb.ceil.MaxInstructions
	p.mu.Lock()
	fresh := p.fdsInit || p.c.info.MutatesTables
	p.mu.Unlock()
	if fresh {
		timeout, budget = min(timeout, p.limits.Timeout), min(budget, p.limits.MaxInstructions)
	}
	return timeout, budget
}

// initCall runs the start function or _initialize of is.in under the
// init deadline, its WASI calls counted in is.
func (p *Plugin) initCall(ctx context.Context, is *initState, fn api.Function, name string) error {
	if name == wasmcheck.StartExport {
		name = "the start function"
	}
	in := is.in
	timeout, budget := p.initLimits()
	o := in.invoke(context.WithValue(ctx, initKey{}, is), p.sb, fn, in.stack[:1], timeout, budget)
	in.initDur += o.dur
	in.initUnits += max(o.used, 0)
	switch {
	case o.err == nil:
		return nil
	case is.err != nil:
		return fmt.Errorf("%w (plugin %q, in %s)", is.err, p.manifest.Name, name)
	case errors.Is(o.err, pluginapi.ErrClosed) || p.sb.isClosed():
		return pluginapi.ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("sandbox: run: %w", ctx.Err())
	case o.fired:
		return fmt.Errorf("%w: %s ran longer than %s: %w", pluginapi.ErrPluginTimeout, name, timeout, context.DeadlineExceeded)
	case o.spent:
		return fmt.Errorf("%w: %s used more than %d instruction units", pluginapi.ErrInstructionLimit, name, budget)
	case in.mem.denied:
		return fmt.Errorf("%w: during %s: %v", pluginapi.ErrPluginMemory, name, firstLine(o.err))
	}
	return fmt.Errorf("%w: %s: %v%s", pluginapi.ErrPluginTrap, name, firstLine(o.err), in.out.panicText())
}

// hostMemoryError is the error of a reservation that failed: it says the
// host could not reserve memory, and matches ErrHostMemory and, for
// compatibility, ErrPluginMemory.
type hostMemoryError struct{ msg string }

func (e *hostMemoryError) Error() string { return e.msg }
func (e *hostMemoryError) Unwrap() []error {
	return []error{pluginapi.ErrHostMemory, pluginapi.ErrPluginMemory}
}
