package main

import (
	"errors"

	"github.com/docex-dev/docex"
)

// Exit codes: the one table mapping error kinds to process exit codes.
const (
	exitOK       = 0
	exitInternal = 1 // anything not below: I/O failures (an address in use), corrupt data, bugs
	exitInvalid  = 2 // usage errors, invalid input, invalid ids, invalid config
	exitNotFound = 3 // the named object does not exist
	exitDenied   = 4 // no user, missing/unknown/suspended/bootstrap tenant, forbidden role
	exitConflict = 5 // already exists, basket not empty, duplicate content
	exitPlugin   = 6 // a plugin ran and failed: timeout, trap, memory or output limit; a job of pipeline run --wait failed
	// exitInterrupted: a wait was interrupted (SIGINT, SIGTERM) while
	// what it waited for goes on: pipeline run --wait's jobs stay queued.
	// 130 is the shells' code for a command ended by SIGINT.
	exitInterrupted = 130
)

var exitTable = []struct {
	kind error
	code int
}{
	{docex.ErrInvalid, exitInvalid},
	{docex.ErrNotFound, exitNotFound},
	{docex.ErrDenied, exitDenied},
	{docex.ErrConflict, exitConflict},
	{docex.ErrPluginFailed, exitPlugin},
	{docex.ErrInterrupted, exitInterrupted},
}

// exitKinds names each exit code's meaning: the "kind" of a --json error.
var exitKinds = map[int]string{
	exitInternal:    "internal",
	exitInvalid:     "invalid",
	exitNotFound:    "not_found",
	exitDenied:      "denied",
	exitConflict:    "conflict",
	exitPlugin:      "plugin_failed",
	exitInterrupted: "interrupted",
}

// exitCode returns the exit code for err (0 for nil).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	for _, e := range exitTable {
		if errors.Is(err, e.kind) {
			return e.code
		}
	}
	return exitInternal
}

// errUsage marks command-line usage errors (exit 2).
var errUsage = docex.ErrInvalid

// errHelp is returned when --help was given: exit 0 after printing usage.
var errHelp = errors.New("help requested")
