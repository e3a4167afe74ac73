package pluginapi

import "errors"

// Sentinel errors. Every error returned by this package that belongs to one
// of these kinds wraps the sentinel, so callers test it with errors.Is.
var (
	// ErrInvalidManifest: plugin.toml is malformed, has an unknown key, an
	// invalid value, or asks for limits above the operator ceilings.
	ErrInvalidManifest = errors.New("sandbox: invalid manifest")
	// ErrHashMismatch: the module bytes do not hash to the manifest's sha256.
	ErrHashMismatch = errors.New("sandbox: module sha256 does not match manifest")
	// ErrInvalidModule: the module is not valid WebAssembly, imports something
	// the sandbox does not provide, or lacks the required exports.
	ErrInvalidModule = errors.New("sandbox: invalid module")
	// ErrInvalidParams: the invocation parameters do not match the manifest.
	ErrInvalidParams = errors.New("sandbox: invalid parameters")
	// ErrContentTypeNotAccepted: the input's content type is not in the
	// manifest's accepted_content_types.
	ErrContentTypeNotAccepted = errors.New("sandbox: content type not accepted")
	// ErrPluginTimeout: the guest ran past its wall-clock limit. Errors that
	// wrap it also satisfy errors.Is(err, context.DeadlineExceeded).
	ErrPluginTimeout = errors.New("sandbox: plugin timed out")
	// ErrInstructionLimit: the guest used more instruction units than its
	// max_instructions budget. Unlike a timeout it does not depend on the
	// machine's speed or load: the same input always hits it.
	ErrInstructionLimit = errors.New("sandbox: plugin exceeded its instruction budget")
	// ErrPluginMemory: the guest tried to grow its memory past its limit.
	// Errors wrapping ErrHostMemory match it too (compatibility: before
	// 2026-12-07 a failed reservation was only ErrPluginMemory): test
	// ErrHostMemory first to tell the host's condition from the plugin's.
	ErrPluginMemory = errors.New("sandbox: plugin exceeded its memory limit")
	// ErrHostMemory: the host could not reserve a new instance's memory
	// limit (the address space, the commit limit, vm.max_map_count or
	// RLIMIT_AS exhausted), even after the sandbox closed its idle
	// instances and dropped its snapshots: the host's condition, not the
	// plugin's fault; the guest did not run, and a later run may succeed.
	// Errors that wrap it also match ErrPluginMemory.
	ErrHostMemory = errors.New("sandbox: the host could not reserve memory")
	// ErrPluginTrap: the guest trapped (panic, unreachable, out-of-bounds
	// access, bad pointer passed to a host function, proc_exit). The message
	// includes the guest's panic text when it printed one.
	ErrPluginTrap = errors.New("sandbox: plugin trapped")
	// ErrPluginOutputTooLarge: the guest's metadata, derived documents and
	// message exceeded max_output_bytes.
	ErrPluginOutputTooLarge = errors.New("sandbox: plugin output too large")
	// ErrHostCallLimit: the guest made more host calls than max_host_calls.
	ErrHostCallLimit = errors.New("sandbox: plugin exceeded its host call limit")
	// ErrCapabilityDenied: the guest called a host function its manifest
	// does not grant. The run fails even if the guest recovered.
	ErrCapabilityDenied = errors.New("sandbox: capability denied")
	// ErrPluginStatusError: the guest finished normally but reported status
	// "error" (its message is in the error text and in Result.Message).
	// (docex.ErrPluginFailed, the engine's kind, covers every way a plugin
	// run can fail.)
	ErrPluginStatusError = errors.New("sandbox: plugin reported status error")
	// ErrHostFailure: a Host method or the sandbox itself failed in a way
	// that is not the guest's fault (including a recovered panic).
	ErrHostFailure = errors.New("sandbox: host failure")
	// ErrClosed: the Sandbox or Plugin has been closed.
	ErrClosed = errors.New("sandbox: closed")
	// ErrTooManyModules: loading would exceed sandbox.Config.MaxCompiled distinct
	// compiled modules, or their estimated machine code added up would
	// exceed sandbox.Config.MaxCompiledCode.
	ErrTooManyModules = errors.New("sandbox: too many compiled modules")
)
