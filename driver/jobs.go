package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex"
)

// PipelineRecord is one version of a tenant's pipeline. Versions are never
// rewritten: creating a pipeline with an existing name adds version N+1,
// and deleting a name marks its versions deleted (running jobs and lineage
// still refer to them).
type PipelineRecord struct {
	Name       string
	Version    int
	Definition []byte // the TOML source as created
	CreatedAt  time.Time
	CreatedBy  string
	Deleted    bool
	// Baskets is set by PipelineReader.Pipeline and Pipelines: the ids
	// of the baskets bound to the pipeline's name, in id order, read in
	// the same state as the pipeline (nil: the backend did not read them).
	Baskets []string
}

// Job states. A job is queued (waiting for a worker, or for its next
// attempt at RunAt), running, or in one of the three final states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// JobFinal reports whether state is final (succeeded, failed or cancelled).
func JobFinal(state string) bool {
	return state == JobSucceeded || state == JobFailed || state == JobCancelled
}

// JobRecord is one pipeline job of a tenant: a pipeline version run on one
// document, as the user who enqueued it.
type JobRecord struct {
	ID          string
	Pipeline    string
	Version     int
	DocumentID  string
	State       string
	Attempts    int // attempts started
	MaxAttempts int
	RunAt       time.Time // earliest start of the next attempt
	User        docex.UserContext
	ErrorCode   string // docex.Code of the last error ("" when none)
	Error       string
	Detail      []byte // engine-owned JSON (progress, attempts, resource reports)
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// JobFilter selects jobs; empty fields match everything.
type JobFilter struct {
	State      string
	Pipeline   string
	DocumentID string
	// BasketID keeps the jobs whose document is in that basket (a job
	// whose document was deleted is in none).
	BasketID string
}

// StepRecord is the completion key of one step of a job on one input
// document. It is written in the transaction that commits the step's
// outputs, so a replayed step finds it and applies nothing twice.
type StepRecord struct {
	Key       string // JobID "/" Step "/" InputID
	JobID     string
	Step      string
	InputID   string
	Outcome   string   // "ran", "cached" or "filtered"
	Outputs   []string // ids of the documents the step derived (deduplicated ones included)
	Detail    []byte   // engine-owned JSON (resource report, logs summary)
	CreatedAt time.Time
}

// LineageEdge records that DerivedID was produced from SourceID by a
// pipeline step, or by a direct plugin run (JobID, Pipeline and Step "",
// Version 0).
// Edges are kept when either document is deleted: lineage then says the
// document is gone.
//
// An edge either created its derived document (the step's output became
// a new document in the edge's transaction) or deduplicated onto one that
// existed already (the same content was in the basket: an original the
// user added, or another source's output). The engine writes a creating
// edge with the derived document's own CreatedAt, and a deduplicating
// edge with a CreatedAt after the document's (never equal). Reads tell
// the two apart (Dedup); no column records it.
type LineageEdge struct {
	SourceID     string
	DerivedID    string
	JobID        string
	Pipeline     string
	Version      int
	Step         string
	Plugin       string
	ModuleSHA256 string
	Params       string // canonical JSON of the step's parameters
	CreatedAt    time.Time
	// Dedup is set by the reads (Reader.Lineage, LineageAmong) and
	// ignored by InsertLineage: the derived document exists and the edge
	// did not create it. An edge created its document when the
	// document's created_at equals the edge's (how the engine writes a
	// creating edge), or when the document's derived_from metadata (a
	// string, set by the engine on every document a step creates) names
	// the edge's source and the edge is the first from that source into
	// that document (no other with an earlier CreatedAt, or the same and
	// a smaller (JobID, Step)): edges written before 2026-12-06 took their
	// CreatedAt from the clock apart from the document's. A later edge
	// from the same source (a re-run's step-cache hit) is Dedup. An edge into a
	// document that is gone has Dedup false: which it was is no longer
	// known.
	Dedup bool
}

// CacheEntry is a cached step result, keyed by a hash of the input
// checksum, the module sha256 and the canonical parameters.
type CacheEntry struct {
	Key       string
	Result    []byte // engine-owned JSON
	CreatedAt time.Time
}

// JobPrune selects the jobs PipelineWriter.PruneJobs deletes.
type JobPrune struct {
	States []string
	Before time.Time
	After  string // only ids greater than this ("": any)
	Limit  int
}

// JobsPruned is what PipelineWriter.PruneJobs deleted: jobs, their
// completion keys, and the greatest id of the jobs ("" when none).
type JobsPruned struct {
	Jobs, Steps int
	Last        string
}

// PipelineReader are the pipeline, job and lineage reads of a tenant store.
type PipelineReader interface {
	// Pipeline returns a version of a pipeline (version 0: the newest),
	// deleted or not, or docex.ErrNotFound.
	Pipeline(ctx context.Context, name string, version int) (PipelineRecord, error)
	// Pipelines lists the newest version of every pipeline that is not
	// deleted, ordered by name.
	Pipelines(ctx context.Context) ([]PipelineRecord, error)
	// BasketPipeline returns the name of the pipeline bound to a basket,
	// or docex.ErrNotFound when none is.
	BasketPipeline(ctx context.Context, basketID string) (string, error)
	// PipelineBaskets lists the ids of the baskets bound to a pipeline.
	PipelineBaskets(ctx context.Context, name string) ([]string, error)

	// Job returns a job, or docex.ErrNotFound. In a write transaction
	// (Tx) it, and JobsByID, lock the jobs they return until the
	// transaction ends: a transaction that reads a job to change it (a
	// cancel, a retry, a worker recording an attempt's end) waits for
	// another doing so, and reads what that one committed.
	Job(ctx context.Context, id string) (JobRecord, error)
	// Jobs lists jobs matching f, newest first.
	Jobs(ctx context.Context, f JobFilter, page docex.Page) ([]JobRecord, error)
	// JobSteps lists the completed steps of a job in completion order.
	JobSteps(ctx context.Context, jobID string) ([]StepRecord, error)
	// JobStep returns a completion key, or docex.ErrNotFound.
	JobStep(ctx context.Context, key string) (StepRecord, error)

	// Lineage returns the edges into a document (its sources) and out of
	// it (what was derived from it).
	Lineage(ctx context.Context, docID string) (sources, derived []LineageEdge, err error)
	// CacheEntry returns a cached step result, or docex.ErrNotFound.
	CacheEntry(ctx context.Context, key string) (CacheEntry, error)

	// Batch reads, for the jobs of a batch (one statement, or a few for
	// long lists, instead of one per item).

	// JobsByID returns the jobs of ids that exist, in no particular
	// order; an id with no job is left out.
	JobsByID(ctx context.Context, ids []string) ([]JobRecord, error)
	// JobStates returns the state of each job of ids that exists, by id;
	// an id with no job is left out. It reads no detail: a wait over many
	// jobs polls it.
	JobStates(ctx context.Context, ids []string) (map[string]string, error)
	// StepsOfJobs returns the completed steps of the jobs of ids, by job
	// id, each job's in completion order; a job with none is left out.
	StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]StepRecord, error)
	// CacheEntries returns the cache entries of keys that exist, by key.
	CacheEntries(ctx context.Context, keys []string) (map[string]CacheEntry, error)

	// PrunableJobs counts what PruneJobs would delete, without a limit:
	// the jobs whose state is one of states and whose UpdatedAt is before
	// before, and their completion keys.
	PrunableJobs(ctx context.Context, states []string, before time.Time) (jobs, steps int, err error)
}

