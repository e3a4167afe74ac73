package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// riverStates returns the number of River jobs of queue by state.
func riverStates(t *testing.T, be *Backend, queue string) map[string]int {
	t.Helper()
	rows, err := be.pool.Query(context.Background(), `SELECT state::text, count(*) FROM `+quote(be.queue.schema)+`.river_job WHERE queue = $1 GROUP BY 1`, queue)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTenantDeletedWhileJobsRunCancelsThem: a tenant deleted while a
// worker (of every tenant, --all) runs its jobs leaves no River job
// behind: the deliveries the worker held, whose attempts then fail to
// write (the tenant's schema is gone: docex.ErrTenantUnknown), are
// cancelled with the reason "tenant ... was deleted". Before, the failed
// write snoozed them (driver.Again): River made them available again in
// the queue the worker had just stopped serving, where they waited for
// ever (fleet probe F1: 19 of 400 jobs left available). Meanwhile a
// tenant created after the delete is served.
func TestTenantDeletedWhileJobsRunCancelsThem(t *testing.T) {
	ctx := context.Background()
	be := openBackend(t, Config{MaxConns: 16})
	release := make(chan struct{})
	released := sync.OnceFunc(func() { close(release) })
	defer released()
	// The gate does not stop when its context is cancelled (a call that
	// does not heed it at once): the held jobs run on after the worker
	// dropped acme (which cancels their contexts; conformance
	// DeletedWhileStepRuns has calls that stop), until released.
	rt := &scriptRuntime{calls: map[string]int{}, run: map[string]func(ctx context.Context, n int) (*pluginapi.Result, error){
		"gate": func(context.Context, int) (*pluginapi.Result, error) { return waitGate(context.Background(), release) },
	}}
	eng, admin := acmeEngine(t, be, rt)
	module := []byte("gate")
	sum := sha256.Sum256(module)
	manifest := fmt.Sprintf("name = \"gate\"\nversion = \"1.0.0\"\nabi_version = 1\nmodule = \"m\"\nsha256 = %q\ncapabilities = [\"content.read\", \"metadata.write\"]\n", hex.EncodeToString(sum[:]))
	if _, err := admin.InstallPlugin(ctx, []byte(manifest), module); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreatePipeline(ctx, []byte("name = \"p\"\n[[steps]]\nname = \"g\"\nplugin = \"gate\"\n")); err != nil {
		t.Fatal(err)
	}
	basket, err := admin.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for i := range 6 {
		add, err := admin.AddDocument(ctx, basket.ID, engine.NewDocument{Name: fmt.Sprintf("d%d.txt", i), Content: strings.NewReader(fmt.Sprintf("doc %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, add.Document.ID)
	}
	if _, err := admin.RunPipeline(ctx, "p", engine.RunTarget{DocumentIDs: docs}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { // every tenant: it stops serving acme once acme is deleted
		done <- eng.Worker(engine.WorkerConfig{Concurrency: 4, Batch: 2, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond,
			ShutdownTimeout: 30 * time.Second, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}).Run(wctx)
	}()
	defer func() {
		released()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	deadline := time.Now().Add(5 * time.Minute) // a bound on a hung test, not a measurement
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (River jobs of t_acme %v)", what, riverStates(t, be, "t_acme"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("the worker to run jobs", func() bool { return rt.count("gate") > 0 })
	if err := eng.Provisioner("ops").Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	// The delete deleted the River jobs no worker held.
	// Those held waiting for a slot may be cancelled already: the
	// worker's tenant watch cancels the held jobs of a deleted tenant.
	s := riverStates(t, be, "t_acme")
	held := s["running"] + s["cancelled"]
	if s["running"] == 0 || held != s["running"]+s["cancelled"] || len(s) > 2 || len(s) == 2 && s["cancelled"] == 0 {
		t.Fatalf("after the delete: River jobs %v, want held ones only (running, or cancelled by the worker)", s)
	}
	wait("the worker to stop serving acme", func() bool { return strings.Contains(logs.String(), "tenant deleted: no longer served") })
	// A tenant created meanwhile is served while acme's held jobs still
	// run: the worker adds its queue without waiting for them. Before,
	// River's Add waited for the removal of acme's queue, which waits for
	// its running jobs (and a stop of the worker meanwhile waited too).
	if _, err := eng.Provisioner("ops").Create(ctx, "globex", "Globex"); err != nil {
		t.Fatal(err)
	}
	gadmin := eng.As(docex.UserContext{UserID: "u-globex", TenantID: "globex", Roles: []string{"admin"}})
	if _, err := gadmin.InstallPlugin(ctx, []byte(manifest), module); err != nil {
		t.Fatal(err)
	}
	// Its step filters the document out: no plugin call, which would
	// wait for a run slot that acme's held calls may all take.
	if _, err := gadmin.CreatePipeline(ctx, []byte("name = \"p\"\n[[steps]]\nname = \"g\"\nplugin = \"gate\"\naccept = [\"image/png\"]\n")); err != nil {
		t.Fatal(err)
	}
	gb, err := gadmin.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	gadd, err := gadmin.AddDocument(ctx, gb.ID, engine.NewDocument{Name: "g.txt", Content: strings.NewReader("globex")})
	if err != nil {
		t.Fatal(err)
	}
	gids, err := gadmin.RunPipeline(ctx, "p", engine.RunTarget{DocumentIDs: []string{gadd.Document.ID}})
	if err != nil {
		t.Fatal(err)
	}
	wait("globex's job to succeed while acme's held jobs run", func() bool {
		j, err := gadmin.Job(ctx, gids[0])
		if err != nil {
			t.Fatal(err)
		}
		return j.State == driver.JobSucceeded
	})
	// Those held waiting for a slot were cancelled meanwhile; those in
	// the step wait for the gate.
	if riverStates(t, be, "t_acme")["running"] == 0 {
		t.Fatalf("acme's held jobs ended before globex's job ran: River jobs %v", riverStates(t, be, "t_acme"))
	}
	released() // the held attempts end, and fail to write
	wait("the held River jobs to end", func() bool { return riverStates(t, be, "t_acme")["running"] == 0 })
	if s := riverStates(t, be, "t_acme"); s["cancelled"] != held || len(s) != 1 {
		t.Errorf("River jobs of the deleted tenant: %v, want the %d held cancelled", s, held)
	}
	rows, err := be.pool.Query(ctx, `SELECT coalesce(errors[array_length(errors, 1)]->>'error', '') FROM `+quote(be.queue.schema)+`.river_job WHERE queue = 't_acme'`)
	if err != nil {
		t.Fatal(err)
	}
	reasons, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reasons {
		if !strings.HasSuffix(r, `cancelled: tenant "acme" was deleted`) {
			t.Errorf("River job's last error %q; want the reason %q", r, `cancelled: tenant "acme" was deleted`)
		}
	}
}

// TestWorkerSweepsDeletedTenantsJobs: the River jobs of a tenant deleted
// while its worker was killed holding them (running: the delete leaves
// them), which River's rescuer makes available again a lease later, are
// deleted by the next worker that starts (and every sweepEvery), so that
// none waits for ever in a queue no worker serves; the River jobs of
// live tenants stay, whatever their state. Before, they stayed available
// until a tenant of the same id was created again (fleet probe F1, its
// second order).
func TestWorkerSweepsDeletedTenantsJobs(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t, Config{}, true)
	for _, id := range []string{"zeta", "globex"} {
		if err := b.CreateTenant(ctx, docex.Tenant{ID: id, DisplayName: id, CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
			t.Fatal(err)
		}
		st, err := b.OpenTenant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for i := range 4 {
			err = st.Write(ctx, func(tx driver.Tx) error {
				return tx.InsertJob(ctx, driver.JobRecord{ID: uuid.Must(uuid.NewV7()).String(), Pipeline: "p", Version: 1,
					DocumentID: uuid.Must(uuid.NewV7()).String(), State: driver.JobQueued, MaxAttempts: 3, RunAt: now.Add(time.Hour),
					User: docex.UserContext{UserID: "u", TenantID: id, Roles: []string{"writer"}}, CreatedAt: now, UpdatedAt: now})
			})
			if err != nil {
				t.Fatalf("job %d of %s: %v", i, id, err)
			}
		}
		st.Close()
	}
	rj := quote(b.queue.schema) + `.river_job`
	// Every worker killed while it held zeta's jobs.
	exec(t, b, `UPDATE `+rj+` SET state = 'running', attempted_at = now(), attempted_by = ARRAY['worker-killed'], scheduled_at = now() WHERE queue = 't_zeta'`)
	// globex's: one of each state a live tenant's job waits in.
	exec(t, b, `WITH j AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM `+rj+` WHERE queue = 't_globex')
		UPDATE `+rj+` r SET state = (ARRAY['available', 'pending', 'retryable', 'scheduled'])[j.n]::`+quote(b.queue.schema)+`.river_job_state
		FROM j WHERE r.id = j.id`)
	if err := b.DeleteTenant(ctx, "zeta", testAudit("tenant.delete")); err != nil {
		t.Fatal(err)
	}
	if s := riverStates(t, b, "t_zeta"); s["running"] != 4 || len(s) != 1 {
		t.Fatalf("after the delete: River jobs %v, want the 4 running ones", s)
	}
	// River's rescuer, a lease later: retryable (it waits for its time),
	// then available.
	exec(t, b, `UPDATE `+rj+` SET state = CASE WHEN id % 2 = 0 THEN 'available' ELSE 'retryable' END::`+quote(b.queue.schema)+`.river_job_state WHERE queue = 't_zeta'`)

	logs := &syncBuffer{}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	handled := make(chan driver.Delivery, 16)
	go func() {
		done <- b.Jobs().Work(wctx, driver.WorkConfig{Poll: 20 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
			Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))},
			func(_ context.Context, d driver.Delivery) driver.Outcome {
				handled <- d
				return driver.Outcome{Kind: driver.Again, After: time.Hour}
			})
	}()
	deadline := time.Now().Add(5 * time.Minute) // a bound on a hung test, not a measurement
	for !strings.Contains(logs.String(), "worker started") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for riverStates(t, b, "t_zeta")["available"]+riverStates(t, b, "t_zeta")["retryable"] > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	close(handled)
	if s := riverStates(t, b, "t_zeta"); len(s) != 0 {
		t.Errorf("River jobs of the deleted tenant after a worker started: %v, want none", s)
	}
	swept := false
	for _, l := range strings.Split(logs.String(), "\n") {
		swept = swept || strings.Contains(l, `"msg":"deleted the queued jobs of deleted tenants"`) && strings.Contains(l, `"river_jobs":4`)
	}
	if !swept {
		t.Errorf("no log line of the sweep's 4 River jobs:\n%s", logs)
	}
	if s := riverStates(t, b, "t_globex"); len(s) != 4 || s["available"]+s["pending"]+s["retryable"]+s["scheduled"] != 4 {
		t.Errorf("River jobs of the live tenant: %v, want its 4 left as they were", s)
	}
	for d := range handled {
		if d.TenantID == "zeta" {
			t.Errorf("a job of the deleted tenant was delivered: %+v", d)
		}
	}
}
