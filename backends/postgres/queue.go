package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// jobArgs are the arguments of the one River job kind docex enqueues: the
// tenant and the id of the job record in the tenant's schema, which holds
// everything else.
type jobArgs struct {
	Tenant string `json:"tenant"`
	Job    string `json:"job"`
}

// Kind implements river.JobArgs.
func (jobArgs) Kind() string { return "docex_pipeline_job" }

// riverMaxAttempts is River's attempt limit. The engine counts attempts
// in the tenant's job record and ends a job itself; River only redelivers.
const riverMaxAttempts = 1000

// defaultRescueAfter is how long River leaves a running job to a worker
// that stopped renewing it when WorkConfig.Lease is not set.
const defaultRescueAfter = time.Hour

// noStuckJobs is River's JobStuckThreshold: past its job timeout (the
// lease) a job is not stuck (River would log it so), since the handler's
// context does not follow that timeout (see Work).
const noStuckJobs = 50 * 365 * 24 * time.Hour

// riverQueue is the PostgreSQL driver.JobQueue: River, with its tables in
// the schema <bootstrap schema>_jobs (created by Bootstrap) and one River
// queue per tenant ("t_<id>"), so that each tenant has its own fetcher
// and concurrency limit.
type riverQueue struct {
	b      *Backend
	schema string

	once     sync.Once
	inserter *river.Client[pgx.Tx]
	err      error
}

// Jobs implements driver.Backend.
func (b *Backend) Jobs() driver.JobQueue { return b.queue }

// migrateRiver creates (or completes) River's schema and tables; it is
// idempotent, and concurrent calls (of any process) are serialised by a
// session advisory lock held on a connection of its own.
//
// The migration runs on a pool of its own (two connections: the lock's and
// the migrator's) so that it never waits for a connection of the backend's
// pool, which may be a single one held by the caller.
func (b *Backend) migrateRiver(ctx context.Context) error {
	pc := b.pool.Config().Copy()
	pc.MinConns, pc.MaxConns = 0, 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return b.wrap(err, "migrate job schema")
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return b.wrap(err, "migrate job schema")
	}
	defer conn.Release() // AfterRelease unlocks every advisory lock
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey("river-migrate", b.queue.schema)); err != nil {
		return b.wrap(err, "lock job schema migration")
	}
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+quote(b.queue.schema)); err != nil {
		return b.wrap(err, "create job schema %s", b.queue.schema)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: b.queue.schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("postgres: job schema migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return b.wrap(err, "create job tables in %s", b.queue.schema)
	}
	return nil
}

