package postgres

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
)

// Multi-row statements: the rows of driver.BatchTx and driver.StepRowsTx
// as parallel arrays, one statement per table whatever the number of rows
// (before: one statement per row, each with its own bind and executor
// start on the server). They read no table (the rows come from unnest),
// so their plans do not depend on the tables' sizes and they are
// prepared. WITH ORDINALITY ... ORDER BY keeps the rows' order (the
// identity columns of audit and job_steps number them in that order). A
// row's text[] column (roles, outputs) goes as a JSON array, since
// PostgreSQL's arrays of arrays are rectangular.
const (
	sqlInsertDocuments = `WITH d AS (
		INSERT INTO documents (id, basket_id, name, content_type, size, checksum, status, created_at, updated_at)
		SELECT id, basket_id, name, content_type, size, checksum, status, created_at, updated_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])
			WITH ORDINALITY AS f(id, basket_id, name, content_type, size, checksum, status, created_at, updated_at, i)
		ORDER BY i
	)
	INSERT INTO metadata (document_id, basket_id, key, vtype, value)
	SELECT * FROM unnest($10::text[], $11::text[], $12::text[], $13::int2[], $14::text[])`

	sqlAppendAudits = `INSERT INTO audit (` + auditInsertCols + `)
	SELECT id, time, tenant_id, user_id, ARRAY(SELECT jsonb_array_elements_text(roles::jsonb)), operation, target, outcome, error, detail
	FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
		WITH ORDINALITY AS f(id, time, tenant_id, user_id, roles, operation, target, outcome, error, detail, i)
	ORDER BY i`

	sqlInsertSteps = `INSERT INTO job_steps (` + stepCols + `)
	SELECT key, job_id, step, input_id, outcome, ARRAY(SELECT jsonb_array_elements_text(outputs::jsonb)), detail, created_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::timestamptz[])
		WITH ORDINALITY AS f(key, job_id, step, input_id, outcome, outputs, detail, created_at, i)
	ORDER BY i`

	sqlInsertEdges = `INSERT INTO lineage (` + lineageCols + `)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])
	ON CONFLICT DO NOTHING`

	sqlReplaceContents = `INSERT INTO content (checksum, data)
	SELECT * FROM unnest($1::text[], $2::bytea[])
	ON CONFLICT (checksum) DO UPDATE SET data = excluded.data`

	sqlPutCaches = `INSERT INTO step_cache (key, result, created_at)
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::timestamptz[])
	ON CONFLICT (key) DO UPDATE SET result = excluded.result, created_at = excluded.created_at`
)

// documentsArgs are sqlInsertDocuments' arguments for docs, or
// docex.ErrInvalid for an invalid metadata value.
func documentsArgs(docs []docex.Document) ([]any, error) {
	n := len(docs)
	var (
		ids, baskets, names, cts, sums, statuses = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sizes                                    = make([]int64, n)
		created, updated                         = make([]time.Time, n), make([]time.Time, n)
		mDocs, mBaskets, mKeys, mValues          []string
		mTypes                                   []int16
	)
	for i, d := range docs {
		keys, types, values, err := metaArrays(d.Metadata)
		if err != nil {
			return nil, err
		}
		ids[i], baskets[i], names[i], cts[i], sums[i], statuses[i] = d.ID, d.BasketID, d.Name, d.ContentType, d.Checksum, statusOf(d)
		sizes[i], created[i], updated[i] = d.Size, utcMicro(d.CreatedAt), utcMicro(d.UpdatedAt)
		for range keys {
			mDocs, mBaskets = append(mDocs, d.ID), append(mBaskets, d.BasketID)
		}
		mKeys, mTypes, mValues = append(mKeys, keys...), append(mTypes, types...), append(mValues, values...)
	}
	return []any{ids, baskets, names, cts, sizes, sums, statuses, created, updated,
		nonNil(mDocs), nonNil(mBaskets), nonNil(mKeys), nonNilInt16(mTypes), nonNil(mValues)}, nil
}

