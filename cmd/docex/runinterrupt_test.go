package main

import (
	"bytes"
	"context"
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
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testRunWaitInterruptReleases(t, newHarness(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		h, _ := pgHarness(t, "interrupt")
		testRunWaitInterruptReleases(t, h)
	})
}

func testRunWaitInterruptReleases(t *testing.T, h *harness) {
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	// The loop plugin spins until its timeout: 8 s here, under the
	// worker's old 10 s shutdown timeout and long enough for the
	// interrupt to come while it spins, even on a loaded machine.
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
			b = []byte(strings.Replace(string(b), "timeout_ms = 200", "timeout_ms = 8000", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
	err = runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
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