// PipelineWriter are the pipeline, job and lineage writes of a tenant
// transaction.
type PipelineWriter interface {
	// InsertPipeline adds a pipeline version; docex.ErrExists when that
	// version exists.
	InsertPipeline(ctx context.Context, p PipelineRecord) error
	// DeletePipeline marks every version of a pipeline deleted;
	// docex.ErrNotFound when it has no version that is not deleted.
	DeletePipeline(ctx context.Context, name string) error
	// BindBasket binds a basket to a pipeline name (replacing a binding).
	// The engine deletes a pipeline with DeletePipeline and then
	// PipelineBaskets in one transaction, refusing the delete if a basket
	// is bound: a backend whose write transactions run at once must make
	// a concurrent bind and delete serialize (PostgreSQL: the bind locks
	// the pipeline's rows FOR SHARE and returns docex.ErrNotFound when
	// none is left undeleted), so that no basket is bound to a deleted
	// pipeline.
	BindBasket(ctx context.Context, basketID, pipeline string) error
	// UnbindBasket removes a basket's binding; docex.ErrNotFound when none.
	UnbindBasket(ctx context.Context, basketID string) error

	// InsertJob adds a job and enqueues it for the backend's JobQueue in
	// the same transaction (transactional outbox): the job is delivered
	// if and only if the transaction commits.
	InsertJob(ctx context.Context, j JobRecord) error
	// UpdateJob writes a job's state, attempts, RunAt, error, detail and
	// UpdatedAt; docex.ErrNotFound when absent.
	UpdateJob(ctx context.Context, j JobRecord) error
	// RequeueJob writes a final job back as queued (UpdateJob, and its
	// MaxAttempts: a retried job gets a new budget of attempts) and
	// enqueues it for delivery again, in the same transaction.
	RequeueJob(ctx context.Context, j JobRecord) error
	// InsertJobStep records a completion key; docex.ErrExists when the key
	// is recorded already.
	InsertJobStep(ctx context.Context, s StepRecord) error
	// InsertLineage records an edge; an identical edge (same source,
	// derived document, job and step) is recorded once.
	InsertLineage(ctx context.Context, e LineageEdge) error
	// PutCacheEntry stores (or replaces) a cached step result.
	PutCacheEntry(ctx context.Context, c CacheEntry) error
	// PruneJobs deletes up to p.Limit jobs whose state is one of p.States
	// (the engine gives final states only), whose UpdatedAt is before
	// p.Before and whose id is greater than p.After ("": any), lowest id
	// first, with their completion keys (job_steps). Lineage edges, step
	// cache entries and audit entries stay. A backend whose write
	// transactions run at once skips a job another transaction has
	// locked (a retry or cancel in flight): a job retried at that moment
	// is not deleted, and a retry that reads the job after the prune
	// committed finds none. The engine deletes in chunks, each starting
	// after the last id of the one before (JobsPruned.Last), so that no
	// chunk reads again what the others deleted or skipped.
	PruneJobs(ctx context.Context, p JobPrune) (JobsPruned, error)
}

