package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// jobSchema holds a tenant's pipelines, jobs (the job table is also the
// queue: see queue.go), step completion keys, lineage and step cache. It
// is part of every tenant file (and of the local store), so a tenant's
// jobs stay inside its isolation boundary and its single-file copy.
const jobSchema = `
CREATE TABLE IF NOT EXISTS pipelines (
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	definition BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS basket_pipelines (
	basket_id TEXT PRIMARY KEY REFERENCES baskets(id) ON DELETE CASCADE,
	pipeline  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS basket_pipelines_by_pipeline ON basket_pipelines (pipeline);
CREATE TABLE IF NOT EXISTS jobs (
	id           TEXT PRIMARY KEY,
	pipeline     TEXT NOT NULL,
	version      INTEGER NOT NULL,
	document_id  TEXT NOT NULL,
	state        TEXT NOT NULL,
	attempts     INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	run_at       INTEGER NOT NULL,
	user_ctx     TEXT NOT NULL,
	error_code   TEXT NOT NULL,
	error        TEXT NOT NULL,
	detail       BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	lease_owner  TEXT NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, run_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_document ON jobs (document_id);
CREATE TABLE IF NOT EXISTS job_steps (
	seq        INTEGER PRIMARY KEY,
	key        TEXT NOT NULL UNIQUE,
	job_id     TEXT NOT NULL,
	step       TEXT NOT NULL,
	input_id   TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	outputs    TEXT NOT NULL,
	detail     BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS job_steps_by_job ON job_steps (job_id, seq);
CREATE TABLE IF NOT EXISTS lineage (
	source_id     TEXT NOT NULL,
	derived_id    TEXT NOT NULL,
	job_id        TEXT NOT NULL,
	step          TEXT NOT NULL,
	pipeline      TEXT NOT NULL,
	version       INTEGER NOT NULL,
	plugin        TEXT NOT NULL,
	module_sha256 TEXT NOT NULL,
	params        TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (source_id, derived_id, job_id, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lineage_by_derived ON lineage (derived_id);
CREATE TABLE IF NOT EXISTS step_cache (
	key        TEXT PRIMARY KEY,
	result     BLOB NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
`

const pipelineCols = `name, version, definition, created_at, created_by, deleted`

// pipelineBound are a pipeline's columns and the ids of the baskets bound
// to its name, read by the same statement (one state); scanPipeline scans
// them.
const pipelineBound = pipelineCols + `, coalesce((SELECT group_concat(b.basket_id, ',' ORDER BY b.basket_id)
	FROM basket_pipelines b WHERE b.pipeline = p.name), '')`

func scanPipeline(row interface{ Scan(...any) error }) (driver.PipelineRecord, error) {
	var p driver.PipelineRecord
	var created int64
	var deleted int
	var bound string
	err := row.Scan(&p.Name, &p.Version, &p.Definition, &created, &p.CreatedBy, &deleted, &bound)
	p.CreatedAt, p.Deleted, p.Baskets = fromMicros(created), deleted != 0, []string{}
	if bound != "" {
		p.Baskets = strings.Split(bound, ",") // basket ids are UUIDs
	}
	return p, err
}

func (r reader) Pipeline(ctx context.Context, name string, version int) (driver.PipelineRecord, error) {
	var row *sql.Row
	if version > 0 {
		row = r.q.QueryRowContext(ctx, `SELECT `+pipelineBound+` FROM pipelines p WHERE name = ? AND version = ?`, name, version)
	} else {
		row = r.q.QueryRowContext(ctx, `SELECT `+pipelineBound+` FROM pipelines p WHERE name = ? ORDER BY version DESC LIMIT 1`, name)
	}
	p, err := scanPipeline(row)
	if version > 0 {
		return p, notFound(err, "pipeline %q has no version %d", name, version)
	}
	return p, notFound(err, "pipeline %q not found", name)
}

