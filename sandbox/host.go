package sandbox

import "github.com/docex-dev/docex/sandbox/pluginapi"

// pageSize is the size of one WebAssembly memory page in bytes.
const pageSize = 65536

// Invocation is one request to run a plugin: Plugin.Run's call, with the
// plugin named.
type Invocation struct {
	// TenantID selects the instance pool; instances are never shared across
	// tenants. Required.
	TenantID string
	// UserID is recorded for the engine; the sandbox does not interpret it.
	UserID string
	Plugin *Plugin
	Input  pluginapi.Document
	// Params are checked against the manifest's [parameters].
	Params map[string]string
	// Host serves documents.lookup; may be nil for plugins without it.
	Host pluginapi.Host

	// entry and args override the called export (tests only).
	entry string
	args  []uint64
}
