// Package sandbox runs untrusted docex document plugins (WebAssembly) under
// wazero so that the worst a hostile plugin can do is fail.
//
// A plugin is a directory with plugin.toml (see ParseManifest) and a wasm
// module implementing ABI v1 (docs/plugin-abi.md). The engine, which owns
// tenants, users and storage, uses the package in four steps:
//
//	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: dir, Ceilings: ceilings})
//	m, module, err := sandbox.LoadPluginDir(pluginDir) // strict manifest, sha256 checked
//	p, err := sb.Load(ctx, m, module)                   // validate + compile once per hash
//	res, err := sb.Run(ctx, sandbox.Invocation{TenantID: t, UserID: u, Plugin: p, Input: doc, Host: h})
//
// Run never writes anything: it returns a Result (metadata to set, derived
// documents, status, capped logs and a ResourceReport) and the engine
// persists it only when err is nil. Errors wrap the sentinels in errors.go
// (ErrPluginTimeout, ErrPluginMemory, ErrPluginTrap, ...) for errors.Is.
//
// Isolation: instances are pooled per (tenant, plugin) and never shared
// across tenants; an instance runs one call at a time and is discarded after
// any trap, timeout or limit breach, or when its memory passes a high-water
// mark. Every call has a wall-clock deadline: Load instruments the module
// with a stop check at every loop head (internal/wasmcheck), which the
// deadline sets; wazero's WithCloseOnContextDone does the same job 4-12x
// more slowly and is kept only for comparison. The guest sees documents only through
// per-invocation handles; the Host interface (implemented by the engine and
// bound to the invoking tenant) resolves lookups. No filesystem, network,
// environment or arguments are granted; WASI is present only so that Go
// guests start, with stdout/stderr captured into the capped log.
//
// See docs/sandbox.md for the design, the measured costs and the limits.
package sandbox
