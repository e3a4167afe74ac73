package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Config configures a Sandbox. The zero value is usable.
type Config struct {
	// CacheDir, if set, holds wazero's on-disk compilation cache so that
	// restarts skip most of the compile. It contains executable machine code:
	// it is created (and must stay) private to the engine, mode 0700, and
	// must never be shared with tenants. Default: no on-disk cache.
	CacheDir string
	// Ceilings are the operator's per-invocation maxima; zero fields take
	// DefaultCeilings. A manifest asking for more is refused at Load.
	Ceilings pluginapi.Limits
	// PoolSize bounds the instances of one plugin for one tenant that run at
	// once, and those kept idle for reuse. Default 4.
	PoolSize int
	// MaxCompiled bounds distinct compiled modules held in memory. Default 256.
	MaxCompiled int
	// MaxCompiledCode bounds the estimated machine code of the distinct
	// compiled modules held in memory, added up (bytes; each module's is at
	// most wasmcheck.MaxCompiledCode, 160 MiB). A Load that would exceed it
	// fails with ErrTooManyModules; the module's compiled code is freed
	// when its last Plugin is closed. Default DefaultMaxCompiledCode
	// (2 GiB).
	MaxCompiledCode int64
	// MaxIdleBytes bounds the memory of idle instances kept for reuse
	// across all tenants and plugins (each counts its linear memory plus an
	// estimated 64 KiB) together with the plugins' post-initialisation
	// snapshots (each counts the memory it holds: its non-zero pages);
	// past it the least recently used are closed (an evicted snapshot is
	// taken again at its plugin's next new instance). A snapshot larger
	// than the whole budget is not kept. Default DefaultMaxIdleBytes
	// (512 MiB).
	MaxIdleBytes int64
	// IdleTTL closes idle instances and plugins' snapshots unused for
	// longer (checked whenever an instance is taken or parked, no
	// background goroutine). Default 5 minutes.
	IdleTTL time.Duration
	// RetireAbovePercent retires an instance after a call that left its
	// memory above this percentage of its plugin's memory limit. Default 75.
	RetireAbovePercent int
	// CompilationWorkers is the number of goroutines compiling one module.
	// Default min(GOMAXPROCS, 4). A module whose largest function is
	// estimated to need more than a share of
	// wasmcheck.MaxFunctionCompileMemory gets fewer (docs/sandbox.md,
	// "Compile time"), and one Sandbox compiles one module at a time.
	CompilationWorkers int
	// InitTimeout bounds each of a new instance's start function and
	// _initialize, with the ceiling's instruction budget (and the plugin's
	// own timeout and budget in a module that initialises every run's
	// instance: docs/sandbox.md, "Limits and defaults"). Default 10s: a Go
	// guest's runtime start takes ~5 ms idle, far more on a loaded machine.
	InitTimeout time.Duration
	// MaxSnapshotFiles bounds the memfds (one descriptor each) that hold
	// plugins' snapshots on Linux: past it the least recently used
	// snapshot holding one is evicted, and if none can be, the new
	// snapshot is a Go copy. Default DefaultMaxSnapshotFiles of the
	// process's open-file limit (docs/sandbox.md, "Fresh state").
	MaxSnapshotFiles int
}

// Sandbox runs untrusted plugins. It is safe for concurrent use.
type Sandbox struct {
	cfg   Config
	ceil  pluginapi.Limits
	rt    wazero.Runtime
	cache wazero.CompilationCache

	idle  idleCache  // idle instances of all pools
	files fileBudget // snapshot memfds (Config.MaxSnapshotFiles)

	// instrument rewrites modules at Load: wasmcheck.Instrument, or a
	// benchmark's variant.
	instrument func([]byte) ([]byte, wasmcheck.Info, error)
	// reserve reserves an instance's memory limit (reserve_*.go); tests
	// make it fail.
	reserve func(limit uint64) ([]byte, error)
	// onFree, when set (tests only), sees each instance memory mapping
	// (a reservation or a snapshot image's mapping) as it is unmapped.
	onFree func(mapped []byte)
	// meteredDir, when set (CacheDir/metered), also keeps instrumented
	// modules by the sha256 of the original, so that a restart skips
	// Harden and Instrument (see meteredCache).
	meteredDir string
	// pm reads /proc/self/pagemap for copy-on-write state resets (nil
	// where unavailable: resets copy the whole memory). copyReset forces
	// full copies and onReset sees each reset's time and dirty pages (-1
	// for a full copy): benchmarks compare the two.
	pm        *pagemap
	copyReset bool
	onReset   func(d time.Duration, dirtyPages int)
	// beforeInstantiate, when set (tests only), is called by each Run
	// after it has begun (Plugin.begin), before it takes or makes an
	// instance.
	beforeInstantiate func(p *Plugin)

	// inflight counts Runs using an instance so that Close can stop them
	// (running holds their instances) and wait for them before closing the
	// runtime under them.
	inflight sync.WaitGroup
	closedA  atomic.Bool

	// compiling is held while a module is instrumented and compiled:
	// one at a time, so that the compilers' memory of two Loads does not
	// add up (docs/sandbox.md, "Compile time").
	compiling chan struct{}

	mu       sync.Mutex
	compiled map[string]*compiled
	code     int64 // estimated machine code of the modules in compiled (info.CompiledCode)
	plugins  map[*Plugin]struct{}
	running  map[*instance]struct{}
	closed   bool
}

