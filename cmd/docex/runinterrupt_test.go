package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPipelineRunWaitInterruptReleases: an interrupted pipeline run --wait stops
// the worker it runs in its process at once, releasing the job it was
// running (queued again, no attempt spent), and its summary says what the
// worker left. Before, the worker let the running job go on for up to its
// 10 s shutdown timeout after the summary had said "pending": the step
// below ends (times out) within that, so the job ended failed.
//
// On PostgreSQL the worker in the process (--worker=yes) stops through
// River's hard stop; on SQLite through the tenant file's job table.
func TestPipelineRunWaitInterruptReleases(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "interrupt", testRunWaitInterruptReleases)
}

func testRunWaitInterruptReleases(t *testing.T, h *harness) {
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	// The loop plugin spins until its timeout: 8 s here, under the
	// worker's old 10 s shutdown timeout and long enough for the
	// interrupt to come while it spins, even on a loaded machine.
	dir := loopPlugin(t, 8000)
	h.ok(with("plugin", "install", dir)...)
	h.ok(with("pipeline", "create", h.file("slow.toml", "name = \"slow\"\nmax_attempts = 1\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\n"))...)
	h.ok(with("basket", "create", "b")...)
	h.ok(with("doc", "add", "b", h.file("s.txt", "slow"), "-q")...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the interrupt, once the job runs
		defer cancel()
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			r := h.run(with("job", "list", "--state", "running", "-q")...)
			if r.code == 0 && strings.TrimSpace(r.stdout) != "" {
				return
			}
		}
	}()
	var out, errb bytes.Buffer
	args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "pipeline", "run", "slow", "--basket", "b", "--wait", "--worker=yes", "--json"}, u...)
	err := runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
	if got := exitCode(err); got != 130 {
		t.Fatalf("exit %d (%v), want 130 (interrupted); stderr %s", got, err, errb.String())
	}
	sum := decode[map[string]any](t, out.String())
	if sum["waited"] != false || sum["pending"] != 1.0 || sum["failed"] != 0.0 {
		t.Errorf("summary %s: want waited false, 1 pending, 0 failed", out.String())
	}
	jobs := decode[[]map[string]any](t, h.ok(with("job", "list", "--pipeline", "slow", "--json")...).stdout)
	if len(jobs) != 1 || jobs[0]["state"] != "queued" || jobs[0]["attempts"] != 0.0 {
		t.Fatalf("jobs after the interrupt: %+v; want the one job queued with no attempt spent", jobs)
	}
}

// TestPipelineRunWaitSuspended: a tenant suspended while pipeline run
// --wait follows its jobs ended the wait with exit 4 and the denial only:
// no summary, so the job ids were lost. Now the wait prints the summary
// as far as it got (waited false, the job pending; --json the machine
// summary), then the error: why it stopped (the suspension, exit 4, code
// tenant_suspended, with its hint). No worker runs (--worker=no): the job
// stays queued.
func TestPipelineRunWaitSuspended(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "suspwait", testRunWaitSuspended)
}

// startWait starts "docex pipeline run three --doc ID --wait
// --worker=no" (with --json when asJSON) in the background, with the
// global flags with adds, and returns, once the run queued its job, the
// channel its result comes on and the job's id.
func startWait(t *testing.T, h *harness, with func(...string) []string, id string, asJSON bool) (chan result, string) {
	t.Helper()
	args := with("pipeline", "run", "three", "--doc", id, "--wait", "--worker=no")
	if asJSON {
		args = append(args, "--json")
	}
	done := make(chan result, 1)
	go func() { done <- h.run(args...) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) { // a bound on a hung test
		if job := strings.TrimSpace(h.ok(with("job", "list", "--doc", id, "-q")...).stdout); job != "" {
			return done, job
		}
		if time.Now().After(deadline) {
			t.Fatal("pipeline run --wait queued no job")
		}
	}
}

