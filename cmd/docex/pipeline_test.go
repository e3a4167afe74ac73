package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

const threeStepsTOML = `name = "three"
description = "split, upper, tag"

[[steps]]
name = "split"
plugin = "split"

[[steps]]
name = "upper"
plugin = "upper"
input = "split"

[[steps]]
name = "tag"
plugin = "tag"
input = "upper"
`

// pipelineSetup initialises h (its docex.yaml already written, or SQLite
// by default), creates tenant tn with the test plugins, the pipeline and a
// basket "inbox" bound to it, and returns the user flags.
func pipelineSetup(t *testing.T, h *harness, tn string) []string {
	t.Helper()
	h.ok("init")
	h.ok("tenant", "create", tn)
	u := []string{"--tenant", tn, "--user", "alice", "--roles", "admin"}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"split", "upper", "tag", "trap"} {
		h.ok(append([]string{"plugin", "install", filepath.Join(root, "testplugins", p)}, u...)...)
	}
	h.ok(append([]string{"pipeline", "create", h.file("three.toml", threeStepsTOML)}, u...)...)
	h.ok(append([]string{"basket", "create", "inbox", "--pipeline", "three"}, u...)...)
	return u
}

type runSummaryJSON struct {
	Total       int      `json:"total"`
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	StepsRun    int      `json:"steps_run"`
	StepsCached int      `json:"steps_cached"`
	Jobs        []string `json:"jobs"`
	Failures    []struct {
		JobID      string `json:"job_id"`
		DocumentID string `json:"document_id"`
		Step       string `json:"step"`
		ErrorCode  string `json:"error_code"`
	}
}

