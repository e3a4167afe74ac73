package pluginapi

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Document is a document the guest may read: the invocation's input, or one
// returned by Host.Open. Metadata values are string, float64 or bool; other
// types are invisible to the guest.
type Document struct {
	Name        string
	ContentType string
	Size        int64
	Metadata    map[string]any
	// Content is read in ranges as the guest asks for it; it may be nil
	// when Size is 0. It must be safe to call from the sandbox goroutine.
	// ReadAt's buffer aliases guest memory: it must not be retained.
	Content io.ReaderAt
	// Resident is the host memory this document holds while the guest may
	// read it: 0 when Content reads from a file, Size when the host had to
	// load the bytes. It counts against the invocation's host-memory
	// budget (max_output_bytes + max_log_bytes + the memory limit), as do
	// the bytes of a looked-up document's metadata keys and values: a
	// looked-up document past the budget gets ELIMIT at its first use.
	// Handles to one document (one DocumentRef.ID) share one Open. The
	// input's Resident is counted (Report.PeakHostBytes, and less room for
	// lookups) but never refused: the host chose to load it.
	Resident int64
}

// DocumentRef identifies a document returned by Host.Lookup. The guest never
// sees it: it gets a small per-invocation handle instead.
type DocumentRef struct {
	// TenantID must equal the invocation's TenantID; the sandbox drops refs
	// that do not (defence in depth) and counts them in
	// ResourceReport.ForeignRefsDropped.
	TenantID string
	// ID is the engine's identifier, opaque to the sandbox.
	ID string
}

// LookupQuery is a guest's request for other documents of the same tenant.
// Exactly one of Name or MetadataKey is set.
type LookupQuery struct {
	Name          string
	MetadataKey   string
	MetadataValue string
	// Limit is the most refs to return (>= 1).
	Limit int
}

// Host is implemented by the engine, bound to the invoking tenant and user.
// The sandbox calls it only for plugins granted "documents.lookup", from the
// goroutine running the plugin, with the invocation's (deadline-bearing)
// context. Tenant and user come from the engine's invocation, never from the
// guest.
type Host interface {
	// Lookup returns at most q.Limit documents of the invoking tenant that the
	// invoking user may read. It returns an empty slice when nothing matches.
	Lookup(ctx context.Context, q LookupQuery) ([]DocumentRef, error)
	// Open returns the document ref points to; it must return an error if
	// ref does not belong to the invoking tenant.
	Open(ctx context.Context, ref DocumentRef) (*Document, error)
}

// Status is a plugin's verdict on its run.
type Status string

// Statuses a guest may report.
const (
	StatusOK      Status = "ok"
	StatusError   Status = "error"
	StatusSkipped Status = "skipped"
)

// DerivedDocument is a new document the plugin emitted.
type DerivedDocument struct {
	Name        string
	ContentType string
	Content     []byte
	// Metadata was set with derived_metadata_set (nil if none).
	Metadata map[string]any
}

// LogLine is one captured log record. Level is "debug", "info", "warn",
// "error", or "stdout"/"stderr" for WASI output.
type LogLine struct {
	Level string
	Text  string
}

// ResourceReport describes what one invocation consumed.
type ResourceReport struct {
	Duration time.Duration
	// Instructions is the instruction units the call used (an upper bound
	// on the wasm instructions it executed; see Limits.MaxInstructions).
	Instructions int64
	// PeakHostBytes is the most host memory held at once on the guest's
	// behalf during the call (documents opened for it, output, logs: each
	// kept log line as its text plus 64 bytes).
	PeakHostBytes int64
	// PeakMemoryBytes is the guest's linear memory size at the end of the call
	// (memory never shrinks, so it is the peak).
	PeakMemoryBytes int64
	HostCalls       int64
	// BytesIn counts bytes copied into the guest (content, metadata, params).
	BytesIn int64
	// BytesOut is the output charged against max_output_bytes: its bytes,
	// plus 256 per derived document and 128 per metadata key new to its
	// document (docs/plugin-abi.md, "Conventions").
	BytesOut          int64
	LogBytes          int64
	LogsTruncated     bool
	CapabilityDenials []string
	// ForeignRefsDropped counts refs from Host.Lookup with another TenantID.
	ForeignRefsDropped int
	// ColdStart is true when a new instance was created for this call.
	ColdStart bool
	// InitDuration and InitInstructions are the wall time and the
	// instruction units of the module's start function and _initialize
	// together, when they ran for this call: on a new instance not made
	// from the plugin's snapshot (its first instance, or every one of a
	// module that can change tables). Zero otherwise (a warm instance,
	// one made from the snapshot, a module with neither function). When
	// they failed, the call failed with their error and these are what
	// they used until then (Duration and Instructions zero). Not part of
	// Duration or Instructions, nor of the call's budget.
	InitDuration     time.Duration
	InitInstructions int64
	// InstantiateDuration is the wall time of making the call's new
	// instance (ColdStart) besides its start function and _initialize:
	// wazero's instantiation (its tables, globals, element and data
	// segments), reserving its memory, and restoring the plugin's
	// snapshot or taking it. Zero on a warm instance. Not part of
	// Duration, nor under the call's Timeout: Load's caps on a module's
	// imports, segments and tables bound it (docs/sandbox.md, "Compile
	// time").
	InstantiateDuration time.Duration
	// InstanceRetired is true when the instance was discarded after the call.
	InstanceRetired bool
}

