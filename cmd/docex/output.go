package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// emit writes a command's result: with --json, v as one JSON value
// following docs/json.md (an object for one thing, an array for a listing,
// [] for an empty listing); otherwise human writes text, whose
// tab-separated columns are aligned.
//
// JSON output must come from types whose json tags follow docs/json.md:
// snake_case keys, no omitempty, durations as <name>_ms numbers (docex.Milliseconds),
// lists never nil. TestJSONConvention checks every command's output.
func (c *cli) emit(v any, human func(w io.Writer)) error {
	if c.g.json {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []any{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "->" stays "->", not "-\u003e"

		return enc.Encode(v)
	}
	out := newTerminalWriter(c.stdout)
	tw := newTable(out)
	human(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	return out.Flush()
}

// newTable returns a writer that aligns tab-separated columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
}

// errorJSON is the --json error object on stderr.
type errorJSON struct {
	Error struct {
		Code    string `json:"code"`    // the most specific docex error code, "internal" otherwise
		Kind    string `json:"kind"`    // invalid, not_found, denied, conflict, plugin_failed, interrupted or internal (the exit code's meaning)
		Message string `json:"message"` // what went wrong
		Hint    string `json:"hint"`    // what to do next, "" when there is nothing to add
	} `json:"error"`
}

// runErrorJSON is docex run's --json error object: errorJSON with, as in
// the run's audit entry, whether the plugin ran and what the run used
// (all zeros when it did not run).
type runErrorJSON struct {
	errorJSON
	Ran    bool             `json:"ran"`
	Report engine.RunReport `json:"report"`
}

// printError writes err to stderr: "docex: MESSAGE" and a "hint:" line
// saying what to do next, or with --json one errorJSON object (for docex
// run, a runErrorJSON). A run that failed once the plugin ran
// (engine.RunFailure) has a "report:" line after them.
func (c *cli) printError(err error) {
	hint := hintFor(err, c.g)
	var rf *engine.RunFailure
	ran := errors.As(err, &rf)
	if c.g.json {
		var e errorJSON
		e.Error.Code = docex.Code(err)
		e.Error.Kind = exitKinds[exitCode(err)]
		e.Error.Message = err.Error()
		e.Error.Hint = hint
		enc := json.NewEncoder(c.stderr)
		enc.SetEscapeHTML(false)
		if c.cmd != nil && c.cmd.path == "run" {
			re := runErrorJSON{errorJSON: e, Ran: ran, Report: engine.RunReport{CapabilityDenials: []string{}}}
			if ran {
				re.Report = rf.Report
			}
			enc.Encode(re)
			return
		}
		enc.Encode(e)
		return
	}
	writef(c.stderr, "docex: %s\n", err)
	if hint != "" {
		// A hint's own newlines lay it out (a command to run on a line of
		// its own); what it quotes of the user's input is escaped where the
		// hint is built.
		prefix := "hint: "
		for line := range strings.SplitSeq(hint, "\n") {
			writef(c.stderr, "%s%s\n", prefix, line)
			prefix = ""
		}
	}
	if ran {
		writef(c.stderr, "%s\n", failedReportLine(rf.Report))
	}
}

// failedReportLine is the "report:" line of a run that failed once the
// plugin ran (on stderr, after the error).
func failedReportLine(r engine.RunReport) string {
	return fmt.Sprintf("report: %.3f ms, %d instructions, peak memory %d bytes, %d host calls, %d bytes in, %d bytes out",
		r.DurationMS, r.Instructions, r.PeakMemoryBytes, r.HostCalls, r.BytesIn, r.BytesOut) + coldStartText(r)
}

// coldStartText is what the text of a report of a run on a new instance
// (cold_start) adds to its duration, which counts neither: "; initialisation
// D ms, N instructions" when its start function or _initialize ran, and
// "; instantiation D ms" (instantiate_duration_ms) when making the instance
// took time; "" for a warm run.
func coldStartText(r engine.RunReport) string {
	if !r.ColdStart {
		return ""
	}
	s := ""
	if r.InitDurationMS > 0 || r.InitInstructions > 0 {
		s += fmt.Sprintf("; initialisation %.3f ms, %d instructions", r.InitDurationMS, r.InitInstructions)
	}
	if r.InstantiateDurationMS > 0 {
		s += fmt.Sprintf("; instantiation %.3f ms", r.InstantiateDurationMS)
	}
	return s
}