func TestPipelineCLI(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	var files []string
	for i := range 3 {
		files = append(files, h.file(fmt.Sprintf("d%d.txt", i), fmt.Sprintf("%d document number %d", i, i)))
	}
	docs := documents(decode[[]added](t, h.ok(with(append([]string{"doc", "add", "inbox", "--json"}, files...)...)...).stdout))
	jobs := decode[[]map[string]any](t, h.ok(with("job", "list", "--json")...).stdout)
	if len(jobs) != 3 || jobs[0]["state"] != "queued" {
		t.Fatalf("jobs after adding to a bound basket: %+v", jobs)
	}
	// --wait on SQLite runs a worker in-process: the bound jobs run too.
	sum := decode[runSummaryJSON](t, h.ok(with("pipeline", "run", "three", "--basket", "inbox", "--wait", "--json")...).stdout)
	if sum.Total != 3 || sum.Succeeded != 3 || sum.StepsCached+sum.StepsRun != 15 {
		t.Fatalf("summary %+v", sum)
	}
	jobs = decode[[]map[string]any](t, h.ok(with("job", "list", "--state", "succeeded", "--json")...).stdout)
	if len(jobs) != 6 {
		t.Fatalf("%d succeeded jobs, want 6", len(jobs))
	}
	// Filters: a malformed state or id is a usage error, a pipeline name
	// the tenant never had (one no pipeline could have included, as in
	// pipeline show) is not found (as --basket), with the likely name; a
	// known pipeline without matching jobs lists nothing.
	for _, bad := range [][]string{{"--state", "bogus"}, {"--doc", "bogus"}} {
		if r := h.want(exitInvalid, with(append([]string{"job", "list"}, bad...)...)...); r.stdout != "" {
			t.Errorf("job list %v printed %q", bad, r.stdout)
		}
	}
	for _, bad := range [][]string{{"--pipeline", "x y"}, {"--pipeline", "../three"}} {
		if r := h.want(exitNotFound, with(append([]string{"job", "list"}, bad...)...)...); r.stdout != "" {
			t.Errorf("job list %v printed %q", bad, r.stdout)
		}
	}
	for _, args := range [][]string{{"--pipeline", "thre"}, {"--pipeline", "thre", "--state", "failed"}, {"--pipeline", "thre", "-q"}} {
		if r := h.want(exitNotFound, with(append([]string{"job", "list"}, args...)...)...); r.stdout != "" || !strings.Contains(r.stderr, `pipeline "thre" not found`) || !strings.Contains(r.stderr, `hint: did you mean "three"?`) {
			t.Errorf("job list %v: stdout %q, stderr %q", args, r.stdout, r.stderr)
		}
	}
	if e := decode[map[string]map[string]string](t, h.want(exitNotFound, with("job", "list", "--pipeline", "thre", "--json")...).stderr); e["error"]["kind"] != "not_found" || !strings.HasPrefix(e["error"]["hint"], `did you mean "three"?`) {
		t.Errorf("job list --pipeline thre --json: %+v", e)
	}
	if none := decode[[]map[string]any](t, h.ok(with("job", "list", "--pipeline", "three", "--state", "failed", "--json")...).stdout); len(none) != 0 {
		t.Errorf("job list --pipeline three --state failed: %d jobs", len(none))
	}
	if r := h.want(exitConflict, with("job", "retry", jobs[0]["id"].(string))...); !strings.Contains(r.stderr, "job "+jobs[0]["id"].(string)+" has succeeded; only failed or cancelled jobs are retried") {
		t.Errorf("retry of a succeeded job: %s", r.stderr)
	}
	show := h.ok(with("job", "show", jobs[0]["id"].(string))...).stdout
	if !strings.Contains(show, "succeeded") || !strings.Contains(show, "split") {
		t.Fatalf("job show: %s", show)
	}
	lin := decode[struct {
		Descendants []struct {
			DerivedID string `json:"derived_id"`
			Step      string `json:"step"`
			Depth     int    `json:"depth"`
		} `json:"descendants"`
	}](t, h.ok(with("doc", "lineage", docs[0].ID, "--json")...).stdout)
	distinct := map[string]bool{}
	for _, d := range lin.Descendants {
		distinct[d.DerivedID] = true
	}
	if len(distinct) != 4 {
		t.Fatalf("lineage: %d distinct descendants, want 4: %+v", len(distinct), lin)
	}
	human := h.ok(with("doc", "lineage", docs[0].ID)...).stdout
	if !strings.Contains(human, "three/split v1") || !strings.Contains(human, "three/upper v1") {
		t.Fatalf("lineage:\n%s", human)
	}
	if show := h.ok(with("pipeline", "show", "three")...).stdout; !strings.Contains(show, "\ndescription: split, upper, tag\nmax attempts ") {
		t.Errorf("pipeline show without its description:\n%s", show)
	}
	// Deleting a source asks what to do with its descendants.
	r := h.want(exitConflict, with("doc", "delete", docs[0].ID)...)
	if !strings.Contains(r.stderr, "has 4 derived document(s)") || !strings.Contains(r.stderr, "--cascade") {
		t.Fatalf("delete without --cascade: %s", r.stderr)
	}
	r = h.want(exitConflict, with("doc", "delete", docs[0].ID, "--json")...)
	if e := decode[struct {
		Error struct{ Code string } `json:"error"`
	}](t, r.stderr); e.Error.Code != "has_derived" {
		t.Fatalf("delete without --cascade, --json: %s", r.stderr)
	}
	h.ok(with("doc", "get", docs[0].ID)...)
	h.ok(with("doc", "delete", docs[1].ID, "--keep-derived")...)
	if out := h.ok(with("doc", "lineage", docs[1].ID)...).stdout; !strings.Contains(out, "(gone)") {
		t.Fatalf("lineage of a deleted source: %s", out)
	}
	del := decode[map[string]any](t, h.ok(with("doc", "delete", docs[0].ID, "--cascade", "--json")...).stdout)
	if ids := del["deleted_ids"].([]any); len(ids) != 5 {
		t.Fatalf("cascade: %+v", del)
	}

	// A failing step: exit 6, and the summary says which document and why.
	h.ok(with("pipeline", "create", h.file("bad.toml", "name = \"bad\"\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\n"))...)
	r = h.want(exitPlugin, with("pipeline", "run", "bad", "--doc", docs[2].ID, "--wait", "--json")...)
	bad := decode[runSummaryJSON](t, r.stdout)
	if bad.Failed != 1 || len(bad.Failures) != 1 || bad.Failures[0].DocumentID != docs[2].ID || bad.Failures[0].Step != "t" || bad.Failures[0].ErrorCode != "plugin_failed" {
		t.Fatalf("failed run summary %+v", bad)
	}
	r = h.want(exitPlugin, with("pipeline", "run", "bad", "--doc", docs[2].ID, "--wait")...)
	if !strings.Contains(r.stdout, "1 failed") || !strings.Contains(r.stdout, docs[2].ID) {
		t.Fatalf("human summary: %s", r.stdout)
	}
	// The failure line names the document, the job, the step and its
	// input once, then the plugin's failure without the sandbox's prefixes.
	wantLine := fmt.Sprintf("failed: d2.txt (%s), job ", docs[2].ID)
	if !strings.Contains(r.stdout, wantLine) || !strings.Contains(r.stdout, ": step t on "+docs[2].ID+": plugin failed: ") ||
		strings.Contains(r.stdout+r.stderr, "sandbox:") || strings.Count(r.stdout, "step t") != 1 {
		t.Fatalf("failure line: %s (stderr %s)", r.stdout, r.stderr)
	}
	// The error names the pipeline (the step's plugin may never have run:
	// not "plugin failed:") and the hint the commands that show and retry
	// the failed job.
	if !strings.HasPrefix(r.stderr, "docex: pipeline bad: 1 of 1 document(s) failed") {
		t.Fatalf("failed run's error: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "hint: docex job show ") || !strings.Contains(r.stderr, "docex job retry ") {
		t.Fatalf("failed run, no hint: %s", r.stderr)
	}
	if e := decode[map[string]map[string]string](t, h.want(exitPlugin, with("pipeline", "run", "bad", "--doc", docs[2].ID, "--wait", "--json")...).stderr); !strings.Contains(e["error"]["hint"], "docex job retry ") {
		t.Fatalf("failed run, JSON hint: %+v", e)
	}
	// A bad definition names its line and key; roles are enforced.
	r = h.want(exitInvalid, with("pipeline", "create", h.file("x.toml", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"nope\"\n"))...)
	if !strings.Contains(r.stderr, "line 4, key steps[0].plugin") {
		t.Fatalf("bad pipeline: %s", r.stderr)
	}
	h.want(exitDenied, "pipeline", "create", h.file("y.toml", threeStepsTOML), "--tenant", "acme", "--user", "w", "--roles", "writer")
	h.want(exitDenied, "pipeline", "run", "three", "--basket", "inbox", "--tenant", "acme", "--user", "r", "--roles", "reader")
	h.want(exitInvalid, with("pipeline", "run", "three")...)
	h.want(exitInvalid, with("job", "show", "nope")...) // malformed: invalid_id
	h.want(exitNotFound, with("job", "show", "01a236c1-4232-7399-aaae-bf07b074825f")...)
	list := h.ok(with("pipeline", "list")...).stdout
	if !strings.Contains(list, "three") || !strings.Contains(list, "split,upper,tag") {
		t.Fatalf("pipeline list: %s", list)
	}
	// Without --wait, the jobs only wait in the queue: the summary says
	// what runs them.
	if out := h.ok(with("pipeline", "run", "three", "--doc", docs[2].ID)...).stdout; !strings.Contains(out, "enqueued 1 job(s)") || !strings.Contains(out, "docex worker") || !strings.Contains(out, "--wait") {
		t.Fatalf("pipeline run without --wait: %s", out)
	}
	// A repeated --doc makes one job.
	once := decode[runSummaryJSON](t, h.ok(with("pipeline", "run", "three", "--doc", docs[2].ID, "--doc", docs[2].ID+","+docs[2].ID, "--json")...).stdout)
	if once.Total != 1 || len(once.Jobs) != 1 {
		t.Fatalf("pipeline run with a repeated --doc: %+v", once)
	}
	h.ok(with("basket", "unbind", "inbox")...)
	// Binding a basket that holds documents says they are not processed
	// and how to process them; an empty basket's binding says nothing more.
	if out := h.ok(with("basket", "bind", "inbox", "three")...).stdout; !strings.Contains(out, "documents added before the binding are not processed by it (the basket holds ") ||
		!strings.Contains(out, "docex pipeline run three --basket inbox") {
		t.Fatalf("bind of a basket with documents: %q", out)
	}
	h.ok(with("basket", "unbind", "inbox")...)
	h.ok(with("basket", "create", "empty")...)
	if out := h.ok(with("basket", "bind", "empty", "three")...).stdout; strings.Count(out, "\n") != 1 {
		t.Fatalf("bind of an empty basket: %q", out)
	}
	// An add to a bound basket says its jobs were queued (not with --json).
	if r := h.ok(with("doc", "add", "empty", h.file("e.txt", "queued words"))...); !strings.Contains(r.stderr, "bound to pipeline three: 1 job(s) queued") {
		t.Fatalf("add to a bound basket: stderr %q", r.stderr)
	}
	if r := h.ok(with("doc", "add", "empty", h.file("e2.txt", "more queued words"), "--json")...); r.stderr != "" {
		t.Fatalf("add to a bound basket with --json: stderr %q", r.stderr)
	}
	// A bound pipeline is not deleted; the error names the basket.
	if r := h.want(exitConflict, with("pipeline", "delete", "three")...); !strings.Contains(r.stderr, "bound to 1 basket(s): empty;") {
		t.Fatalf("delete of a bound pipeline: stderr %q", r.stderr)
	}
	// The basket's jobs, by basket; unbinding says they still run.
	if js := decode[[]map[string]any](t, h.ok(with("job", "list", "--basket", "empty", "--state", "queued", "--json")...).stdout); len(js) != 2 {
		t.Fatalf("job list --basket empty: %d queued jobs, want 2", len(js))
	}
	h.want(exitNotFound, with("job", "list", "--basket", "nosuch")...)
	if out := h.ok(with("basket", "unbind", "empty")...).stdout; !strings.Contains(out, "2 job(s) of pipeline three on its documents are still queued and will run (docex job list --basket empty --state queued;") {
		t.Fatalf("unbind with queued jobs: %q", out)
	}
	h.ok(with("pipeline", "delete", "three")...)
	// A deleted pipeline's jobs are still listed; once it has none that
	// match, the listing is empty, not an error.
	if js := decode[[]map[string]any](t, h.ok(with("job", "list", "--pipeline", "three", "--json")...).stdout); len(js) == 0 {
		t.Errorf("job list --pipeline three after its deletion: no jobs")
	}
	if none := decode[[]map[string]any](t, h.ok(with("job", "list", "--pipeline", "three", "--state", "running", "--json")...).stdout); len(none) != 0 {
		t.Errorf("job list --pipeline three --state running after its deletion: %d jobs", len(none))
	}
}

// TestBasketBindUnchanged: binding a basket to the pipeline it is bound to,
// and unbinding a basket that is not bound, succeed without changing
// anything, say so (without the note on earlier documents), and their
// audit entries say that nothing changed; an unknown basket is still not
// found.
func TestBasketBindUnchanged(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme") // inbox is bound to three
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("doc", "add", "inbox", h.file("a.txt", "some words"))...)
	lastAudit := func(op string, unchanged bool) {
		t.Helper()
		es := decode[[]struct {
			Operation string         `json:"operation"`
			Outcome   string         `json:"outcome"`
			Detail    map[string]any `json:"detail"`
		}](t, h.ok(with("audit", "list", "--limit", "1", "--json")...).stdout)
		if len(es) != 1 || es[0].Operation != op || es[0].Outcome != "ok" || (es[0].Detail["unchanged"] == true) != unchanged {
			t.Fatalf("last audit entry %+v: want %s ok, unchanged %t", es, op, unchanged)
		}
	}
	type bound struct {
		Basket   string `json:"basket"`
		BasketID string `json:"basket_id"`
		Pipeline string `json:"pipeline"`
	}
	cases := []struct {
		name      string
		args      []string
		op        string
		unchanged bool
		out       string // the first line printed
		pipeline  string // with --json
		note      bool   // the note on documents added before the binding
	}{
		{"bind again", []string{"basket", "bind", "inbox", "three"}, "basket.bind", true,
			"basket inbox is already bound to pipeline three: nothing changed", "three", false},
		{"unbind", []string{"basket", "unbind", "inbox"}, "basket.unbind", false,
			"basket inbox has no pipeline any more", "", false},
		{"unbind again", []string{"basket", "unbind", "inbox"}, "basket.unbind", true,
			"basket inbox was not bound to a pipeline: nothing changed", "", false},
		{"bind", []string{"basket", "bind", "inbox", "three"}, "basket.bind", false,
			"basket inbox is bound to pipeline three: every document added is processed", "three", true},
	}
	for _, c := range cases {
		out := h.ok(with(c.args...)...).stdout
		if first, _, _ := strings.Cut(out, "\n"); first != c.out {
			t.Errorf("%s: printed %q, want first line %q", c.name, out, c.out)
		}
		if got := strings.Contains(out, "documents added before the binding"); got != c.note {
			t.Errorf("%s: note on earlier documents %t, want %t: %q", c.name, got, c.note, out)
		}
		lastAudit(c.op, c.unchanged)
		// Once more with --json: the same shape, and nothing changes.
		j := decode[bound](t, h.ok(with(append(c.args, "--json")...)...).stdout)
		if j.Basket != "inbox" || j.BasketID == "" || j.Pipeline != c.pipeline {
			t.Errorf("%s --json: %+v", c.name, j)
		}
		lastAudit(c.op, true)
	}
	for _, args := range [][]string{{"basket", "unbind", "nosuch"}, {"basket", "bind", "nosuch", "three"}} {
		if r := h.want(exitNotFound, with(args...)...); !strings.Contains(r.stderr, "nosuch") {
			t.Errorf("%v: %q", args, r.stderr)
		}
	}
	h.want(exitDenied, "basket", "unbind", "inbox", "--tenant", "acme", "--user", "w", "--roles", "writer")
}