func testRunWaitSuspended(t *testing.T, h *harness) {
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "plain")...) // not bound: adding queues no job
	for i, format := range []string{"--json", "text"} {
		id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file(fmt.Sprintf("s%d.txt", i), fmt.Sprintf("suspended %d", i)), "-q")...).stdout)
		done, job := startWait(t, h, with, id, format == "--json")
		h.ok("tenant", "suspend", "acme")
		var r result
		select {
		case r = <-done:
		case <-time.After(2 * time.Minute): // a bound on a hung test
			t.Fatal("pipeline run --wait did not end once its tenant was suspended")
		}
		h.ok("tenant", "resume", "acme")
		if r.code != exitDenied {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", format, r.code, exitDenied, r.stdout, r.stderr)
		}
		const why = `stopped waiting for the jobs of pipeline three: tenant "acme" is suspended; the jobs not finished stay queued (docex job list --pipeline three)`
		if format == "--json" {
			var sum struct {
				Jobs                   []string
				Waited                 bool
				Total, Pending, Failed int
				Succeeded              int
				Failures               []any
			}
			if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Waited || sum.Total != 1 || sum.Pending != 1 ||
				sum.Failed+sum.Succeeded != 0 || len(sum.Jobs) != 1 || sum.Jobs[0] != job || sum.Failures == nil {
				t.Errorf("--json summary %q (%v): want waited false, job %s pending", r.stdout, err, job)
			}
			e := decode[map[string]map[string]string](t, r.stderr)
			if e["error"]["code"] != "tenant_suspended" || e["error"]["kind"] != "denied" || e["error"]["message"] != why ||
				e["error"]["hint"] != "an operator can resume it: docex tenant resume acme" {
				t.Errorf("--json error %+v", e["error"])
			}
			continue
		}
		if !strings.HasPrefix(r.stdout, "pipeline three: 1 document(s): 0 done, 0 failed, 1 pending, 0 step run(s), 0 skipped (cache), ") {
			t.Errorf("text summary %q: want the job pending", r.stdout)
		}
		if want := "docex: " + why + "\nhint: an operator can resume it: docex tenant resume acme\n"; r.stderr != want {
			t.Errorf("stderr %q, want %q", r.stderr, want)
		}
	}
}

// TestPipelineRunWaitTenantDeleted: a tenant deleted while pipeline run
// --wait follows its jobs ended the wait with "unknown tenant", said that
// the jobs not finished stay queued with a command that then fails (exit
// 4), and hinted at creating the tenant; deleted and created again, with
// `job "ID" not found` (exit 3). The jobs went with the tenant: the
// error now says it was deleted while waiting, with no queued jobs to
// list, and keeps the exit code of a tenant gone (4, code
// tenant_unknown) and the summary as far as it got (waited false).
func TestPipelineRunWaitTenantDeleted(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "delwait", testRunWaitTenantDeleted)
}

