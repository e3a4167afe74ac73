package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/engine"
)

// Conformance of the pipeline commands with docs/json.md, docs/jobs.md and
// the README's exit codes (cases found by an audit of issue 9).

// TestPipelineDeleteJSON: pipeline delete --json prints {"name", "deleted":
// true} (docs/json.md, Deleted), as plugin remove does.
func TestPipelineDeleteJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("pipeline", "create", h.file("solo.toml", "name = \"solo\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n"))...)
	got := decode[map[string]any](t, h.ok(with("pipeline", "delete", "solo", "--json")...).stdout)
	if len(got) != 2 || got["name"] != "solo" || got["deleted"] != true {
		t.Fatalf("pipeline delete --json = %v, want {\"name\": \"solo\", \"deleted\": true}", got)
	}
}

// TestPipelineDeletedSaysSo: a delete of a pipeline deleted already said
// `pipeline "solo" not found` with "did you mean" another pipeline, where
// run and bind said it was deleted. Now delete says it was already
// deleted, run, bind and basket create --pipeline that it was deleted,
// each not found (exit 3) with a hint that names no other pipeline.
func TestPipelineDeletedSaysSo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("pipeline", "create", h.file("solo.toml", "name = \"solo\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n"))...)
	h.ok(with("pipeline", "create", h.file("sole.toml", "name = \"sole\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n"))...)
	h.ok(with("basket", "create", "plain")...)
	h.ok(with("pipeline", "delete", "solo")...)
	const list = "docex pipeline list shows the tenant's pipelines"
	for _, c := range []struct {
		args      []string
		msg, hint string
	}{
		{[]string{"pipeline", "delete", "solo"}, `pipeline "solo" was already deleted`, "nothing to delete; docex pipeline show solo shows its last version (its versions stay for its jobs and lineage); " + list},
		{[]string{"pipeline", "run", "solo", "--basket", "plain"}, `pipeline "solo" was deleted`, "docex pipeline create FILE defines solo again, as a new version; " + list},
		{[]string{"basket", "bind", "plain", "solo"}, `pipeline "solo" was deleted`, "docex pipeline create FILE defines solo again, as a new version; " + list},
		{[]string{"basket", "create", "other", "--pipeline", "solo"}, `pipeline "solo" was deleted`, "docex pipeline create FILE defines solo again, as a new version; " + list},
	} {
		r := h.want(exitNotFound, with(c.args...)...)
		if want := "docex: " + c.msg + "\nhint: " + c.hint + "\n"; r.stderr != want {
			t.Errorf("docex %s: stderr %q, want %q", strings.Join(c.args, " "), r.stderr, want)
		}
		e := decode[map[string]map[string]string](t, h.want(exitNotFound, with(append(c.args, "--json")...)...).stderr)
		if e["error"]["code"] != "not_found" || e["error"]["kind"] != "not_found" || e["error"]["message"] != c.msg || e["error"]["hint"] != c.hint {
			t.Errorf("docex %s --json: %+v", strings.Join(c.args, " "), e)
		}
	}
}