// StepRowsTx is implemented by transactions that record the rows of many
// step runs in few statements or round trips. The effect is that of
// InsertJobStep for each step (docex.ErrExists when a key is recorded
// already), InsertLineage for each edge, PutCacheEntry for each cache
// entry (the last of one key wins) and AppendAudit for each audit entry,
// in that order; on error the caller rolls the transaction back. The
// engine uses it for a batch's step runs when the backend's Tx has it.
type StepRowsTx interface {
	InsertStepRows(ctx context.Context, steps []StepRecord, edges []LineageEdge, cache []CacheEntry, audit []docex.AuditEntry) error
}

// BatchReader is implemented by tenant stores and transactions that read
// many documents, or the lineage of many, in few statements. The engine
// uses it to start a batch's attempts and to pick a basket's original
// documents when the backend has it.
type BatchReader interface {
	// DocumentsByID returns the documents of ids that exist, with their
	// metadata, by id; an id with no document is left out.
	DocumentsByID(ctx context.Context, ids []string) (map[string]docex.Document, error)
	// DerivedAmong returns the ids among ids of the documents that a
	// lineage edge created (see LineageEdge.Dedup): documents a step
	// produced. A
	// document that only deduplicated edges point to (an original whose
	// content a step's output had too) is not among them.
	DerivedAmong(ctx context.Context, ids []string) (map[string]bool, error)
}