type compiled struct {
	ready   chan struct{} // closed when cm/err are set
	cm      wazero.CompiledModule
	err     error
	refs    int
	hasInit bool
	minMem  uint32 // pages the exported memory starts with
	info    wasmcheck.Info
	code    int64 // charged to Sandbox.code (info.CompiledCode once instrumented)
}

// New creates a Sandbox: one wazero runtime with the docex host module and a
// deny-all WASI. It returns an error if CacheDir cannot be created or the
// host modules cannot be instantiated.
func New(ctx context.Context, cfg Config) (*Sandbox, error) {
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 4
	}
	if cfg.MaxCompiled <= 0 {
		cfg.MaxCompiled = 256
	}
	if cfg.MaxCompiledCode <= 0 {
		cfg.MaxCompiledCode = DefaultMaxCompiledCode
	}
	if cfg.MaxIdleBytes <= 0 {
		cfg.MaxIdleBytes = DefaultMaxIdleBytes
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = DefaultIdleTTL
	}
	if cfg.RetireAbovePercent <= 0 || cfg.RetireAbovePercent > 100 {
		cfg.RetireAbovePercent = 75
	}
	if cfg.CompilationWorkers <= 0 {
		cfg.CompilationWorkers = min(runtime.GOMAXPROCS(0), 4)
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	if cfg.MaxSnapshotFiles <= 0 {
		cfg.MaxSnapshotFiles = DefaultMaxSnapshotFiles(openFileLimit())
	}
	ceil, err := pluginapi.Ceilings(cfg.Ceilings)
	if err != nil {
		return nil, fmt.Errorf("sandbox: ceilings: %w", err)
	}
	sb := &Sandbox{cfg: cfg, ceil: ceil, compiled: map[string]*compiled{}, plugins: map[*Plugin]struct{}{},
		running: map[*instance]struct{}{}, instrument: wasmcheck.Instrument, reserve: reserve, compiling: make(chan struct{}, 1)}
	sb.idle.max, sb.idle.ttl, sb.idle.now = cfg.MaxIdleBytes, cfg.IdleTTL, time.Now
	sb.files.max = cfg.MaxSnapshotFiles
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(ceil.MemoryPages).
		WithCoreFeatures(api.CoreFeaturesV2)
	if cfg.CacheDir != "" {
		// The cache holds code compiled from instrumented modules; its own
		// sub-directory keeps it apart from caches of earlier versions.
		dir := filepath.Join(cfg.CacheDir, "metered")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: create cache dir: %w", err)
		}
		for _, d := range []string{cfg.CacheDir, dir} {
			if err := os.Chmod(d, 0o700); err != nil {
				return nil, fmt.Errorf("sandbox: cache dir: %w", err)
			}
		}
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("sandbox: compilation cache: %w", err)
		}
		sb.cache = c
		sb.meteredDir = dir
		rc = rc.WithCompilationCache(c)
	}
	sb.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(experimental.WithFunctionListenerFactory(ctx, wasiCounter{}), sb.rt); err != nil {
		sb.closeRuntime(ctx)
		return nil, fmt.Errorf("sandbox: instantiate wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, sb.rt); err != nil {
		sb.closeRuntime(ctx)
		return nil, fmt.Errorf("sandbox: instantiate docex host module: %w", err)
	}
	sb.pm = openPagemap()
	return sb, nil
}

