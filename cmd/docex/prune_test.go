package main

import (
	"strings"
	"testing"
	"time"
)

// TestJobPrune: job prune deletes the finished jobs that ended more than
// --older-than ago (a Go duration or days), keeps a queued one, and
// refuses bad input (exit 2) and a writer (exit 4) without deleting
// anything; a pruned job is not found; --dry-run deletes nothing; --json
// prints docs/json.md's shape; one job.prune audit entry per prune.
func TestJobPrune(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	d := documents(decode[[]added](t, h.ok(with("doc", "add", "plain", h.file("a.txt", "alpha first, alpha second"), "--json")...).stdout))[0]
	sum := decode[runSummaryJSON](t, h.ok(with("pipeline", "run", "three", "--doc", d.ID, "--wait", "--json")...).stdout)
	if sum.Succeeded != 1 {
		t.Fatalf("run: %+v", sum)
	}
	done := sum.Jobs[0]
	queued := decode[runSummaryJSON](t, h.ok(with("pipeline", "run", "three", "--doc", d.ID, "--json")...).stdout).Jobs[0]

	type pruneJSON struct {
		Jobs, Steps, Transactions int
		Before                    time.Time
		States                    []string
		DryRun                    bool `json:"dry_run"`
	}
	for _, bad := range [][]string{
		{},
		{"--older-than", "0s"},
		{"--older-than", "-5m"},
		{"--older-than", "0d"},
		{"--older-than", "x"},
		{"--older-than", "1.5d"},
		{"--older-than", "1ns", "--state", "running"},
		{"--older-than", "1ns", "--state", "queued"},
		{"--older-than", "1ns", "--state", "bogus"},
		{"--older-than", "1ns", "--state", "succeeded,done"},
	} {
		r := h.want(exitInvalid, with(append([]string{"job", "prune", "--json"}, bad...)...)...)
		if e := decode[map[string]map[string]string](t, r.stderr); e["error"]["kind"] != "invalid" || r.stdout != "" {
			t.Errorf("job prune %v: %+v, stdout %q", bad, e, r.stdout)
		}
	}
	writer := []string{"--tenant", "acme", "--user", "bob", "--roles", "writer"}
	h.want(exitDenied, append([]string{"job", "prune", "--older-than", "1ns"}, writer...)...)
	h.ok(with("job", "show", done)...) // nothing deleted so far

	// 30 days: the job is younger.
	old := decode[pruneJSON](t, h.ok(with("job", "prune", "--older-than", "30d", "--json")...).stdout)
	if old.Jobs != 0 || old.DryRun || time.Since(old.Before) < 30*24*time.Hour {
		t.Fatalf("prune --older-than 30d: %+v", old)
	}
	// Nothing pruned still took one transaction (⌊jobs/1,000⌋ + 1), and
	// the cutoff has microsecond precision, as every time docex prints.
	if old.Transactions != 1 || old.Before.Nanosecond()%1000 != 0 {
		t.Fatalf("prune --older-than 30d: %d transactions (want 1), before %s (want microseconds)", old.Transactions, old.Before.Format(time.RFC3339Nano))
	}
	dry := decode[pruneJSON](t, h.ok(with("job", "prune", "--older-than", "1ns", "--dry-run", "--json")...).stdout)
	if dry.Jobs != 1 || dry.Steps == 0 || !dry.DryRun || strings.Join(dry.States, ",") != "succeeded,failed,cancelled" {
		t.Fatalf("dry run: %+v", dry)
	}
	h.ok(with("job", "show", done)...)
	r := h.ok(with("job", "prune", "--older-than", "1ns", "--state", "succeeded")...)
	if !strings.HasPrefix(r.stdout, "deleted 1 jobs (succeeded) that ended before ") || !strings.Contains(r.stdout, "lineage, derived documents and the step cache are kept") {
		t.Fatalf("job prune: %q", r.stdout)
	}
	h.want(exitNotFound, with("job", "show", done)...)
	h.want(exitNotFound, with("job", "retry", done)...)
	if r := h.ok(with("job", "show", queued)...); !strings.Contains(r.stdout, "queued") {
		t.Fatalf("queued job after the prune: %s", r.stdout)
	}
	if lin := h.ok(with("doc", "lineage", d.ID, "--json")...).stdout; !strings.Contains(lin, done) {
		t.Fatalf("the lineage lost the pruned job's edges: %s", lin)
	}
	type entry struct {
		Operation, Outcome string
		Detail             map[string]any
	}
	var oks, refused int
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		switch {
		case e.Operation != "job.prune":
		case e.Outcome == "ok":
			oks++
		default:
			refused++
		}
	}
	// Refused: the four bad states (the engine's) and the writer; the
	// durations are refused before the tenant is opened.
	if oks != 2 || refused != 5 {
		t.Fatalf("job.prune entries: %d ok, %d refused; want 2 and 5", oks, refused)
	}
}

// TestParseAge: --older-than takes a Go duration or whole days, more than
// zero; a well-formed age too large for a duration says it is too large
// (the largest, 106751d and 2562047h, are taken), anything else says what
// the flag wants.
func TestParseAge(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string // a part of the error; "" for none
	}{
		{"30d", 30 * 24 * time.Hour, ""},
		{"720h", 720 * time.Hour, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"+1.5h", 90 * time.Minute, ""},
		{"106751d", 106751 * 24 * time.Hour, ""},
		{"2562047h", 2562047 * time.Hour, ""},
		{"106752d", 0, "too large: at most 106751d (2562047h)"},
		{"99999999999999999999d", 0, "too large"},
		{"2562048h", 0, "too large"},
		{"1e9h", 0, "want a Go duration"},
		{"9999999999999999999h", 0, "too large"},
		{"-99999999999999999999d", 0, "want a Go duration"},
		{"-1h", 0, "more than zero"},
		{"0d", 0, "more than zero"},
		{"1.5d", 0, "want a Go duration"},
		{"d", 0, "want a Go duration"},
		{"1x", 0, "want a Go duration"},
		{"..5h", 0, "want a Go duration"},
		{"", 0, "required"},
	} {
		got, err := parseAge(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("parseAge(%q) = %v, %v; want %v", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("parseAge(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
		}
	}
}