func testRunWaitTenantDeleted(t *testing.T, h *harness) {
	pipelineSetup(t, h, "acme")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const hint = "nothing is left to wait for: the tenant's documents and jobs were deleted with it (an operator lists the tenants with docex tenant list)"
	for i, c := range []struct {
		format   string
		recreate bool // created again with the same id (another incarnation)
	}{{"--json", false}, {"text", false}, {"text", true}, {"--json", true}} {
		tn := fmt.Sprintf("t%d", i)
		h.ok("tenant", "create", tn)
		u := []string{"--tenant", tn, "--user", "alice", "--roles", "admin"}
		with := func(args ...string) []string { return append(args, u...) }
		for _, p := range []string{"split", "upper", "tag"} {
			h.ok(with("plugin", "install", filepath.Join(root, "testplugins", p))...)
		}
		h.ok(with("pipeline", "create", h.file("three.toml", threeStepsTOML))...)
		h.ok(with("basket", "create", "plain")...)
		id := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file(fmt.Sprintf("d%d.txt", i), fmt.Sprintf("deleted %d", i)), "-q")...).stdout)
		done, job := startWait(t, h, with, id, c.format == "--json")
		h.ok("tenant", "delete", tn, "--yes")
		if c.recreate {
			h.ok("tenant", "create", tn)
		}
		var r result
		select {
		case r = <-done:
		case <-time.After(2 * time.Minute): // a bound on a hung test
			t.Fatalf("%+v: pipeline run --wait did not end once its tenant was deleted", c)
		}
		if r.code != exitDenied {
			t.Fatalf("%+v: exit %d, want %d\nstdout: %s\nstderr: %s", c, r.code, exitDenied, r.stdout, r.stderr)
		}
		why := fmt.Sprintf(`stopped waiting for the jobs of pipeline three: tenant %q was deleted while waiting for its jobs: they were deleted with it`, tn)
		if c.format == "--json" {
			var sum struct {
				Jobs                   []string
				Waited                 bool
				Total, Pending, Failed int
				Succeeded              int
			}
			if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Waited || sum.Total != 1 || sum.Pending != 1 ||
				sum.Failed+sum.Succeeded != 0 || len(sum.Jobs) != 1 || sum.Jobs[0] != job {
				t.Errorf("%+v: --json summary %q (%v): want waited false, job %s pending", c, r.stdout, err, job)
			}
			e := decode[map[string]map[string]string](t, r.stderr)
			if e["error"]["code"] != "tenant_unknown" || e["error"]["kind"] != "denied" || e["error"]["message"] != why || e["error"]["hint"] != hint {
				t.Errorf("%+v: --json error %+v", c, e["error"])
			}
			continue
		}
		if !strings.HasPrefix(r.stdout, "pipeline three: 1 document(s): 0 done, 0 failed, 1 pending, ") {
			t.Errorf("%+v: text summary %q: want the job pending", c, r.stdout)
		}
		if want := "docex: " + why + "\nhint: " + hint + "\n"; r.stderr != want {
			t.Errorf("%+v: stderr %q, want %q", c, r.stderr, want)
		}
	}
}

// TestWorkerTenantsDeleted: docex worker --tenants, every one of whose
// tenants was deleted while it ran, stops with an error naming them (exit
// 3, as at its start for a tenant that does not exist) instead of polling
// the deleted tenant forever, warning about once a second.
func TestWorkerTenantsDeleted(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "wkdel", func(t *testing.T, h *harness) {
		pipelineSetup(t, h, "acme")
		errb := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker", "--tenants", "acme"}
			done <- runEnv(context.Background(), args, io.Discard, errb, func(k string) string { return h.env[k] })
		}()
		// Started (past the check of --tenants: a tenant deleted before
		// is refused at once, exit 3 too, with another message).
		hung := time.After(2 * time.Minute) // a bound on a hung test, not a latency bound
		for !strings.Contains(errb.String(), "worker started") {
			select {
			case err := <-done:
				t.Fatalf("worker ended before it started: %v\n%s", err, errb.String())
			case <-hung:
				t.Fatalf("no worker started line:\n%s", errb.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		h.ok("tenant", "delete", "acme", "--yes")
		var r result
		select {
		case err := <-done:
			r = result{code: exitCode(err), stderr: errb.String()}
		case <-hung:
			t.Fatal("docex worker --tenants acme did not stop once acme was deleted")
		}
		want := "docex: --tenants: tenant \"acme\" was deleted: the worker has no tenant left to serve\n" +
			"hint: docex tenant list shows the tenants: start the worker with --tenants naming existing ones, or --all\n"
		if r.code != exitNotFound || !strings.HasSuffix(r.stderr, want) || strings.Count(r.stderr, `"tenant deleted: no longer served"`) != 1 {
			t.Fatalf("exit %d, stderr:\n%s\nwant exit %d, one log line saying acme is no longer served, ending with:\n%s", r.code, r.stderr, exitNotFound, want)
		}
	})
}

// loopPlugin copies the loop test plugin (it spins until its timeout)
// into a temporary directory with timeout_ms set to timeoutMS, and
// returns the directory.
func loopPlugin(t *testing.T, timeoutMS int) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "loop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"plugin.toml", "loop.wasm"} {
		b, err := os.ReadFile(filepath.Join(root, "testplugins", "loop", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "plugin.toml" {
			b = []byte(strings.Replace(string(b), "timeout_ms = 200", fmt.Sprintf("timeout_ms = %d", timeoutMS), 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
