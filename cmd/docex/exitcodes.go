package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// Exit codes: the one table mapping error kinds to process exit codes.
const (
	exitOK       = 0
	exitInternal = 1 // anything not below: I/O failures (an address in use, out of file descriptors even where that made an error of a kind below), no room on the host for a plugin's compiled code or memory (host_capacity), corrupt data, bugs
	exitInvalid  = 2 // usage errors, invalid input, invalid ids, invalid config
	exitNotFound = 3 // the named object does not exist
	exitDenied   = 4 // no user, missing/unknown/suspended/bootstrap tenant (or deleted while the command ran), forbidden role
	exitConflict = 5 // already exists, basket not empty, duplicate content
	exitPlugin   = 6 // a plugin ran and failed: timeout, trap, memory or output limit; a job of pipeline run --wait failed or was cancelled
	// exitInterrupted: the command was interrupted (SIGINT, SIGTERM)
	// before it finished (interrupted); pipeline run --wait's jobs stay
	// queued. 130 is the shells' code for a command ended by SIGINT.
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

// interrupted returns the error of a command that failed once its context
// was done: main cancels it on SIGINT or SIGTERM, so whatever the command's
// own error (often "context canceled", or a plugin run stopped), it is an
// interruption, exit 130, not a failure of the kind the error names. An
// error already of kind interrupted (pipeline run --wait's) is returned as
// it is. cmd is nil when no command was named.
func interrupted(cmd *command, err error) error {
	if errors.Is(err, docex.ErrInterrupted) {
		return err
	}
	name := "docex"
	if cmd != nil {
		name += " " + cmd.path
	}
	msg := fmt.Sprintf("interrupted (Ctrl-C or SIGTERM) before %s finished", name)
	if err.Error() != context.Canceled.Error() {
		msg += ": " + err.Error()
	}
	ierr := docex.Errorf(docex.ErrInterrupted, "%s", msg)
	if rf := (*engine.RunFailure)(nil); errors.As(err, &rf) {
		// A run stopped once the plugin ran: its report is still shown.
		return &engine.RunFailure{Err: ierr, Report: rf.Report}
	}
	return ierr
}

// exitCode returns the exit code for err (0 for nil).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, docex.ErrTooManyOpenFiles) {
		return exitInternal // even where it made an error of a kind (a file argument not read)
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