// TestRefusedPipelineCreatesAreAudited: pipeline create audited the
// definitions refused after it opened the tenant (an unknown plugin, a
// parameter) but not those refused before (syntax, an unknown key, a
// cycle, a bad name, ...), nor a file it could not read, as plugin
// install audits every refusal. Now each is a pipeline.create entry,
// outcome error, with the error's text, and its target the pipeline's
// name once the TOML decoded ("" when it did not, or the name is not
// valid; a cycle, an unknown key or a bad filter had "" too). A role
// without pipeline.manage gets the denial, whatever the definition.
func TestRefusedPipelineCreatesAreAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	cases := []struct{ file, target string }{
		{h.file("syntax.toml", "name = \"x\"\n[[steps]\n"), ""},
		{h.file("key.toml", "name = \"x\"\nmax_attempt = 2\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\n"), "x"},
		{h.file("cycle.toml", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\ninput = \"b\"\n[[steps]]\nname = \"b\"\nplugin = \"tag\"\ninput = \"a\"\n"), "x"},
		{h.file("name.toml", "name = \"Bad Name\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\n"), ""},
		{h.file("empty.toml", "name = \"x\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\naccept = []\n"), "x"},
		{h.file("filter.toml", "name = \"x\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\naccept = [\"text\"]\n"), "x"},
		{h.file("type.toml", "name = \"x\"\nmax_attempts = \"2\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\n"), ""},
		{h.file("plugin.toml", "name = \"x\"\n[[steps]]\nname = \"t\"\nplugin = \"nope\"\n"), "x"},
		{filepath.Join(h.dir, "missing.toml"), ""},
		{h.file("big.toml", "name = \"big\"\n"+strings.Repeat("# padding\n", 7000)), ""},
	}
	var msgs []string
	for _, c := range cases {
		e := decode[map[string]map[string]string](t, h.want(exitInvalid, with("pipeline", "create", c.file, "--json")...).stderr)
		msgs = append(msgs, e["error"]["message"])
	}
	type entry struct {
		Operation, Target, Outcome, Error string
	}
	var log []entry
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		if e.Operation == "pipeline.create" && e.Outcome != "ok" {
			log = append([]entry{e}, log...) // oldest first
		}
	}
	if len(log) != len(cases) {
		t.Fatalf("%d refused pipeline.create entries, want %d: %+v", len(log), len(cases), log)
	}
	for i, c := range cases {
		if log[i].Outcome != "error" || log[i].Error != msgs[i] || log[i].Target != c.target {
			t.Errorf("%s: audit entry %+v, want outcome error, error %q, target %q", filepath.Base(c.file), log[i], msgs[i], c.target)
		}
	}
	// A reader may not define pipelines: denied (exit 4), audited as
	// denied, even for a definition that does not parse.
	reader := []string{"--tenant", "acme", "--user", "bob", "--roles", "reader"}
	for _, f := range []string{cases[0].file, filepath.Join(h.dir, "missing.toml")} {
		h.want(exitDenied, append([]string{"pipeline", "create", f}, reader...)...)
	}
	n := 0
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		if e.Operation == "pipeline.create" && e.Outcome == "denied" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d denied pipeline.create entries, want 2", n)
	}
}