// auditsArgs are sqlAppendAudits' arguments for entries.
func auditsArgs(entries []docex.AuditEntry) ([]any, error) {
	cols := make([][]string, 9) // every column but time
	times := make([]time.Time, len(entries))
	for i, e := range entries {
		args, err := auditArgs(e)
		if err != nil {
			return nil, err
		}
		roles, err := json.Marshal(args[4])
		if err != nil {
			return nil, err
		}
		times[i] = args[1].(time.Time)
		vals := []string{args[0].(string), args[2].(string), args[3].(string), string(roles),
			args[5].(string), args[6].(string), args[7].(string), args[8].(string), args[9].(string)}
		for c, v := range vals {
			cols[c] = append(cols[c], v)
		}
	}
	for c := range cols {
		cols[c] = nonNil(cols[c])
	}
	return []any{cols[0], times, cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]}, nil
}

// stepsArgs are sqlInsertSteps' arguments for steps.
func stepsArgs(steps []driver.StepRecord) ([]any, error) {
	n := len(steps)
	keys, jobs, names, inputs, outcomes, outputs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	details, created := make([][]byte, n), make([]time.Time, n)
	for i, s := range steps {
		out := s.Outputs
		if out == nil {
			out = []string{}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		detail := s.Detail
		if detail == nil {
			detail = []byte("{}")
		}
		keys[i], jobs[i], names[i], inputs[i], outcomes[i], outputs[i] = s.Key, s.JobID, s.Step, s.InputID, s.Outcome, string(b)
		details[i], created[i] = detail, utcMicro(s.CreatedAt)
	}
	return []any{keys, jobs, names, inputs, outcomes, outputs, details, created}, nil
}

// edgesArgs are sqlInsertEdges' arguments for edges.
func edgesArgs(edges []driver.LineageEdge) []any {
	n := len(edges)
	src, dst, jobs, steps, pipes, plugins, shas, params := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, created := make([]int32, n), make([]time.Time, n)
	for i, e := range edges {
		src[i], dst[i], jobs[i], steps[i], pipes[i], plugins[i], shas[i], params[i] = e.SourceID, e.DerivedID, e.JobID, e.Step, e.Pipeline, e.Plugin, e.ModuleSHA256, e.Params
		versions[i], created[i] = int32(e.Version), utcMicro(e.CreatedAt)
	}
	return []any{src, dst, jobs, steps, pipes, versions, plugins, shas, params, created}
}

// cachesArgs are sqlPutCaches' arguments for entries, of distinct keys.
func cachesArgs(entries []driver.CacheEntry) []any {
	n := len(entries)
	keys, results, created := make([]string, n), make([][]byte, n), make([]time.Time, n)
	for i, c := range entries {
		r := c.Result
		if r == nil {
			r = []byte{}
		}
		keys[i], results[i], created[i] = c.Key, r, utcMicro(c.CreatedAt)
	}
	return []any{keys, results, created}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilInt16(s []int16) []int16 {
	if s == nil {
		return []int16{}
	}
	return s
}

// culprit returns the document of docs that a multi-row insert's error
// names in its detail (its basket and checksum, its id, or its basket), or
// docs[0]. The metadata's primary key (document_id, key) may be the one
// to find a taken id first: its rows are not inserted after their
// document's.
func culprit(docs []docex.Document, err error) docex.Document {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return docs[0]
	}
	names := func(v string) bool {
		return strings.Contains(pe.Detail, "("+v+")") || strings.Contains(pe.Detail, "("+v+", ")
	}
	for _, d := range docs {
		switch {
		case pe.ConstraintName == conDocumentsChecksum:
			if names(d.BasketID) && strings.Contains(pe.Detail, d.Checksum) {
				return d
			}
		case names(d.ID):
			return d
		}
	}
	for _, d := range docs {
		if names(d.BasketID) {
			return d
		}
	}
	return docs[0]
}
