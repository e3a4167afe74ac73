package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// Job retention: PruneJobs deletes finished jobs (docs/jobs.md,
// "Retention").

// DefaultPruneChunk is the number of jobs PruneJobs deletes per
// transaction unless PruneJobsOptions.Chunk says otherwise; MaxPruneChunk
// is the most it takes.
const (
	DefaultPruneChunk = 1000
	MaxPruneChunk     = 10000
)

// finalJobStates returns the states of the jobs PruneJobs may delete, in
// the order PruneResult.States lists them.
func finalJobStates() []string {
	return []string{driver.JobSucceeded, driver.JobFailed, driver.JobCancelled}
}

// PruneJobsOptions selects the jobs PruneJobs deletes.
type PruneJobsOptions struct {
	// Before: jobs last updated (for a final job: when it ended) before
	// this time are deleted. Required, and not after now. It is cut to
	// the microsecond, the precision of the times docex keeps.
	Before time.Time
	// States: the final states to prune (succeeded, failed, cancelled);
	// empty: all three. A queued or running job is never pruned.
	States []string
	// DryRun counts what would be deleted, deleting nothing.
	DryRun bool
	// Chunk is the number of jobs deleted per transaction (0:
	// DefaultPruneChunk; at most MaxPruneChunk).
	Chunk int
}

// PruneResult says what PruneJobs deleted (or, for a dry run, would
// delete).
type PruneResult struct {
	Jobs         int       `json:"jobs"`         // jobs deleted
	Steps        int       `json:"steps"`        // their completion keys (job steps) deleted
	Before       time.Time `json:"before"`       // the cutoff
	States       []string  `json:"states"`       // the states pruned
	DryRun       bool      `json:"dry_run"`      // nothing was deleted: the counts are what would be
	Transactions int       `json:"transactions"` // write transactions it took (0 for a dry run)
}

// pruneStates returns the states to prune, deduplicated, in the order of
// finalJobStates; docex.ErrInvalid for an unknown or non-final state.
func pruneStates(states []string) ([]string, error) {
	final := finalJobStates()
	if len(states) == 0 {
		return final, nil
	}
	var out []string
	for _, want := range final {
		if slices.Contains(states, want) {
			out = append(out, want)
		}
	}
	for _, s := range states {
		switch {
		case s == driver.JobQueued || s == driver.JobRunning:
			return nil, docex.Errorf(docex.ErrInvalid, "state %q: only finished jobs are pruned (succeeded, failed, cancelled); a queued or running job never is", s)
		case !slices.Contains(final, s):
			return nil, docex.Errorf(docex.ErrInvalid, "unknown state %q (want succeeded, failed or cancelled)", s)
		}
	}
	return out, nil
}

// PruneJobs deletes the tenant's finished jobs (succeeded, failed or
// cancelled, or those of o.States) last updated before o.Before, with
// their completion keys (pipeline.manage action: it destroys history).
// Lineage edges, derived documents, step cache entries and audit entries
// stay. It deletes o.Chunk jobs per transaction, so a large prune holds
// no long transaction; interrupted, what it deleted stays deleted and a
// second run deletes the rest. One audit entry, job.prune, records what
// it sets out to delete (the counts of the jobs and steps it would delete
// when it starts) and the cutoff, in the transaction of its first chunk,
// so that a prune killed part-way leaves it (a dry run is audited only as a read, when the
// session audits reads). It returns docex.ErrInvalid for a zero or future
// cutoff, an unknown or non-final state or a chunk out of range; on an
// error after some chunks committed, the result counts what was deleted
// and the error says so.
func (s *Session) PruneJobs(ctx context.Context, o PruneJobsOptions) (PruneResult, error) {
	const op = "job.prune"
	st, err := s.open(ctx, tenancy.ActionManagePipelines, op, "")
	if err != nil {
		return PruneResult{}, err
	}
	defer st.Close()
	res := PruneResult{Before: o.Before.UTC().Truncate(time.Microsecond), DryRun: o.DryRun}
	if res.States, err = pruneStates(o.States); err != nil {
		return PruneResult{}, s.failed(ctx, st, op, "", err)
	}
	switch now := s.e.now(); {
	case o.Before.IsZero():
		err = docex.Errorf(docex.ErrInvalid, "prune: no cutoff: give the time before which finished jobs are deleted")
	case o.Before.After(now):
		err = docex.Errorf(docex.ErrInvalid, "prune: cutoff %s is in the future (now %s): only jobs that ended before it are pruned, so give a time in the past",
			o.Before.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case o.Chunk < 0 || o.Chunk > MaxPruneChunk:
		err = docex.Errorf(docex.ErrInvalid, "prune: chunk %d: want 1 to %d jobs per transaction (0: %d)", o.Chunk, MaxPruneChunk, DefaultPruneChunk)
	}
	if err != nil {
		return PruneResult{}, s.failed(ctx, st, op, "", err)
	}
	if o.DryRun {
		res.Jobs, res.Steps, err = st.PrunableJobs(ctx, res.States, res.Before)
		if err != nil {
			return PruneResult{}, s.readDone(ctx, st, op, "", err)
		}
		return res, s.readDone(ctx, st, op, "", nil)
	}
	chunk := o.Chunk
	if chunk == 0 {
		chunk = DefaultPruneChunk
	}
	detail := func(jobs, steps int) map[string]any {
		return map[string]any{"jobs": jobs, "steps": steps, "before": res.Before.Format(time.RFC3339Nano), "states": res.States}
	}
	// Each chunk starts after the last id of the one before: jobs it
	// skipped (locked by a retry in flight) or left (not final) are not
	// read again, nor are the index entries of those it deleted.
	after := ""
	for first := true; ; first = false {
		if err = ctx.Err(); err != nil {
			break
		}
		var got driver.JobsPruned
		err = st.Write(ctx, func(tx driver.Tx) error {
			if first {
				// The entry goes with the first chunk, counting what the
				// prune sets out to delete: a prune killed before its
				// last chunk leaves it, so no job is deleted unrecorded.
				jobs, steps, err := tx.PrunableJobs(ctx, res.States, res.Before)
				if err != nil {
					return err
				}
				if err := tx.AppendAudit(ctx, s.entryDetail(op, "", detail(jobs, steps))); err != nil {
					return err
				}
			}
			var err error
			got, err = tx.PruneJobs(ctx, driver.JobPrune{States: res.States, Before: res.Before, After: after, Limit: chunk})
			return err
		})
		if err != nil {
			break
		}
		res.Jobs, res.Steps, res.Transactions = res.Jobs+got.Jobs, res.Steps+got.Steps, res.Transactions+1
		after = got.Last
		if got.Jobs < chunk {
			return res, nil
		}
	}
	if res.Jobs == 0 {
		return res, s.failed(ctx, st, op, "", err)
	}
	// Some chunks committed: the history they deleted is audited even
	// when the prune was interrupted.
	err = fmt.Errorf("prune stopped after deleting %d jobs (run it again to delete the rest): %w", res.Jobs, err)
	return res, withAuditErr(err, s.auditOutcome(ctx, st, op, "", err, detail(res.Jobs, res.Steps)))
}
