package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// gateRuntime is an engine.PluginRuntime of one Go plugin, "gate": each
// call is counted and then waits until release is closed (or its context
// ends), so that a test holds a job's step running as long as it needs.
type gateRuntime struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (g *gateRuntime) LoadRunner(_ context.Context, m *pluginapi.Manifest, module []byte) (pluginapi.Runner, error) {
	if err := m.VerifyModule(module); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *gateRuntime) Run(ctx context.Context, _ pluginapi.Call) (*pluginapi.Result, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", pluginapi.ErrHostFailure, ctx.Err())
	}
	return &pluginapi.Result{Status: pluginapi.StatusOK, Metadata: map[string]any{"gated": true}}, nil
}

func (g *gateRuntime) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

func (g *gateRuntime) ReleaseTenant(context.Context, string) error { return nil }
func (g *gateRuntime) Close(context.Context) error                 { return nil }

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCancelledDeliveryNeverReturns: a River job left running by a worker
// killed before its job was cancelled (and retried) never delivers the
// job again: River rescues it after the lease and delivers it, and the
// worker completes it without handling the job. It took the retried job,
// still running, over as from a killed worker: the retry's attempt was
// recorded lost (job.attempt_lost) and another attempt started. The
// killed worker is simulated in River's table: its River job is set
// running before any worker runs, and set available again (as River's
// rescuer and scheduler would, a lease later) once the retried job's step
// runs; the step waits meanwhile.
func TestCancelledDeliveryNeverReturns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		started bool // the killed worker had started an attempt of the job
	}{
		{name: "killed before its attempt started"},
		{name: "killed while its attempt ran", started: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			be := openBackend(t, Config{MaxConns: 16})
			rt := &gateRuntime{release: make(chan struct{})}
			released := sync.OnceFunc(func() { close(rt.release) })
			defer released()
			eng, admin := acmeEngine(t, be, rt)
			module := []byte("gate")
			sum := sha256.Sum256(module)
			manifest := fmt.Sprintf("name = \"gate\"\nversion = \"1.0.0\"\nabi_version = 1\nmodule = \"m\"\nsha256 = %q\ncapabilities = [\"content.read\", \"metadata.write\"]\n", hex.EncodeToString(sum[:]))
			if _, err := admin.InstallPlugin(ctx, []byte(manifest), module); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.CreatePipeline(ctx, []byte("name = \"gated\"\nmax_attempts = 3\n[[steps]]\nname = \"g\"\nplugin = \"gate\"\n")); err != nil {
				t.Fatal(err)
			}
			basket, err := admin.CreateBasket(ctx, "in")
			if err != nil {
				t.Fatal(err)
			}
			add, err := admin.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("gate me")})
			if err != nil {
				t.Fatal(err)
			}
			ids, err := admin.RunPipeline(ctx, "gated", engine.RunTarget{DocumentIDs: []string{add.Document.ID}})
			if err != nil {
				t.Fatal(err)
			}
			id := ids[0]
			riverJob := be.queue.schema
			var stale int64
			if err := be.pool.QueryRow(ctx, `SELECT id FROM `+quote(riverJob)+`.river_job WHERE args->>'job' = $1`, id).Scan(&stale); err != nil {
				t.Fatal(err)
			}
			// The killed worker's hold, as River's fetch leaves it.
			exec(t, be, `UPDATE `+quote(riverJob)+`.river_job SET state = 'running', attempt = 1, attempted_at = now(),
				attempted_by = ARRAY['worker-killed'] WHERE id = $1`, stale)
			if tc.started {
				st, err := be.OpenTenant(ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				err = st.Write(ctx, func(tx driver.Tx) error {
					j, err := tx.Job(ctx, id)
					if err != nil {
						return err
					}
					j.State, j.Attempts = driver.JobRunning, 1
					j.Detail = []byte(`{"attempts": [{"n": 1, "started_at": "2026-01-02T03:04:05Z", "worker": "worker-killed"}]}`)
					return tx.UpdateJob(ctx, j)
				})
				st.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := admin.CancelJob(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := admin.RetryJob(ctx, id); err != nil {
				t.Fatal(err)
			}
			j, err := admin.Job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			before := len(j.History) // the killed worker's attempt, cancelled, when it started one
			if want := map[bool]int{false: 0, true: 1}[tc.started]; before != want {
				t.Fatalf("retried job's history %+v, want %d attempts", j.History, want)
			}

			logs, stopWorker := loggedWorker(t, eng)
			defer func() {
				released()
				stopWorker()
			}()
			riverState := func() string { return riverJobState(t, be, riverJob, stale) }
			deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
			wait := func(what string, cond func() bool) {
				t.Helper()
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s (gate calls %d, stale River job %s)", what, rt.count(), riverState())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			wait("the retried job's step to run", func() bool { return rt.count() > 0 })
			// The rescue: the killed worker's River job is delivered again.
			exec(t, be, `UPDATE `+quote(riverJob)+`.river_job SET state = 'available', scheduled_at = now() WHERE id = $1`, stale)
			// Either it is completed without handling the job, or its
			// delivery takes the job over: another attempt starts (its
			// step shares the running call of the same plugin on the same
			// input, and waits with it).
			wait("the stale delivery", func() bool {
				j, err := admin.Job(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return riverState() == "completed" || len(j.History) > before+1
			})
			released()
			wctx2, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if _, err := admin.WaitJobs(wctx2, ids, 20*time.Millisecond, nil); err != nil {
				t.Fatalf("wait for the job: %v", err)
			}
			wait("the stale River job to end", func() bool { return riverState() == "completed" })

			j, err = admin.Job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != driver.JobSucceeded || len(j.History) != before+1 {
				t.Errorf("job: %s, history %+v; want succeeded at one attempt after the retry", j.State, j.History)
			} else if last := j.History[before]; last.EndedAt.IsZero() || last.Error != "" {
				t.Errorf("the retry's attempt reads %+v; want it ended without error", last)
			}
			if n := rt.count(); n != 1 {
				t.Errorf("the step's plugin ran %d times, want once", n)
			}
			log, err := admin.Audit(ctx, docex.Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range log {
				if a.Target == id && a.Operation == "job.attempt_lost" {
					t.Errorf("the retry's attempt was recorded lost: %+v", a)
				}
			}
			logged := false
			for _, l := range strings.Split(logs.String(), "\n") {
				logged = logged || strings.Contains(l, "dropped a superseded delivery (its job was cancelled or failed while it was held)") &&
					strings.Contains(l, `"river_job":`+strconv.FormatInt(stale, 10)+`,`) && strings.Contains(l, `"job":"`+id+`"`)
			}
			if !logged {
				t.Errorf("no log line %q naming River job %d and job %s", "dropped a superseded delivery (its job was cancelled or failed while it was held)", stale, id)
			}
		})
	}
}

// loggedWorker starts a worker of tenant acme on eng that logs, as JSON
// from level info, into the returned buffer; stop stops it and fails t
// when it ended with an error.
func loggedWorker(t *testing.T, eng *engine.Engine) (logs *syncBuffer, stop func()) {
	t.Helper()
	logs = &syncBuffer{}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond,
			ShutdownTimeout: 30 * time.Second, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}).Run(wctx)
	}()
	return logs, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
}

// riverJobState returns the state of River job id in schema.
func riverJobState(t *testing.T, be *Backend, schema string, id int64) string {
	t.Helper()
	var s string
	if err := be.pool.QueryRow(context.Background(), `SELECT state FROM `+quote(schema)+`.river_job WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// acmeEngine bootstraps be for an engine running plugins on rt, provisions
// tenant acme and returns the engine (closed when t ends) and an admin
// session of acme.
func acmeEngine(t *testing.T, be *Backend, rt engine.PluginRuntime) (*engine.Engine, *engine.Session) {
	t.Helper()
	ctx := context.Background()
	cfg := engine.Config{MultiTenancy: true, BootstrapTenantID: "system", ContentDir: t.TempDir(), Sandbox: rt}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	if _, err := eng.Provisioner("test").Create(ctx, "acme", "ACME"); err != nil {
		t.Fatal(err)
	}
	return eng, eng.As(docex.UserContext{UserID: "u-acme", TenantID: "acme", Roles: []string{"admin"}})
}