// Defaults of Config fields.
const (
	DefaultMaxIdleBytes    = 512 << 20
	DefaultIdleTTL         = 5 * time.Minute
	DefaultMaxCompiledCode = 2 << 30
)

// MaxModuleCode is the most estimated machine code one module may have
// (bytes): Load refuses a module over it, so a Config.MaxCompiledCode
// below it refuses some loadable modules whatever else is loaded.
const MaxModuleCode = wasmcheck.MaxCompiledCode

// DefaultInitTimeout is the default of Config.InitTimeout.
const DefaultInitTimeout = 10 * time.Second

// DefaultMaxSnapshotFiles is the default of Config.MaxSnapshotFiles for a
// process whose open-file limit is limit (0: unknown): a sixteenth of it,
// at least 1 and at most 256 (64 for a limit of 1,024; 256 when unknown).
func DefaultMaxSnapshotFiles(limit int) int {
	if limit <= 0 {
		return 256
	}
	return min(256, max(1, limit/16))
}

// enter registers a Run (or an instance's initialisation) using in; it
// fails once Close has begun. Every enter is paired with an exit.
func (sb *Sandbox) enter(in *instance) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.closed {
		return pluginapi.ErrClosed
	}
	sb.inflight.Add(1)
	sb.running[in] = struct{}{}
	return nil
}

func (sb *Sandbox) exit(in *instance) {
	sb.mu.Lock()
	delete(sb.running, in)
	sb.mu.Unlock()
	sb.inflight.Done()
}

func (sb *Sandbox) isClosed() bool { return sb.closedA.Load() }

func (sb *Sandbox) closeRuntime(ctx context.Context) error {
	err := sb.rt.Close(ctx)
	sb.pm.close()
	if sb.cache != nil {
		err = errors.Join(err, sb.cache.Close(ctx))
	}
	return err
}

// Ceilings returns the effective operator ceilings.
func (sb *Sandbox) Ceilings() pluginapi.Limits { return sb.ceil }

// Close stops running guests (their Runs fail with pluginapi.ErrClosed), waits for
// them, and closes every plugin, instance and compiled module. It returns
// the first error from closing the runtime.
func (sb *Sandbox) Close(ctx context.Context) error {
	sb.mu.Lock()
	if sb.closed {
		sb.mu.Unlock()
		return nil
	}
	sb.closed = true
	sb.closedA.Store(true)
	plugins := make([]*Plugin, 0, len(sb.plugins))
	for p := range sb.plugins {
		plugins = append(plugins, p)
	}
	for in := range sb.running {
		in.fire() // the guest traps at its next slow path
	}
	sb.mu.Unlock()
	sb.inflight.Wait() // (a guest inside a pluginapi.Host call waits for it to return)
	for _, p := range plugins {
		p.closePools(ctx)
	}
	return sb.closeRuntime(ctx)
}