// TestJobShowNoNull: a job whose steps came from the cache or did not run
// their plugin prints every step's report without null (docs/json.md rule
// 3): capability_denials is [].
func TestJobShowNoNull(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "some text to split"), "-q")...).stdout)
	h.ok(with("pipeline", "run", "three", "--doc", id, "--wait")...)
	sum := decode[runSummaryJSON](t, h.ok(with("pipeline", "run", "three", "--doc", id, "--wait", "--json")...).stdout)
	if sum.StepsCached == 0 || len(sum.Jobs) != 1 {
		t.Fatalf("second run: %+v, want steps from the cache", sum)
	}
	out := h.ok(with("job", "show", sum.Jobs[0], "--json")...).stdout
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range conventionViolations("", v) {
		t.Errorf("job show: %s", p)
	}
	var j struct {
		Steps []struct {
			Outcome string `json:"outcome"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(j.Steps) == 0 || j.Steps[0].Outcome != "cached" {
		t.Fatalf("job show steps: %v %+v", err, j)
	}
}

// TestMalformedIDsAreInvalid: a malformed document or job id is invalid
// input (exit 2, code invalid_id), never "not found" (README exit codes),
// for every pipeline command as for doc get.
func TestMalformedIDsAreInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	for _, args := range [][]string{
		{"doc", "get", "nope"},
		{"doc", "lineage", "nope"},
		{"job", "show", "nope"},
		{"job", "retry", "nope"},
		{"job", "cancel", "nope"},
		{"job", "list", "--doc", "nope"},
		{"pipeline", "run", "three", "--doc", "nope"},
		{"pipeline", "run", "three", "--doc", "nope", "--wait"},
	} {
		r := h.run(append(append(args, u...), "--json")...)
		var e map[string]map[string]string
		if err := json.Unmarshal([]byte(r.stderr), &e); r.code != exitInvalid || err != nil || e["error"]["code"] != "invalid_id" {
			t.Errorf("docex %s: exit %d, stderr %q; want exit 2, code invalid_id", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestPipelineShowBadVersion: --version below 0 is a usage error, not the
// newest version.
func TestPipelineShowBadVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	r := h.want(exitInvalid, append([]string{"pipeline", "show", "three", "--version", "-1"}, u...)...)
	if !strings.Contains(r.stderr, "--version") {
		t.Fatalf("stderr %q", r.stderr)
	}
	h.want(exitNotFound, append([]string{"pipeline", "show", "three", "--version", "2"}, u...)...)
	h.ok(append([]string{"pipeline", "show", "three", "--version", "1"}, u...)...)
}

// TestWorkerBadTenants: a worker given --tenants that it cannot serve says
// so and exits before it starts (instead of polling a tenant that does not
// exist forever): 2 for a malformed id, 3 for an unknown tenant, 4 for the
// bootstrap tenant; negative durations are usage errors too.
func TestWorkerBadTenants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pipelineSetup(t, h, "acme")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tenants", "nope"}, exitNotFound, `"nope"`},
		{[]string{"--tenants", "acme,nope"}, exitNotFound, `"nope"`},
		{[]string{"--tenants", "Bad_ID"}, exitInvalid, "Bad_ID"},
		{[]string{"--tenants", "system"}, exitDenied, "system"},
		{[]string{"--shutdown-timeout", "-1s"}, exitInvalid, "--shutdown-timeout"},
		{[]string{"--lease", "-1s"}, exitInvalid, "--lease"},
		{[]string{"--tenants", ""}, exitInvalid, "--tenants needs at least one"},
		{[]string{"--all=false"}, exitInvalid, "--all=false needs --tenants"},
		{[]string{"--tenants", "acme,,"}, exitInvalid, "tenant id is empty"},
	} {
		// A worker that starts anyway runs until the context ends: the
		// test then fails on its exit code instead of hanging.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var out, errb bytes.Buffer
		args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker"}, tc.args...)
		err := runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
		cancel()
		if code := exitCode(err); code != tc.code || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "worker started") {
			t.Errorf("docex worker %s: exit %d, stderr %q; want exit %d, %q and no worker started", strings.Join(tc.args, " "), code, errb.String(), tc.code, tc.want)
		}
	}
}

// TestRunSummaryElapsed: the run summary's elapsed_ms is milliseconds at
// microsecond precision (docs/json.md rule 4), not whole milliseconds.
func TestRunSummaryElapsed(t *testing.T) {
	t.Parallel()
	var s runSummary
	s.finish(engine.JobsStatus{Total: 1, Succeeded: 1, Failures: []engine.FailedJob{}}, true, 1500*time.Microsecond)
	if s.ElapsedMS != 1.5 || !s.Waited || s.Succeeded != 1 {
		t.Fatalf("summary %+v, want elapsed_ms 1.5", s)
	}
	var b bytes.Buffer
	printRunSummary(&b, s, nil)
	if !strings.Contains(b.String(), "1 done, 0 failed") || !strings.Contains(b.String(), "2ms") {
		t.Fatalf("human summary %q", b.String())
	}
}

// TestRunSummaryFailureLines: the human summary lists at most
// maxFailureLines failures, with the documents' names when known, and
// says how many more there are.
func TestRunSummaryFailureLines(t *testing.T) {
	t.Parallel()
	var s runSummary
	s.Pipeline = "p"
	fs := make([]engine.FailedJob, maxFailureLines+5)
	for i := range fs {
		fs[i] = engine.FailedJob{JobID: fmt.Sprintf("j%d", i), DocumentID: fmt.Sprintf("d%d", i), Step: "s", ErrorCode: "plugin_failed", Error: "step s on x: plugin failed: no"}
	}
	s.finish(engine.JobsStatus{Total: len(fs), Failed: len(fs), Failures: fs}, true, time.Second)
	var b bytes.Buffer
	printRunSummary(&b, s, map[string]string{"d0": "a.txt"})
	out := b.String()
	if strings.Count(out, "\nfailed: ") != maxFailureLines || !strings.Contains(out, "failed: a.txt (d0), job j0: step s on x: plugin failed: no\n") ||
		!strings.Contains(out, "failed: d1, job j1: ") || !strings.Contains(out, "... and 5 more (docex job list --state failed --pipeline p") {
		t.Fatalf("summary:\n%s", out)
	}
}

// TestRunSummaryCancelled: failed and cancelled jobs are counted and
// listed apart in the human summary, and the error counts both, names
// the first failed job (a cancelled one only when none failed) and hints
// at the job list of each state.
func TestRunSummaryCancelled(t *testing.T) {
	t.Parallel()
	failed := engine.FailedJob{JobID: "jf", DocumentID: "df", Step: "s", ErrorCode: "plugin_failed", Error: "step s on df: plugin failed: no"}
	cancelled := engine.FailedJob{JobID: "jc", DocumentID: "dc", ErrorCode: "cancelled", Error: "cancelled by alice"}
	for _, c := range []struct {
		name      string
		failures  []engine.FailedJob
		failed    int
		counts    string   // in the summary's first line
		lines     []string // the summary's job lines
		err, hint []string
	}{
		{"failed", []engine.FailedJob{failed}, 1, "3 document(s): 2 done, 1 failed, 0 step run(s)",
			[]string{"failed: df, job jf: step s on df: plugin failed: no\n"},
			[]string{"pipeline p: 1 of 3 document(s) failed; first: document df: step s on df"},
			[]string{"docex job show jf shows the failed step"}},
		{"cancelled", []engine.FailedJob{cancelled, cancelled}, 0, "3 document(s): 1 done, 0 failed, 2 cancelled, 0 step run(s)",
			[]string{"cancelled: a.txt (dc), job jc: cancelled by alice\n"},
			[]string{"pipeline p: 2 of 3 document(s) cancelled; first: a.txt (dc): cancelled by alice"},
			[]string{"docex job retry jc runs the cancelled job again", "docex job list --pipeline p --state cancelled lists the cancelled jobs"}},
		{"both", []engine.FailedJob{cancelled, failed}, 1, "3 document(s): 1 done, 1 failed, 1 cancelled, 0 step run(s)",
			[]string{"cancelled: a.txt (dc), job jc: cancelled by alice\nfailed: df, job jf: "},
			[]string{"pipeline p: 1 of 3 document(s) failed, 1 cancelled; first: document df: "},
			[]string{"docex job retry jf runs it again", "--state failed lists the failed jobs (--state cancelled, the cancelled ones)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := runSummary{Pipeline: "p", Total: 3}
			st := engine.JobsStatus{Total: 3, Failed: c.failed, Cancelled: len(c.failures) - c.failed, Failures: c.failures}
			st.Succeeded = st.Total - len(c.failures)
			s.finish(st, true, time.Second)
			names := map[string]string{"dc": "a.txt"}
			var b bytes.Buffer
			printRunSummary(&b, s, names)
			out := b.String()
			for _, w := range append([]string{"pipeline p: " + c.counts}, c.lines...) {
				if !strings.Contains(out, w) {
					t.Errorf("summary lacks %q:\n%s", w, out)
				}
			}
			err := runFailed(s, names, globals{})
			if exitCode(err) != exitPlugin {
				t.Errorf("exit %d, want %d", exitCode(err), exitPlugin)
			}
			hint := hintFor(err, globals{})
			for _, w := range c.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range c.hint {
				if !strings.Contains(hint, w) {
					t.Errorf("hint %q lacks %q", hint, w)
				}
			}
		})
	}
}

// TestHelpRoles: docex help says what each role may do with pipelines and
// jobs (docs/jobs.md: admin defines and binds, writer runs, retries and
// cancels, reader reads), and that operators run workers.
func TestHelpRoles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	out := h.ok("help").stdout
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"reader reads (documents, pipelines, jobs, lineage)",
		"runs plugins and pipelines, and retries or cancels jobs",
		"defines, deletes, binds and unbinds pipelines",
		"run init, gc and workers",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("docex help does not say %q:\n%s", want, out)
		}
	}
}

// TestJobRetryBudget: job retry gives a job that spent its attempts a
// fresh budget, on both backends: they wrote the job back without its new
// max_attempts, so such a job got one more attempt at most (PostgreSQL)
// or none (SQLite). The budget is exactly the pipeline's max_attempts (it
// was at least 3 whatever the pipeline said).
func TestJobRetryBudget(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "rb", jobRetryBudget)
}

func jobRetryBudget(t *testing.T, h *harness) {
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("pipeline", "create", h.file("bad.toml", "name = \"bad\"\nmax_attempts = 2\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\n"))...)
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "to be trapped"), "-q")...).stdout)
	sum := decode[runSummaryJSON](t, h.want(exitPlugin, with("pipeline", "run", "bad", "--doc", id, "--wait", "--worker=yes", "--json")...).stdout)
	type job struct {
		State       string `json:"state"`
		Attempts    int    `json:"attempts"`
		MaxAttempts int    `json:"max_attempts"`
	}
	before := decode[job](t, h.ok(with("job", "show", sum.Jobs[0], "--json")...).stdout)
	if before.State != "failed" || before.Attempts != 1 || before.MaxAttempts != 2 {
		t.Fatalf("failed job %+v", before)
	}
	h.ok(with("job", "retry", sum.Jobs[0])...)
	after := decode[job](t, h.ok(with("job", "show", sum.Jobs[0], "--json")...).stdout)
	if after.State != "queued" || after.Attempts != 1 || after.MaxAttempts != 1+2 {
		t.Fatalf("retried job %+v: want a fresh budget of the pipeline's max_attempts (1 attempt of 3)", after)
	}
}

// TestPipelineRunSeveralDocs: "pipeline run NAME --doc ID..." takes several
// ids, as its usage line says: --doc A --doc B, --doc A,B or --doc A B.
func TestPipelineRunSeveralDocs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	a := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "first document"), "-q")...).stdout)
	b := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("b.txt", "second document"), "-q")...).stdout)
	for _, args := range [][]string{
		{"--doc", a, "--doc", b},
		{"--doc", a + "," + b},
		{"--doc", a, b},
	} {
		sum := decode[runSummaryJSON](t, h.ok(with(append([]string{"pipeline", "run", "three", "--json"}, args...)...)...).stdout)
		if sum.Total != 2 || len(sum.Jobs) != 2 {
			t.Errorf("pipeline run %v: %+v, want 2 jobs", args, sum)
		}
	}
	// Without --doc, a second word is a usage error.
	h.want(exitInvalid, with("pipeline", "run", "three", a)...)
	h.want(exitInvalid, with("pipeline", "run", "three", "--basket", "plain", a)...)
}

// TestPipelineRunWaitInterrupted: an interrupted pipeline run --wait (Ctrl-C)
// says that its jobs stay queued, not just "context canceled".
func TestPipelineRunWaitInterrupted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	h.ok(with("plugin", "install", filepath.Join(root, "testplugins", "loop"))...)
	// A step that times out, retried up to 20 times with backoff: the job
	// stays unfinished for a long time.
	h.ok(with("pipeline", "create", h.file("spin.toml", "name = \"spin\"\nmax_attempts = 20\n[[steps]]\nname = \"s\"\nplugin = \"loop\"\nretry_timeout = true\n"))...)
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "spin on me"), "-q")...).stdout)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // interrupt once the job exists
		for ctx.Err() == nil {
			var jobs []any
			if json.Unmarshal([]byte(h.run(with("job", "list", "--pipeline", "spin", "--json")...).stdout), &jobs) == nil && len(jobs) > 0 {
				cancel()
				return
			}
		}
	}()
	var out, errb bytes.Buffer
	args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "pipeline", "run", "spin", "--doc", id, "--wait", "--json"}, u...)
	err = runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
	if err == nil || !strings.Contains(errb.String(), "interrupted while waiting") || !strings.Contains(errb.String(), "stay queued") ||
		strings.Contains(errb.String(), "context canceled") {
		t.Fatalf("interrupted run: %v, stderr %q", err, errb.String())
	}
	// Interrupted, not failed: exit 130, kind and code "interrupted".
	if code := exitCode(err); code != 130 {
		t.Errorf("interrupted run: exit %d, want 130", code)
	}
	if e := decode[map[string]map[string]string](t, errb.String())["error"]; e["kind"] != "interrupted" || e["code"] != "interrupted" {
		t.Errorf("interrupted run's JSON error: %+v", e)
	}
	// The summary is printed all the same (docs/json.md: waited false), so
	// that a script learns the ids of the jobs it enqueued.
	var sum struct {
		Jobs    []string `json:"jobs"`
		Waited  bool     `json:"waited"`
		Total   int      `json:"total"`
		Pending int      `json:"pending"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || len(sum.Jobs) != 1 || sum.Waited || sum.Total != 1 || sum.Pending != 1 {
		t.Fatalf("interrupted run's summary: %+v, %v (stdout %q)", sum, err, out.String())
	}
}

// TestRunWaitWithoutWorker: pipeline run --wait --worker=no with no worker
// running says, once and after a while, that its jobs wait for a worker,
// instead of waiting silently forever (as on PostgreSQL, where no worker
// runs in the CLI by default). With --json it says nothing: stderr holds
// the error object alone (docs/json.md).
func TestRunWaitWithoutWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	h.ok(append([]string{"doc", "add", "inbox", h.file("a.txt", "wait for a worker")}, u...)...)
	const question = "is a worker running for tenant acme?"
	// The run waits until ctx ends: the test ends it once the question is
	// due (after a shortened idleRunHint), or fails at the deadline.
	wait := func(json bool) (stderr string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		due := make(chan struct{})
		ctx = context.WithValue(ctx, idleHintKey{}, idleHint{after: 50 * time.Millisecond, due: func() { close(due) }})
		var out bytes.Buffer
		errb := &cancelOn{want: question, cancel: cancel}
		args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "pipeline", "run", "three", "--basket", "inbox", "--wait", "--worker=no"}, u...)
		if json {
			args = append(args, "--json")
			go func() {
				select {
				case <-due:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		err = runEnv(ctx, args, &out, errb, func(k string) string { return h.env[k] })
		select {
		case <-due:
		default:
			t.Fatalf("pipeline run --wait (json %v) ended before the question was due: stderr %q, %v", json, errb.buf.String(), err)
		}
		return errb.buf.String(), err
	}
	if got, err := wait(false); strings.Count(got, question) != 1 {
		t.Fatalf("pipeline run --wait without a worker: stderr %q (exit %v), want the question once", got, err)
	}
	got, err := wait(true)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(got))
	if derr := dec.Decode(&e); derr != nil || e.Error.Code != "interrupted" || dec.More() || strings.Contains(got, question) {
		t.Fatalf("pipeline run --wait --json without a worker: stderr %q (exit %v), want the interrupted error object alone", got, err)
	}
}

