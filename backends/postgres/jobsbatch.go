package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// sqlUpdateJobs is sqlUpdateJob for many rows, as parallel arrays (see
// multirow.go); it returns the ids of the jobs it updated.
const sqlUpdateJobs = `UPDATE jobs AS j SET state = u.state, attempts = u.attempts, run_at = u.run_at,
		error_code = u.error_code, error = u.error, detail = u.detail, updated_at = u.updated_at
	FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::text[], $7::bytea[], $8::timestamptz[])
		AS u(id, state, attempts, run_at, error_code, error, detail, updated_at)
	WHERE j.id = u.id
	RETURNING j.id`

// UpdateJobs implements driver.JobsTx: the jobs' updates in one statement
// (sqlUpdateJobs; of a job given twice, the last), then, as UpdateJob, the
// River jobs of those written cancelled or failed ended (endDeliveries: two
// statements each; the engine writes a batch's starts and successes here).
// It returns docex.ErrNotFound naming the first job that does not exist,
// or the error of a statement.
func (t *tx) UpdateJobs(ctx context.Context, jobs []driver.JobRecord) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	// One row per job, the last of each: an UPDATE ... FROM that joins a
	// row twice applies one of them, unpredictably.
	last := make(map[string]int, len(jobs))
	for i, j := range jobs {
		last[j.ID] = i
	}
	n := len(last)
	var (
		ids, states, codes, errs = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		attempts                 = make([]int32, 0, n)
		runAt, updated           = make([]time.Time, 0, n), make([]time.Time, 0, n)
		details                  = make([][]byte, 0, n)
	)
	for i, j := range jobs {
		if last[j.ID] != i {
			continue
		}
		if j.Detail == nil {
			j.Detail = []byte("{}")
		}
		ids, states, codes, errs = append(ids, j.ID), append(states, j.State), append(codes, j.ErrorCode), append(errs, j.Error)
		attempts, details = append(attempts, int32(j.Attempts)), append(details, j.Detail)
		runAt, updated = append(runAt, utcMicro(j.RunAt)), append(updated, utcMicro(j.UpdatedAt))
	}
	rows, err := t.p.Query(ctx, sqlUpdateJobs, ids, states, attempts, runAt, codes, errs, details, updated)
	if err != nil {
		return t.b.wrap(err, "update jobs")
	}
	found, err := idSet(rows, n)
	if err != nil {
		return t.b.wrap(err, "update jobs")
	}
	for _, j := range jobs {
		if !found[j.ID] {
			return docex.Errorf(docex.ErrNotFound, "job %q not found", j.ID)
		}
	}
	for i, j := range jobs {
		if last[j.ID] == i && retriable(j.State) {
			if err := t.endDeliveries(ctx, j.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// idSet reads rows of one text column (ids) into a set, about n of them,
// and closes rows.
func idSet(rows pgx.Rows, n int) (map[string]bool, error) {
	defer rows.Close()
	found := make(map[string]bool, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		found[id] = true
	}
	return found, rows.Err()
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