// TestStepContentMissing: a document whose content was removed behind
// docex's back fails its step with an error that names the document once
// (as the step's input), and job show and pipeline run --wait point to
// docex verify.
func TestStepContentMissing(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	d := documents(decode[[]added](t, h.ok(with("doc", "add", "inbox", h.file("a.txt", "some words"), "--json")...).stdout))[0]
	content := filepath.Join(h.dir, "docex-data", "content", "tenants")
	removed := 0
	err := filepath.WalkDir(content, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		removed++
		return os.Remove(path)
	})
	if err != nil || removed == 0 {
		t.Fatalf("removing the content under %s: %d files, %v", content, removed, err)
	}
	r := h.want(exitPlugin, with("pipeline", "run", "three", "--doc", d.ID, "--wait")...)
	if !strings.Contains(r.stderr, "docex verify") || !strings.Contains(r.stderr, "docex job retry ") {
		t.Errorf("pipeline run --wait: stderr %q, want the docex verify and job retry hints", r.stderr)
	}
	failed := strings.Fields(h.ok(with("job", "list", "--state", "failed", "-q")...).stdout)
	if len(failed) == 0 {
		t.Fatal("no failed job")
	}
	for _, id := range failed {
		j := decode[struct {
			ErrorCode string `json:"error_code"`
			Error     string `json:"error"`
		}](t, h.ok(with("job", "show", id, "--json")...).stdout)
		if j.ErrorCode != "corrupt" || !strings.Contains(j.Error, "is missing") || strings.Count(j.Error, d.ID) != 1 {
			t.Errorf("job %s: error (%s) %q: want the document named once", id, j.ErrorCode, j.Error)
		}
		out := h.ok(with("job", "show", id)...).stdout
		if !strings.Contains(out, "error (corrupt): step split on "+d.ID+": content ") || !strings.Contains(out, "\nhint: stored content is damaged") || !strings.Contains(out, "docex verify") {
			t.Errorf("job show %s: %s", id, out)
		}
		// An attempt line: "attempt N: TIME, D ms: ERROR" (the error set off).
		if !regexp.MustCompile(`(?m)^attempt 1: \S+, [0-9.]+ ms: step split on `).MatchString(out) {
			t.Errorf("job show %s: no \"attempt 1: TIME, D ms: step split on ...\" line:\n%s", id, out)
		}
	}
}

// Worker crash test: a docex worker child process is killed with SIGKILL
// in the middle of a run; a second worker finishes, and every document is
// processed exactly once (no document or lineage edge twice).

const envWorkerChild = "DOCEX_TEST_WORKER_CHILD"

// TestWorkerChild is the child process: "docex worker" with the arguments
// in DOCEX_TEST_WORKER_ARGS. It does nothing in a normal run.
func TestWorkerChild(t *testing.T) {
	if os.Getenv(envWorkerChild) == "" {
		t.Skip("run by TestWorkerKill9")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := strings.Split(os.Getenv("DOCEX_TEST_WORKER_ARGS"), "\x1f")
	err := runEnv(ctx, args, os.Stdout, os.Stderr, os.Getenv)
	os.Exit(exitCode(err))
}

func TestWorkerKill9(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { workerKill9(t, newHarness(t), nil) })
	t.Run("postgres", func(t *testing.T) {
		h, env := pgHarness(t, "k")
		workerKill9(t, h, env)
	})
}

