package engine

import (
	"context"
	"time"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// PluginRuntime is all the engine needs of a plugin sandbox: compile a
// plugin once and get something that runs it (pluginapi.Runner: Run,
// ReleaseTenant, Close). *sandbox.Sandbox implements it on wazero; the
// engine itself does not import the sandbox, so its tests and other
// runtimes need no wazero.
//
// LoadRunner must verify module against m (sha256), refuse limits above
// the runtime's ceilings and return errors wrapping pluginapi's sentinels
// (ErrInvalidManifest, ErrHashMismatch, ErrInvalidModule, ...). The engine
// caches what it returns by the plugin's record and closes it when the
// record is replaced, evicted or the engine closes.
type PluginRuntime interface {
	LoadRunner(ctx context.Context, m *pluginapi.Manifest, module []byte) (pluginapi.Runner, error)
}

// CachePruner is implemented by a PluginRuntime that keeps compiled
// modules on disk (*sandbox.Sandbox with a CacheDir). TenantProvisioner.Sweep
// calls PruneCache with keep reporting whether a module (by its sha256 as
// installed) belongs to a plugin some tenant, or the system, has
// installed; it removes what is not kept and older than olderThan (with
// dryRun: nothing) and returns how many modules it removed. The cache must
// only be a cache: removing a module a plugin still uses may only cost
// compiling it again.
type CachePruner interface {
	PruneCache(ctx context.Context, keep func(moduleSHA256 string) bool, olderThan time.Time, dryRun bool) (int, error)
}

// GuestEnvironment is implemented by a PluginRuntime whose guests see more
// than their inputs: clocks, random bytes, the instrumentation that drives
// them. GuestEnvironment returns a string that changes whenever what a
// guest sees of it could change (*sandbox.Sandbox: the clock rate and
// epoch, the random stream's seed and the instrumentation's version). It is
// part of the step cache key, so results computed under one environment
// are never reused under another. A runtime without it has the empty
// environment.
type GuestEnvironment interface {
	GuestEnvironment() string
}

// guestEnvironment returns the sandbox's guest environment, or "" when it
// has none (or there is no sandbox).
func (e *Engine) guestEnvironment() string {
	if g, ok := e.cfg.Sandbox.(GuestEnvironment); ok {
		return g.GuestEnvironment()
	}
	return ""
}