func (r reader) Pipelines(ctx context.Context) ([]driver.PipelineRecord, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+pipelineBound+` FROM pipelines p WHERE deleted = 0
		AND version = (SELECT max(version) FROM pipelines q WHERE q.name = p.name) ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.PipelineRecord{}
	for rows.Next() {
		p, err := scanPipeline(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (r reader) BasketPipeline(ctx context.Context, basketID string) (string, error) {
	var name string
	err := r.q.QueryRowContext(ctx, `SELECT pipeline FROM basket_pipelines WHERE basket_id = ?`, basketID).Scan(&name)
	return name, notFound(err, "basket %q has no pipeline", basketID)
}

func (r reader) PipelineBaskets(ctx context.Context, name string) ([]string, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT basket_id FROM basket_pipelines WHERE pipeline = ? ORDER BY basket_id`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

const jobCols = `id, pipeline, version, document_id, state, attempts, max_attempts, run_at, user_ctx, error_code, error, detail, created_at, updated_at`

func scanJob(row interface{ Scan(...any) error }) (driver.JobRecord, error) {
	var j driver.JobRecord
	var runAt, created, updated int64
	var uc string
	err := row.Scan(&j.ID, &j.Pipeline, &j.Version, &j.DocumentID, &j.State, &j.Attempts, &j.MaxAttempts, &runAt, &uc,
		&j.ErrorCode, &j.Error, &j.Detail, &created, &updated)
	if err != nil {
		return j, err
	}
	j.RunAt, j.CreatedAt, j.UpdatedAt = fromMicros(runAt), fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(uc), &j.User); err != nil {
		return j, docex.Errorf(docex.ErrCorrupt, "job %s: user context: %v", j.ID, err)
	}
	return j, nil
}