// cancelOn is a writer that calls cancel once what was written holds want.
type cancelOn struct {
	buf    bytes.Buffer
	want   string
	cancel func()
}

func (w *cancelOn) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.cancel()
	}
	return n, err
}

// TestQuietJobIDs: pipeline run -q (without --wait) and job list -q print
// only job ids, one per line, for scripts; -q with --wait, and --worker
// without --wait, are usage errors that enqueue nothing.
func TestQuietJobIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	a := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "one text"), "-q")...).stdout)
	b := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("b.txt", "another text"), "-q")...).stdout)
	enq := strings.Fields(h.ok(with("pipeline", "run", "three", "--doc", a, "--doc", b, "-q")...).stdout)
	if len(enq) != 2 {
		t.Fatalf("pipeline run -q printed %q, want two job ids", enq)
	}
	listed := strings.Fields(h.ok(with("job", "list", "-q")...).stdout)
	slices.Sort(enq)
	slices.Sort(listed)
	if !slices.Equal(enq, listed) {
		t.Fatalf("job list -q = %q, pipeline run -q = %q", listed, enq)
	}
	for _, id := range listed {
		h.ok(with("job", "show", id)...)
	}
	if r := h.run(with("pipeline", "run", "three", "--doc", a, "-q", "--wait")...); r.code != 2 || !strings.Contains(r.stderr, "without --wait") {
		t.Fatalf("-q --wait: %+v", r)
	}
	// --worker without --wait was ignored (a job queued, no worker run).
	for _, w := range []string{"--worker=yes", "--worker=no", "--worker=auto"} {
		if r := h.run(with("pipeline", "run", "three", "--doc", a, w)...); r.code != 2 || !strings.Contains(r.stderr, "add --wait") {
			t.Fatalf("%s without --wait: %+v", w, r)
		}
	}
	if n := len(strings.Fields(h.ok(with("job", "list", "-q")...).stdout)); n != 2 {
		t.Fatalf("-q --wait or --worker without --wait enqueued jobs: %d listed", n)
	}
}

