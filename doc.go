// Package docex holds the domain types and errors shared by every part of
// docex: the engine, the storage backends, the sandbox adapters and the CLI.
//
// It has no dependencies on any other docex package. Backends implement the
// interfaces in package driver using these types; applications use package
// engine, which orchestrates a backend, and package tenancy, which validates
// identifiers and authorises users.
//
// Errors are values with a kind: every error returned by docex matches one of
// ErrInvalid, ErrNotFound, ErrDenied or ErrConflict with errors.Is when it is
// caused by the caller, and none of them when it is internal. The specific
// sentinels (ErrTenantSuspended, ErrForbidden, ...) can be tested the same
// way, and Code returns a stable machine-readable code for any error.
package docex