// checkRiver returns docex.ErrNotInitialized when River's tables are
// missing (a bootstrap interrupted before its migrations completed).
func (b *Backend) checkRiver(ctx context.Context) error {
	var n int
	err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname IN ('river_job', 'river_migration')`, b.queue.schema).Scan(&n)
	if err != nil {
		return b.wrap(err, "look up job schema %s", b.queue.schema)
	}
	if n < 2 {
		return docex.Errorf(docex.ErrNotInitialized, "postgres: job tables in %s are missing (run docex init again)", b.queue.schema)
	}
	return nil
}

func (q *riverQueue) client() (*river.Client[pgx.Tx], error) {
	q.once.Do(func() {
		q.inserter, q.err = river.NewClient(riverpgxv5.New(q.b.pool), &river.Config{Schema: q.schema, MaxAttempts: riverMaxAttempts})
	})
	return q.inserter, q.err
}

// enqueueTx inserts the River job of a tenant job inside the tenant
// transaction tx (the transactional outbox).
func (q *riverQueue) enqueueTx(ctx context.Context, tx pgx.Tx, tenant, jobID string, runAt time.Time) error {
	c, err := q.client()
	if err != nil {
		return fmt.Errorf("postgres: job client: %w", err)
	}
	opts := &river.InsertOpts{Queue: tenantQueue(tenant), MaxAttempts: riverMaxAttempts}
	if runAt.After(time.Now()) {
		// A job with a ScheduledAt is "scheduled" for River, made available
		// by its leader's scheduler every few seconds: only a job due later
		// gets one, a job due now is available at once.
		opts.ScheduledAt = runAt
	}
	_, err = c.InsertTx(ctx, tx, jobArgs{Tenant: tenant, Job: jobID}, opts)
	return q.b.wrap(err, "enqueue job %s", jobID)
}

// enqueueManyTx is enqueueTx for several jobs of tenant, in one COPY.
func (q *riverQueue) enqueueManyTx(ctx context.Context, tx pgx.Tx, tenant string, jobs []driver.JobRecord) error {
	c, err := q.client()
	if err != nil {
		return fmt.Errorf("postgres: job client: %w", err)
	}
	now := time.Now()
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		opts := &river.InsertOpts{Queue: tenantQueue(tenant), MaxAttempts: riverMaxAttempts}
		if j.RunAt.After(now) {
			opts.ScheduledAt = j.RunAt // see enqueueTx
		}
		params[i] = river.InsertManyParams{Args: jobArgs{Tenant: tenant, Job: j.ID}, InsertOpts: opts}
	}
	_, err = c.InsertManyFastTx(ctx, tx, params)
	return q.b.wrap(err, "enqueue %d jobs", len(jobs))
}

// Work implements driver.JobQueue with a River client. A global semaphore
// bounds the jobs run at once (cfg.Concurrency); each tenant's queue runs
// at most cfg.TenantConcurrency. River's producers fetch per queue, so a
// tenant with a long backlog cannot hold the jobs of another: its jobs
// wait for a slot as long as any other tenant's do.
//
// The lease: River rescues a running job whose attempted_at is older than
// RescueStuckJobsAfter and than its job timeout (a job with no timeout is
// never rescued), and sets attempted_at only when it fetches the job. The
// worker renews it (renewLeases) for every job it holds, started or still
// waiting in the worker, so that River rescues only the jobs of a worker
// that stopped renewing them (killed), a lease after its last renewal.
// Both are the lease. River's job timeout cancels the job's context a
// lease after the job's work function starts, its waits in the worker
// included: the handler runs under a context of its own instead, which
// only a shutdown's cancellation of running jobs ends (hard); the lease
// bounds each job's own run (driver.Delivery.Lease, applied by the
// handler from when the job's steps start).
func (q *riverQueue) Work(ctx context.Context, cfg driver.WorkConfig, handle driver.JobHandler) error {
	rescue := cfg.Lease
	if rescue <= 0 {
		rescue = defaultRescueAfter
	}
	cfg = cfg.WithDefaults()
	if cfg.WorkerID == "" {
		cfg.WorkerID = "docex-" + uuid.NewString()
	}
	log := cfg.Logger.With("worker", cfg.WorkerID)
	// The shutdown timeout counts from the stop (ctx done), not from when
	// the tenant watch below notices it.
	var stopAt atomic.Pointer[time.Time]
	stopNoted := context.AfterFunc(ctx, func() { now := time.Now(); stopAt.Store(&now) })
	defer stopNoted()
	sem := make(chan struct{}, cfg.Concurrency)
	held := &heldJobs{ids: map[int64]heldJob{}}
	// hard is done once the shutdown cancels the running jobs.
	hard, cancelRunning := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRunning(nil)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(_ context.Context, job *river.Job[jobArgs]) error {
		if superseded(job.Metadata) {
			// Held by a worker when its job was cancelled or failed (see
			// tx.endDeliveries), and delivered again since (rescued: the
			// worker was killed before River completed it): a retry of the
			// job enqueued a River job of its own. Completed, the job not
			// handled.
			log.Info("dropped a superseded delivery (its job was cancelled or failed while it was held)", "river_job", job.ID, "tenant", job.Args.Tenant, "job", job.Args.Job)
			return nil
		}
		// The handler's context: hard, or cancelled by the tenant watch
		// when it finds the job's tenant deleted (heldJobs.cancelTenant).
		hctx, hcancel := context.WithCancelCause(hard)
		defer hcancel(nil)
		held.add(job.ID, job.Args.Tenant, job.Args.Job, hcancel)
		defer held.remove(job.ID)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done(): // stopping: a job not started is released
			return river.JobSnooze(0)
		case <-hctx.Done(): // its tenant was deleted (or a hard stop)
			if cause := context.Cause(hctx); errors.Is(cause, docex.ErrTenantUnknown) {
				return river.JobCancel(errors.New("cancelled: " + cause.Error()))
			}
			return river.JobSnooze(0)
		}
		defer func() { <-sem }()
		out := handle(hctx, driver.Delivery{TenantID: job.Args.Tenant, JobID: job.Args.Job, Lease: rescue, ID: strconv.FormatInt(job.ID, 10)})
		switch out.Kind {
		case driver.Again:
			return river.JobSnooze(max(out.After, 0))
		case driver.Drop:
			return river.JobCancel(errors.New(out.Reason))
		}
		return nil
	}))
	// incs are the incarnations of the tenants served, as found when the
	// worker started (a tenant of cfg.Tenants) or when it began to serve
	// them: a tenant found under another incarnation was deleted and
	// created again since, and is handled as deleted (see the watch).
	tenants, incs := cfg.Tenants, map[string]string{}
	var err error
	if tenants != nil {
		if incs, err = q.incarnations(ctx, tenants); err != nil && ctx.Err() != nil {
			return nil // stopped before it started: a stop, as below
		}
	} else {
		var ts []docex.Tenant
		ts, err = q.registered(ctx)
		for _, t := range ts {
			tenants, incs[t.ID] = append(tenants, t.ID), t.Incarnation
		}
	}
	if err != nil {
		return err
	}
	queues := map[string]river.QueueConfig{}
	for _, t := range tenants {
		queues[tenantQueue(t)] = river.QueueConfig{MaxWorkers: cfg.TenantConcurrency}
	}
	if len(queues) == 0 { // River needs one queue; tenants are added as they appear
		queues[tenantQueue("")] = river.QueueConfig{MaxWorkers: 1}
	}
	client, err := river.NewClient(riverpgxv5.New(q.b.pool), &river.Config{
		ID:          cfg.WorkerID,
		Schema:      q.schema,
		Queues:      queues,
		Workers:     workers,
		Logger:      log,
		MaxAttempts: riverMaxAttempts,
		// See above: the timeout lets River rescue a job the worker
		// stopped renewing; it does not end the handler's context. Nor
		// is a job held that long stuck: the handler bounds its run.
		JobTimeout:           rescue,
		RescueStuckJobsAfter: rescue,
		JobStuckThreshold:    noStuckJobs,
		FetchPollInterval:    cfg.Poll,
		FetchCooldown:        min(100*time.Millisecond, cfg.Poll),
	})
	if err != nil {
		return fmt.Errorf("postgres: job worker: %w", err)
	}
	// River's Start context is its fetch context for as long as the
	// client runs (cancelling it is a hard stop), hence not ctx; but
	// Start waits on the database (a connection of the pool, its first
	// queries), and a stop (ctx done) while it waits ends that wait: the
	// start context is cancelled then, until Start returns. Before, a
	// worker signalled while River started (a pool of busy connections,
	// a database that does not answer) ran on until Start returned, if
	// ever.
	startCtx, cancelStart := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStart()
	stopWatch := context.AfterFunc(ctx, cancelStart)
	err = client.Start(startCtx)
	stopWatch()
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: a stop, as below
		}
		return q.b.wrap(err, "start job worker")
	}
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		q.renewLeases(renewCtx, cfg.WorkerID, rescue, held, log)
	}()
	defer func() {
		stopRenew()
		<-renewed
	}()
	log.Info("worker started", "backend", "postgres", "job_slots", cfg.Concurrency, "tenant_job_slots", cfg.TenantConcurrency)
	q.sweep(ctx, log)
	lastSweep := time.Now()
	// Every tick: tenants created since get a queue (every tenant), and
	// those deleted since lose theirs: no longer served. Their River jobs
	// were deleted with them, but for those a worker holds, which the
	// handler cancels, and those of a worker killed meanwhile, which
	// River rescues a lease later and the sweep (sweepDeleted, every
	// sweepEvery) deletes. A worker of given tenants serves none again,
	// and stops once none is left (stopErr).
	serving := map[string]bool{}
	for _, t := range tenants {
		serving[t] = true
	}
	var stopErr error
	// removing are the queues of deleted tenants not yet removed. River's
	// Remove waits for the queue's running jobs (stopped by drop, which
	// cancels their handlers' contexts, and cancelled) holding River's lock of its
	// queues, which Add also takes: each tick tries each removal for
	// removeWait at most (the queue's producer, stopping, fetches no more
	// meanwhile), so that neither adding the queue of a tenant created
	// meanwhile nor a stop waits for a deleted tenant's running jobs.
	// Before, an Add waited for them, and so did the stop of a worker
	// signalled then.
	removing := map[string]bool{}
	remove := func() {
		for t := range removing {
			rctx, cancel := context.WithTimeout(ctx, removeWait)
			err := client.Queues().Remove(rctx, tenantQueue(t))
			cancel()
			switch {
			case err == nil, errors.As(err, new(*river.QueueNotFoundError)):
				delete(removing, t)
			case rctx.Err() == nil:
				log.Warn("remove tenant queue", "tenant", t, "error", err)
			}
		}
	}
	// drop stops serving t, deleted; recreated: deleted and created
	// again, whose held jobs of the new incarnation are not cancelled
	// (cancelStale).
	drop := func(t string, recreated bool) {
		log.Warn("tenant deleted: no longer served", "tenant", t)
		if recreated {
			q.cancelStale(ctx, held, t)
		} else {
			held.cancelTenant(t, driver.TenantDeletedCause(t))
		}
		delete(serving, t)
		delete(queues, tenantQueue(t))
		removing[t] = true
	}
	// recreated handles a tenant found under another incarnation than
	// the one served (deleted and created again between two looks): the
	// deleted one is no longer served, said as for a delete, and the jobs
	// of it the worker holds are cancelled (cancelStale: those of the new
	// one, fetched since, are not).
	recreated := func(t, inc string) {
		log.Warn("tenant deleted: no longer served", "tenant", t)
		q.cancelStale(ctx, held, t)
		incs[t] = inc
	}
	// suspend notes tenant t's status: found suspended since the last
	// look, the jobs of t the worker holds stop (cancelTenant) and
	// wait for it; jobs delivered while it stays suspended are not
	// stopped (they make their job wait themselves).
	suspended := map[string]bool{}
	suspend := func(t string, status docex.TenantStatus) {
		switch {
		case status == docex.TenantSuspended && !suspended[t]:
			suspended[t] = true
			held.cancelTenant(t, driver.TenantSuspendedCause(t))
		case status != docex.TenantSuspended:
			delete(suspended, t)
		}
	}
	tick := time.NewTicker(max(cfg.Poll, time.Second))
watch:
	for {
		select {
		case <-ctx.Done():
			break watch
		case <-tick.C:
		}
		if cfg.OnWatch != nil {
			cfg.OnWatch()
		}
		if time.Since(lastSweep) >= sweepEvery {
			q.sweep(ctx, log)
			lastSweep = time.Now()
		}
		remove()
		if cfg.Tenants != nil {
			for _, t := range tenants {
				if !serving[t] || t == "" { // "": the single-tenant store, never deleted
					continue
				}
				// A tenant deleted and created again since the worker
				// started (a delete and a create between two looks) is
				// a tenant deleted too: the worker does not serve the new
				// one. Its held jobs of the deleted one are cancelled;
				// those of the new one it fetched meanwhile run on.
				switch tn, err := q.b.Tenant(ctx, t); {
				case errors.Is(err, docex.ErrTenantNotFound):
					drop(t, false)
				case err == nil && tn.Incarnation != incs[t]:
					drop(t, true)
				case err == nil:
					suspend(t, tn.Status)
				}
			}
			if len(serving) == 0 {
				stopErr = &driver.TenantsDeletedError{Tenants: cfg.Tenants}
				break watch
			}
			continue
		}
		ts, err := q.registered(ctx)
		if err != nil {
			continue
		}
		live := map[string]bool{}
		for _, tn := range ts {
			t := tn.ID
			live[t] = true
			if serving[t] && tn.Incarnation != incs[t] {
				recreated(t, tn.Incarnation)
			}
			if serving[t] {
				suspend(t, tn.Status)
			}
			if _, ok := queues[tenantQueue(t)]; !ok {
				qc := river.QueueConfig{MaxWorkers: cfg.TenantConcurrency}
				if err := client.Queues().Add(tenantQueue(t), qc); err != nil {
					log.Warn("add tenant queue", "tenant", t, "error", err)
					continue
				}
				queues[tenantQueue(t)] = qc
				serving[t] = true
				incs[t] = tn.Incarnation
			}
		}
		for t := range serving {
			if !live[t] {
				drop(t, false)
			}
		}
	}
	tick.Stop()
	log.Info("worker stopping", "shutdown_timeout_ms", cfg.ShutdownTimeout.Milliseconds())
	stopped := time.Now()
	if at := stopAt.Load(); at != nil {
		stopped = *at
	}
	stopCtx, cancel := context.WithDeadline(context.Background(), stopped.Add(cfg.ShutdownWait(ctx)))
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		log.Warn("shutdown timeout: cancelling running jobs (they will be delivered again)")
		cancelRunning(context.Cause(ctx))
		// The cancelled jobs record their release (a write each): given
		// at least 10 s whatever the shutdown timeout, so that a short
		// one (pipeline run --wait's worker) does not leave them running
		// until River rescues them.
		hard, cancelHard := context.WithTimeout(context.Background(), max(cfg.ShutdownTimeout, 10*time.Second))
		defer cancelHard()
		_ = client.StopAndCancel(hard)
	}
	log.Info("worker stopped")
	return stopErr
}

// sweepEvery is how often a worker sweeps the River jobs of deleted
// tenants (sweepDeleted), besides once when it starts.
const sweepEvery = time.Minute

// removeWait bounds each try of River's Remove of a deleted tenant's
// queue (see Work).
const removeWait = 50 * time.Millisecond

// queuedStates are the states of a River job no worker holds: it waits to
// be fetched (or for its time).
var queuedStates = []string{"available", "pending", "retryable", "scheduled"}

// sweepDeleted deletes the River jobs no worker holds (queuedStates) of
// the queues of tenants no longer registered, and returns how many. Tenant
// deletion deletes the tenant's River jobs no worker holds in its own
// transaction, but not those a worker holds (running): a worker that is
// killed leaves them to River's rescuer, which makes them available again
// a lease later, in a queue no worker serves any more (and a worker of an
// older docex snoozed, rather than cancelled, those it held). Without the
// sweep they would wait for ever.
//
// It never deletes a job of a live tenant: the DELETE's own snapshot
// holds the registry row of every tenant whose River jobs it sees (a
// River job is inserted by a transaction of its tenant, which starts
// after the tenant's creation committed); a job of a tenant deleted and
// created again since may go, or be delivered and cancelled (its record
// went with the old schema: "job ... no longer exists"), either way.
//
// The candidate queues (those of unregistered tenants) are read first,
// with a skip scan of River's (state, queue, ...) index: a few index
// probes per queue, however long the backlog, so that the periodic sweep
// of every worker stays cheap; the DELETE then reads only their rows.
func (q *riverQueue) sweepDeleted(ctx context.Context) (int64, error) {
	job := quote(q.schema) + `.river_job`
	var queues []string
	for _, state := range queuedStates {
		rows, err := q.b.pool.Query(ctx, `WITH RECURSIVE q AS (
			SELECT (SELECT queue FROM `+job+` WHERE state = '`+state+`' ORDER BY queue LIMIT 1) AS queue
			UNION ALL
			SELECT (SELECT queue FROM `+job+` WHERE state = '`+state+`' AND queue > q.queue ORDER BY queue LIMIT 1)
			FROM q WHERE q.queue IS NOT NULL
		) SELECT queue FROM q WHERE queue LIKE 't\_%' AND NOT EXISTS (SELECT 1 FROM `+q.b.sys+`.tenants t WHERE 't_' || t.id = q.queue)`)
		if err != nil {
			return 0, q.b.wrap(err, "list job queues")
		}
		qs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return 0, q.b.wrap(err, "list job queues")
		}
		queues = append(queues, qs...)
	}
	if len(queues) == 0 {
		return 0, nil
	}
	tag, err := q.b.pool.Exec(ctx, `DELETE FROM `+job+` j WHERE j.queue = ANY($1) AND j.state::text = ANY($2)
		AND NOT EXISTS (SELECT 1 FROM `+q.b.sys+`.tenants t WHERE 't_' || t.id = j.queue)`, queues, queuedStates)
	if err != nil {
		return 0, q.b.wrap(err, "delete the queued jobs of deleted tenants")
	}
	return tag.RowsAffected(), nil
}

// sweep is sweepDeleted for a worker: what it deleted, or could not, is
// logged.
func (q *riverQueue) sweep(ctx context.Context, log *slog.Logger) {
	n, err := q.sweepDeleted(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("delete the queued jobs of deleted tenants", "error", err)
	case n > 0:
		log.Info("deleted the queued jobs of deleted tenants", "river_jobs", n)
	}
}

// supersededKey is the key of River's job metadata, set true by the
// write of a job cancelled or failed (tx.endDeliveries: a cancel, or the
// worker that ended the job) on the River jobs of the job that it did not
// delete (a worker held them): they never deliver the job again. River's
// own cancel_attempted_at is not used: River's producer would cancel the
// context of the job running with it.
const supersededKey = "docex_superseded"

// superseded reports whether River job metadata has supersededKey true;
// false when it cannot be read.
func superseded(metadata []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(metadata, &m) != nil {
		return false
	}
	var v bool
	return json.Unmarshal(m[supersededKey], &v) == nil && v
}

// heldJobs are the River jobs a worker holds: delivered to its work
// function and not yet returned, started or not.
type heldJobs struct {
	mu  sync.Mutex
	ids map[int64]heldJob
}

// heldJob is a River job the worker holds: its tenant, and the
// cancellation of its handler's context.
type heldJob struct {
	tenant, job string // the tenant, and the docex job id
	cancel      context.CancelCauseFunc
}

func (h *heldJobs) add(id int64, tenant, job string, cancel context.CancelCauseFunc) {
	h.mu.Lock()
	h.ids[id] = heldJob{tenant: tenant, job: job, cancel: cancel}
	h.mu.Unlock()
}

// jobsOf returns the docex job ids of the River jobs of tenant the
// worker holds.
func (h *heldJobs) jobsOf(tenant string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for _, j := range h.ids {
		if j.tenant == tenant {
			ids = append(ids, j.job)
		}
	}
	return ids
}

// cancelJobs cancels, as cancelTenant does, the handlers' contexts of
// the jobs of tenant the worker holds whose docex job ids gone holds.
func (h *heldJobs) cancelJobs(tenant string, gone map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range h.ids {
		if j.tenant == tenant && gone[j.job] {
			j.cancel(driver.TenantDeletedCause(tenant))
		}
	}
}

// cancelTenant cancels the handlers' contexts of the jobs of tenant the
// worker holds, with cause: driver.TenantDeletedCause (the tenant watch
// found it deleted: the delivery is cancelled) or
// driver.TenantSuspendedCause (found it suspended: the job waits for its
// tenant, its attempt not counted). A plugin call in progress stops,
// rather than running to its end first.
func (h *heldJobs) cancelTenant(tenant string, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range h.ids {
		if j.tenant == tenant {
			j.cancel(cause)
		}
	}
}

func (h *heldJobs) remove(id int64) {
	h.mu.Lock()
	delete(h.ids, id)
	h.mu.Unlock()
}

func (h *heldJobs) list() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]int64, 0, len(h.ids))
	for id := range h.ids {
		ids = append(ids, id)
	}
	return ids
}

// renewLeases renews, every lease/3 until ctx is done, the lease of each
// job the worker holds: its attempted_at, from which River's rescuer
// counts (as River's fetch sets it: the database's clock). Only a job
// still running for this worker (the last to fetch it) is renewed. A
// failed renewal is logged; the next one may succeed.
func (q *riverQueue) renewLeases(ctx context.Context, worker string, lease time.Duration, held *heldJobs, log *slog.Logger) {
	tick := time.NewTicker(max(lease/3, time.Millisecond))
	defer tick.Stop()
	stmt := `UPDATE ` + quote(q.schema) + `.river_job SET attempted_at = now()
		WHERE id = ANY($1) AND state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $2`
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids := held.list()
		if len(ids) == 0 {
			continue
		}
		if _, err := q.b.pool.Exec(ctx, stmt, ids, worker); err != nil && ctx.Err() == nil {
			log.Warn("renew job leases", "jobs", len(ids), "error", err)
		}
	}
}

// cancelStale cancels, as for a deleted tenant (heldJobs.cancelTenant),
// the held jobs of tenant t, deleted and created again, that are not the
// new incarnation's: those whose job records its schema does not hold
// (the old incarnation's records went with its schema; job ids are never
// reused). Jobs of the new incarnation fetched since run on. When the
// schema cannot be read (the tenant deleted again), every held job of t
// is cancelled.
func (q *riverQueue) cancelStale(ctx context.Context, held *heldJobs, t string) {
	ids := held.jobsOf(t)
	if len(ids) == 0 {
		return
	}
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	schema, err := q.b.tenantSchema(t)
	if err == nil {
		var rows pgx.Rows
		if rows, err = q.b.pool.Query(ctx, `SELECT id FROM `+quote(schema)+`.jobs WHERE id = ANY($1)`, ids); err == nil {
			var live []string
			if live, err = pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
				for _, id := range live {
					delete(gone, id)
				}
			}
		}
	}
	if err != nil {
		held.cancelTenant(t, driver.TenantDeletedCause(t))
		return
	}
	held.cancelJobs(t, gone)
}

// incarnations returns the incarnations of tenants by id (none for ""),
// "" for a tenant not found (deleted: the watch's first look drops it).
func (q *riverQueue) incarnations(ctx context.Context, tenants []string) (map[string]string, error) {
	incs := make(map[string]string, len(tenants))
	for _, t := range tenants {
		if t == "" {
			continue
		}
		tn, err := q.b.Tenant(ctx, t)
		switch {
		case errors.Is(err, docex.ErrTenantNotFound):
		case err != nil:
			return nil, err
		}
		incs[t] = tn.Incarnation
	}
	return incs, nil
}

// registered returns every registered tenant but the bootstrap one, with
// its incarnation ("" alone on a single-tenant system).
func (q *riverQueue) registered(ctx context.Context) ([]docex.Tenant, error) {
	reg, err := q.b.registryForOpen(ctx, q.b.pool, "")
	if err != nil {
		return nil, err
	}
	if !reg.multi {
		return []docex.Tenant{{}}, nil
	}
	ts, err := q.b.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ts, func(t docex.Tenant) bool { return t.IsSystem }), nil
}