// Result is what a run produced. The sandbox persists nothing: the engine
// writes Metadata and Derived only when Run returned a nil error.
type Result struct {
	Status   Status
	Message  string
	Metadata map[string]any
	Derived  []DerivedDocument
	Logs     []LogLine
	Report   ResourceReport
}

// Call is one request to run a loaded plugin.
type Call struct {
	// TenantID selects the instance pool: instances (and any state in
	// them) are never shared across tenant ids. Required.
	TenantID string
	// UserID is recorded for the host; the runtime does not interpret it.
	UserID string
	Input  Document
	// Params are checked against the manifest's [parameters].
	Params map[string]string
	// Host serves documents.lookup; may be nil for plugins without it.
	Host Host
}

// Runner is a loaded plugin as its host sees it: *sandbox.Plugin
// implements it.
type Runner interface {
	// Run executes the plugin's entry on call.Input under the plugin's
	// limits. On success it returns a Result with Status ok or skipped and
	// a nil error; on failure an error wrapping one of this package's
	// sentinels and, once the guest ran (its start function or
	// _initialize included: a failed initialisation's Report has its
	// InitDuration and InitInstructions), a Result carrying only Status
	// "error", Message, Logs and Report. The host persists nothing of a
	// failed run.
	Run(ctx context.Context, call Call) (*Result, error)
	// ReleaseTenant discards what the runtime keeps for tenantID (idle
	// instances), for example when the tenant is deleted or suspended.
	ReleaseTenant(ctx context.Context, tenantID string) error
	// Close releases the plugin; running calls finish, later ones fail
	// with ErrClosed.
	Close(ctx context.Context) error
}

// Validator is a Runner that can check an invocation's parameters without
// a document: *sandbox.Plugin implements it. Hosts call it where a
// definition is made (docex pipeline create), not per document.
type Validator interface {
	// Validates reports whether the plugin's module exports its validate
	// function (ValidateExport of its entry).
	Validates() bool
	// Validate checks params against the manifest's [parameters] and then,
	// when Validates, calls the validate function with them in tenantID's
	// instance pool under the plugin's limits. It returns nil when they
	// are accepted, an error wrapping ErrInvalidParams when they are
	// refused (a *Refusal when the guest refused them), or one wrapping
	// ErrPluginTrap, ErrPluginTimeout, ErrInstructionLimit,
	// ErrPluginMemory, ErrHostMemory, ErrHostCallLimit, ErrHostFailure, ErrClosed or the
	// caller's ctx.Err() when the call failed.
	Validate(ctx context.Context, tenantID string, params map[string]string) error
}

// ValidateReporter is a Validator that also reports what its validate
// function used: *sandbox.Plugin implements it.
type ValidateReporter interface {
	Validator
	// ValidateReport is Validate that also returns, once the validate
	// function ran (its start function or _initialize included: a
	// failed initialisation's Report has its InitDuration and
	// InitInstructions), a Result with its Status, Message, Logs and
	// Report, whether it accepted the parameters or not; nil when the
	// guest did not run.
	ValidateReport(ctx context.Context, tenantID string, params map[string]string) (*Result, error)
}

// Refusal is the error of a validate function that refused its
// parameters (returned non-zero). It wraps ErrInvalidParams.
type Refusal struct {
	Plugin string
	Export string // the export that refused (docex_validate...)
	Code   int32  // what it returned
	// Message is what the guest logged during the call, escaped for a
	// terminal, lines joined by "; " and cut to 4 KiB; "" if nothing.
	Message string
}

func (e *Refusal) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%v: plugin %q refused them (%s returned %d)", ErrInvalidParams, e.Plugin, e.Export, e.Code)
	}
	return fmt.Sprintf("%v: plugin %q refused them: %s", ErrInvalidParams, e.Plugin, e.Message)
}

// Unwrap makes a Refusal match ErrInvalidParams.
func (e *Refusal) Unwrap() error { return ErrInvalidParams }