func workerKill9(t *testing.T, h *harness, env []string) {
	const n = 40
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	var files []string
	for i := range n {
		files = append(files, h.file(fmt.Sprintf("d%03d.txt", i), fmt.Sprintf("%03d crash test document %d", i, i)))
	}
	h.ok(with(append([]string{"doc", "add", "inbox"}, files...)...)...)
	spawn := func() *exec.Cmd {
		// On SQLite the lease is renewed while a job runs; River (PostgreSQL)
		// has no renewal, so its lease must outlast a job on a loaded machine.
		lease := "2s"
		if env != nil {
			lease = "15s"
		}
		args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker", "--concurrency", "2", "--lease", lease}
		cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerChild$", "-test.count=1")
		cmd.Env = append(append(os.Environ(), envWorkerChild+"=1", "DOCEX_TEST_WORKER_ARGS="+strings.Join(args, "\x1f")), env...)
		cmd.Stderr = nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	succeeded := func() int {
		return len(decode[[]map[string]any](t, h.ok(with("job", "list", "--state", "succeeded", "--limit", "1000", "--json")...).stdout))
	}
	first := spawn()
	deadline := time.Now().Add(3 * time.Minute)
	for succeeded() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := succeeded()
	second := spawn()
	defer func() {
		_ = second.Process.Signal(syscall.SIGTERM)
		if err := second.Wait(); err != nil {
			t.Errorf("second worker after SIGTERM: %v (want exit 0)", err)
		}
	}()
	for succeeded() < n && time.Now().Before(deadline.Add(2*time.Minute)) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := succeeded(); got != n {
		t.Logf("jobs: %s", h.ok(with("job", "list", "--limit", "1000")...).stdout)
		t.Fatalf("%d of %d jobs succeeded after the restart", got, n)
	}
	t.Logf("killed the first worker with %d of %d jobs done", killedAt, n)
	// Exactly once: 4 derived documents per original, each derived once.
	listed := decode[[]doc](t, h.ok(with("doc", "list", "inbox", "--limit", "10000", "--json")...).stdout)
	if len(listed) != n*5 {
		t.Fatalf("basket holds %d documents, want %d", len(listed), n*5)
	}
	for _, d := range listed {
		if !strings.HasSuffix(d.Name, ".txt") {
			continue
		}
		lin := decode[struct {
			Descendants []struct {
				DerivedID string `json:"derived_id"`
				Step      string `json:"step"`
			} `json:"descendants"`
		}](t, h.ok(with("doc", "lineage", d.ID, "--json")...).stdout)
		if len(lin.Descendants) != 4 {
			t.Fatalf("document %s has %d lineage edges, want 4 (no duplicates): %+v", d.Name, len(lin.Descendants), lin.Descendants)
		}
	}
}

// TestRunLineageCLI: a document derived by docex run shows in doc lineage
// ("by docex run") and protects its source from a plain delete.
func TestRunLineageCLI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("r.txt", "a document run by hand"), "-q")...).stdout)
	h.ok(with("run", "split", id)...)
	out := h.ok(with("doc", "lineage", id)...).stdout
	if strings.Count(out, "by docex run (plugin split)") != 2 || strings.Contains(out, "derived: nothing") {
		t.Fatalf("lineage after docex run:\n%s", out)
	}
	if r := h.want(exitConflict, with("doc", "delete", id)...); !strings.Contains(r.stderr, "--cascade") {
		t.Fatalf("delete of a run's source: %s", r.stderr)
	}
}

// TestDedupLineageCLI: docex run of upper on a document whose upper-case
// twin was uploaded before deduplicates onto the twin: doc lineage marks
// the edge, and doc delete --cascade of the run's input keeps the twin
// (it deleted it before: every edge counted).
func TestDedupLineageCLI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "casc")...)
	x := strings.TrimSpace(h.ok(with("doc", "add", "casc", h.file("UP.txt", "QUARTERLY REPORT\n"), "-q")...).stdout)
	a := strings.TrimSpace(h.ok(with("doc", "add", "casc", h.file("low.txt", "quarterly report\n"), "-q")...).stdout)
	h.ok(with("run", "upper", a)...)
	if out := h.ok(with("doc", "lineage", x)...).stdout; !strings.Contains(out, "params {}) (deduplicated onto an existing document)") {
		t.Fatalf("lineage of the twin:\n%s", out)
	}
	lin := decode[struct {
		Descendants []struct {
			DerivedID    string `json:"derived_id"`
			Deduplicated bool   `json:"deduplicated"`
		} `json:"descendants"`
	}](t, h.ok(with("doc", "lineage", a, "--json")...).stdout)
	if len(lin.Descendants) != 1 || lin.Descendants[0].DerivedID != x || !lin.Descendants[0].Deduplicated {
		t.Fatalf("lineage of the input: %+v", lin)
	}
	h.ok(with("doc", "delete", a, "--cascade")...)
	h.ok(with("doc", "get", x)...)
}

// TestLineageTwoPipelinesCLI: two pipelines whose steps share a name and
// derive the same documents make two relations; doc lineage's text shows
// both, as --json does, and still shows a relation once however many jobs
// made it.
func TestLineageTwoPipelinesCLI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	for _, name := range []string{"first", "second"} {
		h.ok(with("pipeline", "create", h.file(name+".toml", "name = \""+name+"\"\n[[steps]]\nname = \"cut\"\nplugin = \"split\"\n"))...)
	}
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("r.txt", "one part. another part"), "-q")...).stdout)
	for _, name := range []string{"first", "second", "first"} { // first twice: two jobs, one relation
		h.ok(with("pipeline", "run", name, "--doc", id, "--wait", "--json")...)
	}
	lin := decode[struct {
		Descendants []struct {
			DerivedID string `json:"derived_id"`
			Pipeline  string `json:"pipeline"`
		} `json:"descendants"`
	}](t, h.ok(with("doc", "lineage", id, "--json")...).stdout)
	derived := map[string]bool{}
	for _, e := range lin.Descendants {
		derived[e.DerivedID] = true
	}
	if len(derived) == 0 {
		t.Fatalf("no descendants: %+v", lin)
	}
	out := h.ok(with("doc", "lineage", id)...).stdout
	for _, name := range []string{"first", "second"} {
		if got := strings.Count(out, "by "+name+"/cut v1 (plugin split)"); got != len(derived) {
			t.Errorf("text shows %d edges by %s/cut, want %d (one per derived document):\n%s", got, name, len(derived), out)
		}
	}
	for d := range derived { // from a derived document: both relations to its source
		out := h.ok(with("doc", "lineage", d)...).stdout
		for _, name := range []string{"first", "second"} {
			if got := strings.Count(out, "by "+name+"/cut v1"); got != 1 {
				t.Errorf("lineage of %s shows %d edges by %s/cut, want 1:\n%s", d, got, name, out)
			}
		}
	}
}

