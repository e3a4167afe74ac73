package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// Audit retention: Session.PruneAudit and TenantProvisioner.PruneSystemAudit
// delete the oldest entries of an audit log (docs/isolation.md, "Audit
// retention").

// MinAuditRetention is the youngest an audit entry can be and still be
// pruned: a cutoff later than now minus MinAuditRetention is refused, so
// that whoever holds the role that prunes a log cannot erase the trail of
// what they just did with it.
const MinAuditRetention = 24 * time.Hour

// PruneAuditOptions selects the entries PruneAudit and PruneSystemAudit
// delete.
type PruneAuditOptions struct {
	// Before: entries recorded before this time are deleted. Required,
	// and not after now minus MinAuditRetention. It is cut to the
	// microsecond, the precision of the times docex keeps.
	Before time.Time
	// DryRun counts what would be deleted, deleting nothing.
	DryRun bool
	// Chunk is the number of entries deleted per transaction (0:
	// DefaultPruneChunk; at most MaxPruneChunk).
	Chunk int
}

// AuditPruneResult says what PruneAudit or PruneSystemAudit deleted (or,
// for a dry run, would delete).
type AuditPruneResult struct {
	Entries      int       `json:"entries"`      // entries deleted
	Before       time.Time `json:"before"`       // the cutoff
	LastSeq      int64     `json:"last_seq"`     // sequence number of the newest entry deleted (0: none)
	LastID       string    `json:"last_id"`      // its id ("": none)
	System       bool      `json:"system"`       // the system log was pruned, not a tenant's
	DryRun       bool      `json:"dry_run"`      // nothing was deleted: the count is what would be
	Transactions int       `json:"transactions"` // write transactions it took (0 for a dry run)
}

// detail returns the detail of the audit.prune entry with outcome error
// of an interrupted prune: what r deleted.
func (r AuditPruneResult) detail() map[string]any {
	return map[string]any{"entries": r.Entries, "before": r.Before.Format(time.RFC3339Nano), "last_seq": r.LastSeq, "last_id": r.LastID}
}

// planDetail returns the detail of the audit.prune entry of a prune with
// the cutoff before that sets out to delete prefix: written in the
// transaction of its first chunk, it covers every entry a chunk of the
// prune deletes (each deletes only entries of prefix), also when the
// process dies before the last chunk.
func planDetail(before time.Time, prefix driver.AuditPrefix) map[string]any {
	return map[string]any{"entries": prefix.Entries, "before": before.Format(time.RFC3339Nano), "last_seq": prefix.LastSeq, "last_id": prefix.LastID}
}

// checkAuditPrune returns docex.ErrInvalid when o is not a prune PruneAudit
// and PruneSystemAudit make.
func (e *Engine) checkAuditPrune(o PruneAuditOptions) error {
	now := e.now()
	switch {
	case o.Before.IsZero():
		return docex.Errorf(docex.ErrInvalid, "audit prune: no cutoff: give the time before which audit entries are deleted")
	case o.Before.After(now.Add(-MinAuditRetention)):
		return docex.Errorf(docex.ErrInvalid, "audit prune: cutoff %s is less than %s ago (now %s): audit entries younger than that are never pruned, so that the trail of recent actions, a prune's own included, cannot be erased",
			o.Before.UTC().Format(time.RFC3339), MinAuditRetention, now.UTC().Format(time.RFC3339))
	case o.Chunk < 0 || o.Chunk > MaxPruneChunk:
		return docex.Errorf(docex.ErrInvalid, "audit prune: chunk %d: want 1 to %d entries per transaction (0: %d)", o.Chunk, MaxPruneChunk, DefaultPruneChunk)
	}
	return nil
}