// LoadRunner is Load for hosts that see plugins as pluginapi.Runner (it
// makes *Sandbox an engine.PluginRuntime).
func (sb *Sandbox) LoadRunner(ctx context.Context, m *pluginapi.Manifest, module []byte) (pluginapi.Runner, error) {
	p, err := sb.Load(ctx, m, module)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Load verifies module against m (sha256), validates it and compiles it,
// once per distinct hash: later Loads of the same bytes reuse the compiled
// code. It returns errors wrapping pluginapi's ErrInvalidManifest (bad
// manifest or limits above the ceilings), ErrHashMismatch, ErrInvalidModule (not wasm, unknown
// imports, missing exports, initial memory above the limit, a cap of
// internal/wasmcheck; the message names the plugin, and its module file
// for a refusal of the module's code),
// ErrTooManyModules or ErrClosed.
func (sb *Sandbox) Load(ctx context.Context, m *pluginapi.Manifest, module []byte) (*Plugin, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil manifest", pluginapi.ErrInvalidManifest)
	}
	mc := cloneManifest(m)
	if err := mc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", pluginapi.ErrInvalidManifest, err)
	}
	limits, err := mc.Resolve(sb.ceil)
	if err != nil {
		return nil, err
	}
	if len(module) > pluginapi.MaxModuleBytes {
		return nil, fmt.Errorf("%w: module is %d bytes, limit %d", pluginapi.ErrInvalidModule, len(module), pluginapi.MaxModuleBytes)
	}
	if err := mc.VerifyModule(module); err != nil {
		return nil, err
	}
	if err := requiredExports(mc, module); err != nil {
		return nil, err
	}
	if err := sb.knownImports(module); err != nil {
		// Before compiling: the compile of a module with a bad import
		// would be wasted (checkModule checks them again).
		return nil, fmt.Errorf("%w: plugin %q, module %s: %w", pluginapi.ErrInvalidModule, mc.Name, mc.Module, err)
	}
	c, err := sb.compile(ctx, mc.SHA256, module)
	if me := (*moduleError)(nil); errors.As(err, &me) {
		// The compiled module is shared by hash: its error names no
		// plugin; this Load's does.
		return nil, fmt.Errorf("%w: plugin %q, module %s: %w", pluginapi.ErrInvalidModule, mc.Name, mc.Module, me.err)
	}
	if err != nil {
		return nil, err
	}
	if _, ok := c.cm.ExportedFunctions()[mc.Entry]; !ok {
		sb.release(ctx, mc.SHA256, c)
		return nil, fmt.Errorf("%w: plugin %q: module does not export function %q", pluginapi.ErrInvalidModule, mc.Name, mc.Entry)
	}
	if c.minMem > limits.MemoryPages {
		sb.release(ctx, mc.SHA256, c)
		return nil, fmt.Errorf("%w: plugin %q starts with %d memory pages, its limit is %d", pluginapi.ErrInvalidModule, mc.Name, c.minMem, limits.MemoryPages)
	}
	p := &Plugin{sb: sb, manifest: mc, limits: limits, caps: capsOf(mc), c: c, pools: map[string]*pool{}}
	if v := pluginapi.ValidateExport(mc.Entry); c.cm.ExportedFunctions()[v] != nil {
		p.validate = v
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.closed {
		return nil, pluginapi.ErrClosed
	}
	sb.plugins[p] = struct{}{}
	return p, nil
}

// errNoMemory says that a module does not export its memory as the ABI
// requires.
const errNoMemory = `module does not export memory "memory" (docs/plugin-abi.md: a plugin exports its linear memory under that name)`

// requiredExports returns an error wrapping pluginapi.ErrInvalidModule
// when module, as its author built it, lacks an export the ABI requires
// (docs/plugin-abi.md): its memory as "memory", and the manifest's entry.
// It runs before the instrumentation, whose own functions need the memory
// and would otherwise be what the error names. A module whose sections
// cannot be read, or that imports its memory, is left to the later checks,
// which say what is wrong with it.
func requiredExports(mc *pluginapi.Manifest, module []byte) error {
	s, err := wasmcheck.ReadSurface(module)
	if err != nil || s.ImportsMemory {
		return nil
	}
	if kind, ok := s.Exports["memory"]; !ok || kind != wasmcheck.ExportMemory {
		return fmt.Errorf("%w: plugin %q: %s", pluginapi.ErrInvalidModule, mc.Name, errNoMemory)
	}
	if kind, ok := s.Exports[mc.Entry]; !ok || kind != wasmcheck.ExportFunction {
		return fmt.Errorf("%w: plugin %q: module does not export function %q", pluginapi.ErrInvalidModule, mc.Name, mc.Entry)
	}
	return nil
}

func cloneManifest(m *pluginapi.Manifest) *pluginapi.Manifest {
	c := *m
	c.Capabilities = slices.Clone(m.Capabilities)
	c.AcceptedContentTypes = slices.Clone(m.AcceptedContentTypes)
	if m.Parameters != nil {
		c.Parameters = make(map[string]pluginapi.ParameterSpec, len(m.Parameters))
		for k, v := range m.Parameters {
			c.Parameters[k] = v.Clone()
		}
	}
	return &c
}

