package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// jobQueue is the SQLite driver.JobQueue: the jobs table of each tenant
// file is that tenant's queue. A worker claims a ready job by setting a
// lease (owner and expiry) in a write transaction; while the handler runs
// the lease is renewed; a job whose lease expired (its worker was killed)
// is ready again. Workers of several processes can share a directory:
// SQLite serialises their claims.
//
// Fairness: a worker starts claims in round-robin order across tenants,
// at most one claim per tenant at a time, each on a goroutine of its own
// (a claim waits for its tenant's writer; another tenant's long write
// transaction does not hold it back), and never runs more than
// WorkConfig.TenantConcurrency jobs of one tenant at once.
type jobQueue struct {
	b  *Backend
	mu sync.Mutex
	// wakers are the channels of running Work loops, signalled with the
	// tenant id when a job of that tenant is committed in this process.
	wakers map[chan string]struct{}
}

// Jobs implements driver.Backend.
func (b *Backend) Jobs() driver.JobQueue { return b.queue }

func (q *jobQueue) wake(tenant string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for ch := range q.wakers {
		select {
		case ch <- tenant:
		default:
		}
	}
}

func (q *jobQueue) subscribe() (chan string, func()) {
	ch := make(chan string, 64)
	q.mu.Lock()
	if q.wakers == nil {
		q.wakers = map[chan string]struct{}{}
	}
	q.wakers[ch] = struct{}{}
	q.mu.Unlock()
	return ch, func() {
		q.mu.Lock()
		delete(q.wakers, ch)
		q.mu.Unlock()
	}
}

// minIdle is the first back-off of a tenant found without ready jobs.
const minIdle = 20 * time.Millisecond

// claimOutcome is how one tenant's claim ended (see Work).
type claimOutcome struct {
	tenant   string
	listed   string // t's incarnation as listed when the claim started ("" for --tenants)
	reserved int    // slots the claim reserved: 0 when none was free
	claimed  int    // jobs leased (and started)
	err      error
}

