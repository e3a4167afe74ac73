// Package builtin holds docex's built-in steps: extract-text, chunk,
// redact-pii, csv-to-json, json-extract, stats and detect-type
// (docs/steps.md). They are ordinary sandboxed plugins written with
// plugins/pdk; all seven share one WebAssembly module (steps.wasm, built
// from ./guest by build.sh and committed), each with its own manifest
// naming its entry point, capabilities and limits. `docex init` installs
// them as system plugins.
package builtin