// LineageBatchReader is implemented by tenant stores and transactions
// that read the lineage edges of many documents in one statement. The
// engine walks a document's lineage (docex doc lineage, a cascading
// delete) a level at a time with it when the backend has it.
type LineageBatchReader interface {
	// LineageAmong returns the edges into ids (into: the edges whose
	// derived document is one of ids, their sources) or out of them (the
	// edges whose source is one of ids), ordered as Reader.Lineage
	// orders one document's: by created_at, source_id, derived_id.
	LineageAmong(ctx context.Context, ids []string, into bool) ([]LineageEdge, error)
}

// LineagePager is implemented by tenant stores and transactions that
// read the documents derived from a set of documents a page at a time,
// in the order of the lineage primary key (source_id, derived_id, ...).
// The engine walks a cascading delete's tree (docex doc delete --cascade)
// with it, holding a page per level of the walk, not the whole tree.
type LineagePager interface {
	// DerivedAfter returns the pairs (source, derived document) of the
	// edges out of the documents of sources, each pair once however many
	// edges it has (Dedup: every one of them is deduplicated,
	// LineageEdge.Dedup), ordered by source id then derived id in byte
	// order, those after the pair (afterSource, afterID) ("", "" for the
	// first page), at most limit of them. Documents that are gone are
	// listed, Gone (their edges are not Dedup).
	DerivedAfter(ctx context.Context, sources []string, afterSource, afterID string, limit int) ([]DerivedRef, error)
}

// DerivedRef is a document derived from another (LineagePager).
type DerivedRef struct {
	SourceID string
	ID       string
	Dedup    bool
	Gone     bool // no such document
}

// DeleteBatchTx is implemented by transactions that delete many
// documents in few statements. The engine deletes a cascade's documents
// (docex doc delete --cascade) a chunk at a time with it when the
// backend's Tx has it.
type DeleteBatchTx interface {
	// DeleteDocuments has the effect of DeleteDocument on each document
	// of ids (its metadata removed, its basket's counters updated), then
	// of AppendAudit on each entry, in order. It returns docex.ErrNotFound
	// when a document is absent (or given twice), after which the caller
	// rolls the transaction back.
	DeleteDocuments(ctx context.Context, ids []string, audit []docex.AuditEntry) error
}

// ContentsReader is implemented by tenant stores that read many content
// rows (content stored in the database) in one read. ReadContents returns
// the rows of checksums that exist, by checksum; a checksum with no row is
// left out. The bytes are as stored: the caller verifies them.
type ContentsReader interface {
	ReadContents(ctx context.Context, checksums []string) (map[string][]byte, error)
}

// JobsTx is implemented by transactions that update many jobs in few
// statements or round trips. The effect is that of UpdateJob on each job,
// in order: docex.ErrNotFound when one does not exist, after which the
// caller rolls the transaction back. The engine uses it to start and end
// the attempts of a batch when the backend's Tx has it.
type JobsTx interface {
	UpdateJobs(ctx context.Context, jobs []JobRecord) error
	// InsertJobs has the effect of InsertJob on each job, in a few
	// statements (a run over a large basket enqueues a job per document);
	// docex.ErrExists when one of the jobs exists.
	InsertJobs(ctx context.Context, jobs []JobRecord) error
}

// Delivery is one job handed to a worker.
type Delivery struct {
	TenantID string // "" for the local store of a single-tenant system
	JobID    string
	// Lease, when not zero, bounds the job's own run: the handler stops
	// an attempt once the job's steps have run this long, counted from
	// when they start, not while the job waits in the worker (for a
	// slot, for the other jobs of its batch). The attempt then counts,
	// as a transient failure. The PostgreSQL queue sets it to
	// WorkConfig.Lease; SQLite's leaves it zero (no bound).
	Lease time.Duration
	// ID names the delivery to the backend's DeliveryTx: PostgreSQL, the
	// River job's id; SQLite, the worker that leased the job
	// (WorkConfig.WorkerID). "" is not checked.
	ID string
}