// Work implements driver.JobQueue.
//
// Each tenant's claim runs on a goroutine of its own, at most one per
// tenant at a time: a claim waits for its tenant's writer (the group
// committer, then SQLite's write lock), and a tenant whose writer is held
// by a long transaction (a large document add, a compaction, a cascade
// delete) must not hold back the claims of the other tenants. A claim
// reserves its job slots in its transaction, when it runs, not when it is
// started: a claim waiting behind its tenant's writer holds no slot.
func (q *jobQueue) Work(ctx context.Context, cfg driver.WorkConfig, handle driver.JobHandler) error {
	cfg = cfg.WithDefaults()
	if cfg.WorkerID == "" {
		cfg.WorkerID = uuid.NewString()
	}
	if _, _, err := q.tenants(ctx, cfg.Tenants); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: a stop, as below
		}
		return err
	}
	// incs are the incarnations of the given tenants when the worker
	// started ("" for one not found): a claim that finds another (the
	// tenant deleted and created again since, whenever that was) finds
	// the tenant deleted, and the worker does not serve the new one.
	var incs map[string]string
	if cfg.Tenants != nil {
		incs = map[string]string{}
		for _, t := range cfg.Tenants {
			if t == "" {
				continue
			}
			tn, err := q.b.Tenant(ctx, t)
			switch {
			case errors.Is(err, docex.ErrTenantNotFound):
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			incs[t] = tn.Incarnation
		}
	}
	wakeCh, unsubscribe := q.subscribe()
	defer unsubscribe()
	// Handlers outlive ctx by up to ShutdownTimeout.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	var (
		mu sync.Mutex
		// busy counts the jobs running and the slots reserved by claims;
		// running counts them by tenant.
		busy     int
		running  = map[string]int{}
		claiming = map[string]bool{} // tenants with a claim in flight
		outcomes []claimOutcome      // claims ended, not yet looked at
		wg       sync.WaitGroup      // claims and jobs
		// kick tells the loop that a job or a claim ended.
		kick = make(chan struct{}, 1)
	)
	signal := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	idle := map[string]time.Time{}        // tenant -> not before
	backoff := map[string]time.Duration{} // tenant -> current back-off
	var tenants []string
	var listed map[string]string // the incarnations of tenants, as last listed (every tenant)
	var refreshed time.Time
	rr := 0
	// served are the given tenants not found deleted (nil: every tenant,
	// listed again every Poll); stopErr ends the loop once none is left.
	served := slices.Clone(cfg.Tenants)
	var stopErr error
	log := cfg.Logger.With("worker", cfg.WorkerID)
	// The tenants served from the start are listed before the started
	// line (a tenant deleted after it is dropped with a line of its own;
	// one that fails to list is listed again in the loop).
	if ts, li, err := q.tenants(ctx, served); err == nil {
		tenants, listed, refreshed = ts, li, time.Now()
	}
	log.Info("worker started", "backend", "sqlite", "job_slots", cfg.Concurrency, "tenant_job_slots", cfg.TenantConcurrency)

	// startClaim claims jobs of tenant t on a goroutine of its own and
	// starts them. The claim uses ctx: once Work is stopped, a claim still
	// waiting for its tenant's writer gives up and leases nothing; one
	// that committed starts its jobs, which Work waits for as for any.
	startClaim := func(t string) {
		linc := listed[t]
		wg.Add(1)
		go func() {
			defer wg.Done()
			reserved := 0
			// want runs in the claim's transaction, each time it runs:
			// it reserves the slots free now, within t's cap.
			want := func() int {
				mu.Lock()
				defer mu.Unlock()
				busy -= reserved
				running[t] -= reserved
				reserved = max(0, min(cfg.Concurrency-busy, cfg.TenantConcurrency-running[t]))
				busy += reserved
				running[t] += reserved
				return reserved
			}
			inc, given := incs[t]
			if t == "" {
				given = false
			}
			st, ids, err := q.claim(ctx, t, inc, given, cfg, want)
			mu.Lock()
			unused := reserved - len(ids)
			busy -= unused
			running[t] -= unused
			claiming[t] = false
			outcomes = append(outcomes, claimOutcome{tenant: t, listed: linc, reserved: reserved, claimed: len(ids), err: err})
			mu.Unlock()
			if len(ids) > 0 {
				// The claim's jobs run under cctx, cancelled with
				// driver.TenantDeletedCause once the tenant is found
				// deleted (watchDeleted), so that a plugin call in
				// progress stops rather than running to its end.
				cctx, ccancel := context.WithCancelCause(hctx)
				var stores sync.WaitGroup
				stores.Add(len(ids))
				watched := make(chan struct{})
				go q.watchDeleted(cctx, st, t, cfg.Poll, watched, ccancel)
				go func() { stores.Wait(); close(watched); ccancel(nil); st.Close() }()
				for _, id := range ids {
					wg.Add(1) // within the claim's own count: Wait has not returned
					go func() {
						defer wg.Done()
						q.run(cctx, st, t, id, cfg, handle, log)
						stores.Done()
						mu.Lock()
						running[t]--
						busy--
						mu.Unlock()
						signal()
					}()
				}
			}
			signal()
		}()
	}

	for ctx.Err() == nil {
		if cfg.OnWatch != nil {
			cfg.OnWatch()
		}
		if time.Since(refreshed) >= cfg.Poll || tenants == nil {
			ts, li, err := q.tenants(ctx, served)
			if err == nil {
				if served == nil && len(tenants) > 0 {
					logDeleted(log, tenants, listed, li)
				}
				tenants, listed, refreshed = ts, li, time.Now()
			} else if ctx.Err() == nil {
				log.Warn("list tenants", "error", err)
			}
		}
		// Tenants whose jobs were committed meanwhile are looked at now,
		// not after their idle back-off.
	drain:
		for {
			select {
			case t := <-wakeCh:
				delete(idle, t)
				delete(backoff, t)
			default:
				break drain
			}
		}
		mu.Lock()
		ended := outcomes
		outcomes = nil
		mu.Unlock()
		for _, o := range ended {
			t := o.tenant
			switch {
			case errors.Is(o.err, docex.ErrTenantNotFound) && ctx.Err() == nil:
				if !slices.Contains(tenants, t) || listed != nil && o.listed != listed[t] {
					// Already dropped, or the claim was of an incarnation
					// a listing since replaced (logDeleted said so; the
					// new one is served).
					continue
				}
				// Deleted: no longer served (every tenant: until the
				// list, read again, has a tenant of that id again).
				log.Warn("tenant deleted: no longer served", "tenant", t)
				gone := func(x string) bool { return x == t }
				tenants, rr = slices.DeleteFunc(slices.Clone(tenants), gone), 0
				delete(idle, t)
				delete(backoff, t)
				if served != nil {
					if served = slices.DeleteFunc(served, gone); len(served) == 0 {
						stopErr = &driver.TenantsDeletedError{Tenants: cfg.Tenants}
					}
				}
			case o.err != nil || o.reserved > 0 && o.claimed == 0:
				// Failed, or no job ready: looked at again after a
				// back-off. A claim that found no free slot is not.
				if o.err != nil && ctx.Err() == nil {
					log.Warn("claim", "tenant", t, "error", o.err)
				}
				d := min(max(backoff[t]*2, minIdle), cfg.Poll)
				backoff[t], idle[t] = d, time.Now().Add(d)
			case o.claimed > 0:
				delete(backoff, t)
				delete(idle, t)
			}
		}
		if stopErr != nil {
			break
		}
		// Claims start in round-robin order, at most one per free slot
		// in this pass and one per tenant in flight. A claim still in
		// flight (its tenant's writer is busy) is not counted: it holds
		// no slot until it runs.
		now := time.Now()
		mu.Lock()
		free := cfg.Concurrency - busy
		mu.Unlock()
		started, next := 0, rr
		for i := range tenants {
			if started >= free {
				break
			}
			t := tenants[(rr+i)%len(tenants)]
			if now.Before(idle[t]) {
				continue
			}
			mu.Lock()
			ok := !claiming[t] && running[t] < cfg.TenantConcurrency
			if ok {
				claiming[t] = true
			}
			mu.Unlock()
			if !ok {
				continue
			}
			startClaim(t)
			started++
			next = (rr + i + 1) % len(tenants)
		}
		rr = next
		wait := cfg.Poll
		for _, t := range tenants {
			if until, ok := idle[t]; ok {
				wait = min(wait, max(time.Until(until), time.Millisecond))
			}
		}
		timer := time.NewTimer(wait)
		select {
		case t := <-wakeCh:
			delete(idle, t)
			delete(backoff, t)
		case <-kick:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	log.Info("worker stopping", "shutdown_timeout_ms", cfg.ShutdownTimeout.Milliseconds())
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(cfg.ShutdownWait(ctx)):
		log.Warn("shutdown timeout: cancelling running jobs (they will be delivered again)")
		cancelHandlers()
		<-stopped
	}
	log.Info("worker stopped")
	return stopErr
}