// TestBasketShowsPipeline: basket show and basket list say which pipeline
// a basket is bound to ("pipeline", "" when unbound; docs/json.md).
func TestBasketShowsPipeline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	type basket struct {
		Name     string `json:"name"`
		Pipeline string `json:"pipeline"`
	}
	if b := decode[basket](t, h.ok(with("basket", "create", "bound", "--pipeline", "three", "--json")...).stdout); b.Pipeline != "three" {
		t.Fatalf("basket create --pipeline: %+v", b)
	}
	if b := decode[basket](t, h.ok(with("basket", "show", "bound", "--json")...).stdout); b.Pipeline != "three" {
		t.Fatalf("basket show: %+v", b)
	}
	if out := h.ok(with("basket", "list")...).stdout; !strings.Contains(out, "PIPELINE") || !strings.Contains(out, "three") {
		t.Fatalf("basket list:\n%s", out)
	}
	// ... and pipeline show and list name the bound baskets.
	out := h.ok(with("pipeline", "show", "three")...).stdout
	if !strings.Contains(out, "\nmax attempts 3, max derived 100000, bound baskets: ") {
		t.Fatalf("pipeline show does not give max_attempts and max_derived (their defaults):\n%s", out)
	}
	_, line, _ := strings.Cut(out, "bound baskets: ")
	line, _, _ = strings.Cut(line, "\n")
	names := strings.Split(line, ",")
	slices.Sort(names)
	if !slices.Equal(names, []string{"bound", "inbox"}) {
		t.Fatalf("pipeline show names the bound baskets %q:\n%s", names, out)
	}
	h.ok(with("basket", "unbind", "bound")...)
	bs := decode[[]basket](t, h.ok(with("basket", "list", "--json")...).stdout)
	if i := slices.IndexFunc(bs, func(b basket) bool { return b.Name == "bound" }); i < 0 || bs[i].Pipeline != "" {
		t.Fatalf("basket list after unbind: %+v", bs)
	}
}

