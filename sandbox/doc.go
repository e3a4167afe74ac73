// Package sandbox runs untrusted docex document plugins (WebAssembly) under
// wazero so that the worst a hostile plugin can do is fail.
//
// A plugin is a directory with plugin.toml (see pluginapi.ParseManifest)
// and a wasm module implementing ABI v1 (docs/plugin-abi.md). The
// manifest, limits, documents, results and typed errors are in the
// wazero-free package sandbox/pluginapi; this package is the wazero
// runtime. Use it in four steps:
//
//	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: dir, Ceilings: ceilings})
//	raw, module, err := pluginapi.ReadPluginDir(pluginDir) // confined to the directory
//	m, err := pluginapi.ParseManifest(raw)                 // strict
//	p, err := sb.Load(ctx, m, module)                      // sha256, validate, meter, compile once per hash
//	res, err := p.Run(ctx, pluginapi.Call{TenantID: key, UserID: u, Input: doc, Host: h})
//
// Run never writes anything: it returns a pluginapi.Result (metadata to
// set, derived documents, status, capped logs and a ResourceReport) and the
// caller persists it only when err is nil. Errors wrap pluginapi's
// sentinels (ErrPluginTimeout, ErrInstructionLimit, ErrPluginMemory,
// ErrPluginTrap, ...) for errors.Is. The engine sees a Sandbox only as an
// engine.PluginRuntime (LoadRunner) and a Plugin as a pluginapi.Runner.
//
// Isolation: Load meters every function entry and loop head
// (internal/wasmcheck), so every call, start function and _initialize has
// a wall-clock deadline and a deterministic instruction budget. Every
// invocation starts from the state right after initialisation: memory and
// globals are restored to a snapshot after each call. Instances are pooled
// per (tenant key, plugin) and never shared across keys; idle ones share a
// byte budget. The guest sees documents only through per-invocation
// handles; the pluginapi.Host interface (implemented by the engine and bound to the
// invoking tenant) resolves lookups. No filesystem, network, environment or
// arguments are granted; WASI is present only so that Go guests start, with
// stdout/stderr captured into the capped log.
//
// See docs/sandbox.md for the design, the measured costs and the limits.
package sandbox