// pruneAuditChunks deletes prefix in chunks through step, which deletes
// one chunk in a transaction and, in the same transaction, appends the
// entry that record returns when it returns true: rec, the audit.prune
// entry, in the first chunk's transaction, so that no entry is deleted
// for good without it. It adds what was deleted to res and returns the
// error that stopped it (ctx's or step's), nil when done.
func pruneAuditChunks(ctx context.Context, res *AuditPruneResult, prefix driver.AuditPrefix, chunk int, rec docex.AuditEntry,
	step func(p driver.AuditPrune, record func(driver.AuditPruned) (docex.AuditEntry, bool)) (driver.AuditPruned, error)) error {
	if chunk == 0 {
		chunk = DefaultPruneChunk
	}
	// Each chunk starts after the last entry of the one before: the index
	// entries of those it deleted are not read again.
	var after int64
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		got, err := step(driver.AuditPrune{Before: res.Before, After: after, Upto: prefix.Upto, Limit: chunk}, func(driver.AuditPruned) (docex.AuditEntry, bool) {
			return rec, first
		})
		if err != nil {
			return err
		}
		res.Entries, res.Transactions = res.Entries+got.Entries, res.Transactions+1
		if got.LastSeq > res.LastSeq {
			res.LastSeq, res.LastID = got.LastSeq, got.LastID
		}
		if got.Entries < chunk {
			return nil
		}
		after = got.LastSeq
	}
}

// PruneAudit deletes the oldest entries of the tenant's audit log, those
// recorded before o.Before, oldest first (audit.prune action: admin). It
// deletes a prefix of the log in sequence order: it stops at the first
// entry not before the cutoff, and never deletes the newest entry. It
// deletes o.Chunk entries per transaction; interrupted, what it deleted
// stays deleted and a second run deletes the rest. One entry, audit.prune,
// records what it sets out to delete (the count, the cutoff and the
// sequence number and id of the newest entry older than the cutoff in the
// prefix, when it starts), in the transaction of the first chunk, in the
// tenant's log, so that a prune killed part-way leaves it; a copy goes to
// the system log (which a tenant's admin cannot prune) before the first
// chunk when there are entries to delete (not written, nothing is
// deleted), and a failure after it is recorded there too (outcome error,
// with what was deleted when some chunks committed). A dry run is audited only as a
// read (when the session audits reads). It returns docex.ErrInvalid for a
// zero cutoff, one less than MinAuditRetention ago, or a chunk out of
// range, and a denial (docex.ErrDenied) as every tenant operation does; on
// an error after some chunks committed, the result counts what was
// deleted and the error says so.
func (s *Session) PruneAudit(ctx context.Context, o PruneAuditOptions) (AuditPruneResult, error) {
	const op = "audit.prune"
	st, err := s.open(ctx, tenancy.ActionPruneAudit, op, "")
	if err != nil {
		return AuditPruneResult{}, err
	}
	defer st.Close()
	res := AuditPruneResult{Before: o.Before.UTC().Truncate(time.Microsecond), DryRun: o.DryRun}
	if err := s.e.checkAuditPrune(o); err != nil {
		return AuditPruneResult{}, s.failed(ctx, st, op, "", err)
	}
	prefix, err := st.PrunableAudit(ctx, res.Before)
	if o.DryRun || err != nil {
		if err != nil {
			return AuditPruneResult{}, s.readDone(ctx, st, op, "", err)
		}
		res.Entries = prefix.Entries
		return res, s.readDone(ctx, st, op, "", nil)
	}
	detail := planDetail(res.Before, prefix)
	if prefix.Entries > 0 {
		// The copy in the system log, out of reach of the tenant's
		// admin, goes first: no entry is deleted without it, even by a
		// prune killed part-way. Not written, nothing is deleted.
		if err := s.systemCopy(ctx, op, nil, detail); err != nil {
			return res, s.failed(ctx, st, op, "", fmt.Errorf("audit prune: nothing deleted: %w", err))
		}
	}
	err = pruneAuditChunks(ctx, &res, prefix, o.Chunk, s.entryDetail(op, "", detail), func(p driver.AuditPrune, record func(driver.AuditPruned) (docex.AuditEntry, bool)) (driver.AuditPruned, error) {
		var got driver.AuditPruned
		err := st.Write(ctx, func(tx driver.Tx) error {
			var err error
			if got, err = tx.PruneAudit(ctx, p); err != nil {
				return err
			}
			if e, ok := record(got); ok {
				return tx.AppendAudit(ctx, e)
			}
			return nil
		})
		return got, err
	})
	if err == nil {
		return res, nil
	}
	var edetail map[string]any
	if res.Entries == 0 {
		err = s.failed(ctx, st, op, "", err)
	} else {
		// Some chunks committed: what they deleted is audited even when
		// the prune was interrupted.
		edetail = res.detail()
		err = fmt.Errorf("audit prune stopped after deleting %d entries (run it again to delete the rest): %w", res.Entries, err)
		err = withAuditErr(err, s.auditOutcome(ctx, st, op, "", err, edetail))
	}
	if prefix.Entries > 0 {
		// The system log says how the prune its copy announced ended.
		err = withAuditErr(err, s.systemCopy(ctx, op, err, edetail))
	}
	return res, err
}