// TestWorkerLogsTenants: the worker's first log line says which tenants it
// serves ("all", or the --tenants list) and how many batches of one tenant
// it runs at once (all of them when it serves one tenant), and SIGINT-like
// cancellation ends it with exit 0.
func TestWorkerLogsTenants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pipelineSetup(t, h, "acme")
	h.ok("tenant", "create", "acme2")
	// Single-file mode has no tenants: the log says the mode instead.
	single := newHarness(t)
	single.ok("init", "--single-file")
	for _, tc := range []struct {
		h      *harness
		args   []string
		want   string
		absent string
	}{
		{h, nil, `"tenants":"all"`, `"mode"`},
		{h, []string{"--tenants", "acme"}, `"tenants":["acme"]`, `"mode"`},
		{single, nil, `"mode":"single-file"`, `"tenants"`},
		// Half the batches for one tenant where there are others to serve;
		// all of them for a worker of one tenant, or of the local store.
		{h, nil, `"concurrency":4,"tenant_concurrency":2`, `"tenant_concurrency":4`},
		{h, []string{"--tenants", "acme"}, `"concurrency":4,"tenant_concurrency":4`, `"tenant_concurrency":2`},
		{h, []string{"--tenants", "acme,acme2"}, `"concurrency":4,"tenant_concurrency":2`, `"tenant_concurrency":4`},
		{h, []string{"--tenants", "acme", "--tenant-concurrency", "1"}, `"tenant_concurrency":1,`, `"tenant_concurrency":4`},
		{single, nil, `"concurrency":4,"tenant_concurrency":4`, `"tenant_concurrency":2`},
	} {
		h := tc.h
		ctx, cancel := context.WithCancel(context.Background())
		errb := &syncBuffer{}
		args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker"}, tc.args...)
		done := make(chan error, 1)
		go func() { done <- runEnv(ctx, args, io.Discard, errb, func(k string) string { return h.env[k] }) }()
		for !strings.Contains(errb.String(), "worker started") {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("docex worker %v ended before it started: %v\n%s", tc.args, err, errb.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("docex worker %v after cancellation: %v (want exit 0)", tc.args, err)
		}
		if !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), tc.absent) {
			t.Errorf("docex worker %v: log lacks %s or has %s:\n%s", tc.args, tc.want, tc.absent, errb.String())
		}
	}
}

