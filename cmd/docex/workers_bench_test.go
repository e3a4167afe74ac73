package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envBenchProcs runs TestWorkerProcessesPostgres, a measurement of minutes.
const envBenchProcs = "DOCEX_BENCH_WORKER_PROCS"

// pgHarness returns a harness whose docex.yaml uses PostgreSQL (schemas
// dropped when the test ends) and the environment its worker children
// need; the test is skipped without DOCEX_TEST_POSTGRES_DSN (outside CI).
// onBothBackends runs f, in parallel subtests, on a SQLite harness and on
// a PostgreSQL one (pgHarness with tag).
func onBothBackends(t *testing.T, tag string, f func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); f(t, newHarness(t)) })
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		h, _ := pgHarness(t, tag)
		f(t, h)
	})
}

func pgHarness(t *testing.T, tag string) (*harness, []string) {
	dsn := testPostgresDSN(t)
	h := newHarness(t)
	schema := fmt.Sprintf("docex_%s_%d", tag, time.Now().UnixNano()%1_000_000_000)
	prefix := fmt.Sprintf("%s%d_", tag, time.Now().UnixNano()%100000)
	h.env["PGTEST_DSN"] = dsn
	h.file("docex.yaml", fmt.Sprintf("config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    schema: %s\ndatabase:\n  type: postgres\n  postgres:\n    dsn_env: PGTEST_DSN\n    tenant_schema_prefix: %s\nstorage:\n  documents:\n    type: database\n", schema, prefix))
	t.Cleanup(func() { // nothing left in a shared database: every tenant's schema too
		dropSchemasWithPrefix(t, dsn, prefix)
		dropSchemas(t, dsn, schema, schema+"_local", schema+"_jobs")
	})
	return h, []string{"PGTEST_DSN=" + dsn}
}

// spawnWorker starts "docex worker" in a child process (this test binary
// re-executed as TestWorkerChild).
func spawnWorker(t *testing.T, h *harness, env []string, args ...string) *exec.Cmd {
	args = append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "worker"}, args...)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), envWorkerChild+"=1", "DOCEX_TEST_WORKER_ARGS="+strings.Join(args, "\x1f")), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestWorkerProcessesPostgres measures documents per second through the
// 3-step pipeline with one and with two "docex worker" processes
// (concurrency 8 each) sharing the PostgreSQL queue, in one run, and
// checks that no job is lost or run twice: every job succeeded at its
// first attempt, each document has its 4 derived documents and 4 lineage
// edges, once. Run with DOCEX_BENCH_WORKER_PROCS=1 (and
// DOCEX_BENCH_WORKER_DOCS=N, default 300); results are logged.
func TestWorkerProcessesPostgres(t *testing.T) {
	if os.Getenv(envBenchProcs) == "" {
		t.Skip("a measurement: set " + envBenchProcs + "=1")
	}
	n := 300
	if v := os.Getenv("DOCEX_BENCH_WORKER_DOCS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatal(err)
		}
	}
	rates := map[int]float64{}
	for _, procs := range []int{1, 2} {
		h, env := pgHarness(t, fmt.Sprintf("wp%d", procs))
		u := pipelineSetup(t, h, "acme")
		with := func(args ...string) []string { return append(args, u...) }
		var files []string
		for i := range n {
			files = append(files, h.file(fmt.Sprintf("d%04d.txt", i), fmt.Sprintf("%04d worker processes document %d", i, i)))
		}
		h.ok(with(append([]string{"doc", "add", "inbox"}, files...)...)...) // the bound basket enqueues n jobs
		start := time.Now()
		var workers []*exec.Cmd
		for range procs {
			workers = append(workers, spawnWorker(t, h, env, "--concurrency", "8", "--lease", "10m"))
		}
		succeeded := func() []map[string]any {
			return decode[[]map[string]any](t, h.ok(with("job", "list", "--state", "succeeded", "--limit", "100000", "--json")...).stdout)
		}
		deadline := time.Now().Add(20 * time.Minute)
		for len(succeeded()) < n && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		elapsed := time.Since(start)
		for _, w := range workers {
			_ = w.Process.Signal(syscall.SIGTERM)
			if err := w.Wait(); err != nil {
				t.Errorf("worker after SIGTERM: %v (want exit 0)", err)
			}
		}
		jobs := succeeded()
		if len(jobs) != n {
			t.Fatalf("%d processes: %d of %d jobs succeeded", procs, len(jobs), n)
		}
		for _, j := range jobs {
			if a, _ := j["attempts"].(float64); a != 1 {
				t.Fatalf("job %v: %v attempts, want 1 (delivered twice?)", j["id"], j["attempts"])
			}
		}
		listed := decode[[]doc](t, h.ok(with("doc", "list", "inbox", "--limit", "100000", "--json")...).stdout)
		if len(listed) != n*5 {
			t.Fatalf("basket holds %d documents, want %d", len(listed), n*5)
		}
		for _, d := range listed {
			if !strings.HasPrefix(d.Name, "d") || !strings.HasSuffix(d.Name, ".txt") {
				continue
			}
			lin := decode[struct {
				Descendants []struct {
					DerivedID string `json:"derived_id"`
				} `json:"descendants"`
			}](t, h.ok(with("doc", "lineage", d.ID, "--json")...).stdout)
			if len(lin.Descendants) != 4 {
				t.Fatalf("document %s has %d lineage edges, want 4", d.Name, len(lin.Descendants))
			}
		}
		rates[procs] = float64(n) / elapsed.Seconds()
		t.Logf("%d worker process(es): %d documents in %s: %.1f docs/s (load average %s)", procs, n, elapsed.Round(time.Millisecond), rates[procs], loadAvg())
	}
	t.Logf("2 processes / 1 process: %.2fx", rates[2]/rates[1])
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