// DeliveryTx is implemented by the transactions of a backend whose
// deliveries of one job may overlap (a delivery held in a worker while
// its job was cancelled and retried, and the retry's; a job rescued from
// a worker thought dead). The engine calls it in the transaction that
// starts a job's attempt (or gives the job up, or makes it wait), after
// reading the jobs locked, so that two deliveries of one job never both
// start it.
type DeliveryTx interface {
	// StaleDeliveries returns, by job id, the deliveries of ds that may
	// not act on their job: one that is not the job's current delivery
	// (PostgreSQL: a River job marked superseded by a cancel or a
	// failure since it was fetched; SQLite: the job's lease is another
	// worker's, or none), and one whose job another current delivery
	// holds with a live lease (PostgreSQL: another River job of the job,
	// running, not superseded, renewed within ds's Lease), whose attempt
	// is not lost. The deliveries of ds are of distinct jobs. The value
	// says why the delivery is stale, one of the Stale* reasons (the
	// worker logs it); a delivery that is not stale is absent.
	StaleDeliveries(ctx context.Context, ds []Delivery) (map[string]string, error)
}

// Why a delivery is stale (DeliveryTx.StaleDeliveries).
const (
	// StaleSuperseded: PostgreSQL, the delivery's River job was marked
	// superseded since it was fetched (its job was cancelled or failed).
	StaleSuperseded = "superseded"
	// StaleHeldElsewhere: PostgreSQL, another River job of the job is
	// held by a worker that renewed it within the lease.
	StaleHeldElsewhere = "held_elsewhere"
	// StaleLeaseEnded: SQLite, the job has no lease any more (it was
	// cancelled, or cancelled and retried, since the claim).
	StaleLeaseEnded = "lease_ended"
	// StaleLeaseTaken: SQLite, the job's lease is another worker's (the
	// delivery's expired and was taken).
	StaleLeaseTaken = "lease_taken"
)

// OutcomeKind says what the queue does with a delivered job.
type OutcomeKind int

// Outcomes of a delivery.
const (
	// Done: the job is final (the engine recorded its state); forget it.
	Done OutcomeKind = iota
	// Again: deliver the job again after Outcome.After (a retry, a wait
	// for a suspended tenant, or a release at shutdown).
	Again
	// Drop: the job cannot run and is not to be retried (for example its
	// tenant was deleted); Outcome.Reason says why.
	Drop
)

// Outcome is a handler's verdict on a delivery.
type Outcome struct {
	Kind   OutcomeKind
	After  time.Duration
	Reason string
}

// JobHandler runs one delivered job. It must be safe to call again for
// the same job (at-least-once delivery).
type JobHandler func(ctx context.Context, d Delivery) Outcome

// WorkConfig configures JobQueue.Work. Zero values take the defaults.
type WorkConfig struct {
	// Tenants to serve; nil serves every tenant, found again periodically.
	Tenants []string
	// Concurrency bounds the jobs run at once (default 4).
	Concurrency int
	// TenantConcurrency bounds the jobs of one tenant run at once
	// (default: Concurrency/2, at least 1; at most Concurrency), so that
	// one tenant's backlog cannot take every slot.
	TenantConcurrency int
	// Lease is how long a delivered job stays with a worker that stopped
	// renewing it (killed) before another worker gets it: the worker
	// renews the jobs it holds, started or not, while it runs (default
	// 1m; the PostgreSQL queue's default is 1h). On PostgreSQL it also
	// bounds each job's own run (Delivery.Lease).
	Lease time.Duration
	// Poll is the longest a worker waits before looking for new jobs
	// (default 1s; work enqueued in the same process is seen at once).
	Poll time.Duration
	// ShutdownTimeout bounds how long Work waits, once ctx is done, for
	// running jobs to finish before it cancels them (they are delivered
	// again later) (default 10s).
	ShutdownTimeout time.Duration
	// WorkerID names this worker in leases and logs (default: random).
	WorkerID string
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// OnWatch, when not nil, is called before each look of the worker's
	// tenant watch at the tenants it serves (PostgreSQL: every
	// max(Poll, 1s); SQLite: every pass of its claim loop, at most Poll
	// apart). It may block: the watch waits for it. A test hook, to make
	// a change of the registry fall between two looks.
	OnWatch func()
}