// TestEnqueueAuditDetail: every job.enqueue entry has the detail keys
// pipeline, version, document_id and basket_id (the basket of the job's
// document), whether the job was enqueued by an add to a bound basket, by
// pipeline run --basket or by pipeline run --doc; a --doc run's had no
// basket_id.
func TestEnqueueAuditDetail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	inbox := decode[struct{ ID string }](t, h.ok(with("basket", "show", "inbox", "--json")...).stdout).ID
	doc := strings.TrimSpace(h.ok(with("doc", "add", "inbox", h.file("a.txt", "enqueue audit"), "-q")...).stdout) // bound: one job
	h.ok(with("pipeline", "run", "three", "--doc", doc)...)
	h.ok(with("pipeline", "run", "three", "--basket", "inbox")...)
	type entry struct {
		Operation string
		Detail    map[string]any
	}
	n := 0
	for _, e := range decode[[]entry](t, h.ok(with("audit", "list", "--json")...).stdout) {
		if e.Operation != "job.enqueue" {
			continue
		}
		n++
		want := map[string]any{"pipeline": "three", "version": float64(1), "document_id": doc, "basket_id": inbox}
		if !reflect.DeepEqual(e.Detail, want) {
			t.Errorf("job.enqueue detail %v, want %v", e.Detail, want)
		}
	}
	if n != 3 {
		t.Errorf("%d job.enqueue entries, want 3", n)
	}
}

// TestMissingPluginAndVersionWording: a job whose step's plugin was removed
// fails with an error naming the plugin once (it read `plugin "upper":
// plugin "upper" not found`), and a version a deleted pipeline does not
// have names its newest version, as for a live one (it did not).
func TestMissingPluginAndVersionWording(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	doc := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "one two"), "-q")...).stdout)
	h.ok(with("basket", "unbind", "inbox")...)
	h.ok(with("plugin", "remove", "upper")...)
	h.want(exitPlugin, with("pipeline", "run", "three", "--doc", doc, "--wait")...)
	jobs := decode[[]struct{ ID, Error string }](t, h.ok(with("job", "list", "--json")...).stdout)
	if len(jobs) != 1 || strings.Count(jobs[0].Error, `plugin "upper"`) != 1 || !strings.Contains(jobs[0].Error, `plugin "upper" not found`) {
		t.Errorf("job of a removed plugin: %+v, want its error to name the plugin once", jobs)
	}
	h.ok(with("pipeline", "create", h.file("sl.toml", "name = \"sl\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\n"))...)
	h.ok(with("pipeline", "create", h.file("sl.toml", "name = \"sl\"\n[[steps]]\nname = \"t2\"\nplugin = \"tag\"\n"))...)
	for _, del := range []bool{false, true} {
		if del {
			h.ok(with("pipeline", "delete", "sl")...)
		}
		r := h.want(exitNotFound, with("pipeline", "show", "sl", "--version", "3")...)
		if want := `pipeline "sl" has no version 3 (its newest version is 2)`; !strings.Contains(r.stderr, want) {
			t.Errorf("pipeline show of a missing version (deleted %v): %q, want %q", del, r.stderr, want)
		}
	}
}

