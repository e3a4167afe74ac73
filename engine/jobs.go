package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

// Step outcomes recorded with a completion key.
const (
	StepRan      = "ran"      // the plugin ran and its outputs were committed
	StepCached   = "cached"   // a cached result for the same input, module and parameters was applied
	StepFiltered = "filtered" // the input's content type is not in the step's filter
)

// jobDetail is the engine-owned JSON of a job record.
type jobDetail struct {
	Progress JobProgress  `json:"progress"`
	Attempts []JobAttempt `json:"attempts"`
	Failure  *JobFailure  `json:"failure"`
	// Retried is the number of attempts spent before the last job retry
	// (Session.RetryJob): the fresh budget's attempts are counted from
	// it, and so is the backoff of a transient failure (budgetAttempt).
	Retried int `json:"retried"`
	// Omitted is the number of attempts left out of Attempts (trim).
	Omitted int `json:"omitted"`
}

// AttemptHistoryKept is how many of a job's most recent attempts its
// attempt history keeps, besides its first: a job retried again and
// again (Session.RetryJob) would otherwise keep every attempt, and each
// attempt rewrites the whole history. The attempts between the first and
// the kept ones are left out, and counted (JobInfo.AttemptsOmitted).
const AttemptHistoryKept = 32

// trim leaves out of d's history the attempts between its first and its
// AttemptHistoryKept most recent, counting them in d.Omitted.
func (d *jobDetail) trim() {
	if n := len(d.Attempts) - 1 - AttemptHistoryKept; n > 0 {
		d.Attempts = slices.Delete(d.Attempts, 1, 1+n)
		d.Omitted += n
	}
}

// budgetAttempt returns the number of the job's last attempt within its
// current budget of attempts: 1 for the first attempt after a job retry,
// as for a job's first attempt ever. The backoff of a transient failure
// counts from it, so that a retried job starts again at the first delay.
func budgetAttempt(job *driver.JobRecord, det *jobDetail) int {
	return max(job.Attempts-det.Retried, 1)
}

// JobProgress counts the step runs of a job (over all its attempts). In a
// JobInfo, DurationMS is the sum of the durations of the attempts in its
// history (an attempt not ended adds nothing).
type JobProgress struct {
	StepsRun      int     `json:"steps_run"`
	StepsCached   int     `json:"steps_cached"`
	StepsFiltered int     `json:"steps_filtered"`
	Derived       int     `json:"derived"`
	DurationMS    float64 `json:"duration_ms"`
}

// JobAttempt is one attempt of a job.
type JobAttempt struct {
	N          int       `json:"n"`
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at"`
	Worker     string    `json:"worker"`
	ErrorCode  string    `json:"error_code"`
	Error      string    `json:"error"`
	Transient  bool      `json:"transient"`
	DurationMS float64   `json:"duration_ms"`
	// RetryAfterMS is the backoff the engine chose after this attempt's
	// transient failure: the job was queued again to run no sooner than
	// this after the attempt's end. 0 when it was not queued again with
	// a backoff (it succeeded, failed, was cancelled, was the budget's
	// last, or did not finish).
	RetryAfterMS float64 `json:"retry_after_ms"`
}

// JobFailure says where and why a job failed.
type JobFailure struct {
	Step      string    `json:"step"`
	InputID   string    `json:"input_id"`
	ErrorCode string    `json:"error_code"`
	Error     string    `json:"error"`
	Report    RunReport `json:"report"` // zero when the step did not run
}

// stepError is a failure of one step on one input, with its report.
type stepError struct {
	step, input string
	report      *RunReport
	err         error
}

func (e *stepError) Error() string {
	cause := e.err
	if ce, ok := cause.(*contentError); ok && ce.docID == e.input {
		cause = ce.err // "step s on D: document D: ..." names D twice
	}
	if e.step == "" { // a failure of the job, not of a step (a give-up, a refused user, its input unreadable): the cause says which
		return cause.Error()
	}
	msg := fmt.Sprintf("step %s on %s: %v", e.step, e.input, cause)
	if errors.Is(e.err, pluginapi.ErrContentTypeNotAccepted) {
		// The job fails (nothing says the document was meant to be
		// skipped); the pipeline can say so.
		msg += fmt.Sprintf(" (to skip such documents instead, give step %s an accept list of the content types it takes)", e.step)
	}
	return msg
}
func (e *stepError) Unwrap() error { return e.err }

// transient reports whether a job failure may succeed when retried: host
// and storage I/O failures, interrupted work, and timeouts of steps that
// allow retries. Invalid input, denials, traps, limit violations and bad
// output are permanent. Running out of file descriptors is transient
// even where it made another error (a step's, a corrupt read).
func transient(err error, retryTimeout bool) bool {
	switch {
	case errors.Is(err, docex.ErrTooManyOpenFiles), fdlimit.IsExhaustion(err):
		return true // whatever else it says: the process ran out of descriptors
	case errors.Is(err, context.Canceled), errors.As(err, new(*inputChangedError)):
		return true
	case errors.Is(err, pluginapi.ErrPluginTimeout), errors.Is(err, context.DeadlineExceeded):
		return retryTimeout
	case errors.Is(err, pluginapi.ErrHostFailure):
		return true
	case errors.Is(err, docex.ErrPluginFailed), errors.Is(err, docex.ErrCorrupt), errors.Is(err, docex.ErrNoSandbox):
		return false
	case docex.KindOf(err) != nil:
		return false
	}
	return true // storage and I/O errors
}

