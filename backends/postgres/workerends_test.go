package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/google/uuid"
)

// scriptRuntime is an engine.PluginRuntime of Go plugins: each call of
// the plugin named N is made by run[N], given the number of that call
// (1 for the plugin's first).
type scriptRuntime struct {
	run   map[string]func(ctx context.Context, n int) (*pluginapi.Result, error)
	mu    sync.Mutex
	calls map[string]int
}

func (s *scriptRuntime) LoadRunner(_ context.Context, m *pluginapi.Manifest, module []byte) (pluginapi.Runner, error) {
	if err := m.VerifyModule(module); err != nil {
		return nil, err
	}
	return scriptRunner{s: s, name: m.Name}, nil
}

func (s *scriptRuntime) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

type scriptRunner struct {
	s    *scriptRuntime
	name string
}

func (r scriptRunner) Run(ctx context.Context, _ pluginapi.Call) (*pluginapi.Result, error) {
	r.s.mu.Lock()
	r.s.calls[r.name]++
	n := r.s.calls[r.name]
	r.s.mu.Unlock()
	return r.s.run[r.name](ctx, n)
}

func (scriptRunner) ReleaseTenant(context.Context, string) error { return nil }
func (scriptRunner) Close(context.Context) error                 { return nil }

// waitGate waits until release is closed, or ctx ends (a host failure).
func waitGate(ctx context.Context, release <-chan struct{}) (*pluginapi.Result, error) {
	select {
	case <-release:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", pluginapi.ErrHostFailure, ctx.Err())
	}
	return &pluginapi.Result{Status: pluginapi.StatusOK, Metadata: map[string]any{"gated": true}}, nil
}