// compile returns the compiled module for hash, compiling it at most once
// even under concurrent Loads.
func (sb *Sandbox) compile(ctx context.Context, hash string, module []byte) (*compiled, error) {
	sb.mu.Lock()
	if sb.closed {
		sb.mu.Unlock()
		return nil, pluginapi.ErrClosed
	}
	if c, ok := sb.compiled[hash]; ok {
		c.refs++
		sb.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			sb.release(ctx, hash, c)
			return nil, ctx.Err()
		}
		if c.err != nil {
			sb.release(ctx, hash, c)
			return nil, c.err
		}
		return c, nil
	}
	if len(sb.compiled) >= sb.cfg.MaxCompiled {
		sb.mu.Unlock()
		return nil, fmt.Errorf("%w: limit %d", pluginapi.ErrTooManyModules, sb.cfg.MaxCompiled)
	}
	c := &compiled{ready: make(chan struct{}), refs: 1}
	sb.compiled[hash] = c
	sb.mu.Unlock()

	c.cm, c.err = sb.compileAndCheck(ctx, hash, module, c)
	close(c.ready)
	if c.err != nil {
		sb.release(ctx, hash, c)
		return nil, c.err
	}
	return c, nil
}

// release drops one reference; the last one closes the compiled module.
func (sb *Sandbox) release(ctx context.Context, hash string, c *compiled) {
	sb.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last && sb.compiled[hash] == c {
		delete(sb.compiled, hash)
	}
	if last {
		sb.code -= c.code
		c.code = 0
	}
	sb.mu.Unlock()
	if last && c.cm != nil {
		_ = c.cm.Close(ctx)
	}
}

var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// moduleError is a module refused by compileAndCheck (the checks of
// internal/wasmcheck, wazero's validation, the imports and exports): it
// wraps pluginapi.ErrInvalidModule and the reason, and Load names the
// plugin in it.
type moduleError struct{ err error }

func (e *moduleError) Error() string {
	return pluginapi.ErrInvalidModule.Error() + ": " + e.err.Error()
}
func (e *moduleError) Unwrap() []error { return []error{pluginapi.ErrInvalidModule, e.err} }

func (sb *Sandbox) compileAndCheck(ctx context.Context, hash string, module []byte, c *compiled) (wazero.CompiledModule, error) {
	if len(module) < 8 || string(module[:8]) != string(wasmMagic) {
		return nil, &moduleError{errors.New("not a WebAssembly 1.0 binary module")}
	}
	select {
	case sb.compiling <- struct{}{}:
		defer func() { <-sb.compiling }()
	case <-ctx.Done():
		return nil, fmt.Errorf("sandbox: compile %s: %w", hash, ctx.Err())
	}
	// wazero sizes allocations from counts in the binary: screen them first,
	// and cap table growth (internal/wasmcheck).
	module, info, err := sb.metered(hash, module)
	if err != nil {
		return nil, &moduleError{err}
	}
	c.info = info
	if err := sb.chargeCode(c); err != nil {
		return nil, err
	}
	cctx := experimental.WithCompilationWorkers(ctx, compileWorkers(sb.cfg.CompilationWorkers, info.MaxCompileMemory))
	cm, err := sb.rt.CompileModule(cctx, module)
	if err != nil {
		if ctx.Err() != nil { // stopped, not refused
			return nil, fmt.Errorf("sandbox: compile %s: %w", hash, ctx.Err())
		}
		return nil, &moduleError{err}
	}
	if err := sb.checkModule(cm, c); err != nil {
		_ = cm.Close(ctx)
		return nil, &moduleError{err}
	}
	return cm, nil
}

// chargeCode adds c's estimated machine code to what the Sandbox's
// compiled modules hold, or returns an error wrapping ErrTooManyModules
// when that would exceed Config.MaxCompiledCode.
func (sb *Sandbox) chargeCode(c *compiled) error {
	n := int64(min(c.info.CompiledCode, uint64(math.MaxInt64/2)))
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.code+n > sb.cfg.MaxCompiledCode {
		return fmt.Errorf("%w: the loaded modules' estimated machine code would be %d bytes (this module's %d), the limit is %d (sandbox.max_compiled_code_bytes)",
			pluginapi.ErrTooManyModules, sb.code+n, n, sb.cfg.MaxCompiledCode)
	}
	sb.code += n
	c.code = n
	return nil
}

// compileWorkers is the number of workers compiling a module whose largest
// function is estimated to need largest bytes of compile memory: at most
// configured, and few enough that that many such functions compiling at
// once stay within wasmcheck.MaxFunctionCompileMemory (each worker keeps
// the memory of the largest function it compiled until the module is
// compiled), and at least one.
func compileWorkers(configured int, largest uint64) int {
	if largest == 0 {
		return configured
	}
	return int(max(1, min(uint64(configured), wasmcheck.MaxFunctionCompileMemory/largest)))
}

