// Package pluginapi is the contract between a docex plugin runtime and its
// host, without the runtime: the manifest (plugin.toml) and its limits,
// the documents a plugin reads, what a run returns (Result, ResourceReport)
// and the typed errors a run fails with. It does not depend on wazero.
//
// Package sandbox implements it on wazero (sandbox.Plugin is a Runner);
// the engine depends only on this package and on its own narrow
// interface (engine.PluginRuntime), so that its tests and other runtimes
// need no wazero. See docs/plugin-abi.md for the manifest and the ABI.
package pluginapi
