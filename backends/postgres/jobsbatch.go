package postgres

import (
	"context"

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
