package docex

import "errors"

// Error is a docex sentinel error. Every specific sentinel belongs to one of
// the four kinds ErrInvalid, ErrNotFound, ErrDenied and ErrConflict, so
// errors.Is(err, ErrDenied) is true for ErrTenantSuspended as well.
type Error struct {
	code string
	msg  string
	kind *Error
}

func newKind(code, msg string) *Error {
	e := &Error{code: code, msg: msg}
	e.kind = e
	return e
}

func newErr(kind *Error, code, msg string) *Error {
	return &Error{code: code, msg: msg, kind: kind}
}

// Error returns the message of the sentinel.
func (e *Error) Error() string { return e.msg }

// Code returns the stable machine-readable code of the sentinel, such as
// "tenant_suspended".
func (e *Error) Code() string { return e.code }

// Kind returns the kind sentinel this error belongs to (itself for a kind).
func (e *Error) Kind() *Error { return e.kind }

// Is reports whether target is this error or its kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && (t == e || t == e.kind)
}

// The four kinds. The CLI maps each to one exit code (see cmd/docex).
var (
	// ErrInvalid: the input is malformed (bad id, bad config, bad flag, too large).
	ErrInvalid = newKind("invalid", "invalid input")
	// ErrNotFound: the named object does not exist (or belongs to someone else).
	ErrNotFound = newKind("not_found", "not found")
	// ErrDenied: the caller may not do this (no user, no/unknown/suspended/bootstrap tenant, missing role).
	ErrDenied = newKind("denied", "denied")
	// ErrConflict: the operation conflicts with existing state (already exists, not empty).
	ErrConflict = newKind("conflict", "conflict")
)

// Specific sentinels.
var (
	ErrInvalidID        = newErr(ErrInvalid, "invalid_id", "invalid identifier")
	ErrInvalidConfig    = newErr(ErrInvalid, "invalid_config", "invalid configuration")
	ErrTooLarge         = newErr(ErrInvalid, "too_large", "input too large")
	ErrNotInitialized   = newErr(ErrInvalid, "not_initialized", "docex is not initialised here")
	ErrMultiTenancyOff  = newErr(ErrInvalid, "multi_tenancy_disabled", "multi-tenancy is disabled in this configuration")
	ErrTenantNotFound   = newErr(ErrNotFound, "tenant_not_found", "tenant not found")
	ErrUserRequired     = newErr(ErrDenied, "user_required", "a user context with a user id is required")
	ErrTenantRequired   = newErr(ErrDenied, "tenant_required", "a tenant is required when multi-tenancy is enabled")
	ErrTenantUnknown    = newErr(ErrDenied, "tenant_unknown", "unknown tenant")
	ErrTenantSuspended  = newErr(ErrDenied, "tenant_suspended", "tenant is suspended")
	ErrBootstrapTenant  = newErr(ErrDenied, "bootstrap_tenant", "the bootstrap tenant is never used for business operations")
	ErrForbidden        = newErr(ErrDenied, "forbidden", "forbidden: missing role")
	ErrTenantExists     = newErr(ErrConflict, "tenant_exists", "tenant already exists")
	ErrExists           = newErr(ErrConflict, "exists", "already exists")
	ErrBasketNotEmpty   = newErr(ErrConflict, "basket_not_empty", "basket is not empty")
	ErrDuplicateContent = newErr(ErrConflict, "duplicate_content", "a document with the same content already exists in the basket")
	ErrHasDerived       = newErr(ErrConflict, "has_derived", "documents were derived from the document")
	ErrPluginInvalid    = newErr(ErrInvalid, "plugin_invalid", "invalid plugin")
	ErrPluginDenied     = newErr(ErrDenied, "plugin_capability_denied", "plugin used a capability it was not granted")
	ErrPluginFailed     = &Error{code: "plugin_failed", msg: "plugin failed"}
	ErrNoSandbox        = &Error{code: "no_sandbox", msg: "no plugin sandbox is configured"}
	ErrSchemaVersion    = &Error{code: "schema_version", msg: "schema version does not match this binary (no migrations at run time)"}
	ErrClosed           = &Error{code: "closed", msg: "engine is closed"}
	ErrCorrupt          = &Error{code: "corrupt", msg: "stored data is corrupt"}
	// ErrInterrupted: a wait was interrupted (its context cancelled, the
	// CLI's Ctrl-C); what it waited for goes on without it.
	ErrInterrupted = &Error{code: "interrupted", msg: "interrupted"}
	// ErrWrongTenant: a backend returned a store of another tenant than
	// the one asked for (a backend bug); the engine refuses to use it.
	ErrWrongTenant = &Error{code: "wrong_tenant", msg: "backend returned another tenant's store"}
	// ErrStorageDenied: the content store (an S3 server) refused the
	// credentials or the request (exit code of the denied kind).
	ErrStorageDenied = newErr(ErrDenied, "storage_denied", "the content store denied access")
	// ErrStorageUnavailable: the content store cannot be reached or did not
	// answer in time (an S3 server), or its directory is missing
	// (filesystem storage: deleted, or its volume not mounted), or a
	// SQLite database stayed locked by another writer for longer than
	// database.sqlite.busy_timeout_ms, or a PostgreSQL tenant suspension,
	// resumption or deletion waited database.postgres.lock_timeout_ms for
	// the tenant's transactions in flight; nothing was stored or changed
	// (an I/O failure, exit 1). Except: a SQLite tenant suspension that
	// waited database.sqlite.lock_timeout_ms for the tenant's write in
	// flight has suspended the tenant (sqlite.ErrLockTimeout).
	ErrStorageUnavailable = &Error{code: "storage_unavailable", msg: "the content store is unavailable"}
	// ErrTooManyOpenFiles: the process ran out of file descriptors (it
	// holds as many files as its open-file limit allows, or the system
	// does) while opening a file or a connection (a database file or
	// connection, content, a pack, a spool or temporary file, a file the
	// user named, a socket to PostgreSQL or S3); nothing says the file is
	// damaged or the server unreachable, and the operation may succeed
	// once files are closed (exit 1; a job failing with it is retried).
	ErrTooManyOpenFiles = &Error{code: "too_many_open_files", msg: "the process ran out of file descriptors"}
	// ErrHostCapacity: the host has no room for a valid plugin at the
	// moment: the compiled code of the plugins loaded would pass the
	// sandbox's budget (sandbox.max_compiled_code_bytes, or 256 distinct
	// modules) with none left that the engine could close, or the host
	// could not reserve the plugin's memory limit (address space, the
	// commit limit, vm.max_map_count) even after freeing the idle
	// instances and snapshots it kept. Neither the plugin nor the input is
	// at fault, and the run may succeed later (exit 1; a job failing with
	// it is retried).
	ErrHostCapacity = &Error{code: "host_capacity", msg: "the host has no room for the plugin"}
)

// Code returns the machine-readable code of err: the code of the most
// specific docex sentinel in its chain, "internal" when there is none, and
// "" for a nil error.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	return "internal"
}

// KindOf returns the kind sentinel of err (ErrInvalid, ErrNotFound,
// ErrDenied or ErrConflict), or nil for an internal error.
func KindOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.kind != nil {
		return e.kind
	}
	return nil
}