// backoff returns the delay before attempt n+1: base * 2^(n-1), at most
// maxBackoff, with ±20% jitter.
func backoff(base time.Duration, n int) time.Duration {
	d := base << min(max(n-1, 0), 16)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

const maxBackoff = 10 * time.Minute

// jobRunner runs delivered jobs for one worker.
type jobRunner struct {
	e             *Engine
	worker        string
	retryBase     time.Duration
	suspendedWait time.Duration
	batches       *batcher
	// runs bounds the plugin runs of the worker's batches at once to
	// GOMAXPROCS: more would not run faster, and would need more plugin
	// instances than the sandbox keeps idle (each one started cold).
	// Waiting tenants take freed slots in turn (fairSlots).
	runs *fairSlots
	// shares are the plugin calls of the worker's batches by tenant and
	// step cache key, from the call until its round has committed: a
	// batch of the same tenant running the same call meanwhile waits for
	// its result instead of calling the plugin again.
	shares runShares
	// roundBytes and roundDocs bound what a batch's step round holds in
	// memory until it commits (see roundFull); 0 is maxRoundBytes,
	// maxRoundDocs. Tests set them lower.
	roundBytes int64
	roundDocs  int
	// stopGrace bounds, once a stop cancelled the attempt's context, the
	// writes that must run to their end despite it (startJobs, finish):
	// 0 is auditGrace. Tests set it lower.
	stopGrace time.Duration
	// onCommit, when not nil (tests), is called before each transaction
	// of a round's commit with what the round's runs not yet committed
	// hold then, and what the transaction commits.
	onCommit func(round, tx heldCount)
	// onDelivery is WorkerConfig.OnDelivery (tests).
	onDelivery func(driver.Delivery) func(driver.Outcome)
	// log is WorkerConfig.Logger (nil: nothing is logged).
	log *slog.Logger
}

// grace is stopGrace, or auditGrace when it is 0.
func (r *jobRunner) grace() time.Duration {
	if r.stopGrace > 0 {
		return r.stopGrace
	}
	return auditGrace
}

// staleDropMsg is the log line of a stale delivery dropped (see
// droppedStale), as docs/jobs.md's "Worker log lines" gives it.
const staleDropMsg = "dropped a stale delivery (not its job's current one: the job was left as it was)"

// droppedStale logs that the delivery d was completed without touching
// its job, stale for reason (driver.DeliveryTx: a driver.Stale* reason).
func (r *jobRunner) droppedStale(d driver.Delivery, reason string) {
	if r.log != nil {
		r.log.Info(staleDropMsg, "worker", r.worker, "tenant", d.TenantID, "job", d.JobID, "delivery", d.ID, "reason", reason)
	}
}

// heldCount is what step runs made and not yet committed hold in memory:
// the runs, their outputs' bytes (pendingUnit.held) and their derived
// documents.
type heldCount struct {
	runs, docs int
	bytes      int64
}

// add returns c with pu counted.
func (c heldCount) add(pu *pendingUnit) heldCount {
	return heldCount{runs: c.runs + 1, docs: c.docs + pu.outputs(), bytes: c.bytes + pu.held}
}

// handle implements driver.JobHandler: the delivery joins a batch of its
// tenant's deliveries (see batcher), which runs it.
func (r *jobRunner) handle(ctx context.Context, d driver.Delivery) (out driver.Outcome) {
	if r.onDelivery != nil {
		if after := r.onDelivery(d); after != nil {
			defer func() { after(out) }()
		}
	}
	if r.e.closed.Load() {
		return driver.Outcome{Kind: driver.Again}
	}
	out = r.batches.submit(ctx, d)
	if out.Kind == driver.Again && ctx.Err() != nil && tenantGone(context.Cause(ctx)) {
		// The queue found the tenant deleted (driver.TenantDeletedCause)
		// before the delivery ran, or while it ran.
		return tenantDeleted(d.TenantID)
	}
	return out
}

// runBatch runs a batch of one tenant's deliveries (the batcher's run).
func (r *jobRunner) runBatch(ctx context.Context, tenant string, batch []*pending) {
	outs := r.handleBatch(ctx, tenant, batch)
	r.dropIfDeleted(ctx, tenant, outs)
	var ended []string
	for i, p := range batch {
		if outs[i].Kind != driver.Again {
			ended = append(ended, p.d.JobID)
		}
	}
	r.e.ends.ended(tenant, ended)
	for i, p := range batch {
		p.out = outs[i]
		close(p.done)
	}
}

// dropIfDeleted turns the Again outcomes of outs into cancellations when
// tenant is no longer registered: a delivery of a tenant deleted while
// its job ran fails whatever it writes next (its schema is gone), and,
// delivered again, would wait for ever in a queue no worker serves any
// more. Most such failures say so themselves (docex.ErrTenantUnknown,
// see tenantGone); the registry is read here for those that do not (an
// error classified otherwise, a write that failed for another reason
// just before the tenant went). A stopping worker's deliveries stay Again,
// but for those whose context the queue cancelled because it found their
// tenant deleted (driver.TenantDeletedCause): the attempt stopped where
// it was (a plugin call in progress included) and is cancelled.
func (r *jobRunner) dropIfDeleted(ctx context.Context, tenant string, outs []driver.Outcome) {
	if tenant == "" || r.e.closed.Load() || !slices.ContainsFunc(outs, func(o driver.Outcome) bool { return o.Kind == driver.Again }) {
		return
	}
	if ctx.Err() != nil {
		if !tenantGone(context.Cause(ctx)) {
			return
		}
	} else if _, err := r.e.be.Tenant(ctx, tenant); !errors.Is(err, docex.ErrTenantNotFound) {
		return
	}
	for i := range outs {
		if outs[i].Kind == driver.Again {
			outs[i] = tenantDeleted(tenant)
		}
	}
}

// jobGone is the outcome of a delivery whose job tenant t does not hold:
// cancelled. A job id is a UUIDv7, which holds the millisecond it was
// made: a job made before t was created (t's incarnation; a millisecond
// before it, so that clocks a little apart do not count) was a job of a
// tenant of that id deleted since (PostgreSQL: a River job a killed
// worker held, rescued into the queue of the tenant created again), and
// is cancelled as the deleted tenant's, `cancelled: tenant "ID" was
// deleted`; any other (a job pruned) `cancelled: job ID no longer
// exists`.
func jobGone(t docex.Tenant, d driver.Delivery) driver.Outcome {
	if u, err := uuid.Parse(d.JobID); err == nil && u.Version() == 7 && d.TenantID != "" && !t.CreatedAt.IsZero() {
		sec, nsec := u.Time().UnixTime()
		if time.Unix(sec, nsec).Before(t.CreatedAt.Add(-time.Millisecond)) {
			return tenantDeleted(d.TenantID)
		}
	}
	return driver.Outcome{Kind: driver.Drop, Reason: fmt.Sprintf("cancelled: job %s no longer exists", d.JobID)}
}

// tenantDeleted is the outcome of a delivery whose tenant was deleted:
// cancelled, never retried (River's JobCancel on PostgreSQL).
func tenantDeleted(tenant string) driver.Outcome {
	return driver.Outcome{Kind: driver.Drop, Reason: fmt.Sprintf("cancelled: tenant %q was deleted", tenant)}
}

// tenantGone reports whether err says that the tenant was deleted (or
// deleted and created again: the job's record went with the schema it
// was in) since its store was opened, or is not registered.
func tenantGone(err error) bool {
	return errors.Is(err, docex.ErrTenantUnknown) || errors.Is(err, docex.ErrTenantNotFound)
}

// againOrDeleted is the outcome of a delivery whose handling failed with
// err: cancelled when err says its tenant is gone (tenantGone), else
// Again after a backoff.
func (r *jobRunner) againOrDeleted(tenant string, err error) driver.Outcome {
	if tenantGone(err) {
		return tenantDeleted(tenant)
	}
	return driver.Outcome{Kind: driver.Again, After: backoff(r.retryBase, 1)}
}

// handleBatch runs each delivered job as the user who enqueued it,
// re-checked now, and records its outcome in the tenant's job record. The
// jobs of one user and pipeline version run together (execute). It
// returns the deliveries' outcomes, in order.
func (r *jobRunner) handleBatch(ctx context.Context, tenant string, batch []*pending) []driver.Outcome {
	e := r.e
	outs := make([]driver.Outcome, len(batch))
	all := func(o driver.Outcome) []driver.Outcome {
		for i := range outs {
			outs[i] = o
		}
		return outs
	}
	if e.closed.Load() {
		return all(driver.Outcome{Kind: driver.Again})
	}
	st, err := e.be.OpenTenant(ctx, tenant)
	if err != nil {
		return all(r.againOrDeleted(tenant, err))
	}
	defer st.Close()
	type userJobs struct {
		idx  []int
		jobs []driver.JobRecord
		ds   []driver.Delivery
	}
	var groups []*userJobs
	byUser := map[string]*userJobs{}
	ids := make([]string, len(batch))
	for i, p := range batch {
		ids[i] = p.d.JobID
	}
	recs, err := st.JobsByID(ctx, ids)
	if err != nil {
		return all(r.againOrDeleted(tenant, err))
	}
	byID := make(map[string]driver.JobRecord, len(recs))
	for _, j := range recs {
		byID[j.ID] = j
	}
	seen := make(map[string]bool, len(batch))
	for i, p := range batch {
		job, ok := byID[p.d.JobID]
		switch {
		case !ok:
			outs[i] = jobGone(st.Tenant(), p.d)
			continue
		case driver.JobFinal(job.State):
			outs[i] = driver.Outcome{Kind: driver.Done}
			continue
		case seen[job.ID]:
			// A job delivered twice in one batch runs once, by the first
			// delivery, unless that one is stale (DeliveryTx): this one
			// is delivered again after a backoff, to find the job run or
			// running by the other, or, the other stale, to run it.
			outs[i] = driver.Outcome{Kind: driver.Again, After: backoff(r.retryBase, 1)}
			continue
		}
		seen[job.ID] = true
		k := userKey(job.User)
		g := byUser[k]
		if g == nil {
			g = &userJobs{}
			byUser[k] = g
			groups = append(groups, g)
		}
		g.idx, g.jobs, g.ds = append(g.idx, i), append(g.jobs, job), append(g.ds, p.d)
	}
	for _, g := range groups {
		s := e.As(g.jobs[0].User)
		ust, err := s.open(ctx, tenancy.ActionRunPipeline, "job.run", g.jobs[0].ID)
		if err != nil {
			for k, i := range g.idx {
				kerr := err
				if k > 0 { // each job's refusal is checked and audited with its own id
					if ust, kerr = s.open(ctx, tenancy.ActionRunPipeline, "job.run", g.jobs[k].ID); kerr == nil {
						ust.Close()
						outs[i] = driver.Outcome{Kind: driver.Again}
						continue
					}
				}
				outs[i] = r.refused(ctx, st, s, g.jobs[k], g.ds[k], kerr)
			}
			continue
		}
		r.attempts(ctx, ust, s, g.jobs, g.ds, g.idx, outs)
		ust.Close()
	}
	return outs
}

// userKey identifies a job's UserContext: the jobs of one batch that share
// it share a session and a store.
func userKey(u docex.UserContext) string {
	return u.UserID + "\x00" + u.TenantID + "\x00" + strings.Join(u.Roles, "\x00")
}

// refused settles a job whose user cannot run it now: a suspended tenant
// (the job waits, no attempt spent), a deleted one (cancelled), a user no
// longer allowed (failed), or a transient error (retried).
func (r *jobRunner) refused(ctx context.Context, st driver.TenantStore, s *Session, job driver.JobRecord, d driver.Delivery, err error) driver.Outcome {
	e := r.e
	switch {
	case errors.Is(err, docex.ErrTenantSuspended):
		// Wait without spending an attempt; say so in the record (unless
		// it changed since it was read: a cancel stays).
		owner := ownerOf(job)
		job.Error, job.ErrorCode = waitingSuspended(job.User.TenantID), docex.Code(err)
		job.State, job.RunAt, job.UpdatedAt = driver.JobQueued, e.now().Add(r.suspendedWait), e.now()
		werr := st.Write(ctx, func(tx driver.Tx) error { return recordAs(ctx, tx, s, job, "", owner, &d) })
		if tenantGone(werr) {
			return tenantDeleted(job.User.TenantID)
		}
		if reason, ok := staleReason(werr); ok {
			r.droppedStale(d, reason)
			return driver.Outcome{Kind: driver.Done}
		}
		return driver.Outcome{Kind: driver.Again, After: r.suspendedWait}
	case errors.Is(err, docex.ErrTenantUnknown):
		return tenantDeleted(job.User.TenantID)
	case docex.KindOf(err) != nil:
		// The user may not run pipelines (any more): permanent.
		det := jobDetailOf(job)
		lost := lostEntries(s, job, det.markLost())
		return r.finish(ctx, st, s, &job, det, nil, &d, &stepError{err: err}, time.Now(), lost...)
	}
	return driver.Outcome{Kind: driver.Again, After: backoff(r.retryBase, 1)}
}

// waitingSuspended is the error of a job that waits for its suspended
// tenant, in the engine's words: the refusal's own text depends on where
// it came from (the session's gate, or a backend refusing a commit,
// "postgres: ..."), and the job says the same whichever it was.
func waitingSuspended(tenant string) string {
	return fmt.Sprintf("waiting: tenant %q is suspended", tenant)
}

// waiting reports whether j's error is the one of a job that waited for
// its suspended tenant (waitingSuspended), which is not a failure.
func waiting(j driver.JobRecord) bool {
	return j.ErrorCode == docex.Code(docex.ErrTenantSuspended) && strings.HasPrefix(j.Error, "waiting: ")
}

func jobDetailOf(j driver.JobRecord) *jobDetail {
	d := &jobDetail{}
	if len(j.Detail) > 0 {
		_ = json.Unmarshal(j.Detail, d)
	}
	if d.Attempts == nil {
		d.Attempts = []JobAttempt{}
	}
	d.trim() // a record written before the history was bounded
	return d
}

// clone returns a deep copy of d.
func (d *jobDetail) clone() *jobDetail {
	c := &jobDetail{}
	_ = json.Unmarshal(d.bytes(), c)
	if c.Attempts == nil {
		c.Attempts = []JobAttempt{}
	}
	return c
}

// lostWhy says why an attempt may not finish (its worker did not record
// its end), on either backend: its worker was killed (or its machine
// lost), or it could not write the attempt's end, or it could not renew
// the job's lease (every third of the lease) before the lease ran out, so
// that the job was delivered again (River rescued it; another SQLite
// worker claimed it) while the attempt still ran, which then stops
// before its next step without recording anything. An attempt whose own
// run outlasts the lease (PostgreSQL) ends with leaseError instead.
const lostWhy = "it was killed, cut off from the database, or could not renew the job's lease in time"

// giveUpError is the failure of a job delivered again with its attempts
// spent: its last one did not finish (markLost). Code plugin_failed.
func giveUpError(attempts int) error {
	n, last := fmt.Sprintf("%d attempts", attempts), "the last one"
	if attempts == 1 {
		n, last = "1 attempt", "it"
	}
	return docex.Errorf(docex.ErrPluginFailed, "gave up after %s: %s did not finish (its worker did not record its end: %s, "+
		"which it renews every third of the lease: a very short docex worker --lease may not leave time for that); the job's attempt history says how each attempt ended", n, last, lostWhy)
}

// markLost records, on the last attempt of d when it never ended, that it
// did not finish, and returns it (nil when d has no such attempt): a job
// delivered again with such an attempt was left by a worker that did not
// record the attempt's end (see lostWhy). The attempt keeps its zero end
// time (when it stopped is not known) and counts, as a transient failure.
func (d *jobDetail) markLost() *JobAttempt {
	n := len(d.Attempts)
	if n == 0 || !d.Attempts[n-1].EndedAt.IsZero() || d.Attempts[n-1].Error != "" {
		return nil
	}
	a := &d.Attempts[n-1]
	a.Error = fmt.Sprintf("did not finish: its worker %s did not record its end (%s); the job was delivered again", a.Worker, lostWhy)
	a.Transient = true
	return a
}

// lostEntries returns the audit entry of job's attempt a that did not
// finish (markLost), as job.attempt_lost, in a slice; none for a nil a.
func lostEntries(s *Session, job driver.JobRecord, a *JobAttempt) []docex.AuditEntry {
	if a == nil {
		return nil
	}
	e := s.entry("job.attempt_lost", job.ID, docex.OutcomeError, errors.New(a.Error))
	e.Detail = map[string]any{"pipeline": job.Pipeline, "version": job.Version, "document_id": job.DocumentID, "attempt": a.N, "worker": a.Worker}
	return []docex.AuditEntry{e}
}

func (d *jobDetail) bytes() []byte {
	b, _ := json.Marshal(d)
	return b
}

// attempts runs one attempt of each of jobs (all of one user) and writes
// their outcomes at outs[idx[k]]. The attempts start in one transaction
// (each in its own should that fail); the jobs then run together.
func (r *jobRunner) attempts(ctx context.Context, st driver.TenantStore, s *Session, jobs []driver.JobRecord, ds []driver.Delivery, idx []int, outs []driver.Outcome) {
	e := r.e
	started := time.Now()
	var (
		xs []*execution
		xi []int
	)
	for k, job := range jobs {
		det := jobDetailOf(job)
		lost := lostEntries(s, job, det.markLost())
		if job.Attempts >= job.MaxAttempts {
			// The job's progress counts the steps its lost attempt
			// recorded (see begin); unread, it stays as written.
			if recs, err := st.JobSteps(ctx, job.ID); err == nil {
				det.Progress = recordsProgress(det.Progress, recs)
			}
			outs[idx[k]] = r.finish(ctx, st, s, &job, det, nil, &ds[k], &stepError{err: giveUpError(job.Attempts)}, time.Now(), lost...)
			continue
		}
		read := ownerOf(job)
		job.Attempts++
		job.State, job.UpdatedAt = driver.JobRunning, e.now()
		// A running job has no error: the previous attempt's is in its
		// history (a retry after a transient failure does not show as
		// failed), and a job that waited for its tenant no longer waits
		// (resumed).
		job.Error, job.ErrorCode = "", ""
		det.Attempts = append(det.Attempts, JobAttempt{N: job.Attempts, StartedAt: e.now(), Worker: r.worker})
		det.trim()
		job.Detail = det.bytes()
		xs = append(xs, &execution{r: r, s: s, st: st, job: job, det: det, started: started, read: read, lost: lost, d: ds[k]})
		xi = append(xi, idx[k])
	}
	if len(xs) == 0 {
		return
	}
	ended, err := startJobs(ctx, st, xs, r.grace())
	if err != nil && len(xs) > 1 {
		// One by one: a job deleted meanwhile fails only its own start.
		ended = map[string]string{}
		kept, keptIdx := xs[:0:0], xi[:0:0]
		for k, x := range xs {
			e1, err := startJobs(ctx, st, []*execution{x}, r.grace())
			if err != nil {
				outs[xi[k]] = r.againOrDeleted(x.job.User.TenantID, err)
				continue
			}
			maps.Copy(ended, e1)
			kept, keptIdx = append(kept, x), append(keptIdx, xi[k])
		}
		xs, xi, err = kept, keptIdx, nil
	}
	if err != nil {
		outs[xi[0]] = r.againOrDeleted(xs[0].job.User.TenantID, err)
		return
	}
	if len(ended) > 0 {
		// Cancelled, deleted or started by another delivery since
		// handleBatch read them: left so.
		kept, keptIdx := xs[:0:0], xi[:0:0]
		for k, x := range xs {
			switch state, ok := ended[x.job.ID]; {
			case !ok:
				kept, keptIdx = append(kept, x), append(keptIdx, xi[k])
			case state == "stale":
				r.droppedStale(x.d, x.stale)
				outs[xi[k]] = driver.Outcome{Kind: driver.Done}
			case state == "":
				outs[xi[k]] = driver.Outcome{Kind: driver.Drop, Reason: fmt.Sprintf("cancelled: job %s no longer exists", x.job.ID)}
			default:
				outs[xi[k]] = driver.Outcome{Kind: driver.Done}
			}
		}
		xs, xi = kept, keptIdx
	}
	r.execute(ctx, xs)
	for k, x := range xs {
		switch {
		case errors.Is(x.err, errJobCancelled):
			// Cancelled, retried or taken over meanwhile: the job is no
			// longer this attempt's, whose end is not recorded.
			outs[xi[k]] = driver.Outcome{Kind: driver.Done}
		case x.err == nil && x.settled != nil:
			outs[xi[k]] = *x.settled // recorded with the last step's outputs
		default:
			outs[xi[k]] = r.finish(ctx, st, s, &x.job, x.det, x, nil, x.err, x.started)
		}
	}
}

// errJobCancelled: the job is no longer the attempt's (jobOwner): it was
// cancelled, or retried after a cancel, or another delivery started it,
// since. The attempt stops and records nothing more; the record stays as
// the cancel, the retry or the other delivery left it.
var errJobCancelled = errors.New("job cancelled")

// jobOwner is what a job's record says when it is still the one a worker
// read or started: its state and its number of attempts. An attempt owns
// its job while the record is running with the attempt's number: a cancel
// (cancelled), a retry after it (queued) and another delivery's attempt
// (a higher number) each end that, and the attempt writes nothing more
// (docs/jobs.md, "Cancel and retry").
type jobOwner struct {
	state    string
	attempts int
}

func ownerOf(j driver.JobRecord) jobOwner { return jobOwner{j.State, j.Attempts} }

// jobsIn reads the jobs of ids in tx, locked (driver.Tx.Job), and returns
// those that exist, by id.
func jobsIn(ctx context.Context, tx driver.Tx, ids []string) (map[string]driver.JobRecord, error) {
	cur, err := tx.JobsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	jobs := make(map[string]driver.JobRecord, len(cur))
	for _, j := range cur {
		jobs[j.ID] = j
	}
	return jobs, nil
}

// startJobs records the start of the executions' attempts (state running,
// the attempt in the history), with the audit entries of the attempts
// they found lost (execution.lost), in one transaction. It first reads the jobs
// again in that transaction (locked, on a backend that runs transactions
// at once: driver.Tx.Job): a job whose record changed since the worker
// read it (cancelled or ended, or started by another delivery of it) is
// left as it is, and returned in ended with its state ("" for a job that
// no longer exists); one whose delivery is stale (driver.DeliveryTx) is
// returned as "stale", the reason in its execution's stale.
//
// The transaction runs to its end whatever ctx (a stop that cancels the
// running jobs): its outcome must be known. A cancel that came as it
// committed made its error the cancel's while the commit had landed
// (PostgreSQL: pgx returns the context's error and the COMMIT may have
// run), and the worker released the delivery, the job left running with
// an attempt no worker ran: the next delivery recorded it lost
// (job.attempt_lost, an attempt spent). Started, an attempt stopped
// meanwhile is written back queued, not counted (settle), as any
// attempt a shutdown interrupts. Only a write still unanswered grace
// after the stop is cut short (a database that does not answer): its
// error is then the context's, and its outcome unknown.
func startJobs(ctx context.Context, st driver.TenantStore, xs []*execution, grace time.Duration) (ended map[string]string, err error) {
	ids := make([]string, len(xs))
	for i, x := range xs {
		ids[i] = x.job.ID
	}
	ctx, cancel := graceAfter(ctx, grace)
	defer cancel()
	err = st.Write(ctx, func(tx driver.Tx) error {
		ended = map[string]string{}
		cur, err := jobsIn(ctx, tx, ids)
		if err != nil {
			return err
		}
		jobs := make([]driver.JobRecord, 0, len(xs))
		var lost []docex.AuditEntry
		ds := make([]driver.Delivery, 0, len(xs))
		for _, x := range xs {
			if c, ok := cur[x.job.ID]; ok && ownerOf(c) == x.read {
				ds = append(ds, x.d)
			}
		}
		stale, err := staleDeliveries(ctx, tx, ds)
		if err != nil {
			return err
		}
		for _, x := range xs {
			x.stale = ""
			if c, ok := cur[x.job.ID]; !ok || ownerOf(c) != x.read {
				ended[x.job.ID] = c.State
				continue
			}
			if reason := stale[x.job.ID]; reason != "" {
				// Not the job's current delivery, or another one holds
				// the job, alive: it neither starts the job nor takes
				// it over (the attempt found running is not lost).
				ended[x.job.ID], x.stale = "stale", reason
				continue
			}
			jobs, lost = append(jobs, x.job), append(lost, x.lost...)
		}
		if jt, ok := tx.(driver.JobsTx); ok {
			if err := jt.UpdateJobs(ctx, jobs); err != nil {
				return err
			}
		} else {
			for _, j := range jobs {
				if err := tx.UpdateJob(ctx, j); err != nil {
					return err
				}
			}
		}
		for _, e := range lost {
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	return ended, err
}

// errStaleDelivery: the delivery acting on a job is not the job's current
// one, or another live delivery holds the job (driver.DeliveryTx): it
// writes nothing, and is completed (Done) without running the job. It is
// returned as a *staleDeliveryError, which says why.
var errStaleDelivery = errors.New("stale delivery")

// staleDeliveryError is errStaleDelivery with its reason (a driver.Stale*
// reason).
type staleDeliveryError struct{ reason string }

func (e *staleDeliveryError) Error() string        { return "stale delivery: " + e.reason }
func (e *staleDeliveryError) Is(target error) bool { return target == errStaleDelivery }

// staleReason returns the reason of a stale delivery's error, and whether
// err is one.
func staleReason(err error) (string, bool) {
	var se *staleDeliveryError
	if errors.As(err, &se) {
		return se.reason, true
	}
	return "", errors.Is(err, errStaleDelivery)
}

// staleDeliveries is tx's driver.DeliveryTx.StaleDeliveries of ds, by job
// id the reason of each stale one (none stale on a backend without it).
func staleDeliveries(ctx context.Context, tx driver.Tx, ds []driver.Delivery) (map[string]string, error) {
	dt, ok := tx.(driver.DeliveryTx)
	if !ok || len(ds) == 0 {
		return nil, nil
	}
	return dt.StaleDeliveries(ctx, ds)
}

// errInputGone: the job's document was deleted before the job ran; the
// job is cancelled with that reason (settle), not failed or retried.
var errInputGone = errors.New("input document deleted")

// inputDeletedError: a document a job's step ran on (the job's document
// or one an earlier step derived) was deleted before the step's results
// were committed. They are not written, and the job is cancelled with
// that reason (settle): results derived from a deleted document would
// outlive it, even a cascade delete of it.
type inputDeletedError struct{ id string }

func (e *inputDeletedError) Error() string {
	return fmt.Sprintf("document %s was deleted while the job ran", e.id)
}

// inputChangedError: a document a job's step ran on was given new content
// (docex doc update) before the step's results were committed. They were
// made from content the document no longer holds: they are not written,
// and the job is retried (settle), its next attempt running the step on
// the new content.
type inputChangedError struct{ id string }

func (e *inputChangedError) Error() string {
	return fmt.Sprintf("document %s's content changed while the job ran on it; the job runs again on the new content", e.id)
}

// keepInputs locks the inputs of the parts' units against deletion and
// content updates until tx ends (driver.Tx.LockDocuments); an
// *inputDeletedError when one is gone already, an *inputChangedError when
// one holds other content than the step ran on.
func keepInputs(ctx context.Context, tx driver.Tx, parts []flushPart) error {
	var ids []string
	seen := map[string]bool{}
	for _, p := range parts {
		for _, pu := range p.units {
			if id := pu.input.ID; !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sums, err := tx.LockDocuments(ctx, ids, false)
	if err != nil {
		return err
	}
	for _, p := range parts {
		for _, pu := range p.units {
			sum, ok := sums[pu.input.ID]
			switch {
			case !ok:
				return &inputDeletedError{id: pu.input.ID}
			case sum != pu.input.Checksum:
				return &inputChangedError{id: pu.input.ID}
			}
		}
	}
	return nil
}

// finish records the end of an attempt: success, a transient failure (the
// job is queued again with backoff) or a permanent one; lost (the audit
// entry of an earlier attempt found lost, markLost) is written with it.
//
// A tenant suspended during the attempt makes the job wait, as one
// suspended before it started does (refused): the attempt is not counted,
// whatever its end, and the record says "waiting: ...". The suspension
// shows as the attempt's error (a commit or a read refused), as the
// cancellation of the attempt's context by the queue, which found the
// tenant suspended (driver.TenantSuspendedCause: a plugin call in
// progress stops), or as the refusal of the write that records the
// attempt's end (st was opened while the tenant was active); the record
// is then written through a store opened now, as refused writes it.
//
// d, when not nil, is the delivery that settles a job it started no
// attempt of (a job given up, a user refused): checked in the write's
// transaction (recordAs), a stale one writes nothing.
func (r *jobRunner) finish(ctx context.Context, st driver.TenantStore, s *Session, job *driver.JobRecord, det *jobDetail, x *execution, d *driver.Delivery, err error, started time.Time, lost ...docex.AuditEntry) driver.Outcome {
	bg, cancel := graceAfter(ctx, r.grace())
	defer cancel()
	if cause := context.Cause(ctx); err != nil && ctx.Err() != nil && errors.Is(cause, docex.ErrTenantSuspended) {
		// The queue found the tenant suspended and stopped the attempt
		// (driver.TenantSuspendedCause), a plugin call in progress
		// included: whatever error that made, the job waits for its
		// tenant, the attempt not counted.
		err = cause
	}
	job0, det0 := *job, det.clone()
	owner := ownerOf(*job) // the attempt's (running, its number), or the record as read when none started
	op, out := r.settle(ctx, job, det, x, err, started)
	werr := st.Write(bg, func(tx driver.Tx) error { return recordAs(bg, tx, s, *job, op, owner, d, lost...) })
	if errors.Is(werr, docex.ErrTenantSuspended) {
		*job, det = job0, det0
		op, out = r.settle(ctx, job, det, x, werr, started)
		werr = r.recordSuspended(bg, s, *job, op, owner, d, lost...)
	}
	if reason, ok := staleReason(werr); ok && d != nil {
		r.droppedStale(*d, reason)
	}
	if errors.Is(werr, errJobCancelled) || errors.Is(werr, errStaleDelivery) {
		return driver.Outcome{Kind: driver.Done}
	}
	if werr != nil {
		// A tenant deleted during the attempt: its record went with its
		// schema, and the delivery is cancelled (againOrDeleted).
		return r.againOrDeleted(job.User.TenantID, werr)
	}
	return out
}

// recordSuspended writes a settled job record of a tenant suspended since
// the attempt began, with the entries of lost (see record), through a
// store opened now (one opened while the tenant was active refuses writes
// once it is suspended).
func (r *jobRunner) recordSuspended(ctx context.Context, s *Session, job driver.JobRecord, op string, owner jobOwner, d *driver.Delivery, lost ...docex.AuditEntry) error {
	st, err := r.e.be.OpenTenant(ctx, job.User.TenantID)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Write(ctx, func(tx driver.Tx) error { return recordAs(ctx, tx, s, job, op, owner, d, lost...) })
}

// settle writes the end of an attempt into job and det: its state, error
// and history. It returns the audit operation ("" for none) and the
// delivery's outcome.
func (r *jobRunner) settle(ctx context.Context, job *driver.JobRecord, det *jobDetail, x *execution, err error, started time.Time) (string, driver.Outcome) {
	e := r.e
	now := e.now()
	err = fdlimit.Wrap(err) // recorded as too_many_open_files, whatever layer saw EMFILE
	n := len(det.Attempts)
	running := n > 0 && det.Attempts[n-1].EndedAt.IsZero() && det.Attempts[n-1].Error == "" // an attempt was started (not a job given up before one, nor one lost: markLost)
	if running {
		a := &det.Attempts[n-1]
		a.EndedAt, a.DurationMS = now, docex.Milliseconds(time.Since(started))
		if err != nil {
			a.Error, a.ErrorCode = err.Error(), docex.Code(err)
		}
	}
	det.Progress.DurationMS += docex.Milliseconds(time.Since(started))
	out := driver.Outcome{Kind: driver.Done}
	op := "job.succeeded"
	var se *stepError
	errors.As(err, &se)
	retryTimeout := x != nil && se != nil && x.retryTimeout(se.step)
	switch {
	case err == nil:
		job.State, job.Error, job.ErrorCode = driver.JobSucceeded, "", ""
	case errors.Is(err, docex.ErrTenantSuspended):
		// The tenant was suspended during the attempt: the job waits, the
		// attempt is not counted (see finish). Without an execution, no
		// attempt was started (a job given up, a user refused).
		if x != nil && running {
			job.Attempts--
			det.Attempts = det.Attempts[:n-1]
		}
		job.Error, job.ErrorCode = waitingSuspended(job.User.TenantID), docex.Code(err)
		job.State, job.RunAt = driver.JobQueued, now.Add(r.suspendedWait)
		op, out = "", driver.Outcome{Kind: driver.Again, After: r.suspendedWait}
	case x != nil && x.lease.hasExpired():
		// The job's own run used up its lease (the delivery's: see
		// leaseClock), whatever error that made: retried, and the attempt
		// counts, so a job that never fits its lease ends. A shutdown
		// that stopped the run first is not this (ctx.Err(), below).
		err = leaseError(x.lease.lease, se)
		a := &det.Attempts[len(det.Attempts)-1]
		a.Error, a.ErrorCode = err.Error(), docex.Code(err)
		job.Error, job.ErrorCode = err.Error(), docex.Code(err)
		if job.Attempts < job.MaxAttempts {
			a.Transient = true
			wait := backoff(r.retryBase, budgetAttempt(job, det))
			a.RetryAfterMS = docex.Milliseconds(wait)
			job.State, job.RunAt = driver.JobQueued, now.Add(wait)
			op, out = "job.retry", driver.Outcome{Kind: driver.Again, After: wait}
		} else {
			job.State, op = driver.JobFailed, "job.failed"
			det.Failure = &JobFailure{ErrorCode: job.ErrorCode, Error: job.Error}
			if se != nil {
				det.Failure.Step, det.Failure.InputID = se.step, se.input
				if se.report != nil {
					det.Failure.Report = *se.report
				}
			}
		}
	case errors.As(err, new(*inputDeletedError)):
		// A document the job was processing was deleted: what the job
		// did with it was not written. Cancelled, with the reason; the
		// attempt stays in the history.
		var ide *inputDeletedError
		errors.As(err, &ide)
		job.State, job.ErrorCode = driver.JobCancelled, "cancelled"
		job.Error = "cancelled: " + ide.Error()
		op = "job.cancelled"
	case errors.Is(err, errInputGone):
		// Nothing to process: the document was deleted after the job was
		// queued. Cancelled, with the reason, like a job of a deleted
		// tenant; no attempt spent.
		job.Attempts--
		det.Attempts = det.Attempts[:len(det.Attempts)-1]
		job.State, job.ErrorCode = driver.JobCancelled, "cancelled"
		job.Error = fmt.Sprintf("cancelled: document %s was deleted before the job ran", job.DocumentID)
		op = "job.cancelled"
	case ctx.Err() != nil:
		// Interrupted (shutdown): not the job's fault, no attempt spent.
		// Queued again, it shows its last ended attempt's error, as
		// before the attempt started.
		job.Attempts--
		det.Attempts = det.Attempts[:len(det.Attempts)-1]
		job.State, job.RunAt = driver.JobQueued, now
		job.Error, job.ErrorCode = "", ""
		if k := len(det.Attempts); k > 0 && !det.Attempts[k-1].EndedAt.IsZero() {
			job.Error, job.ErrorCode = det.Attempts[k-1].Error, det.Attempts[k-1].ErrorCode
		}
		op, out = "", driver.Outcome{Kind: driver.Again}
	case transient(err, retryTimeout) && job.Attempts < job.MaxAttempts:
		wait := backoff(r.retryBase, budgetAttempt(job, det))
		a := &det.Attempts[len(det.Attempts)-1]
		a.Transient, a.RetryAfterMS = true, docex.Milliseconds(wait)
		job.State, job.RunAt = driver.JobQueued, now.Add(wait)
		job.Error, job.ErrorCode = err.Error(), docex.Code(err)
		op, out = "job.retry", driver.Outcome{Kind: driver.Again, After: wait}
	default:
		job.State, job.Error, job.ErrorCode = driver.JobFailed, err.Error(), docex.Code(err)
		det.Failure = &JobFailure{ErrorCode: job.ErrorCode, Error: job.Error}
		if se != nil {
			det.Failure.Step, det.Failure.InputID = se.step, se.input
			if se.report != nil {
				det.Failure.Report = *se.report
			}
		}
		op = "job.failed"
	}
	job.UpdatedAt = now
	job.Detail = det.bytes()
	return op, out
}

// record writes a settled job record inside tx, and then the audit
// entries of lost (an earlier attempt found lost: markLost) and its own
// (op; none when ""); errJobCancelled when the record is no longer
// owner's (cancelled, retried or taken by another delivery meanwhile: it
// is left so).
func record(ctx context.Context, tx driver.Tx, s *Session, job driver.JobRecord, op string, owner jobOwner, lost ...docex.AuditEntry) error {
	return recordAs(ctx, tx, s, job, op, owner, nil, lost...)
}

// recordAs is record by the delivery d (nil: not checked): a stale
// delivery (driver.DeliveryTx) writes nothing and gets errStaleDelivery.
func recordAs(ctx context.Context, tx driver.Tx, s *Session, job driver.JobRecord, op string, owner jobOwner, d *driver.Delivery, lost ...docex.AuditEntry) error {
	cur, err := tx.Job(ctx, job.ID)
	if err != nil {
		return err
	}
	if ownerOf(cur) != owner {
		return errJobCancelled // cancelled, retried or taken meanwhile: leave it so
	}
	if d != nil {
		if stale, err := staleDeliveries(ctx, tx, []driver.Delivery{*d}); err != nil {
			return err
		} else if reason := stale[job.ID]; reason != "" {
			return &staleDeliveryError{reason: reason}
		}
	}
	if err := tx.UpdateJob(ctx, job); err != nil {
		return err
	}
	for _, e := range lost {
		if err := tx.AppendAudit(ctx, e); err != nil {
			return err
		}
	}
	if op == "" {
		return nil
	}
	return tx.AppendAudit(ctx, endEntry(s, job, op))
}

// execution is one attempt's walk through a pipeline's steps.
type execution struct {
	r       *jobRunner
	s       *Session
	st      driver.TenantStore
	job     driver.JobRecord
	det     *jobDetail
	pl      *Pipeline
	started time.Time
	read    jobOwner           // the job's record as the worker read it, before the attempt started
	d       driver.Delivery    // the delivery that started the attempt
	lost    []docex.AuditEntry // the audit entry of the job's last attempt, found lost (markLost), written with this one's start
	stale   string             // the reason its delivery is stale, found so by startJobs ("": it is not)

	plugins *stepPlugins              // the steps' plugins, resolved once per batch
	lease   *leaseClock               // bounds the attempt's own run (nil: no bound)
	docs    map[string]docex.Document // documents read or written by this attempt, current
	done    map[string]driver.StepRecord
	outputs map[string][]string // a step's outputs, by step name
	// held is the content of documents this attempt derived, by id, kept
	// for the steps that take them as input (within the batch's budget,
	// stepPlugins.take): they do not read it back from storage.
	held    map[string][]byte
	lastUse map[string]int // see executeGroup
	// derived counts the documents the job derived, all its steps and
	// attempts together: the outputs of its completion keys when the
	// attempt began, then those of each run it prepares (see
	// prepareRound), corrected to the recorded ones when another worker
	// recorded the run's completion key first (see flush). The attempt's
	// runs are prepared in order by one goroutine, and committed after
	// that goroutine is done (executeGroup); a job has one attempt at a
	// time.
	derived int
	settled *driver.Outcome // the job's end was committed with its last step
	err     error           // why the attempt stopped (nil: it has not)

	// The current step: its inputs, the next one to prepare, each
	// input's outputs, and the runs prepared and not yet committed.
	ins   []string
	next  int
	outs  [][]string
	units []*pendingUnit
}

// stepPlugins are the resolved and loaded plugins of a batch's steps, by
// name, and the step cache entries prefetched for its runs; the
// executions of a batch share them.
type stepPlugins struct {
	mu    sync.Mutex
	m     map[string]stepPlugin
	cache map[string]*driver.CacheEntry // prefetched step cache entries (nil: none)
	held  int64                         // bytes of derived content the executions hold (see take)
	// roundHeld and roundDocs count what the current round's runs hold
	// until it commits: bytes (pendingUnit.held) and derived documents.
	roundHeld, roundDocs atomic.Int64
	// runs are the plugin calls of the current round by step cache key:
	// runs of the round on identical content share one call (shareRun).
	runs runShares
	// led are the keys of the worker's calls (jobRunner.shares) this
	// batch's round leads: forgotten once the round has committed.
	led []string
}

// sharedRun is a plugin call that other runs with the same step cache key
// wait for: res is its result once done is closed, nil when the call
// failed (each waiter then calls the plugin itself). waiting counts the
// runs waiting for it.
type sharedRun struct {
	done    chan struct{}
	res     *pluginapi.Result
	waiting atomic.Int32
}

// end sets the call's result (nil: it failed) and wakes its waiters.
func (r *sharedRun) end(res *pluginapi.Result) {
	r.res = res
	close(r.done)
}

// await waits for the call to end and returns its result: nil when it
// failed; ctx's error when ctx ends first.
func (r *sharedRun) await(ctx context.Context) (*pluginapi.Result, error) {
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	select {
	case <-r.done:
		return r.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runShares are plugin calls by key, so that runs with the same key make
// one call. The zero value is ready to use.
type runShares struct {
	mu   sync.Mutex
	runs map[string]*sharedRun
}

// join returns the call for key and whether the caller leads it: a
// leader calls the plugin and ends the call (sharedRun.end), on every
// path; the others await it. A leader never waits for another call while
// it leads, so the waits cannot form a cycle.
func (s *runShares) join(key string) (*sharedRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[key]; ok {
		return r, false
	}
	if s.runs == nil {
		s.runs = map[string]*sharedRun{}
	}
	r := &sharedRun{done: make(chan struct{})}
	s.runs[key] = r
	return r, true
}

// forget drops the calls of keys, and the results they hold.
func (s *runShares) forget(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.runs, k)
	}
}

// reset drops every call, and the results they hold.
func (s *runShares) reset() {
	s.mu.Lock()
	s.runs = nil
	s.mu.Unlock()
}

// shareRun returns the round's call for cache key ck and whether the
// caller leads it (see runShares.join).
func (p *stepPlugins) shareRun(ck string) (*sharedRun, bool) { return p.runs.join(ck) }

// lead records that the round leads the worker's call key.
func (p *stepPlugins) lead(key string) {
	p.mu.Lock()
	p.led = append(p.led, key)
	p.mu.Unlock()
}

// takeLed returns the worker's calls the batch led since the last call,
// to forget them.
func (p *stepPlugins) takeLed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	led := p.led
	p.led = nil
	return led
}

// startRound starts a round's count of what its runs hold.
func (p *stepPlugins) startRound() {
	p.roundHeld.Store(0)
	p.roundDocs.Store(0)
}

// hold counts pu among what the round's runs hold; with a negative sign,
// it counts it out (a run discarded).
func (p *stepPlugins) hold(pu *pendingUnit, sign int64) {
	p.roundHeld.Add(sign * pu.held)
	p.roundDocs.Add(sign * int64(pu.outputs()))
}

// roundFull reports whether the runs the round made hold r's bound's
// worth already: maxRoundBytes bytes or maxRoundDocs derived documents,
// unless r sets others.
func (r *jobRunner) roundFull(p *stepPlugins) bool {
	bytes, docs := r.roundBounds()
	return p.roundHeld.Load() >= bytes || p.roundDocs.Load() >= int64(docs)
}

// roundBounds returns r's bounds on what a round holds: bytes, documents.
func (r *jobRunner) roundBounds() (int64, int) {
	bytes, docs := r.roundBytes, r.roundDocs
	if bytes <= 0 {
		bytes = maxRoundBytes
	}
	if docs <= 0 {
		docs = maxRoundDocs
	}
	return bytes, docs
}

// endRound forgets the round's calls (and the results they hold).
func (p *stepPlugins) endRound() { p.runs.reset() }

// Derived content passed on in memory to the next step: a document of at
// most maxHeldDoc bytes, while the batch holds at most maxHeldBatch.
const (
	maxHeldDoc   = 1 << 20
	maxHeldBatch = 8 << 20
)

// take reserves n bytes of the batch's held-content budget; it returns
// false when they do not fit.
func (p *stepPlugins) take(n int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > maxHeldDoc || p.held+n > maxHeldBatch {
		return false
	}
	p.held += n
	return true
}

func (p *stepPlugins) give(n int64) {
	p.mu.Lock()
	p.held -= n
	p.mu.Unlock()
}

// stepPlugin is a step's resolved and loaded plugin.
type stepPlugin struct {
	rec         driver.PluginRecord
	lp          *loadedPlugin
	manifestSHA string
	// cacheable: the plugin's results may be taken from and written to
	// the step cache, and its calls shared (cacheable).
	cacheable bool
}

// cacheable reports whether the results of a plugin with manifest m may
// be cached and shared: whether every capability it is granted only
// writes, or reads nothing but what the step cache key names (the input's
// content; its name, type and the parameters need none). A plugin granted any other
// capability may compute from data outside the key: documents.lookup
// reads other documents of the input's basket, so a result depends on
// which documents the basket holds, and what they hold, when it runs;
// metadata.read reads the input's metadata, which the key (the input's
// content, name and type) does not name. A capability added later is not cacheable
// until it is listed here: such plugins fail closed (run every time).
//
// A step whose plugin is not cacheable is never served from the step
// cache, never writes a cache entry and never shares a call with another
// run (of its round or of the worker's other batches): each of its runs
// calls the plugin and is recorded as run.
func cacheable(m *pluginapi.Manifest) bool {
	for _, c := range m.Capabilities {
		switch pluginapi.Capability(c) {
		case pluginapi.CapLog, pluginapi.CapContentRead, pluginapi.CapMetadataWrite, pluginapi.CapDocumentsEmit:
		default:
			return false
		}
	}
	return true
}

func (x *execution) retryTimeout(step string) bool {
	if x.pl == nil {
		return false
	}
	for _, s := range x.pl.Steps {
		if s.Name == step {
			return s.RetryTimeout
		}
	}
	return false
}

// maxBatchUnits bounds the step runs of one job whose outputs commit in
// one transaction (and are held in memory until then); maxTxUnits bounds
// those of all the jobs of a batch.
const (
	maxBatchUnits = 32
	maxTxUnits    = 256
)

// maxRoundBytes and maxRoundDocs bound what a batch's step round holds
// in memory until it commits: the bytes its runs' outputs hold
// (pendingUnit.held) and their derived documents. A round takes no further
// run once its runs hold as much (roundFull), so that it holds less than
// the bound plus one run for each of the batch's goroutines (forEach);
// its commit's transactions are cut by the same bounds (commitRound).
const (
	maxRoundBytes = 64 << 20
	maxRoundDocs  = 16384
)

// execute runs the attempts xs (the jobs of one batch and user), grouped
// by pipeline version, and leaves each's end in x.err and x.settled.
func (r *jobRunner) execute(ctx context.Context, xs []*execution) {
	type version struct {
		name string
		v    int
	}
	var order []version
	groups := map[version][]*execution{}
	for _, x := range xs {
		k := version{x.job.Pipeline, x.job.Version}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], x)
	}
	for _, k := range order {
		r.executeGroup(ctx, groups[k])
	}
}

// executeGroup walks the attempts xs of one pipeline version through its
// steps together: for each step, each job's runs are made (the jobs on up
// to GOMAXPROCS goroutines, each job's own runs in order), then the runs
// of all the jobs commit in one tenant transaction, each with its
// completion key (at most maxBatchUnits per job and maxTxUnits in all per
// transaction; a job with more runs commits them in rounds); the last
// step's transaction also records each job's success. A run that fails
// commits the runs of its job made before it, then fails its job; the
// other jobs go on.
func (r *jobRunner) executeGroup(ctx context.Context, xs []*execution) {
	x0 := xs[0]
	rec, err := x0.st.Pipeline(ctx, x0.job.Pipeline, x0.job.Version)
	var pl *Pipeline
	if err == nil {
		pl, err = ParsePipeline(rec.Definition)
	}
	if err != nil {
		for _, x := range xs {
			x.err = &stepError{err: err}
		}
		return
	}
	plugins := &stepPlugins{m: map[string]stepPlugin{}}
	ids := make([]string, len(xs))
	for i, x := range xs {
		ids[i] = x.job.ID
	}
	steps, err := x0.st.StepsOfJobs(ctx, ids)
	if err != nil {
		for _, x := range xs {
			x.err = err
		}
		return
	}
	// The attempts' input documents, in one read when the backend can.
	var inputs map[string]docex.Document
	if br, ok := x0.st.(driver.BatchReader); ok {
		docIDs := make([]string, len(xs))
		for i, x := range xs {
			docIDs[i] = x.job.DocumentID
		}
		if inputs, err = br.DocumentsByID(ctx, docIDs); err != nil {
			for _, x := range xs {
				x.err = err
			}
			return
		}
	}
	live := make([]*execution, 0, len(xs))
	for _, x := range xs {
		x.pl, x.plugins, x.lease = pl, plugins, newLeaseClock(batchLease(ctx))
		if x.err = x.begin(ctx, steps[x.job.ID], inputs); x.err == nil {
			live = append(live, x)
		}
	}
	order := pl.Order()
	// lastUse: the index in order of the last step taking a step's
	// outputs as input; once it is done, its held content is let go.
	lastUse := map[string]int{}
	for i, st := range order {
		lastUse[st.Input] = i
	}
	for _, x := range live {
		x.lastUse = lastUse
	}
	defer func() {
		for _, x := range xs {
			x.release(nil)
		}
		r.shares.forget(plugins.takeLed())
	}()
	for si, step := range order {
		for _, x := range live {
			x.ins, x.next = x.outputs[step.Input], 0
			x.outs, x.units = make([][]string, len(x.ins)), nil
		}
		// Rounds: every job prepares up to maxBatchUnits runs, while the
		// round's runs hold less than its bounds (roundFull), then they
		// commit; jobs with more inputs go on in the next round.
		for round := live; len(round) > 0; {
			checkCancelled(ctx, round)
			prefetchCache(ctx, round, step)
			plugins.startRound()
			forEach(round, func(x *execution) { x.prepareRound(ctx, step) })
			plugins.endRound()
			r.commitRound(ctx, round, si == len(order)-1)
			// Committed (or failed): a batch starting these calls now
			// finds their cache entries, or makes them.
			r.shares.forget(plugins.takeLed())
			next := round[:0:0]
			for _, x := range round {
				if x.err == nil && x.next < len(x.ins) {
					next = append(next, x)
				}
			}
			round = next
		}
		for _, st := range order[:si+1] {
			if last, ok := lastUse[st.Name]; ok && last == si {
				for _, x := range live {
					x.release(x.outputs[st.Name])
				}
			}
		}
		kept := live[:0:0]
		for _, x := range live {
			if x.err != nil {
				continue
			}
			var all []string
			for _, o := range x.outs {
				all = append(all, o...)
			}
			x.outputs[step.Name] = all
			kept = append(kept, x)
		}
		live = kept
	}
}

// release lets go of the held content of the documents ids (all of it
// when ids is nil).
func (x *execution) release(ids []string) {
	if ids == nil {
		for id := range x.held {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if b, ok := x.held[id]; ok {
			x.plugins.give(int64(len(b)))
			delete(x.held, id)
		}
	}
}

// forEach calls f on every execution, on up to GOMAXPROCS goroutines.
func forEach(xs []*execution, f func(*execution)) {
	workers := min(runtime.GOMAXPROCS(0), len(xs))
	if workers <= 1 {
		for _, x := range xs {
			f(x)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(xs); i = int(next.Add(1) - 1) {
				f(xs[i])
			}
		}()
	}
	wg.Wait()
}

// begin reads what an attempt starts from: its input document (from
// inputs, read for the batch, when not nil); recs are the completion keys
// of its earlier attempts.
func (x *execution) begin(ctx context.Context, recs []driver.StepRecord, inputs map[string]docex.Document) error {
	var (
		input docex.Document
		err   error
	)
	if inputs != nil {
		var ok bool
		if input, ok = inputs[x.job.DocumentID]; !ok {
			err = docex.Errorf(docex.ErrNotFound, "document %q not found", x.job.DocumentID)
		}
	} else {
		input, err = x.st.Document(ctx, x.job.DocumentID)
	}
	if errors.Is(err, docex.ErrNotFound) {
		return errInputGone
	}
	if err != nil {
		return &stepError{input: x.job.DocumentID, err: fmt.Errorf("input document %s: %w", x.job.DocumentID, err)}
	}
	x.docs = map[string]docex.Document{input.ID: input}
	x.done = map[string]driver.StepRecord{}
	for _, r := range recs {
		x.done[r.Key] = r
		x.derived += len(r.Outputs)
	}
	// The job's progress counts the steps its earlier attempts recorded,
	// those of an attempt cancelled while it ran or lost too, which never
	// wrote its counts; this attempt's runs add to it as they commit.
	x.det.Progress = recordsProgress(x.det.Progress, recs)
	x.outputs = map[string][]string{InputDocument: {input.ID}}
	return nil
}

// prepareRound prepares up to maxBatchUnits runs of step from x.next on,
// and none once the runs of the batch's round hold its bound's worth
// (roundFull; the first run of a round is always made, however large):
// inputs whose completion key exists take its outputs; the others are
// filtered, taken from the cache or run (x.units). A failure stops the
// job (x.err); the runs prepared before it still commit, except when a
// run's outputs would bring the job's derived documents above its
// pipeline's max_derived: the job then stops with docex.ErrTooLarge and
// none of the round's runs commit.
func (x *execution) prepareRound(ctx context.Context, step Step) {
	if x.err != nil {
		return
	}
	// The job's own run: its lease's clock runs.
	ctx, end := x.lease.run(ctx)
	defer end()
	for ; x.next < len(x.ins) && len(x.units) < maxBatchUnits; x.next++ {
		i, in := x.next, x.ins[x.next]
		key := x.job.ID + "/" + step.Name + "/" + in
		if r, ok := x.done[key]; ok {
			x.outs[i] = r.Outputs
			continue
		}
		if x.r.roundFull(x.plugins) {
			return // the rest in the next round
		}
		pu, err := x.prepare(ctx, step, in, key)
		if err != nil {
			x.err = err
			return
		}
		n := pu.outputs()
		if x.derived+n > x.pl.MaxDerived {
			// None of the round's runs of this job commit: the step's
			// outputs would pass the job's cap.
			pu.discard()
			for _, u := range x.units {
				x.plugins.hold(u, -1)
			}
			discardUnits(x.units)
			x.units = nil
			x.err = &stepError{step: step.Name, input: in, report: pu.report, err: x.tooManyDerived(x.derived + n)}
			return
		}
		x.derived += n
		pu.slot, pu.held = i, pu.heldBytes()
		x.plugins.hold(pu, 1)
		x.units = append(x.units, pu)
	}
}

// commitRound commits the runs the executions of round prepared, in
// transactions of up to maxTxUnits runs, whole jobs each, and, but for a
// transaction of one job, at most the round's bounds (roundBounds) of
// held bytes and derived documents. With lastStep,
// a job with no input left also records its success in its transaction.
func (r *jobRunner) commitRound(ctx context.Context, round []*execution, lastStep bool) {
	var (
		parts      []flushPart
		left, held heldCount // the round's runs not yet committed; the transaction's
	)
	maxBytes, maxDocs := r.roundBounds()
	for _, x := range round {
		for _, pu := range x.units {
			left = left.add(pu)
		}
	}
	flush := func() {
		if r.onCommit != nil {
			r.onCommit(left, held)
		}
		flushParts(ctx, parts)
		left = heldCount{runs: left.runs - held.runs, docs: left.docs - held.docs, bytes: left.bytes - held.bytes}
		parts, held = nil, heldCount{}
	}
	for _, x := range round {
		if len(x.units) == 0 {
			continue
		}
		var part heldCount
		for _, pu := range x.units {
			part = part.add(pu)
		}
		if len(parts) > 0 && (held.runs+part.runs > maxTxUnits || held.bytes+part.bytes > maxBytes || held.docs+part.docs > maxDocs) {
			flush()
		}
		parts = append(parts, flushPart{x: x, units: x.units, last: lastStep && x.err == nil && x.next == len(x.ins)})
		held = heldCount{runs: held.runs + part.runs, docs: held.docs + part.docs, bytes: held.bytes + part.bytes}
		x.units = nil
	}
	if len(parts) > 0 {
		flush()
	}
}

// checkCancelled stops (errJobCancelled) the executions of round whose
// job is no longer their attempt's (jobOwner): cancelled meanwhile (a
// running job stops before its next step), or retried after a cancel, or
// taken by another delivery. Should the read fail, each execution stops
// with its error.
func checkCancelled(ctx context.Context, round []*execution) {
	ids := make([]string, 0, len(round))
	for _, x := range round {
		if x.err == nil {
			ids = append(ids, x.job.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	err := ctx.Err()
	var jobs []driver.JobRecord
	if err == nil {
		jobs, err = round[0].st.JobsByID(ctx, ids)
	}
	cur := make(map[string]driver.JobRecord, len(jobs))
	for _, j := range jobs {
		cur[j.ID] = j
	}
	for _, x := range round {
		c, ok := cur[x.job.ID]
		switch {
		case x.err != nil:
		case err != nil:
			x.err = err
		case !ok:
			x.err = docex.Errorf(docex.ErrNotFound, "job %s no longer exists", x.job.ID)
		case ownerOf(c) != ownerOf(x.job):
			x.err = errJobCancelled
		}
	}
}

// prefetchCache reads, in one statement, the step cache entries of the
// runs the executions of round are about to prepare (the inputs they hold
// in memory; prepare reads the others itself), so that prepare finds
// them, or their absence, in x.plugins.cache; then the content of the
// runs' inputs that have no entry (prefetchInputs).
func prefetchCache(ctx context.Context, round []*execution, step Step) {
	params := step.CanonicalParams()
	var runs []pendingRun
	for _, x := range round {
		if x.err != nil {
			continue
		}
		plug, err := x.plugin(ctx, step.Plugin)
		if err != nil {
			continue // prepare reports it
		}
		n := 0
		for i := x.next; i < len(x.ins) && n < maxBatchUnits; i++ {
			in := x.ins[i]
			if _, ok := x.done[x.job.ID+"/"+step.Name+"/"+in]; ok {
				continue
			}
			n++
			if doc, ok := x.docs[in]; ok && step.Accepts(doc.ContentType) {
				key := "" // not cacheable: it calls the plugin, like a miss
				if plug.cacheable {
					key = cacheKey(doc, plug.rec.ModuleSHA256, plug.manifestSHA, params, x.s.e.guestEnvironment())
				}
				runs = append(runs, pendingRun{x, doc, key})
			}
		}
	}
	var keys []string
	for _, r := range runs {
		if r.key != "" {
			keys = append(keys, r.key)
		}
	}
	var entries map[string]driver.CacheEntry
	if len(keys) > 0 {
		var err error
		if entries, err = round[0].st.CacheEntries(ctx, keys); err != nil {
			return // prepare reads each entry itself
		}
	}
	c := round[0].plugins
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]*driver.CacheEntry{}
	}
	misses := runs[:0]
	for _, r := range runs {
		if e, ok := entries[r.key]; ok && r.key != "" {
			c.cache[r.key] = &e
		} else {
			if r.key != "" {
				c.cache[r.key] = nil
			}
			misses = append(misses, r)
		}
	}
	c.mu.Unlock()
	prefetchInputs(ctx, round[0], misses)
}

// pendingRun is a run a round is about to prepare: its execution, input
// document and step cache key ("" when its plugin is not cacheable).
type pendingRun struct {
	x   *execution
	doc docex.Document
	key string
}

// manyReader is a tenant content store that reads many contents in one
// read (content in the database: blobstore.DB).
type manyReader interface {
	ReadMany(ctx context.Context, r driver.Reader, sums []string) (map[string][]byte, error)
}

// prefetchInputs reads the content of the inputs of runs (runs of one
// round, of x0's batch, that will call the plugin: no cache entry) that no
// execution holds, in one read when the tenant's content store can
// (manyReader), and holds it for their runs within the batch's
// held-content budget (stepPlugins.take; at most half of it, the other
// half being for the round's outputs): with content in the database a
// round then reads its inputs in one transaction, not one each. What it
// does not get (a read error, a missing or corrupt row, no budget left)
// each run opens itself, as before, and reports.
func prefetchInputs(ctx context.Context, x0 *execution, runs []pendingRun) {
	tc, err := x0.s.e.tenantContent(x0.st.Tenant())
	if err != nil {
		return
	}
	mr, ok := tc.(manyReader)
	if !ok {
		return
	}
	var (
		wants []pendingRun
		sums  []string
		seen  = map[string]bool{}
		total int64
	)
	c := x0.plugins
	for _, r := range runs {
		if r.x.held[r.doc.ID] != nil || r.doc.Size > maxHeldDoc {
			continue
		}
		// At most half the budget: the rest is for the outputs the
		// round derives, held for the next step.
		if total+r.doc.Size > maxHeldBatch/2 || !c.take(r.doc.Size) {
			break
		}
		total += r.doc.Size
		wants = append(wants, r)
		if !seen[r.doc.Checksum] {
			seen[r.doc.Checksum] = true
			sums = append(sums, r.doc.Checksum)
		}
	}
	if len(wants) == 0 {
		return
	}
	data, err := mr.ReadMany(ctx, x0.st, sums)
	if err != nil {
		data = nil
	}
	for _, w := range wants {
		b, ok := data[w.doc.Checksum]
		if !ok || int64(len(b)) != w.doc.Size || w.x.held[w.doc.ID] != nil {
			c.give(w.doc.Size)
			continue
		}
		if w.x.held == nil {
			w.x.held = map[string][]byte{}
		}
		w.x.held[w.doc.ID] = b
	}
}

// cacheEntry returns the cache entry of key, from the prefetched ones
// when it was prefetched, else read; docex.ErrNotFound when none.
func (x *execution) cacheEntry(ctx context.Context, key string) (driver.CacheEntry, error) {
	x.plugins.mu.Lock()
	e, ok := x.plugins.cache[key]
	x.plugins.mu.Unlock()
	switch {
	case !ok:
		return x.st.CacheEntry(ctx, key)
	case e == nil:
		return driver.CacheEntry{}, docex.ErrNotFound
	}
	return *e, nil
}

// cacheKey is the step cache key: what a plugin without a reading
// capability beyond its input's content (cacheable) sees of a run. That is
// the input's content checksum, name and content type (doc_name and
// doc_content_type need no capability, and the built-in steps use both:
// extract-text picks its format by the type, derived names come from the
// input's), the module's sha256, the sha256 of the plugin's manifest as
// installed, the canonical parameters and the runtime's guest environment
// (GuestEnvironment). The manifest counts because it names the entry
// point: the built-in steps share one module (plugins/builtin), and two of
// them on the same input with the same parameters must not share a
// result. The environment counts because a guest computes with it: a
// runtime whose guests see other clocks or random bytes may give other
// outputs from the same module and input. Each part is length-prefixed,
// so no two different inputs give the same string to hash.
func cacheKey(doc docex.Document, module, manifest, params, env string) string {
	h := sha256.New()
	for _, part := range []string{doc.Checksum, doc.Name, doc.ContentType, module, manifest, params, env} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cachedResult is a step's result kept in the step cache.
type cachedResult struct {
	Metadata map[string]docex.Value `json:"metadata"`
	Derived  []string               `json:"derived"` // checksums of the derived documents
}

// pendingUnit is one step run on one input, made but not committed.
type pendingUnit struct {
	step   Step
	input  docex.Document
	rec    driver.StepRecord
	preset []docex.Document // outputs known before the commit (a cached result's: documents of the basket)
	meta   map[string]docex.Value
	ss     *stagedStep // a run's output, staged; nil otherwise
	module string
	ck     string // the step cache key ("" when the plugin is not cacheable)
	report *RunReport
	slot   int                // the input's index in its step
	added  []docex.Document   // set by the commit: the derived documents
	prog   func(*JobProgress) // counts the unit once committed
	held   int64              // bytes its outputs hold in memory until it commits (heldBytes)
}

// heldBytes returns the bytes of memory pu's outputs hold until it
// commits: the content, names and types of its derived documents as the
// plugin returned them (or as a shared call's result gave them: counted
// again for each run that took it), the metadata keys and values it sets
// and its derived documents carry (a cached result's documents', read
// from the basket), and the staged copies of that content the content
// store holds in memory (spiller.Held: with content in the database the
// last document of a run, and up to Config.MaxStagedMemory of the others;
// with filesystem content, contents packed in memory).
func (pu *pendingUnit) heldBytes() int64 {
	n := metaBytes(pu.meta)
	for _, d := range pu.preset {
		n += int64(len(d.Name)+len(d.ContentType)) + metaBytes(d.Metadata)
	}
	if pu.ss == nil {
		return n
	}
	for i, d := range pu.ss.out.Derived {
		n += int64(len(d.Name)+len(d.ContentType)) + metaBytes(d.Metadata)
		if i < len(pu.ss.out.raw) {
			n += int64(len(pu.ss.out.raw[i]))
		}
	}
	if sd := pu.ss.docs; sd != nil {
		if sp, ok := sd.tc.(spiller); ok {
			for _, it := range sd.items {
				n += sp.Held(it)
			}
		}
	}
	return n
}

// metaBytes returns the bytes of m's keys and values (8 for a number or
// a boolean).
func metaBytes(m map[string]docex.Value) int64 {
	var n int64
	for k, v := range m {
		n += int64(len(k) + len(v.Str()))
		if v.Type() != docex.TypeString {
			n += 8
		}
	}
	return n
}

// outputs returns the number of the unit's outputs, known before it
// commits: those of a cached result, or the documents a run derived.
func (pu *pendingUnit) outputs() int {
	n := len(pu.preset)
	if pu.ss != nil {
		n += len(pu.ss.out.Derived)
	}
	return n
}

// tooManyDerived is the error of a job whose derived documents would
// reach n, more than its pipeline's max_derived.
func (x *execution) tooManyDerived(n int) error {
	return docex.Errorf(docex.ErrTooLarge, "the job would derive %d documents, more than its pipeline's max_derived = %d (all steps together), so nothing more was committed (to allow more, raise max_derived, at most %d, in pipeline %q, create it again and run it on document %s)",
		n, x.pl.MaxDerived, MaxDerivedLimit, x.job.Pipeline, x.job.DocumentID)
}

func (pu *pendingUnit) discard() {
	if pu.ss != nil {
		pu.ss.discard()
	}
}

// plugin resolves and loads a step's plugin once per batch.
func (x *execution) plugin(ctx context.Context, name string) (stepPlugin, error) {
	x.plugins.mu.Lock()
	defer x.plugins.mu.Unlock()
	if p, ok := x.plugins.m[name]; ok {
		return p, nil
	}
	rec, system, err := x.s.resolvePlugin(ctx, x.st, name)
	if err != nil {
		return stepPlugin{}, err
	}
	lp, err := x.s.runnablePlugin(ctx, x.st, rec, system)
	if err != nil {
		return stepPlugin{}, err
	}
	p := stepPlugin{rec: rec, lp: lp, manifestSHA: manifestSHA256(rec.Manifest), cacheable: cacheable(lp.m)}
	x.plugins.m[name] = p
	return p, nil
}

// prepare makes one step run on one input: filtered out, taken from the
// step cache, or run by the plugin (its derived content staged). Nothing
// is committed.
func (x *execution) prepare(ctx context.Context, step Step, inputID, key string) (*pendingUnit, error) {
	s, st := x.s, x.st
	fail := func(err error, rep *RunReport) (*pendingUnit, error) {
		return nil, &stepError{step: step.Name, input: inputID, report: rep, err: err}
	}
	doc, ok := x.docs[inputID]
	if !ok {
		var err error
		if doc, err = st.Document(ctx, inputID); err != nil {
			return fail(err, nil)
		}
		x.docs[inputID] = doc
	}
	pu := &pendingUnit{step: step, input: doc, rec: driver.StepRecord{Key: key, JobID: x.job.ID, Step: step.Name, InputID: inputID, Outputs: []string{}, CreatedAt: s.e.now()}}
	if !step.Accepts(doc.ContentType) {
		pu.rec.Outcome = StepFiltered
		pu.prog = func(p *JobProgress) { p.StepsFiltered++ }
		return pu, nil
	}
	if s.e.cfg.Sandbox == nil {
		return fail(docex.ErrNoSandbox, nil)
	}
	plug, err := x.plugin(ctx, step.Plugin)
	if err != nil {
		if named := fmt.Sprintf("plugin %q", step.Plugin); !strings.HasPrefix(err.Error(), named) {
			err = fmt.Errorf("%s: %w", named, err) // named once: not `plugin "x": plugin "x" not found`
		}
		return fail(err, nil)
	}
	pu.module = plug.rec.ModuleSHA256
	if !plug.cacheable {
		// Its result may depend on more than the key names (see
		// cacheable): no cache entry, no shared call.
		return x.run(ctx, pu, plug, doc, inputID, nil, nil, false)
	}
	ck := cacheKey(doc, pu.module, plug.manifestSHA, step.CanonicalParams(), s.e.guestEnvironment())
	pu.ck = ck
	if ce, err := x.cacheEntry(ctx, ck); err == nil {
		var cr cachedResult
		if json.Unmarshal(ce.Result, &cr) == nil {
			if docs, ok := x.materialise(ctx, doc.BasketID, cr.Derived); ok {
				pu.rec.Outcome, pu.preset, pu.meta = StepCached, docs, cr.Metadata
				pu.prog = func(p *JobProgress) { p.StepsCached++ }
				return pu, nil
			}
		}
	}
	// Another run of this round on the same content (two jobs of one
	// document, identical chunks of two documents) may be calling the
	// plugin already, or, for the round's first run of this content, a
	// run of another batch of this worker and tenant (two batches of one
	// tenant run at once): its result makes this run's outputs, and the
	// run counts as a cache hit. Calls are never shared across tenants.
	shared, lead := x.plugins.shareRun(ck)
	var wide *sharedRun // the worker's call for ck, when this run leads it
	var res *pluginapi.Result
	if !lead {
		resume := x.lease.pause() // another job's run: not this job's
		res, err = shared.await(ctx)
		resume()
		if err != nil {
			return fail(err, nil)
		}
	} else {
		// By tenant incarnation: a tenant deleted and provisioned again
		// with the same id while a call of the old one runs must not
		// take its result.
		t := x.st.Tenant()
		wkey := t.ID + "\x00" + t.Incarnation + "\x00" + ck
		w, wlead := x.r.shares.join(wkey)
		if wlead {
			wide = w
			x.plugins.lead(wkey)
		} else {
			resume := x.lease.pause()
			res, err = w.await(ctx)
			resume()
			if err != nil {
				shared.end(nil)
				return fail(err, nil)
			}
			if res != nil {
				shared.end(res)
				lead = false
			}
		}
	}
	if res != nil {
		if out, err := stepOutput(step.Plugin, doc, res, nil); err == nil {
			if pu.ss, err = s.stageStep(ctx, st, out, true); err != nil {
				return fail(err, nil)
			}
			pu.rec.Outcome, pu.meta = StepCached, out.Metadata
			pu.prog = func(p *JobProgress) { p.StepsCached++ }
			return pu, nil
		}
	}
	// No call to share, or it failed: this run calls the plugin itself.
	return x.run(ctx, pu, plug, doc, inputID, shared, wide, lead)
}

// run makes pu a run of its step's plugin on doc: it calls the plugin,
// ends the round's call shared (when lead) and the worker's call wide
// (when not nil) with its result (nil when it failed), and stages the
// output. It returns a *stepError when the call or the staging fails.
func (x *execution) run(ctx context.Context, pu *pendingUnit, plug stepPlugin, doc docex.Document, inputID string, shared, wide *sharedRun, lead bool) (*pendingUnit, error) {
	step := pu.step
	out, err := x.call(ctx, step, plug, doc, inputID)
	var got *pluginapi.Result
	if err == nil {
		got = out.res
	}
	if lead {
		shared.end(got)
	}
	if wide != nil {
		wide.end(got)
	}
	if out != nil && out.ran {
		pu.report = &out.Report
	}
	if err != nil {
		return nil, &stepError{step: step.Name, input: inputID, report: pu.report, err: err}
	}
	if pu.ss, err = x.s.stageStep(ctx, x.st, out, true); err != nil { // synced by flush, with the batch's other runs
		return nil, &stepError{step: step.Name, input: inputID, report: pu.report, err: err}
	}
	rep, _ := json.Marshal(map[string]any{"report": pu.report})
	pu.rec.Outcome, pu.rec.Detail, pu.meta = StepRan, rep, out.Metadata
	n := len(out.Derived)
	pu.prog = func(p *JobProgress) { p.StepsRun++; p.Derived += n }
	return pu, nil
}

// earlyInputMax is the largest input a run opens before it waits for a
// plugin slot (see call).
const earlyInputMax = 1 << 20

// call runs step's plugin on doc, within the worker's bound on plugin
// calls at once, and returns its validated output (with the guest's
// result in out.res, for the round's runs that share it).
func (x *execution) call(ctx context.Context, step Step, plug stepPlugin, doc docex.Document, inputID string) (*StepOutput, error) {
	// A small input is opened before the run takes one of the worker's
	// plugin slots: reading it (a round trip to PostgreSQL for content in
	// the database) must not keep a core idle. A large one is opened in
	// the slot, so that the inputs loaded at once stay bounded by the
	// slots.
	var in pluginInput
	defer func() {
		if in.release != nil {
			in.release()
		}
	}()
	open := func() (err error) {
		in, err = x.s.openInput(ctx, x.st, doc, x.held[inputID])
		if errors.Is(err, docex.ErrNotFound) {
			// Its content is gone: with the document, deleted since the
			// job read it, the job is cancelled, not failed.
			if _, derr := x.st.Document(ctx, doc.ID); errors.Is(derr, docex.ErrNotFound) {
				return &inputDeletedError{id: doc.ID}
			}
		}
		return err
	}
	early := doc.Size <= earlyInputMax
	if early {
		if err := open(); err != nil {
			return nil, err
		}
	}
	if x.r.runs != nil {
		resume := x.lease.pause() // a wait for a slot is not the job's run
		err := x.r.runs.acquire(ctx, x.st.Tenant().ID)
		resume()
		if err != nil {
			return nil, err
		}
		defer x.r.runs.release()
	}
	if !early {
		if err := open(); err != nil {
			return nil, err
		}
	}
	res, err := x.s.runInput(ctx, x.st, plug.lp, doc, in, step.Params)
	out, err := stepOutput(step.Plugin, doc, res, err)
	if out != nil {
		out.res = res
	}
	return out, err
}

// materialise returns the basket's documents with the cached checksums,
// and false when one of them is gone (the cache entry is then not used).
func (x *execution) materialise(ctx context.Context, basketID string, sums []string) ([]docex.Document, bool) {
	docs := make([]docex.Document, 0, len(sums))
	for _, sum := range sums {
		d, err := x.st.DocumentByChecksum(ctx, basketID, sum)
		if err != nil {
			return nil, false
		}
		x.docs[d.ID] = d
		docs = append(docs, d)
	}
	return docs, true
}

// flushPart is one job's share of a transaction: its prepared runs and,
// with last, its success.
type flushPart struct {
	x     *execution
	units []*pendingUnit
	last  bool
}

// fail records err as why x stopped, unless it stopped already (a
// cancellation wins: the job is left as cancelled).
func (x *execution) fail(err error) {
	if x.err == nil || errors.Is(err, errJobCancelled) {
		x.err = err
	}
}

// flushParts commits the parts of several jobs in one tenant transaction.
// Should it fail (a completion key recorded meanwhile, a job cancelled
// meanwhile, a storage error), each job's part commits on its own
// (flush), so that the failure stays with its job.
func flushParts(ctx context.Context, parts []flushPart) {
	if len(parts) == 1 {
		p := parts[0]
		if err := p.x.flush(ctx, p.units, p.last); err != nil {
			p.x.fail(err)
		}
		return
	}
	ends := make([]*jobEnd, len(parts))
	var staged []*stagedDocs
	for i, p := range parts {
		if p.last {
			ends[i] = p.x.end(ctx, p.units)
		}
		staged = append(staged, p.x.staged(p.units)...)
	}
	// The content of every part becomes durable in one Sync.
	if err := syncStaged(ctx, parts[0].x.st, staged); err == nil {
		st := parts[0].x.st
		err = driver.WriteContent(ctx, st, func(tx driver.Tx) error { return applyParts(ctx, tx, parts, ends) })
		if err == nil {
			for i, p := range parts {
				p.x.committed(p.units, ends[i])
				discardUnits(p.units)
			}
			return
		}
	}
	for _, p := range parts {
		if err := p.x.flush(ctx, p.units, p.last); err != nil {
			p.x.fail(err)
		}
	}
}

func discardUnits(units []*pendingUnit) {
	for _, pu := range units {
		pu.discard()
	}
}

// jobEnd is a job's success, settled on copies of its record before the
// transaction that records it: the real record is settled only if that
// transaction commits.
type jobEnd struct {
	job driver.JobRecord
	op  string
	out driver.Outcome
}

// end settles x's success with units counted.
func (x *execution) end(ctx context.Context, units []*pendingUnit) *jobEnd {
	je := &jobEnd{job: x.job}
	det := &jobDetail{}
	_ = json.Unmarshal(x.det.bytes(), det)
	for _, pu := range units {
		pu.prog(&det.Progress)
	}
	je.op, je.out = x.r.settle(ctx, &je.job, det, x, nil, x.started)
	return je
}

// staged returns the units' staged derived content.
func (x *execution) staged(units []*pendingUnit) []*stagedDocs {
	var out []*stagedDocs
	for _, pu := range units {
		if pu.ss != nil && pu.ss.docs != nil {
			out = append(out, pu.ss.docs)
		}
	}
	return out
}

// applyParts locks the units' inputs against deletion (keepInputs: an
// *inputDeletedError, writing nothing, when one is gone), writes the
// parts' units inside tx, then their step rows
// (completion keys, lineage edges, cache entries, audit entries: in few
// statements when tx is a driver.StepRowsTx), then the ends of the jobs
// that end (ends[i] not nil). Each basket is looked up once.
func applyParts(ctx context.Context, tx driver.Tx, parts []flushPart, ends []*jobEnd) error {
	if err := keepInputs(ctx, tx, parts); err != nil {
		return err
	}
	baskets := map[string]bool{}
	var (
		rows *stepRows
		td   *txDocs
	)
	if _, ok := tx.(driver.StepRowsTx); ok {
		rows = &stepRows{}
		// The runs' derived documents go in together too, before the
		// lineage edges that refer to them.
		if bt, ok := tx.(driver.BatchTx); ok {
			td = newTxDocs(bt)
			var (
				sds     []*stagedDocs
				baskets []string
			)
			for _, p := range parts {
				for _, pu := range p.units {
					if pu.ss != nil && pu.ss.docs != nil {
						sds, baskets = append(sds, pu.ss.docs), append(baskets, pu.input.BasketID)
					}
				}
			}
			if err := td.resolve(ctx, tx, sds, baskets); err != nil {
				return err
			}
		}
	}
	for _, p := range parts {
		for _, pu := range p.units {
			if pu.ss != nil && pu.ss.docs != nil {
				if b := pu.input.BasketID; !baskets[b] {
					if _, err := tx.Basket(ctx, b); err != nil {
						return err
					}
					baskets[b] = true
				}
				pu.ss.docs.basketChecked = true
			}
			if err := p.x.apply(ctx, tx, pu, rows, td); err != nil {
				return err
			}
		}
	}
	if td != nil {
		if err := td.flush(ctx, tx); err != nil {
			return err
		}
	}
	jt, batchEnds := tx.(driver.JobsTx)
	if batchEnds = batchEnds && rows != nil; batchEnds {
		// The jobs' ends are written before the step rows, with their
		// audit entries among the rows'.
		if err := recordEnds(ctx, tx, jt, parts, ends, rows); err != nil {
			return err
		}
	}
	if rows != nil {
		// Runs of one transaction on identical content (shared calls, or
		// one derived document taken twice) write one cache entry: a
		// multi-row upsert may not touch a key twice (PostgreSQL).
		rows.cache = lastPerKey(rows.cache)
		if err := tx.(driver.StepRowsTx).InsertStepRows(ctx, rows.steps, rows.edges, rows.cache, rows.audit); err != nil {
			return err
		}
	}
	if batchEnds {
		return nil
	}
	for i, p := range parts {
		if ends[i] != nil {
			if err := record(ctx, tx, p.x.s, ends[i].job, ends[i].op, ownerOf(p.x.job)); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordEnds is record for the jobs of parts that end (ends[i] not nil):
// their current states read in one statement, their updates written by
// jt, their audit entries added to rows. errJobCancelled when one was
// cancelled meanwhile.
func recordEnds(ctx context.Context, tx driver.Tx, jt driver.JobsTx, parts []flushPart, ends []*jobEnd, rows *stepRows) error {
	var (
		ids  []string
		jobs []driver.JobRecord
	)
	for i := range parts {
		if ends[i] != nil {
			ids, jobs = append(ids, ends[i].job.ID), append(jobs, ends[i].job)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cur, err := jobsIn(ctx, tx, ids)
	if err != nil {
		return err
	}
	for i := range parts {
		if ends[i] == nil {
			continue
		}
		switch c, ok := cur[ends[i].job.ID]; {
		case !ok:
			return docex.Errorf(docex.ErrNotFound, "job %s not found", ends[i].job.ID)
		case ownerOf(c) != ownerOf(parts[i].x.job):
			return errJobCancelled // cancelled, retried or taken meanwhile: leave it so
		}
	}
	if err := jt.UpdateJobs(ctx, jobs); err != nil {
		return err
	}
	for i, p := range parts {
		if ends[i] != nil && ends[i].op != "" {
			rows.audit = append(rows.audit, endEntry(p.x.s, ends[i].job, ends[i].op))
		}
	}
	return nil
}

// endEntry is the audit entry of an attempt's end op.
func endEntry(s *Session, job driver.JobRecord, op string) docex.AuditEntry {
	entry := s.entry(op, job.ID, docex.OutcomeOK, nil)
	if job.State != driver.JobSucceeded {
		entry.Outcome, entry.Error = docex.OutcomeError, job.Error
	}
	entry.Detail = map[string]any{"pipeline": job.Pipeline, "version": job.Version, "document_id": job.DocumentID, "attempt": job.Attempts}
	return entry
}

// stepRows are step runs' rows gathered to be written together.
type stepRows struct {
	steps []driver.StepRecord
	edges []driver.LineageEdge
	cache []driver.CacheEntry
	audit []docex.AuditEntry
}

// lastPerKey returns the entries with distinct keys, the last of each,
// in the order of their first appearance.
func lastPerKey(entries []driver.CacheEntry) []driver.CacheEntry {
	at := make(map[string]int, len(entries))
	out := entries[:0:0]
	for _, ce := range entries {
		if i, ok := at[ce.Key]; ok {
			out[i] = ce
			continue
		}
		at[ce.Key] = len(out)
		out = append(out, ce)
	}
	return out
}

// committed updates x once units (and je) committed.
func (x *execution) committed(units []*pendingUnit, je *jobEnd) {
	for _, pu := range units {
		pu.prog(&x.det.Progress)
		x.outs[pu.slot] = pu.rec.Outputs
		delete(x.docs, pu.input.ID) // its metadata may have changed
		for i, d := range pu.added {
			x.docs[d.ID] = d
			if _, used := x.lastUse[pu.step.Name]; !used || pu.ss == nil || i >= len(pu.ss.out.raw) || x.held[d.ID] != nil {
				continue
			}
			if raw := pu.ss.out.raw[i]; raw != nil && x.plugins.take(int64(len(raw))) {
				if x.held == nil {
					x.held = map[string][]byte{}
				}
				x.held[d.ID] = raw
			}
		}
	}
	if je != nil {
		x.job, *x.det, x.settled = je.job, *jobDetailOf(je.job), &je.out
	}
}

// flush commits one job's units in one tenant transaction and writes each
// unit's outputs at its slot in x.outs. With last (the units end the
// pipeline) the transaction also records the job's success, and
// x.settled is set. A completion key recorded meanwhile (another worker
// replayed the same step) rolls the batch back; the units then commit one
// by one, and a unit whose key exists takes the recorded outcome: its
// recorded outputs replace its own in x.outs and in x.derived. flush runs
// once the round's prepareRound calls have returned (executeGroup), never
// alongside them.
func (x *execution) flush(ctx context.Context, batch []*pendingUnit, last bool) error {
	if len(batch) == 0 {
		return nil
	}
	defer discardUnits(batch)
	var je *jobEnd
	if last {
		je = x.end(ctx, batch)
	}
	// The batch's derived content becomes durable in one Sync (one pack
	// file and one flush for small contents) before the transaction that
	// refers to it.
	if err := syncStaged(ctx, x.st, x.staged(batch)); err != nil {
		pu := batch[0]
		return &stepError{step: pu.step.Name, input: pu.input.ID, report: pu.report, err: err}
	}
	err := driver.WriteContent(ctx, x.st, func(tx driver.Tx) error {
		return applyParts(ctx, tx, []flushPart{{x: x, units: batch, last: last}}, []*jobEnd{je})
	})
	if errors.Is(err, docex.ErrExists) && len(batch) > 1 {
		for i, pu := range batch {
			if err := x.flush(ctx, []*pendingUnit{pu}, last && i == len(batch)-1); err != nil {
				return err
			}
		}
		return nil
	}
	if errors.Is(err, docex.ErrExists) {
		prev, perr := x.st.JobStep(ctx, batch[0].rec.Key)
		if perr != nil {
			return &stepError{step: batch[0].step.Name, input: batch[0].input.ID, report: batch[0].report, err: err}
		}
		// The recorded outputs are the run's: the job's count follows
		// them, not the outputs of the run rolled back.
		x.derived += len(prev.Outputs) - batch[0].outputs()
		x.outs[batch[0].slot] = prev.Outputs
		// The job's progress counts that worker's run, as Session.Job
		// counts the recorded steps.
		x.det.Progress.count(prev.Outcome, len(prev.Outputs))
		delete(x.docs, batch[0].input.ID)
		return nil
	}
	if err != nil {
		if errors.Is(err, errJobCancelled) {
			return err
		}
		pu := batch[0]
		return &stepError{step: pu.step.Name, input: pu.input.ID, report: pu.report, err: err}
	}
	x.committed(batch, je)
	return nil
}

// apply writes a unit's outcome inside tx: a run's output (the input's
// new metadata, the derived documents, deduplicated ones included), or a
// cached result's metadata; a lineage edge per output; the cache entry of
// a run; the audit entry; and the completion key.
//
// With rows, the lineage edges, the cache entry, the completion key and
// the audit entry are added to rows instead, for the caller to write.
func (x *execution) apply(ctx context.Context, tx driver.Tx, pu *pendingUnit, rows *stepRows, td *txDocs) error {
	s, step, input := x.s, pu.step, pu.input
	params := step.CanonicalParams()
	now := s.e.now()
	pu.rec.Outputs = make([]string, 0, len(pu.preset))
	pu.added = nil
	// The outputs, each with whether this transaction created it: a
	// cached result's are documents of the basket already.
	outs := make([]Added, 0, len(pu.preset))
	for _, d := range pu.preset {
		pu.rec.Outputs, outs = append(pu.rec.Outputs, d.ID), append(outs, Added{Document: d, Duplicate: true})
	}
	var sums []string
	if pu.ss != nil {
		res, added, err := pu.ss.persist(ctx, tx, true, td)
		if err != nil {
			return err
		}
		for _, d := range res.Derived {
			pu.rec.Outputs, sums = append(pu.rec.Outputs, d.ID), append(sums, d.Checksum)
		}
		pu.added, outs = res.Derived, append(outs, added...)
	} else if len(pu.meta) > 0 {
		if err := td.setMeta(ctx, tx, input, pu.meta, now); err != nil {
			return err
		}
	}
	linked := make(map[string]bool, len(outs))
	for _, a := range outs {
		id := a.Document.ID
		if id == input.ID {
			// The output is the input itself (the same content,
			// deduplicated): it feeds the next step, but gets no edge
			// to itself.
			continue
		}
		if linked[id] {
			continue // two outputs with the same content: one edge, the first's
		}
		linked[id] = true
		edge := driver.LineageEdge{
			SourceID: input.ID, DerivedID: id, JobID: x.job.ID, Pipeline: x.job.Pipeline, Version: x.job.Version,
			Step: step.Name, Plugin: step.Plugin, ModuleSHA256: pu.module, Params: params, CreatedAt: edgeAt(a, now),
		}
		if rows != nil {
			rows.edges = append(rows.edges, edge)
		} else if err := tx.InsertLineage(ctx, edge); err != nil {
			return err
		}
	}
	if pu.ss != nil && pu.ck != "" { // "": a run of a plugin that is not cacheable
		b, _ := json.Marshal(cachedResult{Metadata: pu.meta, Derived: nonNilStrings(sums)})
		ce := driver.CacheEntry{Key: pu.ck, Result: b, CreatedAt: now}
		if rows != nil {
			rows.cache = append(rows.cache, ce)
		} else if err := tx.PutCacheEntry(ctx, ce); err != nil {
			return err
		}
	}
	e := s.entry("pipeline.step", input.ID, docex.OutcomeOK, nil)
	e.Detail = map[string]any{"job_id": x.job.ID, "step": step.Name, "plugin": step.Plugin, "outcome": pu.rec.Outcome, "outputs": len(pu.rec.Outputs)}
	if rows != nil {
		rows.steps, rows.audit = append(rows.steps, pu.rec), append(rows.audit, e)
		return nil
	}
	if err := tx.InsertJobStep(ctx, pu.rec); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, e)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