// ErrStopNow, as the cause of Work's context (context.WithCancelCause),
// makes Work cancel its running handlers at once instead of waiting up to
// ShutdownTimeout for them: their jobs are released and delivered again.
var ErrStopNow = errors.New("worker stopped at once: running jobs released")

// TenantsDeletedError is JobQueue.Work's error once every tenant it was
// given to serve (WorkConfig.Tenants) was deleted while it ran: it has
// nothing left to serve, and stopped. It is a docex.ErrTenantNotFound.
type TenantsDeletedError struct {
	Tenants []string
}

func (e *TenantsDeletedError) Error() string {
	names := make([]string, len(e.Tenants))
	for i, t := range e.Tenants {
		names[i] = strconv.Quote(t)
	}
	if len(names) == 1 {
		return fmt.Sprintf("tenant %s was deleted: the worker has no tenant left to serve", names[0])
	}
	return fmt.Sprintf("tenants %s were deleted: the worker has no tenant left to serve", strings.Join(names, ", "))
}

// Unwrap makes the error a docex.ErrTenantNotFound.
func (e *TenantsDeletedError) Unwrap() error { return docex.ErrTenantNotFound }

// ShutdownWait is how long Work waits, once ctx is done, for running
// handlers: cfg.ShutdownTimeout, or none when ctx was cancelled with
// ErrStopNow.
func (cfg WorkConfig) ShutdownWait(ctx context.Context) time.Duration {
	if errors.Is(context.Cause(ctx), ErrStopNow) {
		return 0
	}
	return cfg.ShutdownTimeout
}

// JobQueue delivers the jobs that tenant transactions enqueued (see
// PipelineWriter.InsertJob) to workers, at least once: a job whose worker
// dies is delivered again after its lease.
type JobQueue interface {
	// Work delivers jobs to handle until ctx is done, fairly across
	// tenants and within the concurrency bounds of cfg. Once ctx is done
	// it takes no new job, waits up to cfg.ShutdownWait(ctx) for running
	// handlers (then cancels their context) and returns nil; a delivery
	// still waiting for one of the queue's own slots is released (as by
	// Again) without being handed to handle. A tenant found deleted is
	// no longer served (logged once, at warn: "tenant deleted: no longer
	// served"); with cfg.Tenants it is not served again, and once every
	// one of them was deleted Work stops as above and returns a
	// *TenantsDeletedError. Otherwise it returns an error only when it
	// cannot start. The context of a running handler whose tenant Work
	// finds deleted (it looks about every cfg.Poll, on PostgreSQL every
	// second at most) is cancelled with TenantDeletedCause(tenant) as its
	// cause, so that a plugin call in progress stops rather than running
	// to its timeout; the handler then returns Drop. The context of a
	// running handler whose tenant Work finds suspended (looking as for a
	// deletion) is cancelled the same way, with
	// TenantSuspendedCause(tenant): the handler stops the attempt, makes
	// the job wait for its tenant (its attempt not counted) and returns
	// Again.
	Work(ctx context.Context, cfg WorkConfig, handle JobHandler) error
}

// TenantDeletedCause is the cause (context.Cause) with which
// JobQueue.Work cancels the context of the running handlers of a tenant
// it found deleted: `tenant "ID" was deleted`, a docex.ErrTenantUnknown.
func TenantDeletedCause(tenant string) error {
	return docex.Errorf(docex.ErrTenantUnknown, "tenant %q was deleted", tenant)
}

// TenantSuspendedCause is the cause (context.Cause) with which
// JobQueue.Work cancels the context of the running handlers of a tenant
// it found suspended: `tenant "ID" was suspended`, a
// docex.ErrTenantSuspended.
func TenantSuspendedCause(tenant string) error {
	return docex.Errorf(docex.ErrTenantSuspended, "tenant %q was suspended", tenant)
}

// WithDefaults returns cfg with its defaults applied.
func (cfg WorkConfig) WithDefaults() WorkConfig {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.TenantConcurrency <= 0 {
		cfg.TenantConcurrency = max(1, cfg.Concurrency/2)
	}
	cfg.TenantConcurrency = min(cfg.TenantConcurrency, cfg.Concurrency)
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}