// TestWorkerEndedDeliveryNeverReturns: a River job whose worker ended
// the job itself, failed or cancelled, and was killed before River
// completed the River job (River completes it in a transaction of its
// own, after the work function returned: the job's end is committed
// first), never delivers the job again: River rescues it after the lease
// and delivers it, and the worker completes it without handling the job.
// A job the worker failed was written without ending its River jobs:
// once the job was retried, the rescued delivery took the retried job,
// still running, over as from a killed worker (its attempt recorded lost,
// job.attempt_lost, and another attempt started). A job the worker
// cancelled had its River jobs ended already, as by `job cancel`
// (tx.UpdateJob): that case pins it. The killed worker is simulated in
// River's table: once the worker ended the job and River completed the
// River job, the River job is set running again, held by a worker that
// no longer exists, and set available (as River's rescuer and scheduler
// would, a lease later) once the retried job's step runs (the step waits
// meanwhile), or at once when the job is not retried.
func TestWorkerEndedDeliveryNeverReturns(t *testing.T) {
	type fixture struct {
		admin   *engine.Session
		id      string // the job
		hold    chan struct{}
		release chan struct{}
	}
	for _, tc := range []struct {
		name     string
		pipeline string
		run      func(f *fixture) map[string]func(ctx context.Context, n int) (*pluginapi.Result, error)
		// end waits for the step of the job's first attempt (rt counts
		// its calls), then has the worker end the job.
		end   func(t *testing.T, f *fixture, rt *scriptRuntime)
		want  string // the state the worker ends the job in
		retry bool   // the job is retried, and its retried attempt holds its step when the stale delivery comes
	}{
		{
			name:     "failed: a step failed permanently",
			pipeline: "name = \"p\"\nmax_attempts = 3\n[[steps]]\nname = \"g\"\nplugin = \"gate\"\n",
			run: func(f *fixture) map[string]func(ctx context.Context, n int) (*pluginapi.Result, error) {
				return map[string]func(ctx context.Context, n int) (*pluginapi.Result, error){
					"gate": func(ctx context.Context, n int) (*pluginapi.Result, error) {
						if n == 1 {
							return nil, fmt.Errorf("%w: boom", pluginapi.ErrPluginTrap) // permanent: the job fails at once
						}
						return waitGate(ctx, f.release)
					},
				}
			},
			end:   func(*testing.T, *fixture, *scriptRuntime) {},
			want:  driver.JobFailed,
			retry: true,
		},
		{
			name: "cancelled: a derived document deleted while the job ran",
			pipeline: "name = \"p\"\nmax_attempts = 3\n[[steps]]\nname = \"a\"\nplugin = \"emit\"\n" +
				"[[steps]]\nname = \"g\"\nplugin = \"gate\"\ninput = \"a\"\n",
			run: func(f *fixture) map[string]func(ctx context.Context, n int) (*pluginapi.Result, error) {
				return map[string]func(ctx context.Context, n int) (*pluginapi.Result, error){
					"emit": func(context.Context, int) (*pluginapi.Result, error) {
						return &pluginapi.Result{Status: pluginapi.StatusOK, Derived: []pluginapi.DerivedDocument{
							{Name: "part.txt", ContentType: "text/plain", Content: []byte("a part")}}}, nil
					},
					"gate": func(ctx context.Context, n int) (*pluginapi.Result, error) {
						if n == 1 {
							return waitGate(ctx, f.hold)
						}
						return waitGate(ctx, f.release)
					},
				}
			},
			end: func(t *testing.T, f *fixture, rt *scriptRuntime) {
				ctx := context.Background()
				deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
				for rt.count("gate") == 0 {
					if time.Now().After(deadline) {
						t.Fatal("timed out waiting for step g to run")
					}
					time.Sleep(10 * time.Millisecond)
				}
				j, err := f.admin.Job(ctx, f.id)
				if err != nil {
					t.Fatal(err)
				}
				if len(j.Steps) != 1 || len(j.Steps[0].Outputs) != 1 {
					t.Fatalf("steps %+v, want step a's one output", j.Steps)
				}
				if err := f.admin.DeleteDocument(ctx, j.Steps[0].Outputs[0]); err != nil {
					t.Fatal(err)
				}
				close(f.hold)
			},
			want: driver.JobCancelled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			be := openBackend(t, Config{MaxConns: 16})
			f := &fixture{hold: make(chan struct{}), release: make(chan struct{})}
			rt := &scriptRuntime{run: tc.run(f), calls: map[string]int{}}
			released := sync.OnceFunc(func() { close(f.release) })
			defer released()
			eng, admin := acmeEngine(t, be, rt)
			f.admin = admin
			for _, p := range []struct{ name, caps string }{
				{"gate", `"content.read", "metadata.write"`},
				{"emit", `"content.read", "documents.emit"`},
			} {
				module := []byte(p.name)
				sum := sha256.Sum256(module)
				manifest := fmt.Sprintf("name = %q\nversion = \"1.0.0\"\nabi_version = 1\nmodule = \"m\"\nsha256 = %q\ncapabilities = [%s]\n", p.name, hex.EncodeToString(sum[:]), p.caps)
				if _, err := f.admin.InstallPlugin(ctx, []byte(manifest), module); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.admin.CreatePipeline(ctx, []byte(tc.pipeline)); err != nil {
				t.Fatal(err)
			}
			basket, err := f.admin.CreateBasket(ctx, "in")
			if err != nil {
				t.Fatal(err)
			}
			add, err := f.admin.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("gate me")})
			if err != nil {
				t.Fatal(err)
			}
			ids, err := f.admin.RunPipeline(ctx, "p", engine.RunTarget{DocumentIDs: []string{add.Document.ID}})
			if err != nil {
				t.Fatal(err)
			}
			f.id = ids[0]
			riverJob := be.queue.schema
			var stale int64
			if err := be.pool.QueryRow(ctx, `SELECT id FROM `+quote(riverJob)+`.river_job WHERE args->>'job' = $1`, f.id).Scan(&stale); err != nil {
				t.Fatal(err)
			}

			logs, stopWorker := loggedWorker(t, eng)
			defer func() {
				released()
				stopWorker()
			}()
			riverState := func() string { return riverJobState(t, be, riverJob, stale) }
			job := func() engine.JobInfo {
				t.Helper()
				j, err := f.admin.Job(ctx, f.id)
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
			wait := func(what string, cond func() bool) {
				t.Helper()
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s (gate calls %d, stale River job %s, job %+v)", what, rt.count("gate"), riverState(), job())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}

			tc.end(t, f, rt)
			wait("the worker to end the job "+tc.want, func() bool { return job().State == tc.want })
			wait("River to complete the worker's River job", func() bool { return riverState() == "completed" })
			// The worker killed after the job's end committed, before
			// River completed its River job.
			exec(t, be, `UPDATE `+quote(riverJob)+`.river_job SET state = 'running', finalized_at = NULL, attempted_at = now(),
				attempted_by = ARRAY['worker-killed'] WHERE id = $1`, stale)
			gateCalls := rt.count("gate")
			if tc.retry {
				if err := f.admin.RetryJob(ctx, f.id); err != nil {
					t.Fatal(err)
				}
				wait("the retried job's step to run", func() bool { return rt.count("gate") > gateCalls })
			}
			before := job()
			// The rescue: the killed worker's River job is delivered again.
			exec(t, be, `UPDATE `+quote(riverJob)+`.river_job SET state = 'available', scheduled_at = now() WHERE id = $1`, stale)
			// Either it is completed without handling the job, or its
			// delivery takes the job over (another attempt starts) or
			// handles it (a final job: completed, the log line missing).
			wait("the stale delivery", func() bool {
				return riverState() == "completed" || len(job().History) > len(before.History)
			})
			released()
			if tc.retry {
				wctx2, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				if _, err := f.admin.WaitJobs(wctx2, ids, 20*time.Millisecond, nil); err != nil {
					t.Fatalf("wait for the job: %v", err)
				}
			}
			wait("the stale River job to end", func() bool { return riverState() == "completed" })

			j := job()
			switch {
			case tc.retry && (j.State != driver.JobSucceeded || len(j.History) != len(before.History)):
				t.Errorf("job: %s, history %+v; want succeeded at the one attempt after the retry", j.State, j.History)
			case tc.retry:
				if last := j.History[len(j.History)-1]; last.EndedAt.IsZero() || last.Error != "" {
					t.Errorf("the retry's attempt reads %+v; want it ended without error", last)
				}
			case j.State != tc.want || len(j.History) != len(before.History) || j.Attempts != before.Attempts:
				t.Errorf("job: %s, %d attempts %+v; want it left %s, %d attempts %+v", j.State, j.Attempts, j.History, tc.want, before.Attempts, before.History)
			}
			if n, want := rt.count("gate"), gateCalls+map[bool]int{false: 0, true: 1}[tc.retry]; n != want {
				t.Errorf("step g's plugin ran %d times, want %d", n, want)
			}
			log, err := f.admin.Audit(ctx, docex.Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range log {
				if a.Target == f.id && a.Operation == "job.attempt_lost" {
					t.Errorf("an attempt was recorded lost: %+v", a)
				}
			}
			logged := false
			for _, l := range strings.Split(logs.String(), "\n") {
				logged = logged || strings.Contains(l, "dropped a superseded delivery (its job was cancelled or failed while it was held)") &&
					strings.Contains(l, `"river_job":`+strconv.FormatInt(stale, 10)+`,`) && strings.Contains(l, `"job":"`+f.id+`"`)
			}
			if !logged {
				t.Errorf("no log line %q naming River job %d and job %s", "dropped a superseded delivery (its job was cancelled or failed while it was held)", stale, f.id)
			}
		})
	}
}

// TestFinalJobWritesEndDeliveries: a job written failed or cancelled, by
// UpdateJob or by UpdateJobs (driver.JobsTx: the effect of UpdateJob on
// each job), has its River job that waits to be delivered deleted and
// the one a worker holds marked superseded, in the write's transaction;
// a job written succeeded has its River jobs left as they are (it is
// never run again). Before, only UpdateJob of a cancelled job ended them:
// a failed job's River jobs, and those of a job UpdateJobs wrote, were
// left to deliver the job again after a retry.
func TestFinalJobWritesEndDeliveries(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t, Config{}, true)
	if err := b.CreateTenant(ctx, docex.Tenant{ID: "acme", DisplayName: "acme", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	st, err := b.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	riverJob := quote(b.queue.schema) + ".river_job"
	for _, batch := range []bool{false, true} {
		for _, state := range []string{driver.JobFailed, driver.JobCancelled, driver.JobSucceeded} {
			name := "UpdateJob " + state
			if batch {
				name = "UpdateJobs " + state
			}
			t.Run(name, func(t *testing.T) {
				id, now := uuid.Must(uuid.NewV7()).String(), time.Now()
				j := driver.JobRecord{ID: id, Pipeline: "p", Version: 1, DocumentID: uuid.Must(uuid.NewV7()).String(),
					State: driver.JobQueued, MaxAttempts: 3, RunAt: now, User: docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"writer"}},
					CreatedAt: now, UpdatedAt: now}
				if err := st.Write(ctx, func(tx driver.Tx) error { return tx.InsertJob(ctx, j) }); err != nil {
					t.Fatal(err)
				}
				// The River job a worker holds, and another that waits.
				held := queryInt(t, b, `SELECT id FROM `+riverJob+` WHERE args->>'job' = $1`, id)
				exec(t, b, `UPDATE `+riverJob+` SET state = 'running', attempt = 1, attempted_at = now(), attempted_by = ARRAY['w'] WHERE id = $1`, held)
				if err := st.Write(ctx, func(dtx driver.Tx) error {
					ptx := dtx.(*tx)
					return ptx.b.queue.enqueueTx(ctx, ptx.q, ptx.tenant, id, now)
				}); err != nil {
					t.Fatal(err)
				}
				j.State, j.Attempts, j.UpdatedAt = state, 1, time.Now()
				if err := st.Write(ctx, func(tx driver.Tx) error {
					if batch {
						return tx.(driver.JobsTx).UpdateJobs(ctx, []driver.JobRecord{j})
					}
					return tx.UpdateJob(ctx, j)
				}); err != nil {
					t.Fatal(err)
				}
				rows, err := b.pool.Query(ctx, `SELECT id, state, coalesce((metadata->>$2)::boolean, false) FROM `+riverJob+` WHERE args->>'job' = $1 ORDER BY id`, id, supersededKey)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for rows.Next() {
					var (
						rid    int64
						rstate string
						marked bool
					)
					if err := rows.Scan(&rid, &rstate, &marked); err != nil {
						t.Fatal(err)
					}
					got = append(got, fmt.Sprintf("%s superseded=%t held=%t", rstate, marked, rid == held))
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				want := []string{"running superseded=true held=true"}
				if state == driver.JobSucceeded {
					want = []string{"running superseded=false held=true", "available superseded=false held=false"}
				}
				if strings.Join(got, "; ") != strings.Join(want, "; ") {
					t.Errorf("the job's River jobs: %q, want %q", got, want)
				}
			})
		}
	}
}