// checkModule accepts only imports the sandbox provides, with the right
// signatures, and requires the ABI v1 exports.
func (sb *Sandbox) checkModule(cm wazero.CompiledModule, c *compiled) error {
	defs := map[string]map[string]api.FunctionDefinition{}
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		fd, err := sb.importedFunction(defs, mod, name)
		if err != nil {
			return err
		}
		if !slices.Equal(fd.ParamTypes(), d.ParamTypes()) || !slices.Equal(fd.ResultTypes(), d.ResultTypes()) {
			return fmt.Errorf("imports function %s with signature %s, want %s", importName(mod, name), sig(d), sig(fd))
		}
	}
	if n := len(cm.ImportedMemories()); n > 0 {
		return errors.New("imports a memory: the module must define and export its own")
	}
	for name, fd := range cm.ExportedFunctions() {
		if (pluginapi.ValidEntry(name) || pluginapi.IsValidateExport(name)) &&
			(len(fd.ParamTypes()) != 0 || !slices.Equal(fd.ResultTypes(), []api.ValueType{api.ValueTypeI32})) {
			return fmt.Errorf("export %s has signature %s, want () -> i32", wasmcheck.QuoteShort(name), sig(fd))
		}
	}
	if init, ok := cm.ExportedFunctions()[initExport]; ok {
		if len(init.ParamTypes())+len(init.ResultTypes()) != 0 {
			return fmt.Errorf("export %q has signature %s, want () -> ()", initExport, sig(init))
		}
		c.hasInit = true
	}
	mem, ok := cm.ExportedMemories()["memory"]
	if !ok {
		return errors.New(errNoMemory)
	}
	c.minMem = mem.Min()
	return nil
}

// knownImports returns an error when module imports a function the
// sandbox does not provide, or with another signature: checkModule's
// check of the imports, before the module is instrumented and compiled.
// A module whose sections cannot be read is left to the later checks.
func (sb *Sandbox) knownImports(module []byte) error {
	s, err := wasmcheck.ReadSurface(module)
	if err != nil {
		return nil
	}
	defs := map[string]map[string]api.FunctionDefinition{}
	for _, imp := range s.FuncImports {
		fd, err := sb.importedFunction(defs, imp.Module, imp.Name)
		if err != nil {
			return err
		}
		if !slices.Equal(fd.ParamTypes(), imp.Params) || !slices.Equal(fd.ResultTypes(), imp.Results) {
			return fmt.Errorf("imports function %s with signature %s, want %s", importName(imp.Module, imp.Name), sigOf(imp.Params, imp.Results), sig(fd))
		}
	}
	return nil
}

// importedFunction returns the definition of the host function mod.name,
// or an error naming the import (importName) when there is none; defs
// caches the host modules' definitions.
func (sb *Sandbox) importedFunction(defs map[string]map[string]api.FunctionDefinition, mod, name string) (api.FunctionDefinition, error) {
	if mod != hostModule && mod != wasi_snapshot_preview1.ModuleName {
		return nil, fmt.Errorf("imports function %s: only modules %q and %q exist", importName(mod, name), hostModule, wasi_snapshot_preview1.ModuleName)
	}
	m, ok := defs[mod]
	if !ok {
		m = sb.rt.Module(mod).ExportedFunctionDefinitions()
		defs[mod] = m
	}
	fd, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("imports function %s, which does not exist", importName(mod, name))
	}
	return fd, nil
}

// maxImportName is the most bytes of an import's name an error shows.
const maxImportName = 64

// importName is mod.name as an error shows it: control characters and
// invalid UTF-8 escaped (escapeText), and past maxImportName bytes cut,
// with "... (N bytes)": a module's names are up to its size.
func importName(mod, name string) string {
	s := mod + "." + name
	if len(s) <= maxImportName {
		return escapeText(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", escapeText(wasmcheck.Head(s, maxImportName)), len(s))
}

func sig(d api.FunctionDefinition) string { return sigOf(d.ParamTypes(), d.ResultTypes()) }

// sigOf writes a function type as sig does.
func sigOf(params, results []api.ValueType) string {
	f := func(ts []api.ValueType) string {
		s := "("
		for i, t := range ts {
			if i > 0 {
				s += ", "
			}
			s += api.ValueTypeName(t)
		}
		return s + ")"
	}
	return f(params) + " -> " + f(results)
}