// logDeleted logs, once each, the tenants of was that now does not list,
// or lists under another incarnation (deleted, and created again since
// the last listing: the new one is served): deleted, no longer served.
func logDeleted(log interface{ Warn(string, ...any) }, was []string, wasIncs, nowIncs map[string]string) {
	for _, t := range was {
		if inc, ok := nowIncs[t]; !ok || inc != wasIncs[t] {
			log.Warn("tenant deleted: no longer served", "tenant", t)
		}
	}
}

// tenants returns the tenants to serve: the given ones, or every
// registered tenant ("" alone on a single-tenant system) with their
// incarnations by id (nil for the given ones).
func (q *jobQueue) tenants(ctx context.Context, given []string) ([]string, map[string]string, error) {
	if given != nil {
		return given, nil, nil
	}
	sys, err := q.b.system(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if err := q.b.checkMulti(ctx, sys); errors.Is(err, docex.ErrMultiTenancyOff) {
		return []string{""}, map[string]string{"": ""}, nil
	} else if err != nil {
		return nil, nil, err
	}
	ts, err := q.b.Tenants(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, 0, len(ts))
	incs := make(map[string]string, len(ts))
	for _, t := range ts {
		if !t.IsSystem {
			out = append(out, t.ID)
			incs[t.ID] = t.Incarnation
		}
	}
	return out, incs, nil
}

// claim takes up to want() ready jobs of tenant t (queued and due, or
// running with an expired lease), oldest first, and leases them to this
// worker in one transaction. want is called in the transaction, each time
// it runs (the group committer may run it again, alone); with 0 nothing is
// read. It returns the open store (the caller closes it) and the job ids,
// none when none is ready; on error, no id, and the error of opening the
// tenant (docex.ErrTenantNotFound when it was deleted) or of the
// transaction.
// claimSQL leases the first ?4 jobs by (run_at, id) that are ready at
// ?3: queued and due, or running with an expired lease. Each kind is
// read in jobs_ready order up to ?4 rows and only those are merged, so a
// claim costs the same with a backlog of 100,000 queued jobs as with
// 1,000 (BenchmarkClaim); one condition with OR made SQLite read and sort
// every queued job at each claim.
const claimSQL = `UPDATE jobs SET state = 'running', lease_owner = ?1, lease_until = ?2
	WHERE id IN (SELECT id FROM (
		SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'queued' AND run_at <= ?3 ORDER BY run_at, id LIMIT ?4)
		UNION ALL
		SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE state = 'running' AND lease_until < ?3 ORDER BY run_at, id LIMIT ?4)
	) ORDER BY run_at, id LIMIT ?4)
	RETURNING id`

// claim (see above claimSQL): with given, the tenant is served as the incarnation inc (the worker's
// given tenants, WorkConfig.Tenants): a tenant found under another one
// was deleted and created again since, and the claim returns a
// docex.ErrTenantNotFound, claiming nothing.
func (q *jobQueue) claim(ctx context.Context, t, inc string, given bool, cfg driver.WorkConfig, want func() int) (*store, []string, error) {
	ts, err := q.b.OpenTenant(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	st := ts.(*store)
	if given && st.tenant.Incarnation != inc {
		st.Close()
		return nil, nil, docex.Errorf(docex.ErrTenantNotFound, "tenant %q was deleted (and created again)", t)
	}
	var ids []string
	now := time.Now()
	err = st.db.group.do(ctx, st.db.w, func(tx *sql.Tx) error {
		ids = ids[:0]
		n := want()
		if n <= 0 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, claimSQL, cfg.WorkerID, micros(now.Add(cfg.Lease)), micros(now), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil || len(ids) == 0 {
		st.Close()
		return nil, nil, err
	}
	return st, ids, nil
}

// watchDeleted looks, every poll until done is closed or ctx is done,
// whether tenant t was deleted (or deleted and created again) since st
// was opened, and then cancels ctx with driver.TenantDeletedCause: the
// running jobs of the claim that opened st stop at once, a plugin call in
// progress included, and are cancelled. A tenant found suspended, active
// when the watch began, cancels ctx the same way, with
// driver.TenantSuspendedCause: the jobs stop and wait for the tenant (no
// attempt counted); the jobs of a claim made while it was suspended make
// their job wait themselves. The look is the check of a
// store's reads (store.checkRead): it reads the registry only when the
// system database changed, whichever process changed it. The local
// store (single-tenant) has no registry, and is never deleted.
func (q *jobQueue) watchDeleted(ctx context.Context, st *store, t string, poll time.Duration, done <-chan struct{}, cancel context.CancelCauseFunc) {
	if st.h == nil {
		return
	}
	active := !errors.Is(st.checkRead(ctx), docex.ErrTenantSuspended)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch err := st.checkRead(ctx); {
		case errors.Is(err, docex.ErrTenantUnknown):
			cancel(driver.TenantDeletedCause(t))
			return
		case errors.Is(err, docex.ErrTenantSuspended) && active:
			cancel(driver.TenantSuspendedCause(t))
			return
		case err == nil:
			active = true
		}
	}
}

// run hands a leased job to handle, renewing the lease meanwhile, and
// settles the lease according to the outcome.
func (q *jobQueue) run(ctx context.Context, st *store, tenant, id string, cfg driver.WorkConfig, handle driver.JobHandler, log interface {
	Warn(string, ...any)
}) {
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		tick := time.NewTicker(cfg.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-tick.C:
				_ = st.db.group.do(hbCtx, st.db.w, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(hbCtx, `UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?`,
						micros(time.Now().Add(cfg.Lease)), id, cfg.WorkerID)
					return err
				})
			}
		}
	}()
	out := handle(ctx, driver.Delivery{TenantID: tenant, JobID: id, ID: cfg.WorkerID})
	stopHB()
	<-hbDone
	if out.Kind == driver.Done {
		// The handler wrote the job's final state, which ended the lease
		// (tx.UpdateJob). Were the state not final, the lease expires and
		// the job is delivered again.
		return
	}
	if out.Kind == driver.Drop && errors.Is(context.Cause(ctx), docex.ErrTenantUnknown) {
		// The tenant was deleted (watchDeleted): the job went with its
		// file, nothing is left to write.
		return
	}
	bg := context.WithoutCancel(ctx)
	err := st.db.group.do(bg, st.db.w, func(tx *sql.Tx) error {
		var err error
		switch out.Kind {
		case driver.Again:
			_, err = tx.ExecContext(bg, `UPDATE jobs SET state = CASE WHEN state = 'running' THEN 'queued' ELSE state END,
				run_at = ?, lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`,
				micros(time.Now().Add(out.After)), id, cfg.WorkerID)
		case driver.Drop:
			_, err = tx.ExecContext(bg, `UPDATE jobs SET state = CASE WHEN state IN ('queued', 'running') THEN 'cancelled' ELSE state END,
				error = CASE WHEN state IN ('queued', 'running') THEN ? ELSE error END,
				lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`, out.Reason, id, cfg.WorkerID)
		}
		return err
	})
	if err != nil {
		log.Warn("release job", "tenant", tenant, "job", id, "error", err)
	}
}

var (
	_ driver.Backend = (*Backend)(nil)
	_ driver.Tx      = (*tx)(nil)
)