// systemCopy appends to the system log the entry of op with err (nil: ok)
// and detail, for the session's tenant and user, without ctx's
// cancellation (auditContext). It returns the append's error.
func (s *Session) systemCopy(ctx context.Context, op string, err error, detail map[string]any) error {
	aerr := auditedErr(ctx, err)
	e := s.entry(op, "", outcomeOf(aerr), aerr)
	e.Detail = detail
	actx, cancel := auditContext(ctx)
	defer cancel()
	return s.e.be.AppendSystemAudit(actx, e)
}

// PruneSystemAudit deletes the oldest entries of the system audit log,
// those recorded before o.Before, as Session.PruneAudit does a tenant's
// (an operator action). Its audit.prune entry goes in the system log, in
// the transaction of the first chunk; a refusal is recorded there too, and
// so is a dry run (with "dry_run": true in its detail), as every read of
// the system log is. It returns docex.ErrInvalid for a zero cutoff, one
// less than MinAuditRetention ago, or a chunk out of range, and
// docex.ErrClosed on a closed engine; on an error after some chunks
// committed, the result counts what was deleted and the error says so.
func (p *TenantProvisioner) PruneSystemAudit(ctx context.Context, o PruneAuditOptions) (AuditPruneResult, error) {
	const op = "audit.prune"
	if p.e.closed.Load() {
		return AuditPruneResult{}, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return AuditPruneResult{}, err
	}
	res := AuditPruneResult{Before: o.Before.UTC().Truncate(time.Microsecond), DryRun: o.DryRun, System: true}
	if err := p.e.checkAuditPrune(o); err != nil {
		return AuditPruneResult{}, p.audit(ctx, op, "", err)
	}
	prefix, err := p.e.be.SystemAuditPrefix(ctx, res.Before)
	if err != nil {
		return AuditPruneResult{}, p.audit(ctx, op, "", err)
	}
	if o.DryRun {
		res.Entries = prefix.Entries
		e := p.entry(op, "", nil)
		e.Detail = map[string]any{"dry_run": true, "entries": res.Entries, "before": res.Before.Format(time.RFC3339Nano)}
		return res, withAuditErr(nil, p.e.be.AppendSystemAudit(ctx, e))
	}
	rec := p.entry(op, "", nil)
	rec.Detail = planDetail(res.Before, prefix)
	err = pruneAuditChunks(ctx, &res, prefix, o.Chunk, rec, func(ap driver.AuditPrune, record func(driver.AuditPruned) (docex.AuditEntry, bool)) (driver.AuditPruned, error) {
		return p.e.be.PruneSystemAudit(ctx, ap, record)
	})
	switch {
	case err == nil:
		return res, nil
	case res.Entries == 0:
		return res, p.audit(ctx, op, "", err)
	}
	err = fmt.Errorf("audit prune stopped after deleting %d entries (run it again to delete the rest): %w", res.Entries, err)
	e := p.entry(op, "", auditedErr(ctx, err))
	e.Detail = res.detail()
	return res, p.auditEntry(ctx, e, err)
}