// TestMaxDerivedHintCLI: a waited run that fails on max_derived does not
// say that job retry helps (the retry keeps the job's pipeline version,
// so its max_derived, and fails the same way); it says to raise
// max_derived and create the pipeline again. The error names the document
// by name and id, with --json too.
func TestMaxDerivedHintCLI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("pipeline", "create", h.file("tight.toml", "name = \"tight\"\nmax_derived = 1\n[[steps]]\nname = \"cut\"\nplugin = \"split\"\n"))...)
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("two.txt", "one part. another part"), "-q")...).stdout)
	r := h.want(exitPlugin, with("pipeline", "run", "tight", "--doc", id, "--wait")...)
	for _, w := range []string{"max_derived", "two.txt (" + id + ")", "raise max_derived in pipeline tight", "docex pipeline run tight --doc " + id} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "once the cause is fixed") {
		t.Errorf("hints that job retry helps:\n%s", r.stderr)
	}
	e := decode[struct {
		Error struct{ Kind, Message, Hint string }
	}](t, h.want(exitPlugin, with("pipeline", "run", "tight", "--doc", id, "--wait", "--json")...).stderr)
	if !strings.Contains(e.Error.Message, "two.txt ("+id+")") || !strings.Contains(e.Error.Hint, "raise max_derived") {
		t.Errorf("--json error: %+v", e.Error)
	}
}

// TestWorkerFlagBounds: out-of-range worker flags exit 2 with the reason,
// before anything starts (no worker log line on stderr).
func TestWorkerFlagBounds(t *testing.T) {
	h := newHarness(t)
	pipelineSetup(t, h, "acme")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch must be 1 to 1024"},
		{[]string{"--batch", "-3"}, "--batch must be 1 to 1024"},
		{[]string{"--batch", "1025"}, "--batch must be 1 to 1024"},
		{[]string{"--batch", "many"}, "batch"},
		{[]string{"--concurrency", "0"}, "--concurrency must be 1 to 1024"},
		{[]string{"--concurrency", "1025"}, "--concurrency must be 1 to 1024"},
		{[]string{"--tenant-concurrency", "-1"}, "--tenant-concurrency must be 0 to --concurrency (4)"},
		{[]string{"--concurrency", "2", "--tenant-concurrency", "3"}, "--tenant-concurrency must be 0 to --concurrency (2)"},
		{[]string{"--tenants", "acme", "--all"}, "exclude each other"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker"}, tc.args...)
			r := h.want(exitInvalid, args...)
			if !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "worker started") {
				t.Fatalf("stderr %q, want %q and no worker started", r.stderr, tc.want)
			}
		})
	}
}

// TestUnknownPluginSaysWhatExists: run and plugin show of a plugin name
// that does not exist name the likely one, or the command that lists them,
// as pipeline create does.
func TestUnknownPluginSaysWhatExists(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	id := strings.TrimSpace(h.ok(with("doc", "add", "inbox", h.file("a.txt", "hello"), "-q")...).stdout)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "uper", id}, []string{`plugin "uper" not found (did you mean "upper"?)`}},
		{[]string{"plugin", "show", "Split"}, []string{`plugin "Split" not found (did you mean "split"?)`}},
		{[]string{"run", "frobnicate", id}, []string{`plugin "frobnicate" not found`, "hint: docex plugin list shows the plugins this tenant can run"}},
		{[]string{"plugin", "show", "frobnicate"}, []string{"hint: docex plugin list"}},
	} {
		r := h.want(exitNotFound, with(c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("docex %s: %q, want %q", strings.Join(c.args, " "), r.stderr, w)
			}
		}
	}
	// A missing document is not a missing plugin.
	if r := h.want(exitNotFound, with("run", "upper", "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b")...); strings.Contains(r.stderr, "plugin list") {
		t.Errorf("missing document: %s", r.stderr)
	}
}

// TestPostgresLeaseBoundsAJob: on PostgreSQL a job's own run must finish
// within the worker's --lease. The worker's help says so, and a job that
// did not fit says which flag gives it more time.
func TestPostgresLeaseBoundsAJob(t *testing.T) {
	h, _ := pgHarness(t, "lease")
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	if help := h.ok("help", "worker").stdout; !strings.Contains(help, "on PostgreSQL also the longest a job may run") {
		t.Errorf("worker --help does not say that a PostgreSQL job must fit in --lease:\n%s", help)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	h.ok(with("plugin", "install", filepath.Join(root, "testplugins", "loop"))...) // spins for its 200 ms timeout
	h.ok(with("pipeline", "create", h.file("slow.toml", "name = \"slow\"\nmax_attempts = 1\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\n"))...)
	h.ok(with("basket", "create", "b")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("s.txt", "slow"), "-q")...).stdout)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker", "--lease", "50ms"}
		done <- runEnv(ctx, args, io.Discard, io.Discard, func(k string) string { return h.env[k] })
	}()
	r := h.want(exitPlugin, with("pipeline", "run", "slow", "--doc", id, "--wait", "--worker=no", "--json")...)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	sum := decode[runSummaryJSON](t, r.stdout)
	if len(sum.Failures) != 1 {
		t.Fatalf("summary: %+v", sum)
	}
	j := decode[map[string]any](t, h.ok(with("job", "show", sum.Failures[0].JobID, "--json")...).stdout)
	// The attempt ends when its run has used up the lease. Or, on a loaded
	// machine, the worker's renewals of the job's lease (every third of
	// it, 17 ms here) do not keep up: River's rescuer takes the job back,
	// and its next delivery finds the attempt lost and none left. Each
	// says which flag to change.
	msg, _ := j["error"].(string)
	ranOut := "the job did not finish within the worker's lease: its steps ran for the whole lease of 50ms (it was stopped in step spin on " + id +
		"); the lease counts a job's own run, not its waits in the worker; give the workers a longer one: docex worker --lease or WorkerConfig.Lease"
	lost := "gave up after 1 attempt: it did not finish (its worker did not record its end: it was killed, cut off from the database, " +
		"or could not renew the job's lease in time, which it renews every third of the lease: a very short docex worker --lease may not leave time for that); " +
		"the job's attempt history says how each attempt ended"
	if msg != ranOut && msg != lost {
		t.Fatalf("job error %q: want %q, or, its lease lost, %q", msg, ranOut, lost)
	}
}

// TestUnknownPipelineSaysWhatExists: a pipeline name that does not exist
// names the likely one, or the command that lists them; a deleted one
// says how to define it again.
func TestUnknownPipelineSaysWhatExists(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme") // pipeline "three", basket "inbox" bound to it
	with := func(args ...string) []string { return append(args, u...) }
	id := strings.TrimSpace(h.ok(with("doc", "add", "inbox", h.file("a.txt", "hello"), "-q")...).stdout)
	h.ok(with("basket", "create", "plain")...)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"pipeline", "show", "thre"}, []string{`pipeline "thre" not found`, `hint: did you mean "three"?`}},
		{[]string{"pipeline", "run", "Three", "--doc", id}, []string{`pipeline "Three" not found`, `hint: did you mean "three"?`}},
		{[]string{"basket", "bind", "plain", "threee"}, []string{`hint: did you mean "three"?`}},
		{[]string{"basket", "create", "b2", "--pipeline", "thee"}, []string{`hint: did you mean "three"?`}},
		{[]string{"pipeline", "delete", "frobnicate"}, []string{`pipeline "frobnicate" not found`, "hint: docex pipeline list shows the tenant's pipelines"}},
		// A name that could not have been created is not found either,
		// as in pipeline show, not a usage error.
		{[]string{"job", "list", "--pipeline", "Three"}, []string{`pipeline "Three" not found`, `hint: did you mean "three"?`}},
		{[]string{"job", "list", "--pipeline", "BAD/NAME"}, []string{`pipeline "BAD/NAME" not found`}},
		{[]string{"pipeline", "show", "BAD/NAME"}, []string{`pipeline "BAD/NAME" not found`}},
	} {
		r := h.want(exitNotFound, with(c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("docex %s: %q, want %q", strings.Join(c.args, " "), r.stderr, w)
			}
		}
	}
}

