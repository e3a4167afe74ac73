package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/pgconfig"
	"github.com/jackc/pgx/v5"
)

// jobDDL creates a tenant's pipelines, jobs, step completion keys, lineage
// and step cache; %[1]s is the quoted tenant schema. Every foreign key
// stays inside the schema (Citus schema-based sharding moves it whole).
// The delivery of jobs is River's (see queue.go); the jobs table is the
// tenant's own record of them.
const jobDDL = `
CREATE TABLE %[1]s.pipelines (
	name       text COLLATE "C" NOT NULL,
	version    integer NOT NULL,
	definition bytea NOT NULL,
	created_at timestamptz NOT NULL,
	created_by text NOT NULL,
	deleted    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (name, version)
);
CREATE TABLE %[1]s.basket_pipelines (
	basket_id text COLLATE "C" PRIMARY KEY REFERENCES %[1]s.baskets (id) ON DELETE CASCADE,
	pipeline  text COLLATE "C" NOT NULL
);
CREATE INDEX basket_pipelines_pipeline_idx ON %[1]s.basket_pipelines (pipeline);
CREATE TABLE %[1]s.jobs (
	id           text COLLATE "C" PRIMARY KEY,
	pipeline     text COLLATE "C" NOT NULL,
	version      integer NOT NULL,
	document_id  text COLLATE "C" NOT NULL,
	state        text NOT NULL,
	attempts     integer NOT NULL,
	max_attempts integer NOT NULL,
	run_at       timestamptz NOT NULL,
	user_ctx     jsonb NOT NULL,
	error_code   text NOT NULL,
	error        text NOT NULL,
	detail       bytea NOT NULL,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL
);
CREATE INDEX jobs_state_idx ON %[1]s.jobs (state, id);
CREATE INDEX jobs_document_idx ON %[1]s.jobs (document_id);
CREATE TABLE %[1]s.job_steps (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key        text COLLATE "C" NOT NULL UNIQUE,
	job_id     text COLLATE "C" NOT NULL,
	step       text NOT NULL,
	input_id   text COLLATE "C" NOT NULL,
	outcome    text NOT NULL,
	outputs    text[] NOT NULL,
	detail     bytea NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX job_steps_job_idx ON %[1]s.job_steps (job_id, seq);
CREATE TABLE %[1]s.lineage (
	source_id     text COLLATE "C" NOT NULL,
	derived_id    text COLLATE "C" NOT NULL,
	job_id        text COLLATE "C" NOT NULL,
	step          text COLLATE "C" NOT NULL,
	pipeline      text NOT NULL,
	version       integer NOT NULL,
	plugin        text NOT NULL,
	module_sha256 text NOT NULL,
	params        text NOT NULL,
	created_at    timestamptz NOT NULL,
	PRIMARY KEY (source_id, derived_id, job_id, step)
);
CREATE INDEX lineage_derived_idx ON %[1]s.lineage (derived_id);
CREATE TABLE %[1]s.step_cache (
	key        text COLLATE "C" PRIMARY KEY,
	result     bytea NOT NULL,
	created_at timestamptz NOT NULL
);
`