func (r reader) Job(ctx context.Context, id string) (driver.JobRecord, error) {
	j, err := scanJob(r.q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
	return j, notFound(err, "job %q not found", id)
}

func (r reader) Jobs(ctx context.Context, f driver.JobFilter, page docex.Page) ([]driver.JobRecord, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"state", f.State}, {"pipeline", f.Pipeline}, {"document_id", f.DocumentID}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.BasketID != "" {
		where = append(where, "document_id IN (SELECT id FROM documents WHERE basket_id = ?)")
		args = append(args, f.BasketID)
	}
	q := `SELECT ` + jobCols + ` FROM jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := r.q.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.JobRecord{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

const stepCols = `key, job_id, step, input_id, outcome, outputs, detail, created_at`

func scanStep(row interface{ Scan(...any) error }) (driver.StepRecord, error) {
	var s driver.StepRecord
	var outputs string
	var created int64
	if err := row.Scan(&s.Key, &s.JobID, &s.Step, &s.InputID, &s.Outcome, &outputs, &s.Detail, &created); err != nil {
		return s, err
	}
	s.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(outputs), &s.Outputs); err != nil {
		return s, docex.Errorf(docex.ErrCorrupt, "job step %s: outputs: %v", s.Key, err)
	}
	return s, nil
}

func (r reader) JobSteps(ctx context.Context, jobID string) ([]driver.StepRecord, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+stepCols+` FROM job_steps WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.StepRecord{}
	for rows.Next() {
		s, err := scanStep(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (r reader) JobStep(ctx context.Context, key string) (driver.StepRecord, error) {
	s, err := scanStep(r.q.QueryRowContext(ctx, `SELECT `+stepCols+` FROM job_steps WHERE key = ?`, key))
	return s, notFound(err, "job step %q not found", key)
}

const lineageCols = `source_id, derived_id, job_id, step, pipeline, version, plugin, module_sha256, params, created_at`

// lineageCreated is true for an edge l that created its derived document
// d (joined on d.id = l.derived_id): the same created_at, or d's
// derived_from metadata naming l's source when l is the first edge from
// that source into d (no other with an earlier created_at, or the same
// and a smaller job_id, step: the primary key's order)
// (driver.LineageEdge.Dedup). The second test is one probe of the
// primary key (source_id, derived_id, ...), made only for an edge the
// first does not settle and whose derived_from matches.
const lineageCreated = `(d.created_at = l.created_at OR (EXISTS (SELECT 1 FROM metadata m
	WHERE m.document_id = l.derived_id AND m.key = 'derived_from' AND m.vtype = 1 AND m.value = l.source_id)
	AND NOT EXISTS (SELECT 1 FROM lineage e WHERE e.source_id = l.source_id AND e.derived_id = l.derived_id
	AND (e.created_at, e.job_id, e.step) < (l.created_at, l.job_id, l.step))))`

// lineageSelect reads edges with driver.LineageEdge.Dedup, the derived
// document joined by its primary key; a WHERE on l follows.
const lineageSelect = `SELECT l.source_id, l.derived_id, l.job_id, l.step, l.pipeline, l.version, l.plugin, l.module_sha256, l.params, l.created_at,
	d.id IS NOT NULL AND NOT ` + lineageCreated + `
	FROM lineage l LEFT JOIN documents d ON d.id = l.derived_id`

func scanEdge(rows *sql.Rows) (driver.LineageEdge, error) {
	var e driver.LineageEdge
	var created int64
	err := rows.Scan(&e.SourceID, &e.DerivedID, &e.JobID, &e.Step, &e.Pipeline, &e.Version, &e.Plugin, &e.ModuleSHA256, &e.Params, &created, &e.Dedup)
	e.CreatedAt = fromMicros(created)
	return e, err
}

func (r reader) lineage(ctx context.Context, col, id string) ([]driver.LineageEdge, error) {
	rows, err := r.q.QueryContext(ctx, lineageSelect+` WHERE l.`+col+` = ? ORDER BY l.created_at, l.source_id, l.derived_id`, id) // col is a constant
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.LineageEdge{}
	for rows.Next() {
		e, err := scanEdge(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LineageAmong implements driver.LineageBatchReader: one statement per
// chunk of ids, in one snapshot.
func (r reader) LineageAmong(ctx context.Context, ids []string, into bool) ([]driver.LineageEdge, error) {
	col := "source_id"
	if into {
		col = "derived_id"
	}
	out := []driver.LineageEdge{}
	err := r.snap(ctx, func(r reader) error {
		out = out[:0]
		return rowsAmong(ctx, r.q, lineageSelect+` WHERE l.`+col+` IN (`, ids, func(rows *sql.Rows) error { // col is a constant
			e, err := scanEdge(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Ordered as Lineage orders one document's (the chunks are not).
	slices.SortStableFunc(out, func(a, b driver.LineageEdge) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.SourceID, b.SourceID), strings.Compare(a.DerivedID, b.DerivedID))
	})
	return out, nil
}

var _ driver.LineageBatchReader = reader{}

// derivedSelect reads the pairs (source, derived document) of
// DerivedAfter, an edge's Dedup as lineageSelect's; a WHERE on l follows,
// then derivedOrder.
const derivedSelect = `SELECT l.source_id, l.derived_id, MIN(d.id IS NOT NULL AND NOT ` + lineageCreated + `), MIN(d.id IS NULL)
	FROM lineage l LEFT JOIN documents d ON d.id = l.derived_id
	WHERE `

const derivedOrder = ` GROUP BY l.source_id, l.derived_id ORDER BY l.source_id, l.derived_id LIMIT ?`

// derivedListSizes are the lengths of DerivedAfter's successive chunks of
// sources, and those it pads its IN lists to (the last id repeated), so
// that its statements are few and stay prepared.
var derivedListSizes = [...]int{8, 64, maxInParams}

// DerivedAfter implements driver.LineagePager, in one snapshot: a range
// of the primary key (source_id, derived_id, ...) for the rest of
// afterSource's pairs, then the sources after it in chunks of 8, 64,
// then maxInParams (derivedListSizes), a statement each, which SQLite reads in the primary key's
// order (each IN value's range in turn, no sort) and stops at the limit.
// Before, each source was a statement of its own, run until the page was
// full: a page that met sources without derived documents (the leaves of
// a cascade's level) cost a statement, parsed again, per such source.
func (r reader) DerivedAfter(ctx context.Context, sources []string, afterSource, afterID string, limit int) ([]driver.DerivedRef, error) {
	srcs := slices.Clone(sources)
	slices.Sort(srcs)
	srcs = slices.Compact(srcs)
	i, _ := slices.BinarySearch(srcs, afterSource)
	srcs = srcs[i:]
	out := []driver.DerivedRef{}
	if limit <= 0 {
		return out, nil
	}
	read := func(r reader, query string, args ...any) error {
		rows, err := r.q.QueryContext(ctx, query, append(args, limit-len(out))...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d driver.DerivedRef
			if err := rows.Scan(&d.SourceID, &d.ID, &d.Dedup, &d.Gone); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	}
	err := r.snap(ctx, func(r reader) error {
		out = out[:0]
		rest := srcs
		if len(rest) > 0 && rest[0] == afterSource {
			if err := read(r, derivedSelect+`l.source_id = ? AND l.derived_id > ?`+derivedOrder, afterSource, afterID); err != nil {
				return err
			}
			rest = rest[1:]
		}
		for step := 0; len(rest) > 0 && len(out) < limit; step++ {
			// The chunks grow (8, 64, then maxInParams sources): a page
			// that the first sources fill costs a short statement.
			size := derivedListSizes[min(step, len(derivedListSizes)-1)]
			chunk := rest[:min(len(rest), size)]
			rest = rest[len(chunk):]
			for _, n := range derivedListSizes {
				if size = n; n >= len(chunk) {
					break
				}
			}
			args := make([]any, size)
			for k := range args {
				args[k] = chunk[min(k, len(chunk)-1)]
			}
			list := strings.Repeat(",?", size)[1:]
			if err := read(r, derivedSelect+`l.source_id IN (`+list+`)`+derivedOrder, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var _ driver.LineagePager = reader{}

func (r reader) Lineage(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	err = r.snap(ctx, func(r reader) error { sources, derived, err = r.lineageBoth(ctx, docID); return err })
	return sources, derived, err
}

func (r reader) lineageBoth(ctx context.Context, docID string) (sources, derived []driver.LineageEdge, err error) {
	if sources, err = r.lineage(ctx, "derived_id", docID); err != nil {
		return nil, nil, err
	}
	derived, err = r.lineage(ctx, "source_id", docID)
	return sources, derived, err
}

func (r reader) CacheEntry(ctx context.Context, key string) (driver.CacheEntry, error) {
	c := driver.CacheEntry{Key: key}
	var created int64
	err := r.q.QueryRowContext(ctx, `SELECT result, created_at FROM step_cache WHERE key = ?`, key).Scan(&c.Result, &created)
	c.CreatedAt = fromMicros(created)
	return c, notFound(err, "no cache entry %q", key)
}

// InsertStepRows implements driver.StepRowsTx with multi-row INSERTs.
func (t *tx) InsertStepRows(ctx context.Context, steps []driver.StepRecord, edges []driver.LineageEdge, cache []driver.CacheEntry, audit []docex.AuditEntry) error {
	outputs := make([]string, len(steps))
	for i, s := range steps {
		b, err := json.Marshal(nonNil(s.Outputs))
		if err != nil {
			return err
		}
		outputs[i] = string(b)
	}
	err := t.insertRows(ctx, "job_steps("+stepCols+")", "", 8, len(steps), func(i int, dst []any) []any {
		s := steps[i]
		detail := s.Detail
		if detail == nil {
			detail = []byte("{}")
		}
		return append(dst, s.Key, s.JobID, s.Step, s.InputID, s.Outcome, outputs[i], detail, micros(s.CreatedAt))
	})
	if isUnique(err) {
		return docex.Errorf(docex.ErrExists, "a job step of the batch is recorded")
	}
	if err != nil {
		return err
	}
	err = t.insertRows(ctx, "lineage("+lineageCols+")", " ON CONFLICT DO NOTHING", 10, len(edges), func(i int, dst []any) []any {
		e := edges[i]
		return append(dst, e.SourceID, e.DerivedID, e.JobID, e.Step, e.Pipeline, e.Version, e.Plugin, e.ModuleSHA256, e.Params, micros(e.CreatedAt))
	})
	if err != nil {
		return err
	}
	err = t.insertRows(ctx, "step_cache(key, result, created_at)", " ON CONFLICT (key) DO UPDATE SET result = excluded.result, created_at = excluded.created_at", 3, len(cache), func(i int, dst []any) []any {
		c := cache[i]
		return append(dst, c.Key, c.Result, micros(c.CreatedAt))
	})
	if err != nil {
		return err
	}
	return insertAudits(ctx, t, t.audit, audit)
}

// inChunks calls fn with the args of ids in chunks of at most
// maxInParams, and the matching "?,?,..." list.
func inChunks(ids []string, fn func(list string, args []any) error) error {
	for start := 0; start < len(ids); start += maxInParams {
		end := min(len(ids), start+maxInParams)
		args := make([]any, 0, end-start)
		for _, id := range ids[start:end] {
			args = append(args, id)
		}
		if err := fn(strings.TrimSuffix(strings.Repeat("?,", end-start), ","), args); err != nil {
			return err
		}
	}
	return nil
}

// maxInParams bounds the parameters of one IN list.
const maxInParams = 500

func (r reader) JobsByID(ctx context.Context, ids []string) ([]driver.JobRecord, error) {
	out := []driver.JobRecord{}
	err := inChunks(ids, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id IN (`+list+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	return out, err
}

func (r reader) JobStates(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	err := inChunks(ids, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT id, state FROM jobs WHERE id IN (`+list+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, state string
			if err := rows.Scan(&id, &state); err != nil {
				return err
			}
			out[id] = state
		}
		return rows.Err()
	})
	return out, err
}

func (r reader) StepsOfJobs(ctx context.Context, jobIDs []string) (map[string][]driver.StepRecord, error) {
	out := map[string][]driver.StepRecord{}
	err := inChunks(jobIDs, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT `+stepCols+` FROM job_steps WHERE job_id IN (`+list+`) ORDER BY seq`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanStep(rows)
			if err != nil {
				return err
			}
			out[s.JobID] = append(out[s.JobID], s)
		}
		return rows.Err()
	})
	return out, err
}

func (r reader) CacheEntries(ctx context.Context, keys []string) (map[string]driver.CacheEntry, error) {
	out := map[string]driver.CacheEntry{}
	err := inChunks(keys, func(list string, args []any) error {
		rows, err := r.q.QueryContext(ctx, `SELECT key, result, created_at FROM step_cache WHERE key IN (`+list+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c       driver.CacheEntry
				created int64
			)
			if err := rows.Scan(&c.Key, &c.Result, &created); err != nil {
				return err
			}
			c.CreatedAt = fromMicros(created)
			out[c.Key] = c
		}
		return rows.Err()
	})
	return out, err
}

func (t *tx) InsertPipeline(ctx context.Context, p driver.PipelineRecord) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO pipelines(`+pipelineCols+`) VALUES (?,?,?,?,?,0)`,
		p.Name, p.Version, p.Definition, micros(p.CreatedAt), p.CreatedBy)
	if isUnique(err) {
		return docex.Errorf(docex.ErrExists, "pipeline %q version %d exists", p.Name, p.Version)
	}
	return err
}

func (t *tx) DeletePipeline(ctx context.Context, name string) error {
	return affected(t.t.ExecContext(ctx, `UPDATE pipelines SET deleted = 1 WHERE name = ? AND deleted = 0`, name))("pipeline %q not found", name)
}

func (t *tx) BindBasket(ctx context.Context, basketID, pipeline string) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO basket_pipelines(basket_id, pipeline) VALUES (?, ?)
		ON CONFLICT (basket_id) DO UPDATE SET pipeline = excluded.pipeline`, basketID, pipeline)
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return docex.Errorf(docex.ErrNotFound, "basket %q not found", basketID)
	}
	return err
}

func (t *tx) UnbindBasket(ctx context.Context, basketID string) error {
	return affected(t.t.ExecContext(ctx, `DELETE FROM basket_pipelines WHERE basket_id = ?`, basketID))("basket %q has no pipeline", basketID)
}

func userJSON(uc docex.UserContext) (string, error) {
	b, err := json.Marshal(uc)
	return string(b), err
}

func (t *tx) InsertJob(ctx context.Context, j driver.JobRecord) error {
	uc, err := userJSON(j.User)
	if err != nil {
		return err
	}
	if j.Detail == nil {
		j.Detail = []byte("{}")
	}
	_, err = t.t.ExecContext(ctx, `INSERT INTO jobs(`+jobCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		j.ID, j.Pipeline, j.Version, j.DocumentID, j.State, j.Attempts, j.MaxAttempts, micros(j.RunAt), uc,
		j.ErrorCode, j.Error, j.Detail, micros(j.CreatedAt), micros(j.UpdatedAt))
	if isUnique(err) {
		return docex.Errorf(docex.ErrExists, "job %q exists", j.ID)
	}
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	t.enqueued = true
	return nil
}

// InsertJobs implements driver.JobsTx: InsertJob's rows in multi-row
// INSERTs.
func (t *tx) InsertJobs(ctx context.Context, jobs []driver.JobRecord) error {
	if len(jobs) == 0 {
		return nil
	}
	ucs := make([]string, len(jobs))
	for i, j := range jobs {
		uc, err := userJSON(j.User)
		if err != nil {
			return err
		}
		ucs[i] = uc
	}
	err := t.insertRows(ctx, "jobs("+jobCols+")", "", 14, len(jobs), func(i int, dst []any) []any {
		j := jobs[i]
		detail := j.Detail
		if detail == nil {
			detail = []byte("{}")
		}
		return append(dst, j.ID, j.Pipeline, j.Version, j.DocumentID, j.State, j.Attempts, j.MaxAttempts, micros(j.RunAt), ucs[i],
			j.ErrorCode, j.Error, detail, micros(j.CreatedAt), micros(j.UpdatedAt))
	})
	if isUnique(err) {
		return docex.Errorf(docex.ErrExists, "a job of the batch exists")
	}
	if err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	t.enqueued = true
	return nil
}

func (t *tx) UpdateJob(ctx context.Context, j driver.JobRecord) error {
	if j.Detail == nil {
		j.Detail = []byte("{}")
	}
	// A final job's lease ends with it: its worker need not release it.
	return affected(t.t.ExecContext(ctx, `UPDATE jobs SET state = ?, attempts = ?, run_at = ?, error_code = ?, error = ?, detail = ?, updated_at = ?,
		lease_owner = CASE WHEN ?1 IN ('succeeded', 'failed', 'cancelled') THEN '' ELSE lease_owner END,
		lease_until = CASE WHEN ?1 IN ('succeeded', 'failed', 'cancelled') THEN 0 ELSE lease_until END WHERE id = ?`,
		j.State, j.Attempts, micros(j.RunAt), j.ErrorCode, j.Error, j.Detail, micros(j.UpdatedAt), j.ID))("job %q not found", j.ID)
}

// StaleDeliveries implements driver.DeliveryTx: a delivery is its job's
// lease, taken by the worker Delivery.ID (claim); one whose job's lease
// is now another worker's, or none (the job was cancelled, or retried
// after, since the claim: its lease ended), is stale. A lease is taken
// only once expired, so a live worker's job is never another's.
func (t *tx) StaleDeliveries(ctx context.Context, ds []driver.Delivery) (map[string]string, error) {
	stale := map[string]string{}
	for _, d := range ds {
		if d.ID == "" {
			continue
		}
		var owner string
		err := t.t.QueryRowContext(ctx, `SELECT lease_owner FROM jobs WHERE id = ?`, d.JobID).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		case owner == "":
			stale[d.JobID] = driver.StaleLeaseEnded
		case owner != d.ID:
			stale[d.JobID] = driver.StaleLeaseTaken
		}
	}
	return stale, nil
}

func (t *tx) RequeueJob(ctx context.Context, j driver.JobRecord) error {
	if err := t.UpdateJob(ctx, j); err != nil {
		return err
	}
	if _, err := t.t.ExecContext(ctx, `UPDATE jobs SET max_attempts = ?, lease_owner = '', lease_until = 0 WHERE id = ?`, j.MaxAttempts, j.ID); err != nil {
		return err
	}
	t.enqueued = true
	return nil
}

func (t *tx) InsertJobStep(ctx context.Context, s driver.StepRecord) error {
	outputs, err := json.Marshal(nonNil(s.Outputs))
	if err != nil {
		return err
	}
	if s.Detail == nil {
		s.Detail = []byte("{}")
	}
	_, err = t.t.ExecContext(ctx, `INSERT INTO job_steps(`+stepCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		s.Key, s.JobID, s.Step, s.InputID, s.Outcome, string(outputs), s.Detail, micros(s.CreatedAt))
	if isUnique(err) {
		return docex.Errorf(docex.ErrExists, "job step %q is recorded", s.Key)
	}
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *tx) InsertLineage(ctx context.Context, e driver.LineageEdge) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO lineage(`+lineageCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT DO NOTHING`, e.SourceID, e.DerivedID, e.JobID, e.Step, e.Pipeline, e.Version, e.Plugin, e.ModuleSHA256, e.Params, micros(e.CreatedAt))
	return err
}

func (t *tx) PutCacheEntry(ctx context.Context, c driver.CacheEntry) error {
	_, err := t.t.ExecContext(ctx, `INSERT INTO step_cache(key, result, created_at) VALUES (?,?,?)
		ON CONFLICT (key) DO UPDATE SET result = excluded.result, created_at = excluded.created_at`, c.Key, c.Result, micros(c.CreatedAt))
	return err
}

// prunable is the WHERE clause of the jobs PruneJobs deletes and
// PrunableJobs counts, and its arguments; stateCol is "state", or
// "+state" to keep SQLite from reading the jobs by the state index
// (PruneJobs reads them in id order from where its last chunk ended: by
// the state index each chunk would read and sort every finished job).
func prunable(stateCol string, states []string, before time.Time) (string, []any) {
	args := make([]any, 0, len(states)+1)
	for _, s := range states {
		args = append(args, s)
	}
	args = append(args, micros(before))
	return stateCol + ` IN (` + strings.TrimSuffix(strings.Repeat("?,", len(states)), ",") + `) AND updated_at < ?`, args
}

func (r reader) PrunableJobs(ctx context.Context, states []string, before time.Time) (jobs, steps int, err error) {
	if len(states) == 0 {
		return 0, 0, nil
	}
	where, args := prunable("state", states, before)
	err = r.q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM jobs WHERE `+where+`),
		(SELECT count(*) FROM job_steps WHERE job_id IN (SELECT id FROM jobs WHERE `+where+`))`, append(args, args...)...).Scan(&jobs, &steps)
	if err != nil {
		return 0, 0, fmt.Errorf("count prunable jobs: %w", err)
	}
	return jobs, steps, nil
}

// PruneJobs deletes up to p.Limit jobs of p.States last updated before
// p.Before, with ids after p.After, lowest id first, with their completion
// keys. The tenant's writes are serialized: the jobs it reads are the
// ones it deletes.
func (t *tx) PruneJobs(ctx context.Context, p driver.JobPrune) (driver.JobsPruned, error) {
	var out driver.JobsPruned
	if len(p.States) == 0 || p.Limit <= 0 {
		return out, nil
	}
	where, args := prunable("+state", p.States, p.Before)
	rows, err := t.t.QueryContext(ctx, `SELECT id FROM jobs WHERE id > ? AND `+where+` ORDER BY id LIMIT ?`, append(append([]any{p.After}, args...), p.Limit)...)
	if err != nil {
		return out, fmt.Errorf("select jobs to prune: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return out, fmt.Errorf("select jobs to prune: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("select jobs to prune: %w", err)
	}
	err = inChunks(ids, func(list string, args []any) error {
		res, err := t.t.ExecContext(ctx, `DELETE FROM job_steps WHERE job_id IN (`+list+`)`, args...)
		if err != nil {
			return fmt.Errorf("delete completion keys: %w", err)
		}
		n, _ := res.RowsAffected()
		out.Steps += int(n)
		if res, err = t.t.ExecContext(ctx, `DELETE FROM jobs WHERE id IN (`+list+`)`, args...); err != nil {
			return fmt.Errorf("delete jobs: %w", err)
		}
		n, _ = res.RowsAffected()
		out.Jobs += int(n)
		return nil
	})
	if err != nil {
		return driver.JobsPruned{}, err
	}
	if len(ids) > 0 {
		out.Last = ids[len(ids)-1]
	}
	return out, nil
}
