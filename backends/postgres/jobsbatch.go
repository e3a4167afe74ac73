package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// UpdateJobs implements driver.JobsTx: the updates of UpdateJob sent in
// one round trip.
func (t *tx) UpdateJobs(ctx context.Context, jobs []driver.JobRecord) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	var batch pgx.Batch
	for _, j := range jobs {
		if j.Detail == nil {
			j.Detail = []byte("{}")
		}
		batch.Queue(sqlUpdateJob, j.ID, j.State, j.Attempts, utcMicro(j.RunAt), j.ErrorCode, j.Error, j.Detail, utcMicro(j.UpdatedAt))
	}
	res, err := t.p.send(ctx, &batch) // after the held statements (see pipe)
	if err != nil {
		return err
	}
	defer res.Close()
	for _, j := range jobs {
		tag, err := res.Exec()
		if err != nil {
			return t.b.wrap(err, "update job %q", j.ID)
		}
		if tag.RowsAffected() == 0 {
			return docex.Errorf(docex.ErrNotFound, "job %q not found", j.ID)
		}
	}
	return t.b.wrap(res.Close(), "update jobs")
}

var _ driver.JobsTx = (*tx)(nil)

// sqlInsertJobs is sqlInsertJob for many rows, as parallel arrays (see
// multirow.go).
const sqlInsertJobs = `INSERT INTO jobs (` + jobCols + `)
	SELECT id, pipeline, version, document_id, state, attempts, max_attempts, run_at, user_ctx::jsonb, error_code, error, detail, created_at, updated_at
	FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::int[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bytea[], $13::timestamptz[], $14::timestamptz[])
		AS f(id, pipeline, version, document_id, state, attempts, max_attempts, run_at, user_ctx, error_code, error, detail, created_at, updated_at)`

// InsertJobs implements driver.JobsTx: the jobs' rows in one statement
// and their River jobs in one COPY (River's InsertManyFastTx), in the
// transaction.
func (t *tx) InsertJobs(ctx context.Context, jobs []driver.JobRecord) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	var (
		ids, pipelines, docs, states, ucs, codes, errs = make([]string, len(jobs)), make([]string, len(jobs)), make([]string, len(jobs)),
			make([]string, len(jobs)), make([]string, len(jobs)), make([]string, len(jobs)), make([]string, len(jobs))
		versions, attempts, maxAttempts = make([]int32, len(jobs)), make([]int32, len(jobs)), make([]int32, len(jobs))
		runAt, created, updated         = make([]time.Time, len(jobs)), make([]time.Time, len(jobs)), make([]time.Time, len(jobs))
		details                         = make([][]byte, len(jobs))
	)
	for i, j := range jobs {
		uc, err := json.Marshal(j.User)
		if err != nil {
			return err
		}
		ids[i], pipelines[i], docs[i], states[i], ucs[i], codes[i], errs[i] = j.ID, j.Pipeline, j.DocumentID, j.State, string(uc), j.ErrorCode, j.Error
		versions[i], attempts[i], maxAttempts[i] = int32(j.Version), int32(j.Attempts), int32(j.MaxAttempts)
		runAt[i], created[i], updated[i] = utcMicro(j.RunAt), utcMicro(j.CreatedAt), utcMicro(j.UpdatedAt)
		details[i] = j.Detail
		if details[i] == nil {
			details[i] = []byte("{}")
		}
	}
	if _, err := t.exec(ctx, "insert jobs", sqlInsertJobs, ids, pipelines, versions, docs, states, attempts, maxAttempts, runAt, ucs, codes, errs, details, created, updated); err != nil {
		return err
	}
	if err := t.p.flush(ctx); err != nil { // River's statements do not go through the pipe
		return err
	}
	return t.b.queue.enqueueManyTx(ctx, t.q, t.tenant, jobs)
}