const (
	pipelineCols = `name, version, definition, created_at, created_by, deleted`
	jobCols      = `id, pipeline, version, document_id, state, attempts, max_attempts, run_at, user_ctx, error_code, error, detail, created_at, updated_at`
	stepCols     = `key, job_id, step, input_id, outcome, outputs, detail, created_at`
	lineageCols  = `source_id, derived_id, job_id, step, pipeline, version, plugin, module_sha256, params, created_at`

	// A pipeline comes with the ids of the baskets bound to its name, read
	// by the same statement (one state).
	pipelineBound = pipelineCols + `, coalesce((SELECT array_agg(b.basket_id ORDER BY b.basket_id)
		FROM basket_pipelines b WHERE b.pipeline = p.name), '{}')`
	sqlPipelineVersion = `SELECT ` + pipelineBound + ` FROM pipelines p WHERE name = $1 AND version = $2`
	sqlPipelineNewest  = `SELECT ` + pipelineBound + ` FROM pipelines p WHERE name = $1 ORDER BY version DESC LIMIT 1`
	sqlPipelines       = `SELECT DISTINCT ON (name) ` + pipelineBound + ` FROM pipelines p ORDER BY name, version DESC`
	sqlBasketPipeline  = `SELECT pipeline FROM basket_pipelines WHERE basket_id = $1`
	sqlPipelineBaskets = `SELECT basket_id FROM basket_pipelines WHERE pipeline = $1 ORDER BY basket_id`
	sqlJob             = `SELECT ` + jobCols + ` FROM jobs WHERE id = $1`
	sqlJobs            = `SELECT ` + jobCols + ` FROM jobs WHERE ($1 = '' OR state = $1) AND ($2 = '' OR pipeline = $2) AND ($3 = '' OR document_id = $3)
		AND ($6 = '' OR document_id IN (SELECT id FROM documents WHERE basket_id = $6))
		ORDER BY id DESC LIMIT $4 OFFSET $5`
	sqlJobSteps = `SELECT ` + stepCols + ` FROM job_steps WHERE job_id = $1 ORDER BY seq`
	sqlJobStep  = `SELECT ` + stepCols + ` FROM job_steps WHERE key = $1`
	// lineageCreated is true for an edge l that created its derived
	// document d (joined on d.id = l.derived_id): the same created_at, or
	// d's derived_from metadata naming l's source when l is the first
	// edge from that source into d (no other with an earlier created_at,
	// or the same and a smaller job_id, step: the primary key's order)
	// (driver.LineageEdge.Dedup). The second test is a probe of the
	// primary key (source_id, derived_id, ...).
	lineageCreated = `(d.created_at = l.created_at OR (EXISTS (SELECT 1 FROM metadata m
		WHERE m.document_id = l.derived_id AND m.key = 'derived_from' AND m.vtype = 1 AND m.value = l.source_id)
		AND NOT EXISTS (SELECT 1 FROM lineage e WHERE e.source_id = l.source_id AND e.derived_id = l.derived_id
		AND (e.created_at, e.job_id, e.step) < (l.created_at, l.job_id, l.step))))`
	// The edges with driver.LineageEdge.Dedup, the derived document joined
	// by its primary key.
	lineageSelect = `SELECT l.source_id, l.derived_id, l.job_id, l.step, l.pipeline, l.version, l.plugin, l.module_sha256, l.params, l.created_at,
		d.id IS NOT NULL AND NOT ` + lineageCreated + `
		FROM lineage l LEFT JOIN documents d ON d.id = l.derived_id`
	lineageOrder = ` ORDER BY l.created_at, l.source_id, l.derived_id`
	sqlLineageTo = lineageSelect + ` WHERE l.derived_id = $1` + lineageOrder
	sqlLineageOf = lineageSelect + ` WHERE l.source_id = $1` + lineageOrder
	// driver.LineageBatchReader's, unprepared as the other lookups by an
	// array of keys (see sqlMetaOf).
	sqlLineageToAny = lineageSelect + ` WHERE l.derived_id = ANY($1)` + lineageOrder
	sqlLineageOfAny = lineageSelect + ` WHERE l.source_id = ANY($1)` + lineageOrder
	sqlCacheEntry   = `SELECT result, created_at FROM step_cache WHERE key = $1`
	// driver.LineagePager's: the page of pairs first, by ordered ranges of
	// the primary key (source_id, derived_id, ...): the rest of the
	// cursor's source $1 (NULL: none) after $2, then the sources $3 after
	// it (an array of one descent each, which the scan leaves at the
	// limit $4); then the edges of those pairs only, for Dedup and Gone.
	// Before, one range (source_id = ANY(all the sources) AND (source_id,
	// derived_id) > cursor) read every edge of each source before the
	// cursor (the row comparison bounds no array element's start) and the
	// cursor's source from its first edge on, and the Dedup probe of
	// metadata, planned for every edge of the range, could be a hash of
	// the tenant's whole metadata table (a scan of it): a page of 7 at the
	// 5,000th of 10,020 pairs out of 1,002 sources read 24,000 buffers.
	sqlDerivedAfter = `SELECT l.source_id, l.derived_id, bool_and(d.id IS NOT NULL AND NOT ` + lineageCreated + `), bool_and(d.id IS NULL)
		FROM (SELECT source_id, derived_id FROM (
			(SELECT DISTINCT source_id, derived_id FROM lineage WHERE source_id = $1::text COLLATE "C" AND derived_id > $2::text COLLATE "C"
				ORDER BY source_id, derived_id LIMIT $4)
			UNION ALL
			(SELECT DISTINCT source_id, derived_id FROM lineage WHERE source_id = ANY($3::text[])
				ORDER BY source_id, derived_id LIMIT $4)) u
			ORDER BY source_id, derived_id LIMIT $4) p
		JOIN lineage l ON l.source_id = p.source_id AND l.derived_id = p.derived_id
		LEFT JOIN documents d ON d.id = l.derived_id
		GROUP BY l.source_id, l.derived_id ORDER BY l.source_id, l.derived_id`
	// The lookups by an array of keys run unprepared (pgx.QueryExecModeExec,
	// see sqlMetaOf).
	sqlJobsByID = `SELECT ` + jobCols + ` FROM jobs WHERE id = ANY($1)`
	// A write transaction locks the jobs it reads (see tx.Job), in id
	// order, so that two never wait for each other's rows in opposite
	// orders.
	sqlLockJob      = sqlJob + ` FOR UPDATE`
	sqlLockJobsByID = `SELECT ` + jobCols + ` FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE`
	sqlJobStates    = `SELECT id, state FROM jobs WHERE id = ANY($1)`
	sqlStepsOf      = `SELECT ` + stepCols + ` FROM job_steps WHERE job_id = ANY($1) ORDER BY seq`
	sqlCaches       = `SELECT key, result, created_at FROM step_cache WHERE key = ANY($1)`

	sqlInsertPipeline = `INSERT INTO pipelines (` + pipelineCols + `) VALUES ($1, $2, $3, $4, $5, false)`
	sqlDeletePipeline = `UPDATE pipelines SET deleted = true WHERE name = $1 AND NOT deleted`
	// The pipeline's rows are locked FOR SHARE, so that a concurrent
	// DeletePipeline (which updates them, then looks for bound baskets)
	// either waits for this bind and sees it, or has committed and leaves
	// nothing to bind to (no row inserted).
	sqlBindBasket = `WITH p AS (SELECT 1 FROM pipelines WHERE name = $2 AND NOT deleted FOR SHARE)
		INSERT INTO basket_pipelines (basket_id, pipeline) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM p)
		ON CONFLICT (basket_id) DO UPDATE SET pipeline = excluded.pipeline`
	sqlUnbindBasket = `DELETE FROM basket_pipelines WHERE basket_id = $1`
	sqlInsertJob    = `INSERT INTO jobs (` + jobCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	sqlUpdateJob    = `UPDATE jobs SET state = $2, attempts = $3, run_at = $4, error_code = $5, error = $6, detail = $7, updated_at = $8 WHERE id = $1`
	sqlInsertStep   = `INSERT INTO job_steps (` + stepCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	sqlInsertEdge   = `INSERT INTO lineage (` + lineageCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`
	sqlPutCache     = `INSERT INTO step_cache (key, result, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET result = excluded.result, created_at = excluded.created_at`
)

// sqlRequeueJob is sqlUpdateJob with the job's new budget of attempts
// (job retry).
const sqlRequeueJob = `UPDATE jobs SET state = $2, attempts = $3, run_at = $4, error_code = $5, error = $6, detail = $7, updated_at = $8,
	max_attempts = $9 WHERE id = $1`

// scanPipelineBound scans a pipeline and the ids of its bound baskets.
func scanPipelineBound(row pgx.Row) (driver.PipelineRecord, error) {
	var p driver.PipelineRecord
	err := row.Scan(&p.Name, &p.Version, &p.Definition, &p.CreatedAt, &p.CreatedBy, &p.Deleted, &p.Baskets)
	p.CreatedAt = p.CreatedAt.UTC()
	return p, err
}

func scanJob(row pgx.Row) (driver.JobRecord, error) {
	var j driver.JobRecord
	var uc []byte
	if err := row.Scan(&j.ID, &j.Pipeline, &j.Version, &j.DocumentID, &j.State, &j.Attempts, &j.MaxAttempts, &j.RunAt, &uc,
		&j.ErrorCode, &j.Error, &j.Detail, &j.CreatedAt, &j.UpdatedAt); err != nil {
		return j, err
	}
	j.RunAt, j.CreatedAt, j.UpdatedAt = j.RunAt.UTC(), j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	if err := json.Unmarshal(uc, &j.User); err != nil {
		return j, docex.Errorf(docex.ErrCorrupt, "job %s: user context: %v", j.ID, err)
	}
	return j, nil
}

func scanStep(row pgx.Row) (driver.StepRecord, error) {
	var s driver.StepRecord
	err := row.Scan(&s.Key, &s.JobID, &s.Step, &s.InputID, &s.Outcome, &s.Outputs, &s.Detail, &s.CreatedAt)
	s.CreatedAt = s.CreatedAt.UTC()
	if s.Outputs == nil {
		s.Outputs = []string{}
	}
	return s, err
}

func scanEdge(row pgx.Row) (driver.LineageEdge, error) {
	var e driver.LineageEdge
	err := row.Scan(&e.SourceID, &e.DerivedID, &e.JobID, &e.Step, &e.Pipeline, &e.Version, &e.Plugin, &e.ModuleSHA256, &e.Params, &e.CreatedAt, &e.Dedup)
	e.CreatedAt = e.CreatedAt.UTC()
	return e, err
}

// collect runs a query and scans every row with scan.
func collect[T any](ctx context.Context, b *Backend, q querier, scan func(pgx.Row) (T, error), what, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, b.wrap(err, "%s", what)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, b.wrap(err, "%s", what)
		}
		out = append(out, v)
	}
	return out, b.wrap(rows.Err(), "%s", what)
}

// one runs a query expected to return one row; no row is docex.ErrNotFound
// with the message of format.
func one[T any](ctx context.Context, b *Backend, q querier, scan func(pgx.Row) (T, error), sql string, args []any, format string, fargs ...any) (T, error) {
	v, err := scan(q.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, docex.Errorf(docex.ErrNotFound, format, fargs...)
	}
	return v, b.wrap(err, format, fargs...)
}

func scanString(row pgx.Row) (s string, err error) { err = row.Scan(&s); return }

// pipelineReads implements driver.PipelineReader over a querier; the store
// runs it in a read transaction, the tx directly.
type pipelineReads struct {
	b *Backend
	q querier
}

func (r pipelineReads) Pipeline(ctx context.Context, name string, version int) (driver.PipelineRecord, error) {
	if version > 0 {
		return one(ctx, r.b, r.q, scanPipelineBound, sqlPipelineVersion, []any{name, version}, "pipeline %q has no version %d", name, version)
	}
	return one(ctx, r.b, r.q, scanPipelineBound, sqlPipelineNewest, []any{name}, "pipeline %q not found", name)
}

func (r pipelineReads) Pipelines(ctx context.Context) ([]driver.PipelineRecord, error) {
	all, err := collect(ctx, r.b, r.q, scanPipelineBound, "list pipelines", sqlPipelines)
	out := all[:0]
	for _, p := range all {
		if !p.Deleted {
			out = append(out, p)
		}
	}
	return out, err
}

func (r pipelineReads) BasketPipeline(ctx context.Context, basketID string) (string, error) {
	return one(ctx, r.b, r.q, scanString, sqlBasketPipeline, []any{basketID}, "basket %q has no pipeline", basketID)
}

func (r pipelineReads) PipelineBaskets(ctx context.Context, name string) ([]string, error) {
	return collect(ctx, r.b, r.q, scanString, "list baskets of pipeline", sqlPipelineBaskets, name)
}

func (r pipelineReads) Job(ctx context.Context, id string) (driver.JobRecord, error) {
	return one(ctx, r.b, r.q, scanJob, sqlJob, []any{id}, "job %q not found", id)
}

func (r pipelineReads) Jobs(ctx context.Context, f driver.JobFilter, page docex.Page) ([]driver.JobRecord, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	return collect(ctx, r.b, r.q, scanJob, "list jobs", sqlJobs, f.State, f.Pipeline, f.DocumentID, page.Limit, page.Offset, f.BasketID)
}

func (r pipelineReads) JobSteps(ctx context.Context, jobID string) ([]driver.StepRecord, error) {
	return collect(ctx, r.b, r.q, scanStep, "list job steps", sqlJobSteps, jobID)
}

func (r pipelineReads) JobStep(ctx context.Context, key string) (driver.StepRecord, error) {
	return one(ctx, r.b, r.q, scanStep, sqlJobStep, []any{key}, "job step %q not found", key)
}

func (r pipelineReads) Lineage(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	if sources, err = collect(ctx, r.b, r.q, scanEdge, "read lineage", sqlLineageTo, docID); err != nil {
		return nil, nil, err
	}
	derived, err = collect(ctx, r.b, r.q, scanEdge, "read lineage", sqlLineageOf, docID)
	return sources, derived, err
}

// LineageAmong implements driver.LineageBatchReader: one statement.
func (r pipelineReads) LineageAmong(ctx context.Context, ids []string, into bool) ([]driver.LineageEdge, error) {
	if len(ids) == 0 {
		return []driver.LineageEdge{}, nil
	}
	q := sqlLineageOfAny
	if into {
		q = sqlLineageToAny
	}
	return collect(ctx, r.b, r.q, scanEdge, "read lineage", q, pgx.QueryExecModeExec, ids)
}

// DerivedAfter implements driver.LineagePager: one statement
// (sqlDerivedAfter), the sources sorted in byte order (COLLATE "C"),
// those before the cursor's left out.
func (r pipelineReads) DerivedAfter(ctx context.Context, sources []string, afterSource, afterID string, limit int) ([]driver.DerivedRef, error) {
	srcs := slices.Clone(sources)
	slices.Sort(srcs)
	srcs = slices.Compact(srcs)
	i, found := slices.BinarySearch(srcs, afterSource)
	var cursor any // NULL: afterSource is none of sources
	if found {
		cursor, i = afterSource, i+1
	}
	srcs = srcs[i:]
	if limit <= 0 || cursor == nil && len(srcs) == 0 {
		return []driver.DerivedRef{}, nil
	}
	return collect(ctx, r.b, r.q, func(row pgx.Row) (d driver.DerivedRef, err error) {
		err = row.Scan(&d.SourceID, &d.ID, &d.Dedup, &d.Gone)
		return d, err
	}, "read lineage", sqlDerivedAfter, pgx.QueryExecModeExec, cursor, afterID, srcs, limit)
}

func (r pipelineReads) CacheEntry(ctx context.Context, key string) (driver.CacheEntry, error) {
	c := driver.CacheEntry{Key: key}
	err := r.q.QueryRow(ctx, sqlCacheEntry, key).Scan(&c.Result, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, docex.Errorf(docex.ErrNotFound, "no cache entry %q", key)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, r.b.wrap(err, "read cache entry")
}

func (r pipelineReads) JobsByID(ctx context.Context, ids []string) ([]driver.JobRecord, error) {
	return collect(ctx, r.b, r.q, scanJob, "read jobs", sqlJobsByID, pgx.QueryExecModeExec, ids)
}

func (r pipelineReads) JobStates(ctx context.Context, ids []string) (map[string]string, error) {
	type idState struct{ id, state string }
	rows, err := collect(ctx, r.b, r.q, func(row pgx.Row) (v idState, err error) {
		err = row.Scan(&v.id, &v.state)
		return v, err
	}, "read job states", sqlJobStates, pgx.QueryExecModeExec, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, v := range rows {
		out[v.id] = v.state
	}
	return out, nil
}

func (r pipelineReads) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	steps, err := collect(ctx, r.b, r.q, scanStep, "list job steps", sqlStepsOf, pgx.QueryExecModeExec, jobIDs)
	if err != nil {
		return nil, err
	}
	out := map[string][]driver.StepRecord{}
	for _, s := range steps {
		out[s.JobID] = append(out[s.JobID], s)
	}
	return out, nil
}

func (r pipelineReads) CacheEntries(ctx context.Context, keys []string) (map[string]driver.CacheEntry, error) {
	entries, err := collect(ctx, r.b, r.q, func(row pgx.Row) (c driver.CacheEntry, err error) {
		err = row.Scan(&c.Key, &c.Result, &c.CreatedAt)
		c.CreatedAt = c.CreatedAt.UTC()
		return c, err
	}, "read cache entries", sqlCaches, pgx.QueryExecModeExec, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]driver.CacheEntry, len(entries))
	for _, c := range entries {
		out[c.Key] = c
	}
	return out, nil
}

// ReadContents returns the content rows of checksums that exist, in one
// statement (driver.ContentsReader).
func (r pipelineReads) ReadContents(ctx context.Context, checksums []string) (map[string][]byte, error) {
	type row struct {
		sum  string
		data []byte
	}
	rows, err := collect(ctx, r.b, r.q, func(pr pgx.Row) (c row, err error) {
		err = pr.Scan(&c.sum, &c.data)
		return c, err
	}, "read contents", sqlContents, pgx.QueryExecModeExec, checksums)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(rows))
	for _, c := range rows {
		out[c.sum] = c.data
	}
	return out, nil
}

// Store reads: each in a read-only tenant transaction.

func storeRead[T any](ctx context.Context, s *store, fn func(r pipelineReads) (T, error)) (v T, err error) {
	err = s.read(ctx, func(q pgx.Tx) error { v, err = fn(pipelineReads{s.b, q}); return err })
	return v, err
}

// ReadContents returns the content rows of checksums that exist, by
// checksum, in one read-only transaction.
func (s *store) ReadContents(ctx context.Context, checksums []string) (map[string][]byte, error) {
	return storeRead(ctx, s, func(r pipelineReads) (map[string][]byte, error) { return r.ReadContents(ctx, checksums) })
}

// Pipeline returns a pipeline version (0: newest), or docex.ErrNotFound.
func (s *store) Pipeline(ctx context.Context, name string, version int) (driver.PipelineRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) (driver.PipelineRecord, error) { return r.Pipeline(ctx, name, version) })
}

// Pipelines lists the newest version of every pipeline not deleted.
func (s *store) Pipelines(ctx context.Context) ([]driver.PipelineRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]driver.PipelineRecord, error) { return r.Pipelines(ctx) })
}

// BasketPipeline returns the pipeline bound to a basket, or docex.ErrNotFound.
func (s *store) BasketPipeline(ctx context.Context, basketID string) (string, error) {
	return storeRead(ctx, s, func(r pipelineReads) (string, error) { return r.BasketPipeline(ctx, basketID) })
}

// PipelineBaskets lists the baskets bound to a pipeline.
func (s *store) PipelineBaskets(ctx context.Context, name string) ([]string, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]string, error) { return r.PipelineBaskets(ctx, name) })
}

// Job returns a job, or docex.ErrNotFound.
func (s *store) Job(ctx context.Context, id string) (driver.JobRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) (driver.JobRecord, error) { return r.Job(ctx, id) })
}

// Jobs lists jobs matching f, newest first; docex.ErrInvalid for a bad page.
func (s *store) Jobs(ctx context.Context, f driver.JobFilter, page docex.Page) ([]driver.JobRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]driver.JobRecord, error) { return r.Jobs(ctx, f, page) })
}

// JobSteps lists a job's completed steps in order.
func (s *store) JobSteps(ctx context.Context, jobID string) ([]driver.StepRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]driver.StepRecord, error) { return r.JobSteps(ctx, jobID) })
}

// JobStep returns a completion key, or docex.ErrNotFound.
func (s *store) JobStep(ctx context.Context, key string) (driver.StepRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) (driver.StepRecord, error) { return r.JobStep(ctx, key) })
}

// Lineage returns the edges into and out of a document.
func (s *store) Lineage(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		sources, derived, err = pipelineReads{s.b, q}.Lineage(ctx, docID)
		return err
	})
	return sources, derived, err
}

// LineageAmong implements driver.LineageBatchReader, in a read
// transaction of its own.
func (s *store) LineageAmong(ctx context.Context, ids []string, into bool) ([]driver.LineageEdge, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]driver.LineageEdge, error) { return r.LineageAmong(ctx, ids, into) })
}

// DerivedAfter implements driver.LineagePager, in a read transaction of
// its own.
func (s *store) DerivedAfter(ctx context.Context, sources []string, afterSource, afterID string, limit int) ([]driver.DerivedRef, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]driver.DerivedRef, error) {
		return r.DerivedAfter(ctx, sources, afterSource, afterID, limit)
	})
}

// CacheEntry returns a cached step result, or docex.ErrNotFound.
func (s *store) CacheEntry(ctx context.Context, key string) (driver.CacheEntry, error) {
	return storeRead(ctx, s, func(r pipelineReads) (driver.CacheEntry, error) { return r.CacheEntry(ctx, key) })
}

// JobStates returns the states of the jobs of ids that exist, by id.
func (s *store) JobStates(ctx context.Context, ids []string) (map[string]string, error) {
	return storeRead(ctx, s, func(r pipelineReads) (map[string]string, error) { return r.JobStates(ctx, ids) })
}

// JobsByID returns the jobs of ids that exist.
func (s *store) JobsByID(ctx context.Context, ids []string) ([]driver.JobRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) ([]driver.JobRecord, error) { return r.JobsByID(ctx, ids) })
}

// StepsOfJobs returns the completed steps of jobs, by job id.
func (s *store) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	return storeRead(ctx, s, func(r pipelineReads) (map[string][]driver.StepRecord, error) { return r.StepsOfJobs(ctx, jobIDs) })
}

// CacheEntries returns the cache entries of keys that exist, by key.
func (s *store) CacheEntries(ctx context.Context, keys []string) (map[string]driver.CacheEntry, error) {
	return storeRead(ctx, s, func(r pipelineReads) (map[string]driver.CacheEntry, error) { return r.CacheEntries(ctx, keys) })
}

// Tx reads and writes.

func (t *tx) reads() pipelineReads { return pipelineReads{t.b, t.p} }

// Pipeline returns a pipeline version (0: newest), or docex.ErrNotFound.
func (t *tx) Pipeline(ctx context.Context, name string, version int) (driver.PipelineRecord, error) {
	if err := t.check(); err != nil {
		return driver.PipelineRecord{}, err
	}
	return t.reads().Pipeline(ctx, name, version)
}

// Pipelines lists the newest version of every pipeline not deleted.
func (t *tx) Pipelines(ctx context.Context) ([]driver.PipelineRecord, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().Pipelines(ctx)
}

// BasketPipeline returns the pipeline bound to a basket, or docex.ErrNotFound.
func (t *tx) BasketPipeline(ctx context.Context, basketID string) (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	return t.reads().BasketPipeline(ctx, basketID)
}

// PipelineBaskets lists the baskets bound to a pipeline.
func (t *tx) PipelineBaskets(ctx context.Context, name string) ([]string, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().PipelineBaskets(ctx, name)
}

// Job returns a job, or docex.ErrNotFound.
//
// The job is locked (FOR UPDATE) until the transaction ends: a write
// transaction reads a job to change it (a cancel, a retry, a worker
// recording an attempt's end), and under READ COMMITTED another's change
// committed between the read and the write would be overwritten.
func (t *tx) Job(ctx context.Context, id string) (driver.JobRecord, error) {
	if err := t.check(); err != nil {
		return driver.JobRecord{}, err
	}
	return one(ctx, t.b, t.p, scanJob, sqlLockJob, []any{id}, "job %q not found", id)
}

// Jobs lists jobs matching f, newest first.
func (t *tx) Jobs(ctx context.Context, f driver.JobFilter, page docex.Page) ([]driver.JobRecord, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().Jobs(ctx, f, page)
}

// JobSteps lists a job's completed steps in order.
func (t *tx) JobSteps(ctx context.Context, jobID string) ([]driver.StepRecord, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().JobSteps(ctx, jobID)
}

// JobStep returns a completion key, or docex.ErrNotFound.
func (t *tx) JobStep(ctx context.Context, key string) (driver.StepRecord, error) {
	if err := t.check(); err != nil {
		return driver.StepRecord{}, err
	}
	return t.reads().JobStep(ctx, key)
}

// LineageAmong implements driver.LineageBatchReader.
func (t *tx) LineageAmong(ctx context.Context, ids []string, into bool) ([]driver.LineageEdge, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().LineageAmong(ctx, ids, into)
}

// DerivedAfter implements driver.LineagePager.
func (t *tx) DerivedAfter(ctx context.Context, sources []string, afterSource, afterID string, limit int) ([]driver.DerivedRef, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().DerivedAfter(ctx, sources, afterSource, afterID, limit)
}

var (
	_ driver.LineagePager       = (*tx)(nil)
	_ driver.LineagePager       = (*store)(nil)
	_ driver.LineageBatchReader = (*tx)(nil)
	_ driver.LineageBatchReader = (*store)(nil)
)

// Lineage returns the edges into and out of a document.
func (t *tx) Lineage(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	if err := t.check(); err != nil {
		return nil, nil, err
	}
	return t.reads().Lineage(ctx, docID)
}

// CacheEntry returns a cached step result, or docex.ErrNotFound.
func (t *tx) CacheEntry(ctx context.Context, key string) (driver.CacheEntry, error) {
	if err := t.check(); err != nil {
		return driver.CacheEntry{}, err
	}
	return t.reads().CacheEntry(ctx, key)
}

// InsertStepRows implements driver.StepRowsTx: one multi-row statement
// per table (see sqlInsertSteps), sent in one round trip; cache entries of
// one key are reduced to the last.
func (t *tx) InsertStepRows(ctx context.Context, steps []driver.StepRecord, edges []driver.LineageEdge, cache []driver.CacheEntry, audit []docex.AuditEntry) error {
	if err := t.check(); err != nil {
		return err
	}
	var (
		batch pgx.Batch
		whats []string
	)
	queue := func(what, sql string, args []any) {
		batch.Queue(sql, args...)
		whats = append(whats, what)
	}
	if len(steps) > 0 {
		args, err := stepsArgs(steps)
		if err != nil {
			return err
		}
		what := "record job step " + steps[0].Key
		if len(steps) > 1 {
			what = fmt.Sprintf("record %d job steps", len(steps))
		}
		queue(what, sqlInsertSteps, args)
	}
	if len(edges) > 0 {
		queue("record lineage", sqlInsertEdges, edgesArgs(edges))
	}
	if len(cache) > 0 {
		last := map[string]int{}
		for i, c := range cache {
			last[c.Key] = i
		}
		var distinct []driver.CacheEntry
		for i, c := range cache {
			if last[c.Key] == i {
				distinct = append(distinct, c)
			}
		}
		queue("store cache entries", sqlPutCaches, cachesArgs(distinct))
	}
	if len(audit) > 0 {
		args, err := auditsArgs(audit)
		if err != nil {
			return err
		}
		queue("append audit", sqlAppendAudits, args)
	}
	if len(whats) == 0 {
		return nil
	}
	res, err := t.p.send(ctx, &batch)
	if err != nil {
		return err
	}
	for _, what := range whats {
		_, err := res.Exec()
		switch code, _ := stmtError(err); {
		case err == nil:
			continue
		case code == codeUniqueViolation:
			err = fmt.Errorf("%w: %w", docex.ErrExists, t.b.wrap(err, "%s", what))
		case code == codeForeignKeyViolation:
			err = fmt.Errorf("%w: %w", docex.ErrNotFound, t.b.wrap(err, "%s", what))
		default:
			err = t.b.wrap(err, "%s", what)
		}
		res.Close()
		return err
	}
	return t.b.wrap(res.Close(), "record step rows")
}

// JobsByID returns the jobs of ids that exist.
//
// The jobs are locked, as Job locks one.
func (t *tx) JobsByID(ctx context.Context, ids []string) ([]driver.JobRecord, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return collect(ctx, t.b, t.p, scanJob, "read jobs", sqlLockJobsByID, pgx.QueryExecModeExec, ids)
}

// JobStates returns the states of the jobs of ids that exist, by id.
func (t *tx) JobStates(ctx context.Context, ids []string) (map[string]string, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().JobStates(ctx, ids)
}

// StepsOfJobs returns the completed steps of jobs, by job id.
func (t *tx) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().StepsOfJobs(ctx, jobIDs)
}

// CacheEntries returns the cache entries of keys that exist, by key.
func (t *tx) CacheEntries(ctx context.Context, keys []string) (map[string]driver.CacheEntry, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.reads().CacheEntries(ctx, keys)
}

// exec runs a write statement; a unique violation is docex.ErrExists.
func (t *tx) exec(ctx context.Context, what, sql string, args ...any) (int64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	tag, err := t.p.Exec(ctx, sql, args...)
	switch code, _ := stmtError(err); {
	case err == nil:
		return tag.RowsAffected(), nil
	case code == codeUniqueViolation:
		return 0, fmt.Errorf("%w: %w", docex.ErrExists, t.b.wrap(err, "%s", what))
	case code == codeForeignKeyViolation:
		return 0, fmt.Errorf("%w: %w", docex.ErrNotFound, t.b.wrap(err, "%s", what))
	}
	return 0, t.b.wrap(err, "%s", what)
}

func mustAffect(n int64, err error, format string, args ...any) error {
	if err == nil && n == 0 {
		return docex.Errorf(docex.ErrNotFound, format, args...)
	}
	return err
}

// InsertPipeline adds a pipeline version; docex.ErrExists when it exists.
func (t *tx) InsertPipeline(ctx context.Context, p driver.PipelineRecord) error {
	_, err := t.exec(ctx, "insert pipeline "+p.Name+" version "+strconv.Itoa(p.Version), sqlInsertPipeline,
		p.Name, p.Version, p.Definition, utcMicro(p.CreatedAt), p.CreatedBy)
	return err
}

// DeletePipeline marks a pipeline's versions deleted; docex.ErrNotFound when none is live.
func (t *tx) DeletePipeline(ctx context.Context, name string) error {
	n, err := t.exec(ctx, "delete pipeline", sqlDeletePipeline, name)
	return mustAffect(n, err, "pipeline %q not found", name)
}

// BindBasket binds a basket to a pipeline; docex.ErrNotFound for an
// unknown basket, or a pipeline deleted (or unknown) when the statement
// runs.
func (t *tx) BindBasket(ctx context.Context, basketID, pipeline string) error {
	n, err := t.exec(ctx, "bind basket "+basketID, sqlBindBasket, basketID, pipeline)
	return mustAffect(n, err, "pipeline %q was deleted", pipeline)
}

// UnbindBasket removes a basket's binding; docex.ErrNotFound when none.
func (t *tx) UnbindBasket(ctx context.Context, basketID string) error {
	n, err := t.exec(ctx, "unbind basket", sqlUnbindBasket, basketID)
	return mustAffect(n, err, "basket %q has no pipeline", basketID)
}

// InsertJob adds the tenant's job record and enqueues its River job in
// the same transaction.
func (t *tx) InsertJob(ctx context.Context, j driver.JobRecord) error {
	uc, err := json.Marshal(j.User)
	if err != nil {
		return err
	}
	if j.Detail == nil {
		j.Detail = []byte("{}")
	}
	if _, err := t.exec(ctx, "insert job", sqlInsertJob, j.ID, j.Pipeline, j.Version, j.DocumentID, j.State, j.Attempts, j.MaxAttempts,
		utcMicro(j.RunAt), uc, j.ErrorCode, j.Error, j.Detail, utcMicro(j.CreatedAt), utcMicro(j.UpdatedAt)); err != nil {
		return err
	}
	if err := t.p.flush(ctx); err != nil { // River's statements do not go through the pipe
		return err
	}
	return t.b.queue.enqueueTx(ctx, t.q, t.tenant, j.ID, j.RunAt)
}

// UpdateJob writes a job's state; docex.ErrNotFound when absent, or the
// error of a statement. A job written as cancelled or failed (by a cancel,
// or by the worker that ends it) has, in the same transaction, its River
// jobs ended (endDeliveries): a job that `job retry` may run again is
// never delivered again by a River job of before the retry.
func (t *tx) UpdateJob(ctx context.Context, j driver.JobRecord) error {
	if j.Detail == nil {
		j.Detail = []byte("{}")
	}
	n, err := t.exec(ctx, "update job", sqlUpdateJob, j.ID, j.State, j.Attempts, utcMicro(j.RunAt), j.ErrorCode, j.Error, j.Detail, utcMicro(j.UpdatedAt))
	if err := mustAffect(n, err, "job %q not found", j.ID); err != nil || !retriable(j.State) {
		return err
	}
	return t.endDeliveries(ctx, j.ID)
}

// retriable reports whether a job in state may be run again by `job
// retry` (failed or cancelled): its River jobs are ended when it is
// written so (endDeliveries). A succeeded job is never run again: a River
// job that delivers it again finds it final and is completed.
func retriable(state string) bool {
	return state == driver.JobCancelled || state == driver.JobFailed
}

// endDeliveries deletes the River jobs of job id that wait to be
// delivered, and marks every other River job of it not finalized
// (running: a worker holds it) superseded (supersededKey in its metadata),
// in the transaction; the error of a statement. It is called when the job
// is written cancelled or failed (UpdateJob, UpdateJobs): such a job is
// not delivered again, and a retry (RequeueJob) enqueues one River job
// anew, so that cancel (or failure) and retry in turn never leave two
// deliveries of one job. A worker that holds a River job when it is
// marked superseded goes on (after a cancel, its attempt no longer owns
// the job and stops; the worker that wrote the job failed or cancelled
// itself is done with it, and its River job is completed when its work
// function returns, by River, in a transaction of River's own, after this
// one); should that worker be killed first, River rescues the River job
// and delivers it again, and the work function completes it without
// handling the job, which a retry may have started again meanwhile (it
// would take that attempt for one lost). The mark is a statement after
// the delete, with a snapshot of its own: it also finds a River job that
// a worker fetched, or River's rescuer moved, while the delete ran.
func (t *tx) endDeliveries(ctx context.Context, id string) error {
	if err := t.p.flush(ctx); err != nil { // River's table is written outside the pipe
		return err
	}
	args, _ := json.Marshal(jobArgs{Tenant: t.tenant, Job: id})
	_, err := t.q.Exec(ctx, `DELETE FROM `+quote(t.b.queue.schema)+`.river_job
		WHERE args @> $1::jsonb AND queue = $2 AND state IN ('available', 'pending', 'retryable', 'scheduled')`, args, tenantQueue(t.tenant))
	if err != nil {
		return t.b.wrap(err, "drop the waiting deliveries of job %s", id)
	}
	_, err = t.q.Exec(ctx, `UPDATE `+quote(t.b.queue.schema)+`.river_job SET metadata = metadata || jsonb_build_object($3::text, true)
		WHERE args @> $1::jsonb AND queue = $2 AND state IN ('running', 'available', 'pending', 'retryable', 'scheduled')`, args, tenantQueue(t.tenant), supersededKey)
	return t.b.wrap(err, "mark the held deliveries of job %s superseded", id)
}

// StaleDeliveries implements driver.DeliveryTx: of the River jobs ds
// (Delivery.ID, their ids), those marked superseded (endDeliveries: the
// job was cancelled or failed while they were held), and those whose job
// another River job holds, running, not superseded and renewed within
// the lease (its worker alive: renewLeases), whose attempt is not lost.
// A rescued River job is the same River job: its new delivery is not
// held back by its old one.
func (t *tx) StaleDeliveries(ctx context.Context, ds []driver.Delivery) (map[string]string, error) {
	rids, jobs := make([]int64, 0, len(ds)), make([]string, 0, len(ds))
	var lease time.Duration
	for _, d := range ds {
		rid, err := strconv.ParseInt(d.ID, 10, 64)
		if err != nil {
			continue // not a River job's delivery: not checked
		}
		rids, jobs = append(rids, rid), append(jobs, d.JobID)
		lease = max(lease, d.Lease)
	}
	if len(rids) == 0 {
		return nil, nil
	}
	if lease <= 0 {
		lease = defaultRescueAfter
	}
	if err := t.p.flush(ctx); err != nil { // River's table is read outside the pipe
		return nil, err
	}
	job := quote(t.b.queue.schema) + `.river_job`
	sup, _ := json.Marshal(map[string]bool{supersededKey: true})
	rows, err := t.q.Query(ctx, `SELECT d.job, EXISTS (SELECT 1 FROM `+job+` r WHERE r.id = d.rid AND r.metadata @> $3::jsonb)
		FROM unnest($1::bigint[], $2::text[]) AS d(rid, job)
		WHERE EXISTS (SELECT 1 FROM `+job+` r WHERE r.id = d.rid AND r.metadata @> $3::jsonb)
		OR EXISTS (SELECT 1 FROM `+job+` r WHERE r.state = 'running' AND r.queue = $4 AND r.id <> d.rid
			AND r.args @> jsonb_build_object('tenant', $5::text, 'job', d.job) AND NOT r.metadata @> $3::jsonb
			AND r.attempted_at > now() - make_interval(secs => $6::float8))`,
		rids, jobs, sup, tenantQueue(t.tenant), t.tenant, lease.Seconds())
	if err != nil {
		return nil, t.b.wrap(err, "check the deliveries of %d jobs", len(rids))
	}
	stale := map[string]string{}
	var (
		id         string
		superseded bool
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &superseded}, func() error {
		stale[id] = driver.StaleHeldElsewhere
		if superseded {
			stale[id] = driver.StaleSuperseded
		}
		return nil
	})
	if err != nil {
		return nil, t.b.wrap(err, "check the deliveries of %d jobs", len(rids))
	}
	return stale, nil
}

// RequeueJob writes a job back as queued, with its new budget of attempts,
// and enqueues a new River job for it in the same transaction.
func (t *tx) RequeueJob(ctx context.Context, j driver.JobRecord) error {
	if j.Detail == nil {
		j.Detail = []byte("{}")
	}
	n, err := t.exec(ctx, "requeue job", sqlRequeueJob, j.ID, j.State, j.Attempts, utcMicro(j.RunAt), j.ErrorCode, j.Error, j.Detail, utcMicro(j.UpdatedAt), j.MaxAttempts)
	if err := mustAffect(n, err, "job %q not found", j.ID); err != nil {
		return err
	}
	if err := t.p.flush(ctx); err != nil { // River's statements do not go through the pipe
		return err
	}
	return t.b.queue.enqueueTx(ctx, t.q, t.tenant, j.ID, j.RunAt)
}

// InsertJobStep records a completion key; docex.ErrExists when recorded.
func (t *tx) InsertJobStep(ctx context.Context, s driver.StepRecord) error {
	if s.Detail == nil {
		s.Detail = []byte("{}")
	}
	outputs := s.Outputs
	if outputs == nil {
		outputs = []string{}
	}
	_, err := t.exec(ctx, "record job step "+s.Key, sqlInsertStep, s.Key, s.JobID, s.Step, s.InputID, s.Outcome, outputs, s.Detail, utcMicro(s.CreatedAt))
	return err
}

// InsertLineage records an edge (once).
func (t *tx) InsertLineage(ctx context.Context, e driver.LineageEdge) error {
	_, err := t.exec(ctx, "record lineage", sqlInsertEdge, e.SourceID, e.DerivedID, e.JobID, e.Step, e.Pipeline, e.Version, e.Plugin, e.ModuleSHA256, e.Params, utcMicro(e.CreatedAt))
	return err
}

// PutCacheEntry stores a cached step result.
func (t *tx) PutCacheEntry(ctx context.Context, c driver.CacheEntry) error {
	_, err := t.exec(ctx, "store cache entry", sqlPutCache, c.Key, c.Result, utcMicro(c.CreatedAt))
	return err
}

// sqlPrunable counts the jobs sqlPruneJobs would delete, without a limit,
// and their completion keys.
const sqlPrunable = `SELECT (SELECT count(*) FROM jobs WHERE state = ANY($1) AND updated_at < $2),
	(SELECT count(*) FROM job_steps WHERE job_id IN (SELECT id FROM jobs WHERE state = ANY($1) AND updated_at < $2))`

// sqlPruneJobs deletes up to $3 jobs of the states $1 last updated before
// $2 with ids after $4, lowest id first, with their completion keys, and returns how many
// of each it deleted. The jobs are locked first, skipping those another
// transaction holds (a retry or a cancel in flight, which reads the job
// FOR UPDATE): such a job is left, and a retry that locks the job after
// this statement finds it deleted once the prune commits.
const sqlPruneJobs = `WITH j AS (SELECT id FROM jobs WHERE id > $4 AND state = ANY($1) AND updated_at < $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED),
	s AS (DELETE FROM job_steps WHERE job_id IN (SELECT id FROM j) RETURNING 1),
	d AS (DELETE FROM jobs WHERE id IN (SELECT id FROM j) RETURNING id)
	SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM s), coalesce((SELECT max(id) FROM d), '')`

func (r pipelineReads) PrunableJobs(ctx context.Context, states []string, before time.Time) (jobs, steps int, err error) {
	err = r.q.QueryRow(ctx, sqlPrunable, pgx.QueryExecModeExec, states, utcMicro(before)).Scan(&jobs, &steps)
	return jobs, steps, r.b.wrap(err, "count prunable jobs")
}

// PrunableJobs counts the jobs PruneJobs would delete and their
// completion keys, in a read transaction of its own.
func (s *store) PrunableJobs(ctx context.Context, states []string, before time.Time) (jobs, steps int, err error) {
	err = s.read(ctx, func(q pgx.Tx) error {
		jobs, steps, err = pipelineReads{s.b, q}.PrunableJobs(ctx, states, before)
		return err
	})
	return jobs, steps, err
}

// PrunableJobs counts the jobs PruneJobs would delete and their
// completion keys.
func (t *tx) PrunableJobs(ctx context.Context, states []string, before time.Time) (jobs, steps int, err error) {
	if err := t.check(); err != nil {
		return 0, 0, err
	}
	return t.reads().PrunableJobs(ctx, states, before)
}

// PruneJobs deletes up to p.Limit final jobs last updated before
// p.Before, with ids after p.After, with their completion keys
// (sqlPruneJobs).
func (t *tx) PruneJobs(ctx context.Context, p driver.JobPrune) (driver.JobsPruned, error) {
	var out driver.JobsPruned
	if err := t.check(); err != nil {
		return out, err
	}
	if len(p.States) == 0 || p.Limit <= 0 {
		return out, nil
	}
	err := t.p.QueryRow(ctx, sqlPruneJobs, pgx.QueryExecModeExec, p.States, utcMicro(p.Before), p.Limit, p.After).Scan(&out.Jobs, &out.Steps, &out.Last)
	return out, t.b.wrap(err, "prune jobs")
}

// jobSchemaFor returns the unquoted schema of River's tables.
func jobSchemaFor(bootstrap string) string { return bootstrap + pgconfig.JobsSuffix }

// tenantQueue returns the River queue of a tenant ("local" for the local
// store). Tenant ids are a-z, 0-9, '-' and '_', all valid in queue names.
func tenantQueue(tenantID string) string {
	if tenantID == "" {
		return "local"
	}
	return "t_" + tenantID
}