// TestWorkerSingleFileTenantFlags: in single-file mode, which has no
// tenants (the worker serves the one store), --all=false is a usage error
// that says so, not "--all=false needs --tenants", which --tenants then
// refuses (multi_tenancy_disabled); --all, or --all left out, serves the store.
func TestWorkerSingleFileTenantFlags(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init", "--single-file")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--all=false"}, exitInvalid, "docex: --all=false: this docex.yaml is local single-file mode, which has no tenants: the worker serves its one store; leave --all out\n"},
		{[]string{"--tenants", "acme"}, exitInvalid, "multi-tenancy is disabled"},
		{[]string{"--all=false", "--tenants", "acme"}, exitInvalid, "multi-tenancy is disabled"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var out, errb bytes.Buffer
		args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker"}, tc.args...)
		err := runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
		cancel()
		if code := exitCode(err); code != tc.code || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "--tenants (the tenants to serve)") || strings.Contains(errb.String(), "worker started") {
			t.Errorf("docex worker %s: exit %d, stderr %q; want exit %d, %q and no worker started", strings.Join(tc.args, " "), code, errb.String(), tc.code, tc.want)
		}
	}
	// --all serves the store: it starts, and stops with its context.
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runEnv(ctx, []string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker", "--all"}, &out, &errb, func(k string) string { return h.env[k] })
	}()
	for !strings.Contains(errb.String(), "worker started") {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("docex worker --all in single-file mode ended: %v, stderr %q", err, errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("docex worker --all in single-file mode: %v", err)
	}
}

// TestJobShowColdStartFigures: the text of a report of a failed call on a
// new instance adds what its duration does not count (docs/jobs.md,
// docs/json.md): in job show's "failed step" line and docex run's
// "report:" line, "; instantiation D ms", and, for a start function
// that ran (here one failing, its entry never called), "; initialisation
// D ms, N instructions". Before, job show had neither (a step failing in
// its start function showed "0.0 ms, 0 instructions"), docex run no
// instantiation.
func TestJobShowColdStartFigures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("plugin", "install", "../../testplugins/starthost")...)
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "to be trapped"), "-q")...).stdout)
	inst := `; instantiation [0-9]+\.[0-9]{3} ms`
	for _, c := range []struct{ plugin, want string }{
		{"trap", `(?m)^failed step s on ` + id + `: [0-9.]+ ms, [1-9][0-9]* instructions, peak memory [1-9][0-9]* bytes, [0-9]+ host calls` + inst + `$`},
		{"starthost", `(?m)^failed step s on ` + id + `: 0\.0 ms, 0 instructions, peak memory [1-9][0-9]* bytes, [0-9]+ host calls; initialisation [0-9]+\.[0-9]{3} ms, [1-9][0-9]* instructions` + inst + `$`},
	} {
		h.ok(with("pipeline", "create", h.file(c.plugin+".toml", "name = \""+c.plugin+"\"\nmax_attempts = 1\n[[steps]]\nname = \"s\"\nplugin = \""+c.plugin+"\"\n"))...)
		sum := decode[runSummaryJSON](t, h.want(exitPlugin, with("pipeline", "run", c.plugin, "--doc", id, "--wait", "--worker=yes", "--json")...).stdout)
		show := h.ok(with("job", "show", sum.Jobs[0])...).stdout
		if !regexp.MustCompile(c.want).MatchString(show) {
			t.Errorf("job show of the %s job:\n%s\nwant a line matching %s", c.plugin, show, c.want)
		}
	}
	r := h.want(exitPlugin, with("run", "trap", id)...)
	if want := `(?m)^report: [0-9.]+ ms, [1-9][0-9]* instructions, peak memory [1-9][0-9]* bytes, [0-9]+ host calls, [0-9]+ bytes in, [0-9]+ bytes out` + inst + `$`; !regexp.MustCompile(want).MatchString(r.stderr) {
		t.Errorf("docex run trap: stderr\n%s\nwant a line matching %s", r.stderr, want)
	}
}