// TestJobShowLostAttempt: job show says "running" for the attempt in
// progress, and, once a worker took the job again, "did not finish" with
// the worker for an attempt a killed worker left (neither with a
// duration: "0.000 ms" read as an attempt that ended at once). The record
// is left as kill -9 leaves it: running, its attempt started, not ended.
func TestJobShowLostAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("doc", "add", "inbox", h.file("a.txt", "killed mid-run"))...)
	id := strings.TrimSpace(h.ok(with("job", "list", "-q")...).stdout)

	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return h.env[k] }}
	c.g.config = filepath.Join(h.dir, "docex.yaml")
	sys, err := c.system(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := sys.be.OpenTenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	setJob := func(f func(j *driver.JobRecord)) error {
		return st.Write(context.Background(), func(tx driver.Tx) error {
			j, err := tx.Job(context.Background(), id)
			if err != nil {
				return err
			}
			f(&j)
			return tx.UpdateJob(context.Background(), j)
		})
	}
	// Claimed by a worker (SQLite marks a job running when it claims it),
	// its attempt not started: not "attempt 0 of 3".
	if err := setJob(func(j *driver.JobRecord) { j.State = driver.JobRunning }); err != nil {
		t.Fatal(err)
	}
	if out := h.ok(with("job", "show", id)...).stdout; !strings.Contains(out, ", running (attempt 1 of 3 starting), run as") {
		t.Errorf("job show of a claimed job whose attempt has not started:\n%s", out)
	}
	err = st.Write(context.Background(), func(tx driver.Tx) error {
		j, err := tx.Job(context.Background(), id)
		if err != nil {
			return err
		}
		j.State, j.Attempts = driver.JobRunning, 1
		j.Detail = []byte(`{"attempts": [{"n": 1, "started_at": "2026-01-02T03:04:05Z", "worker": "worker-killed"}]}`)
		return tx.UpdateJob(context.Background(), j)
	})
	st.Close()
	c.close()
	if err != nil {
		t.Fatal(err)
	}
	if out := h.ok(with("job", "show", id)...).stdout; !regexp.MustCompile(`(?m)^attempt 1: 2026-01-02T03:04:05Z, running$`).MatchString(out) {
		t.Errorf("job show of a running job: no \"attempt 1: TIME, running\" line:\n%s", out)
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker", "--tenants", "acme"}
		done <- runEnv(ctx, args, io.Discard, io.Discard, func(k string) string { return h.env[k] })
	}()
	deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
	for decode[map[string]any](t, h.ok(with("job", "show", id, "--json")...).stdout)["state"] != "succeeded" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	out := h.ok(with("job", "show", id)...).stdout
	if !regexp.MustCompile(`(?m)^attempt 1: 2026-01-02T03:04:05Z: did not finish: its worker worker-killed did not record its end \(it was killed, `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^attempt 2: \S+, [0-9.]+ ms$`).MatchString(out) || !strings.Contains(out, "succeeded (attempt 2 of 3)") {
		t.Errorf("job show after the killed worker's job ran again: want attempt 1 not finished, attempt 2 ended, the job succeeded:\n%s", out)
	}
	// The job's duration is its attempts': the lost one has none, so it
	// is attempt 2's (docs/json.md, Job).
	total := regexp.MustCompile(`(?m)^steps: .*; attempts: ([0-9.]+) ms$`).FindStringSubmatch(out)
	second := regexp.MustCompile(`(?m)^attempt 2: \S+, ([0-9.]+) ms$`).FindStringSubmatch(out)
	if total == nil || second == nil || total[1] != second[1] {
		t.Errorf("job show: the job's duration (steps line, \"attempts: N ms\") is not its one ended attempt's:\n%s", out)
	}
}

// TestPipelineRunWaitCancelled: a job cancelled while pipeline run --wait
// follows it ends the wait with exit 6, and the text summary counts and
// lists it as cancelled, not failed, and says how to run it again. No
// worker runs (--worker=no): the job stays queued until the test cancels
// it.
func TestPipelineRunWaitCancelled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...) // not bound: adding queues no job
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("c.txt", "to cancel"), "-q")...).stdout)

	done := make(chan result, 1)
	go func() { done <- h.run(with("pipeline", "run", "three", "--doc", id, "--wait", "--worker=no")...) }()
	var job string
	deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
	for job == "" && time.Now().Before(deadline) {
		job = strings.TrimSpace(h.ok(with("job", "list", "--pipeline", "three", "-q")...).stdout)
		if job == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if job == "" {
		t.Fatal("pipeline run --wait queued no job")
	}
	h.ok(with("job", "cancel", job)...)
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute): // a bound on a hung test
		t.Fatal("pipeline run --wait did not end once its job was cancelled")
	}
	if r.code != exitPlugin {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, exitPlugin, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "1 document(s): 0 done, 0 failed, 1 cancelled, ") {
		t.Errorf("summary does not count the job as cancelled:\n%s", r.stdout)
	}
	if want := fmt.Sprintf("cancelled: c.txt (%s), job %s: cancelled by alice\n", id, job); !strings.Contains(r.stdout, want) {
		t.Errorf("summary has no line %q:\n%s", want, r.stdout)
	}
	if strings.Contains(r.stdout, "failed: ") {
		t.Errorf("summary lists the cancelled job as failed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "docex: pipeline three: 1 of 1 document(s) cancelled; first: c.txt ("+id+"): cancelled by alice") {
		t.Errorf("error does not say cancelled:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "hint: docex job retry "+job+" runs the cancelled job again") {
		t.Errorf("no job retry hint:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "failed") {
		t.Errorf("error says failed:\n%s", r.stderr)
	}
}

// TestPipelineCreateFileArg: pipeline create read its FILE whole before
// checking its size, so a device (/dev/zero) never returned and a huge
// file was read into memory; a missing file or a directory named the path
// twice. Now FILE must be a regular file, and at most one byte past
// engine.MaxPipelineBytes is read; nothing is stored.
func TestPipelineCreateFileArg(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	big := h.file("big.toml", "name = \"big\"\n"+strings.Repeat("# padding\n", 64<<20/10)) // 64 MiB
	cases := []struct{ path, want string }{
		{filepath.Join(h.dir, "nope.toml"), "cannot read " + filepath.Join(h.dir, "nope.toml") + ": no such file or directory"},
		{h.dir, h.dir + " is not a regular file"},
		{big, big + " is larger than 65536 bytes, the most a pipeline definition may be"},
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		cases = append(cases, struct{ path, want string }{"/dev/zero", "/dev/zero is not a regular file"})
	}
	for _, c := range cases {
		r := h.want(exitInvalid, append([]string{"pipeline", "create", c.path}, u...)...)
		if !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, c.path) != 1 {
			t.Errorf("pipeline create %s: %q, want %q, naming the path once", c.path, r.stderr, c.want)
		}
	}
	// The oversized file's code is the specific too_large (it was the
	// kind's, invalid), still exit 2.
	r := h.want(exitInvalid, append([]string{"pipeline", "create", big, "--json"}, u...)...)
	if !strings.Contains(r.stdout+r.stderr, `"code":"too_large","kind":"invalid"`) {
		t.Errorf("pipeline create --json of an oversized file: %s%s, want code too_large, kind invalid", r.stdout, r.stderr)
	}
	if r := h.ok(append([]string{"pipeline", "list", "--json"}, u...)...); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("pipelines after the refusals: %s", r.stdout)
	}
}

// TestLineageTreeCLI: doc lineage's text drew the descendants level by
// level, so a step's outputs were all listed under the last of its inputs
// (every redacted chunk appeared under the last chunk). Each line must sit
// under the document it was derived from (or, for ancestors, derived), as
// --json says.
func TestLineageTreeCLI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("r.txt", "first part. second part. third part"), "-q")...).stdout)
	h.ok(with("pipeline", "run", "three", "--doc", id, "--wait", "--json")...)
	type edge struct {
		SourceID  string `json:"source_id"`
		DerivedID string `json:"derived_id"`
	}
	type lineage struct {
		Ancestors   []edge `json:"ancestors"`
		Descendants []edge `json:"descendants"`
	}
	// check parses lines "<indent><arrow> ID ..." and wants each line's
	// parent (the last line one level up, or the document) to be the
	// document its --json edge links it to.
	check := func(doc, arrow string, edges []edge, up bool) {
		t.Helper()
		if len(edges) < 4 {
			t.Fatalf("%s: %d edges, want a tree of at least 4", doc, len(edges))
		}
		want := map[[2]string]bool{}
		for _, e := range edges {
			if up {
				want[[2]string{e.DerivedID, e.SourceID}] = true
			} else {
				want[[2]string{e.SourceID, e.DerivedID}] = true
			}
		}
		out := h.ok(with("doc", "lineage", doc)...).stdout
		stack, lines := []string{doc}, 0
		for _, l := range strings.Split(out, "\n") {
			trimmed := strings.TrimLeft(l, " ")
			if !strings.HasPrefix(trimmed, arrow+" ") {
				continue
			}
			depth := (len(l) - len(trimmed)) / 2
			if depth+1 > len(stack) {
				t.Fatalf("line %q is deeper than the line above it:\n%s", l, out)
			}
			child := strings.Fields(trimmed)[1]
			if !want[[2]string{stack[depth], child}] {
				t.Errorf("%s %s is drawn under %s, which --json does not link it to:\n%s", arrow, child, stack[depth], out)
			}
			stack = append(stack[:depth+1], child)
			lines++
		}
		if lines != len(want) {
			t.Errorf("%d %s lines, want %d:\n%s", lines, arrow, len(want), out)
		}
	}
	lin := decode[lineage](t, h.ok(with("doc", "lineage", id, "--json")...).stdout)
	check(id, "->", lin.Descendants, false)
	leaf := lin.Descendants[len(lin.Descendants)-1].DerivedID
	up := decode[lineage](t, h.ok(with("doc", "lineage", leaf, "--json")...).stdout)
	if len(up.Ancestors) < 2 {
		t.Fatalf("ancestors of %s: %+v", leaf, up)
	}
	// Ancestors are a chain here: fewer than 4, so check them directly.
	out := h.ok(with("doc", "lineage", leaf)...).stdout
	for i, e := range up.Ancestors {
		if !strings.Contains(out, "\n"+strings.Repeat("  ", i)+"<- "+e.SourceID+" ") {
			t.Errorf("ancestor %d (%s) not at depth %d:\n%s", i, e.SourceID, i, out)
		}
	}
}

// TestWorkerTenantsNamedTwice: --tenants acme,acme served acme as two
// tenants: the worker logged both, and as it served "two" tenants it left
// half of its slots to the other (tenant_concurrency 2 of 4). A tenant
// named twice is served once, with every slot; spaces after the comma
// are not part of the name (" acme" was refused as a bad tenant id).
func TestWorkerTenantsNamedTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pipelineSetup(t, h, "acme")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker", "--tenants", "acme, acme", "--user", "op"}
		done <- runEnv(ctx, args, io.Discard, logs, func(k string) string { return h.env[k] })
	}()
	deadline := time.After(2 * time.Minute) // a hang detector, not a latency bound
	for !strings.Contains(logs.String(), "worker started") {
		select {
		case err := <-done:
			t.Fatalf("worker ended before it started: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("no worker started line:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	var line struct {
		Tenants           []string `json:"tenants"`
		Concurrency       int      `json:"concurrency"`
		TenantConcurrency int      `json:"tenant_concurrency"`
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"worker batches"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(line.Tenants, []string{"acme"}) || line.TenantConcurrency != line.Concurrency || line.Concurrency != 4 {
		t.Errorf("worker batches: %+v, want tenants [acme] with all 4 slots\n%s", line, logs.String())
	}
}

// TestLineageTruncatedCLI: a chain longer than engine.MaxLineageDepth is
// listed to that depth; --json said truncated, the text said nothing, so a
// reader took the listing for the whole chain. The text now ends saying
// so; a chain within the bounds is not called truncated.
func TestLineageTruncatedCLI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("plugin", "install", filepath.Join("..", "..", "testplugins", "derive"))...)
	h.ok(with("basket", "create", "chain")...)
	root := strings.TrimSpace(h.ok(with("doc", "add", "chain", h.file("root.txt", "root"), "-q")...).stdout)
	id := root
	for i := range engine.MaxLineageDepth + 1 {
		r := decode[struct {
			Derived []struct {
				ID string `json:"id"`
			} `json:"derived"`
		}](t, h.ok(with("run", "derive", id, "--param", "title=link "+strconv.Itoa(i), "--json")...).stdout)
		if len(r.Derived) != 1 {
			t.Fatalf("run %d: derived %v", i, r.Derived)
		}
		id = r.Derived[0].ID
	}
	const note = "(the chain goes on: at most 10000 edges and 64 levels are listed each way)"
	for _, c := range []struct {
		doc       string
		truncated bool
	}{{root, true}, {id, true}} {
		lin := decode[struct {
			Truncated   bool  `json:"truncated"`
			Ancestors   []any `json:"ancestors"`
			Descendants []any `json:"descendants"`
		}](t, h.ok(with("doc", "lineage", c.doc, "--json")...).stdout)
		if !lin.Truncated || len(lin.Ancestors)+len(lin.Descendants) != engine.MaxLineageDepth {
			t.Errorf("lineage of %s: truncated %v, %d+%d edges, want truncated and %d", c.doc, lin.Truncated, len(lin.Ancestors), len(lin.Descendants), engine.MaxLineageDepth)
		}
		if out := h.ok(with("doc", "lineage", c.doc)...).stdout; !strings.HasSuffix(out, note+"\n") {
			t.Errorf("text lineage of %s does not end with %q:\n...%s", c.doc, note, out[max(0, len(out)-300):])
		}
	}
	if out := h.ok(with("doc", "lineage", id)...).stdout; strings.Count(out, "<- ") != engine.MaxLineageDepth {
		t.Errorf("%d ancestors drawn, want %d", strings.Count(out, "<- "), engine.MaxLineageDepth)
	}
	// One link below the bound: whole, and not called truncated.
	short := decode[struct {
		Ancestors []struct {
			SourceID string `json:"source_id"`
		} `json:"ancestors"`
	}](t, h.ok(with("doc", "lineage", id, "--json")...).stdout).Ancestors[0].SourceID
	if out := h.ok(with("doc", "lineage", short)...).stdout; strings.Contains(out, "the chain goes on") {
		t.Errorf("lineage of a chain of %d called truncated", engine.MaxLineageDepth)
	}
	// Without --cascade it is refused as any document with derived
	// documents is (before: "more than 64 levels deep").
	if r := h.want(exitConflict, with("doc", "delete", root)...); !strings.Contains(r.stderr, fmt.Sprintf("has %d derived document(s)", engine.MaxLineageDepth+1)) {
		t.Errorf("delete of a document with %d levels below it: %s", engine.MaxLineageDepth+1, r.stderr)
	}
	// A cascade takes any depth: the root and its MaxLineageDepth+1
	// levels (before, refused: "descendants deeper than 64 steps", after
	// the prompt had counted them and offered c).
	del := decode[struct {
		DeletedIDs []string `json:"deleted_ids"`
	}](t, h.ok(with("doc", "delete", root, "--cascade", "--json")...).stdout)
	if n := len(del.DeletedIDs); n != engine.MaxLineageDepth+2 || del.DeletedIDs[0] != id || del.DeletedIDs[n-1] != root {
		t.Errorf("cascade of %d levels deleted %d documents, want %d, the deepest first and the root last", engine.MaxLineageDepth+1, n, engine.MaxLineageDepth+2)
	}
}

// TestPluginRemoveNamesPipelines: removing a plugin a pipeline runs said
// nothing, and the pipeline's jobs then failed with "plugin not found".
// The removal still succeeds, and a note names the pipelines (not with
// --json, and not for a plugin no pipeline runs).
func TestPluginRemoveNamesPipelines(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	r := h.ok(with("plugin", "remove", "upper")...)
	if want := "note: pipeline(s) three run plugin upper: their jobs fail until it is installed again"; !strings.Contains(r.stderr, want) || !strings.Contains(r.stdout, "removed plugin upper") {
		t.Errorf("plugin remove upper: stdout %q, stderr %q, want %q", r.stdout, r.stderr, want)
	}
	if r := h.ok(with("plugin", "remove", "trap")...); strings.Contains(r.stderr, "note:") {
		t.Errorf("plugin remove trap (no pipeline runs it): %q", r.stderr)
	}
	if r := h.ok(with("plugin", "remove", "split", "--json")...); r.stderr != "" {
		t.Errorf("plugin remove --json wrote to stderr: %q", r.stderr)
	}
}

// TestPipelineEmptyInput: pipeline create refuses input = "" with its
// line and key (exit 2), as an input that names no step; it was taken for
// "document" and the pipeline stored.
func TestPipelineEmptyInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	def := h.file("e.toml", "name = \"e\"\n[[steps]]\nname = \"a\"\nplugin = \"upper\"\ninput = \"\"\n")
	r := h.want(exitInvalid, append([]string{"pipeline", "create", def}, u...)...)
	if want := `pipeline line 5, key steps[0].input: input "" is neither "document" nor a step of this pipeline`; !strings.Contains(r.stderr, want) {
		t.Fatalf("pipeline create with input = \"\": stderr %q, want %q", r.stderr, want)
	}
	h.want(exitNotFound, append([]string{"pipeline", "show", "e"}, u...)...)
}

// TestJobListEmptyFilter: job list --state "" (or --pipeline, --doc,
// --basket given empty) is a usage error (exit 2), as job prune --state ""
// is; it was taken for no filter and listed every job.
func TestJobListEmptyFilter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	for _, f := range []string{"--state", "--pipeline", "--doc", "--basket"} {
		r := h.want(exitInvalid, append([]string{"job", "list", f, ""}, u...)...)
		if want := `invalid argument "" for "` + f + `" flag: must not be empty`; !strings.Contains(r.stderr, want) {
			t.Errorf("job list %s \"\": stderr %q, want %q", f, r.stderr, want)
		}
		h.want(exitInvalid, append([]string{"job", "list", f + "="}, u...)...)
	}
	h.ok(append([]string{"job", "list", "--state", "queued", "--pipeline", "three"}, u...)...)
	// basket create --pipeline "" created a basket bound to nothing.
	r := h.want(exitInvalid, append([]string{"basket", "create", "unbound", "--pipeline", ""}, u...)...)
	if want := `invalid argument "" for "--pipeline" flag: must not be empty (to create a basket bound to no pipeline, leave the flag out)`; !strings.Contains(r.stderr, want) {
		t.Errorf("basket create --pipeline \"\": stderr %q, want %q", r.stderr, want)
	}
	h.want(exitNotFound, append([]string{"basket", "show", "unbound"}, u...)...)
}

// TestJobShowCancelledOnce: job show's text says a cancelled job's error
// once ("error (cancelled): document D was deleted before the job ran"),
// where before it said "error (cancelled): cancelled: document ...";
// --json keeps the error as stored.
func TestJobShowCancelledOnce(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	docs := documents(decode[[]added](t, h.ok(with("doc", "add", "inbox", "--json", h.file("gone.txt", "soon deleted"), h.file("kept.txt", "kept"))...).stdout))
	jobs := decode[[]struct {
		ID         string `json:"id"`
		DocumentID string `json:"document_id"`
	}](t, h.ok(with("job", "list", "--json")...).stdout)
	var gone string
	for _, j := range jobs {
		if j.DocumentID == docs[0].ID {
			gone = j.ID
		}
	}
	if gone == "" {
		t.Fatalf("no job for %s: %+v", docs[0].ID, jobs)
	}
	h.ok(with("doc", "delete", docs[0].ID)...)
	h.ok(with("pipeline", "run", "three", "--doc", docs[1].ID, "--wait")...) // its worker takes the queued jobs too
	js := decode[struct {
		State string `json:"state"`
		Error string `json:"error"`
	}](t, h.ok(with("job", "show", gone, "--json")...).stdout)
	want := "document " + docs[0].ID + " was deleted before the job ran"
	if js.State != "cancelled" || js.Error != "cancelled: "+want {
		t.Fatalf("job of a deleted document: %+v", js)
	}
	if out := h.ok(with("job", "show", gone)...).stdout; !strings.Contains(out, "\nerror (cancelled): "+want+"\n") {
		t.Errorf("job show:\n%s", out)
	}
}
