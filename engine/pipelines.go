package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/spell"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/tenancy"
)

// PipelineInfo describes one version of a pipeline.
type PipelineInfo struct {
	Pipeline
	Version    int       `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	Deleted    bool      `json:"deleted"`
	Baskets    []string  `json:"baskets"` // ids of the baskets bound to the pipeline
	Definition string    `json:"definition"`
}

func pipelineInfo(rec driver.PipelineRecord) (PipelineInfo, error) {
	p, err := ParsePipeline(rec.Definition)
	if err != nil {
		return PipelineInfo{}, fmt.Errorf("%w: stored pipeline %s v%d: %w", docex.ErrCorrupt, rec.Name, rec.Version, err)
	}
	return PipelineInfo{Pipeline: *p, Version: rec.Version, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy,
		Deleted: rec.Deleted, Baskets: []string{}, Definition: string(rec.Definition)}, nil
}

// checkSteps validates a pipeline's steps against the plugins the tenant
// can run: each exists, its parameters match the manifest, a step whose
// input is another step reads documents that step can emit, and, with a
// sandbox, each plugin that can check its parameters (docex_validate,
// docs/plugin-abi.md) accepts them.
func (s *Session) checkSteps(ctx context.Context, st driver.TenantStore, src []byte, p *Pipeline) error {
	manifests := map[string]*pluginapi.Manifest{}
	type resolved struct {
		rec    driver.PluginRecord
		system bool
	}
	recs := make([]resolved, len(p.Steps))
	for i, step := range p.Steps {
		rec, system, err := s.resolvePlugin(ctx, st, step.Plugin)
		if errors.Is(err, docex.ErrNotFound) {
			var names []string
			if all, lerr := s.plugins(ctx, st); lerr == nil {
				for _, pi := range all {
					names = append(names, pi.Name)
				}
			}
			if hint := spell.Suggest(step.Plugin, names); hint != "" {
				return pipelineErr(src, i, "plugin", "unknown plugin %q%s", step.Plugin, hint)
			}
			return pipelineErr(src, i, "plugin", "unknown plugin %q (install it first: docex plugin install; docex plugin list shows those installed)", step.Plugin)
		}
		if err != nil {
			return err
		}
		recs[i] = resolved{rec, system}
		m, err := pluginapi.ParseStoredManifest(rec.Manifest)
		if err != nil {
			return pipelineErr(src, i, "plugin", "plugin %q: %v", step.Plugin, err)
		}
		manifests[step.Name] = m
		// In name order, so that of several bad parameters the same one
		// is named every time.
		for _, k := range slices.Sorted(maps.Keys(step.Params)) {
			v := step.Params[k]
			spec, ok := m.Parameters[k]
			if !ok {
				hint := spell.SuggestOrList(k, slices.Collect(maps.Keys(m.Parameters)), "parameters")
				return pipelineErr(src, i, "params."+k, "plugin %q has no parameter %q%s", step.Plugin, k, hint)
			}
			if err := checkParamType(spec.Type, v); err != nil {
				return pipelineErr(src, i, "params."+k, "plugin %q, parameter %q: %v", step.Plugin, k, err)
			}
			if err := spec.Check(v); err != nil {
				return pipelineErr(src, i, "params."+k, "plugin %q, parameter %q: %v", step.Plugin, k, err)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m.Parameters)) {
			if _, ok := step.Params[k]; m.Parameters[k].Required && !ok {
				return pipelineErr(src, i, "params", "plugin %q needs parameter %q", step.Plugin, k)
			}
		}
		if k, err := m.CheckRelations(step.Params); err != nil {
			return pipelineErr(src, i, "params."+k, "plugin %q, parameter %q: %v", step.Plugin, k, err)
		}
	}
	for i, step := range p.Steps {
		if step.Input == InputDocument {
			continue
		}
		if m := manifests[step.Input]; !m.Has(pluginapi.Capability("documents.emit")) {
			return pipelineErr(src, i, "input", "step %q reads the documents of step %q, whose plugin %q lacks the capability documents.emit",
				step.Name, step.Input, m.Name)
		}
	}
	if s.e.cfg.Sandbox == nil {
		return nil // nothing can run the plugins' checks (nor the jobs)
	}
	for i, step := range p.Steps {
		lp, err := s.runnablePlugin(ctx, st, recs[i].rec, recs[i].system)
		if err != nil {
			return err
		}
		if _, err := s.validateParams(ctx, st, lp, step.Params); err != nil {
			return stepParamsErr(src, i, step, err)
		}
	}
	return nil
}

// validateParams has a loaded plugin check params with its validate
// export (pluginapi.Validator), when it has one, in the tenant's instance
// pool; it returns the sandbox's error as is and, once the validate
// export ran (pluginapi.ValidateReporter), its result: what it used.
func (s *Session) validateParams(ctx context.Context, st driver.TenantStore, lp *loadedPlugin, params map[string]string) (*pluginapi.Result, error) {
	v, ok := lp.p.(pluginapi.Validator)
	if !ok || !v.Validates() {
		return nil, nil
	}
	if r, ok := v.(pluginapi.ValidateReporter); ok {
		return r.ValidateReport(ctx, s.e.poolKey(st.Tenant()), nonNilParams(params))
	}
	return nil, v.Validate(ctx, s.e.poolKey(st.Tenant()), nonNilParams(params))
}

// stepParamsErr is the error of pipeline create when step i's plugin did
// not accept its parameters (err from validateParams): a refusal is
// docex.ErrInvalid naming the line and key (the parameter the plugin's
// text starts with, as "size: ...", else the step's params); a plugin
// that failed while checking (trap, instruction budget, timeout...) is
// docex.ErrPluginFailed at the step's plugin key.
func stepParamsErr(src []byte, i int, step Step, err error) error {
	var r *pluginapi.Refusal
	switch {
	case errors.Is(err, pluginapi.ErrHostMemory): // also ErrPluginMemory, but the host's condition
		return mapPluginErr(err)
	case errors.As(err, &r):
		key := "params"
		if name, _, ok := strings.Cut(r.Message, ":"); ok {
			if _, given := step.Params[name]; given {
				key += "." + name
			}
		}
		why := r.Message
		if why == "" {
			why = fmt.Sprintf("%s returned %d", r.Export, r.Code)
		}
		return pipelineErr(src, i, key, "plugin %q refused its parameters: %s", step.Plugin, why)
	case errors.Is(err, pluginapi.ErrInvalidParams):
		return pipelineErr(src, i, "params", "plugin %q: %s", step.Plugin, strings.TrimPrefix(err.Error(), "sandbox: "))
	case errors.Is(err, pluginapi.ErrPluginTrap), errors.Is(err, pluginapi.ErrPluginTimeout), errors.Is(err, pluginapi.ErrInstructionLimit),
		errors.Is(err, pluginapi.ErrPluginMemory), errors.Is(err, pluginapi.ErrHostCallLimit), errors.Is(err, pluginapi.ErrPluginOutputTooLarge):
		msg := fmt.Sprintf("%s: plugin %q failed while checking its parameters: %s", pipelineWhere(src, i, "plugin"), step.Plugin,
			strings.TrimPrefix(err.Error(), "sandbox: "))
		return &relabelled{msg: msg, errs: []error{docex.ErrPluginFailed, err}}
	}
	return mapPluginErr(err)
}

func checkParamType(typ, v string) error {
	var err error
	switch typ {
	case "", "string":
	case "int":
		_, err = parseInt(v)
	case "number":
		_, err = parseFloat(v)
	case "bool":
		if v != "true" && v != "false" {
			err = fmt.Errorf("not a bool")
		}
	}
	if err != nil {
		return fmt.Errorf("value %q is not of type %s", v, typ)
	}
	return nil
}

// CreatePipeline stores a pipeline definition (TOML) for the session's
// tenant (pipeline.manage action): version 1 for a new name, the next
// version otherwise; jobs already enqueued keep the version they have. It
// returns docex.ErrInvalid naming the line and key of a bad definition
// (syntax, unknown key, unknown plugin or parameter, missing capability,
// cycle, parameters the plugin's docex_validate refuses), and
// docex.ErrPluginFailed when a plugin failed while checking its
// parameters (trap, instruction budget...). Every refusal is audited
// (pipeline.create, outcome error, with the error's text; its target is
// the pipeline's name once the definition's TOML decoded, even when it
// is then refused, "" when it did not decode or the name is not valid), after the
// caller's role is checked: a caller who may not define pipelines gets
// the denial, whatever the definition.
func (s *Session) CreatePipeline(ctx context.Context, src []byte) (PipelineInfo, error) {
	var target string // the name, once the definition decoded
	p, perr := parsePipeline(src, &target)
	if perr == nil {
		perr = p.checkNew(src)
	}
	st, err := s.open(ctx, tenancy.ActionManagePipelines, "pipeline.create", target)
	if err != nil {
		return PipelineInfo{}, err
	}
	defer st.Close()
	if perr != nil {
		return PipelineInfo{}, withAuditErr(perr, s.auditOutcome(ctx, st, "pipeline.create", target, perr, nil))
	}
	if err := s.checkSteps(ctx, st, src, p); err != nil {
		return PipelineInfo{}, withAuditErr(err, s.auditOutcome(ctx, st, "pipeline.create", p.Name, err, nil))
	}
	rec := driver.PipelineRecord{Name: p.Name, Definition: src, CreatedAt: s.e.now(), CreatedBy: s.uc.UserID}
	// The next version number is read, then inserted: a definition of the
	// same name committed in between (PostgreSQL runs writes at once)
	// takes that number, and this one tries again with the next.
	for attempt := 1; ; attempt++ {
		var lost bool // reset by each run of the closure (a backend may run it again)
		err = st.Write(ctx, func(tx driver.Tx) error {
			lost = false
			rec.Version = 1
			cur, err := tx.Pipeline(ctx, p.Name, 0)
			if err == nil {
				rec.Version = cur.Version + 1
			} else if !errors.Is(err, docex.ErrNotFound) {
				return err
			}
			if err := tx.InsertPipeline(ctx, rec); err != nil {
				lost = errors.Is(err, docex.ErrExists)
				return err
			}
			return tx.AppendAudit(ctx, s.entry("pipeline.create", p.Name, docex.OutcomeOK, nil))
		})
		if !lost || ctx.Err() != nil {
			break
		}
		if attempt == maxCreateAttempts {
			err = docex.Errorf(docex.ErrConflict, "pipeline %q: %d other definitions of it were created while this one was; try again", p.Name, attempt)
			break
		}
	}
	if err != nil {
		err = withAuditErr(err, s.auditOutcome(ctx, st, "pipeline.create", p.Name, err, nil))
		return PipelineInfo{}, err
	}
	return pipelineInfo(rec)
}

// RefusePipeline records in the tenant's audit log a pipeline create
// that failed before the definition reached the engine (its file could
// not be read, or is too large), as CreatePipeline records the
// definitions it refuses. It returns err, or the error of opening the
// session (a denial, also audited).
func (s *Session) RefusePipeline(ctx context.Context, err error) error {
	return s.refuse(ctx, tenancy.ActionManagePipelines, "pipeline.create", "", nil, err)
}

// maxCreateAttempts is how many times CreatePipeline tries to insert the
// next version of a name that other definitions take first.
const maxCreateAttempts = 16

// Pipelines lists the tenant's pipelines (newest versions, deleted ones
// left out), ordered by name.
func (s *Session) Pipelines(ctx context.Context) ([]PipelineInfo, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "pipeline.list", "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	recs, err := st.Pipelines(ctx)
	s.readDone(ctx, st, "pipeline.list", "", err)
	if err != nil {
		return nil, err
	}
	out := make([]PipelineInfo, 0, len(recs))
	for _, r := range recs {
		info, err := pipelineInfo(r)
		if err != nil {
			return nil, err
		}
		// Backends read the bound baskets with the pipelines (one state,
		// one statement); one that does not is asked for each.
		if info.Baskets = r.Baskets; info.Baskets == nil {
			if info.Baskets, err = st.PipelineBaskets(ctx, r.Name); err != nil {
				return nil, err
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// Pipeline returns a version of a pipeline (version 0: the newest), or
// docex.ErrNotFound. A deleted pipeline's versions stay readable (jobs and
// lineage refer to them) with Deleted set.
func (s *Session) Pipeline(ctx context.Context, name string, version int) (PipelineInfo, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "pipeline.get", name)
	if err != nil {
		return PipelineInfo{}, err
	}
	defer st.Close()
	rec, err := st.Pipeline(ctx, name, version)
	s.readDone(ctx, st, "pipeline.get", name, err)
	if errors.Is(err, docex.ErrNotFound) && version > 0 {
		// "has no version 9": say which is the newest (a deleted
		// pipeline's versions stay readable too).
		if newest, nerr := st.Pipeline(ctx, name, 0); nerr == nil {
			err = fmt.Errorf("%w (its newest version is %d)", err, newest.Version)
		}
	}
	if err != nil {
		return PipelineInfo{}, err
	}
	info, err := pipelineInfo(rec)
	if err != nil {
		return info, err
	}
	// As in Pipelines: from the pipeline's read where the backend gives
	// them (one state), else asked for.
	if info.Baskets = rec.Baskets; info.Baskets == nil {
		info.Baskets, err = st.PipelineBaskets(ctx, name)
	}
	return info, err
}

// DeletedPipelineError: the pipeline named was deleted; its versions
// stay readable (Session.Pipeline) for the jobs and lineage that refer to
// them. It is a docex.ErrNotFound (errors.Is), of code not_found.
type DeletedPipelineError struct {
	Name string
	// Already: the error of a delete of it (Session.DeletePipeline).
	Already bool
}

func (e *DeletedPipelineError) Error() string {
	if e.Already {
		return fmt.Sprintf("pipeline %q was already deleted", e.Name)
	}
	return fmt.Sprintf("pipeline %q was deleted", e.Name)
}

// Unwrap makes the error a docex.ErrNotFound.
func (e *DeletedPipelineError) Unwrap() error { return docex.ErrNotFound }

// DeletePipeline deletes a pipeline name (pipeline.manage): its versions
// stay for the jobs and lineage that refer to them, and a new definition
// of the name starts at the next version. It returns docex.ErrNotFound for
// an unknown name (a *DeletedPipelineError, Already set, for a name whose
// pipeline was deleted) and docex.ErrConflict while a basket is bound to
// it.
func (s *Session) DeletePipeline(ctx context.Context, name string) error {
	st, err := s.open(ctx, tenancy.ActionManagePipelines, "pipeline.delete", name)
	if err != nil {
		return err
	}
	defer st.Close()
	return s.write(ctx, st, "pipeline.delete", name, func(tx driver.Tx) error {
		// Deleted first, then the bound baskets looked for: a backend that
		// runs transactions at once (PostgreSQL) makes a concurrent bind
		// wait for this one, or this one see the bind (driver.Tx.BindBasket).
		if err := tx.DeletePipeline(ctx, name); errors.Is(err, docex.ErrNotFound) {
			// No version left to delete: deleted already, or never defined.
			if p, perr := tx.Pipeline(ctx, name, 0); perr == nil && p.Deleted {
				return &DeletedPipelineError{Name: name, Already: true}
			}
			return err
		} else if err != nil {
			return err
		}
		bs, err := tx.PipelineBaskets(ctx, name)
		if err != nil {
			return err
		}
		if len(bs) > 0 {
			// Name the baskets (a few), so that the user can unbind them.
			var names []string
			for _, id := range bs[:min(len(bs), 5)] {
				if b, err := tx.Basket(ctx, id); err == nil {
					names = append(names, b.Name)
				} else {
					names = append(names, id)
				}
			}
			if len(bs) > len(names) {
				names = append(names, fmt.Sprintf("and %d more", len(bs)-len(names)))
			}
			return docex.Errorf(docex.ErrConflict, "pipeline %q is bound to %d basket(s): %s; unbind them first (basket unbind)", name, len(bs), strings.Join(names, ", "))
		}
		return nil
	})
}

// BindBasket binds a basket to a pipeline (pipeline.manage): from the
// commit on, every document added to the basket is processed by the
// pipeline's newest version at the time of the add; its job is enqueued
// in the add's own transaction. It returns the pipeline the basket was
// bound to before ("" when none): binding a basket to the pipeline it is
// bound to changes nothing, and its audit entry says so (detail
// {"unchanged": true}). It returns docex.ErrNotFound for an unknown basket
// or pipeline (a *DeletedPipelineError for a deleted one).
func (s *Session) BindBasket(ctx context.Context, basketID, pipeline string) (previous string, err error) {
	detail := map[string]any{"pipeline": pipeline}
	st, err := s.openDetail(ctx, tenancy.ActionManagePipelines, "basket.bind", basketID, detail)
	if err != nil {
		return "", err
	}
	defer st.Close()
	err = s.writeAuditDetail(ctx, st, "basket.bind", basketID, detail, false, func(tx driver.Tx) error {
		prev, err := basketPipelineIn(ctx, tx, basketID)
		if err != nil {
			return err
		}
		if err := bindIn(ctx, tx, basketID, pipeline); err != nil {
			return err
		}
		previous = prev
		if prev == pipeline {
			detail = map[string]any{"pipeline": pipeline, "unchanged": true}
		}
		return tx.AppendAudit(ctx, s.entryDetail("basket.bind", basketID, detail))
	})
	return previous, err
}

// basketPipelineIn locks a basket exclusively (driver.Tx.LockBasket: an
// add into it in flight commits first, and later ones wait) and returns
// the pipeline it is bound to, "" when none, or docex.ErrNotFound for an
// unknown basket. A bind or unbind reads the binding so: an add that
// commits after it sees the new binding.
func basketPipelineIn(ctx context.Context, tx driver.Tx, basketID string) (string, error) {
	if _, err := tx.LockBasket(ctx, basketID, true); err != nil {
		return "", err
	}
	name, err := tx.BasketPipeline(ctx, basketID)
	if errors.Is(err, docex.ErrNotFound) {
		return "", nil
	}
	return name, err
}

// unchangedDetail is the audit detail of a bind or unbind: {"unchanged":
// true} when it changed nothing, none otherwise.
func unchangedDetail(unchanged bool) map[string]any {
	if unchanged {
		return map[string]any{"unchanged": true}
	}
	return nil
}

// bindIn binds basket basketID to pipeline inside tx. It returns
// docex.ErrNotFound for an unknown basket or pipeline, and a
// *DeletedPipelineError for a deleted pipeline, also one deleted by a
// transaction that committed after tx read it.
func bindIn(ctx context.Context, tx driver.Tx, basketID, pipeline string) error {
	if _, err := tx.Basket(ctx, basketID); err != nil {
		return err
	}
	p, err := tx.Pipeline(ctx, pipeline, 0)
	if err == nil && p.Deleted {
		err = &DeletedPipelineError{Name: pipeline}
	}
	if err != nil {
		return err
	}
	err = tx.BindBasket(ctx, basketID, pipeline)
	if errors.Is(err, docex.ErrNotFound) {
		// The basket stays (its callers' tx inserted it, or locked it:
		// basketPipelineIn), so the pipeline was deleted by a transaction
		// that committed after tx read it (a backend whose write
		// transactions run at once, PostgreSQL: driver.Tx.BindBasket then
		// finds no version left undeleted). It says so as a bind after
		// the delete does.
		return &DeletedPipelineError{Name: pipeline}
	}
	return err
}

// UnbindBasket removes a basket's pipeline (pipeline.manage); jobs
// already enqueued still run. It returns the pipeline the basket was bound
// to, "" when none: unbinding a basket that is not bound changes nothing,
// and its audit entry says so (detail {"unchanged": true}). It returns
// docex.ErrNotFound for an unknown basket.
func (s *Session) UnbindBasket(ctx context.Context, basketID string) (previous string, err error) {
	st, err := s.open(ctx, tenancy.ActionManagePipelines, "basket.unbind", basketID)
	if err != nil {
		return "", err
	}
	defer st.Close()
	err = s.writeAudit(ctx, st, "basket.unbind", basketID, false, func(tx driver.Tx) error {
		prev, err := basketPipelineIn(ctx, tx, basketID)
		if err != nil {
			return err
		}
		if prev != "" {
			if err := tx.UnbindBasket(ctx, basketID); err != nil {
				return err
			}
		}
		previous = prev
		return tx.AppendAudit(ctx, s.entryDetail("basket.unbind", basketID, unchangedDetail(prev == "")))
	})
	return previous, err
}

// BasketPipeline returns the name of the pipeline bound to a basket, or
// docex.ErrNotFound.
func (s *Session) BasketPipeline(ctx context.Context, basketID string) (string, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "basket.get", basketID)
	if err != nil {
		return "", err
	}
	defer st.Close()
	return st.BasketPipeline(ctx, basketID)
}

// CreateBasketWithPipeline creates a basket bound to a pipeline in one
// transaction (write and pipeline.manage actions). Errors as CreateBasket
// and BindBasket.
func (s *Session) CreateBasketWithPipeline(ctx context.Context, name, pipeline string) (docex.Basket, error) {
	st, err := s.openDetail(ctx, tenancy.ActionManagePipelines, "basket.create", name, map[string]any{"pipeline": pipeline})
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	if err := validateBasketName(name); err != nil {
		return docex.Basket{}, s.failedDetail(ctx, st, "basket.create", name, err, map[string]any{"pipeline": pipeline})
	}
	b := docex.Basket{ID: newID(), Name: name, CreatedAt: s.e.now(), Pipeline: pipeline}
	err = s.writeAuditDetail(ctx, st, "basket.create", name, map[string]any{"pipeline": pipeline}, true, func(tx driver.Tx) error {
		if err := tx.InsertBasket(ctx, b); err != nil {
			return err
		}
		return bindIn(ctx, tx, b.ID, pipeline)
	})
	return b, err
}

// newJob returns a queued job of pipeline version p on a document, run
// as the session's user.
func (s *Session) newJob(p driver.PipelineRecord, maxAttempts int, docID string) driver.JobRecord {
	now := s.e.now()
	uc := s.uc
	uc.Roles = slices.Clone(uc.Roles)
	return driver.JobRecord{ID: newID(), Pipeline: p.Name, Version: p.Version, DocumentID: docID, State: driver.JobQueued,
		MaxAttempts: maxAttempts, RunAt: now, User: uc, Detail: (&jobDetail{Attempts: []JobAttempt{}}).bytes(), CreatedAt: now, UpdatedAt: now}
}

// enqueueBound returns the extra step of a document add: when the basket
// is bound to a pipeline, a job for every newly added document, in the
// add's transaction (the transactional outbox).
func (s *Session) enqueueBound(ctx context.Context, basketID string) func(tx driver.Tx, added []Added) error {
	return func(tx driver.Tx, added []Added) error {
		name, err := tx.BasketPipeline(ctx, basketID)
		if errors.Is(err, docex.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := tx.Pipeline(ctx, name, 0)
		if err != nil {
			return fmt.Errorf("basket %s is bound to pipeline %q: %w", basketID, name, err)
		}
		p, err := ParsePipeline(rec.Definition)
		if err != nil {
			return fmt.Errorf("%w: pipeline %q: %w", docex.ErrCorrupt, name, err)
		}
		var jobs []driver.JobRecord
		for _, a := range added {
			if !a.Duplicate {
				jobs = append(jobs, s.newJob(rec, p.MaxAttempts, a.Document.ID))
			}
		}
		return s.enqueue(ctx, tx, rec, jobs, func(string) string { return basketID })
	}
}

// enqueue inserts jobs of pipeline version rec in tx, in a few
// statements when the backend can (driver.JobsTx), and audits each as
// job.enqueue, detail {pipeline, version, document_id, basket_id} where
// basketOf returns the basket of the job's document, in one statement
// when the backend can (driver.StepRowsTx).
func (s *Session) enqueue(ctx context.Context, tx driver.Tx, rec driver.PipelineRecord, jobs []driver.JobRecord, basketOf func(documentID string) string) error {
	if jt, ok := tx.(driver.JobsTx); ok && len(jobs) > 1 {
		if err := jt.InsertJobs(ctx, jobs); err != nil {
			return err
		}
	} else {
		for _, j := range jobs {
			if err := tx.InsertJob(ctx, j); err != nil {
				return err
			}
		}
	}
	entries := make([]docex.AuditEntry, len(jobs))
	for i, j := range jobs {
		e := s.entry("job.enqueue", j.ID, docex.OutcomeOK, nil)
		e.Detail = map[string]any{"pipeline": rec.Name, "version": rec.Version, "document_id": j.DocumentID, "basket_id": basketOf(j.DocumentID)}
		entries[i] = e
	}
	if rt, ok := tx.(driver.StepRowsTx); ok && len(entries) > 1 {
		// One multi-row statement for a run over a basket.
		return rt.InsertStepRows(ctx, nil, nil, nil, entries)
	}
	for _, e := range entries {
		if err := tx.AppendAudit(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// derivedAmong returns the ids among ids of documents a lineage edge
// created (driver.BatchReader.DerivedAmong): in one read when tx is a
// driver.BatchReader. A document only deduplicated edges point to (an
// original a step's output had the content of) is not derived.
func derivedAmong(ctx context.Context, tx driver.Tx, ids []string) (map[string]bool, error) {
	if br, ok := tx.(driver.BatchReader); ok {
		return br.DerivedAmong(ctx, ids)
	}
	out := map[string]bool{}
	for _, id := range ids {
		srcs, _, err := tx.Lineage(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, e := range srcs {
			if !e.Dedup {
				out[id] = true
			}
		}
	}
	return out, nil
}

// originalIDs returns a page of the basket's documents as ids, each
// with whether it has a derived_from key, without reading metadata values
// (driver.KeyedIDsReader; a document may hold 16 MiB of them) when the
// store can.
func originalIDs(ctx context.Context, tx driver.Tx, basketID string, page docex.Page) ([]driver.KeyedID, error) {
	if r, ok := tx.(driver.KeyedIDsReader); ok {
		return r.DocumentIDsWithKey(ctx, basketID, page, "derived_from")
	}
	docs, err := tx.Documents(ctx, basketID, page)
	if err != nil {
		return nil, err
	}
	out := make([]driver.KeyedID, len(docs))
	for i, d := range docs {
		_, has := d.Metadata["derived_from"]
		out[i] = driver.KeyedID{ID: d.ID, HasKey: has}
	}
	return out, nil
}

// RunTarget selects the documents of a pipeline run: the given ids (a
// repeated id counts once), or the original documents of a basket (those
// not derived from another document, by a pipeline or a plugin run).
type RunTarget struct {
	DocumentIDs []string
	BasketID    string
}

// uniqueIDs returns ids without repeats, in the order of their first
// appearance (ids itself when it has none).
func uniqueIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) == len(ids) {
		return ids
	}
	return out
}

// MaxRunDocuments bounds the documents of one RunPipeline call.
const MaxRunDocuments = 100000

// checkRunTarget returns docex.ErrInvalid for a target of neither or
// both kinds or of too many documents, docex.ErrInvalidID for a
// malformed id.
func checkRunTarget(target RunTarget) error {
	if (len(target.DocumentIDs) == 0) == (target.BasketID == "") {
		return docex.Errorf(docex.ErrInvalid, "run a pipeline on document ids or on a basket (one of the two)")
	}
	if len(target.DocumentIDs) > MaxRunDocuments {
		return docex.Errorf(docex.ErrInvalid, "%d documents, more than %d in one run", len(target.DocumentIDs), MaxRunDocuments)
	}
	for _, id := range target.DocumentIDs {
		if err := checkID("document", id); err != nil {
			return err
		}
	}
	if target.BasketID != "" {
		return checkID("basket", target.BasketID)
	}
	return nil
}

// WaitFailed records in the tenant's audit log a wait for the jobs a run
// queued (RunPipeline's ids) that failed or was interrupted, for a front
// end that waits in the call that ran the pipeline (MCP: run_pipeline
// with wait_seconds): "pipeline.wait", target the pipeline, outcome error
// with err's text (an interruption, ctx cancelled, as "interrupted: ..."),
// the jobs' ids in the detail ({"job_ids"}), so that the log says the
// jobs were queued and the wait cut short. The entry is written without
// ctx's cancellation. It returns err (with the audit write's failure,
// if any), also when the tenant cannot be opened for the entry (a
// suspension, audited in the system log by the opening).
func (s *Session) WaitFailed(ctx context.Context, pipeline string, ids []string, err error) error {
	err = auditedErr(ctx, err)
	ctx = context.WithoutCancel(ctx)
	detail := map[string]any{"job_ids": ids}
	st, oerr := s.openDetail(ctx, tenancy.ActionRead, "pipeline.wait", pipeline, detail)
	if oerr != nil {
		return err
	}
	defer st.Close()
	return withAuditErr(err, s.auditOutcome(ctx, st, "pipeline.wait", pipeline, err, detail))
}

// RunPipeline enqueues a job of the pipeline's newest version for every
// target document (pipeline.run action), all in one transaction, and
// returns the job ids in the order of the documents (one job per
// document, however often its id is given). It returns
// docex.ErrNotFound for an unknown pipeline (a *DeletedPipelineError for a
// deleted one), basket or document, docex.ErrInvalidID for a malformed
// document or basket id, docex.ErrInvalid for an empty or too large
// target.
func (s *Session) RunPipeline(ctx context.Context, pipeline string, target RunTarget) ([]string, error) {
	st, err := s.open(ctx, tenancy.ActionRunPipeline, "pipeline.run", pipeline)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := checkRunTarget(target); err != nil {
		return nil, s.failed(ctx, st, "pipeline.run", pipeline, err)
	}
	// One job per document: "--doc A --doc A" is a slip, not a request to
	// run A twice at once.
	target.DocumentIDs = uniqueIDs(target.DocumentIDs)
	var ids []string
	err = s.writeAudit(ctx, st, "pipeline.run", pipeline, false, func(tx driver.Tx) error {
		ids = ids[:0]
		rec, err := tx.Pipeline(ctx, pipeline, 0)
		if err == nil && rec.Deleted {
			err = &DeletedPipelineError{Name: pipeline}
		}
		if err != nil {
			return err
		}
		p, err := ParsePipeline(rec.Definition)
		if err != nil {
			return fmt.Errorf("%w: pipeline %q: %w", docex.ErrCorrupt, pipeline, err)
		}
		docs := target.DocumentIDs
		var basketOf map[string]string // of --doc documents
		if target.BasketID != "" {
			// Locked exclusively: no document is added to or deleted
			// from the basket while its pages are read (one statement
			// each), so none is skipped or listed twice as the others
			// shift.
			if _, err := tx.LockBasket(ctx, target.BasketID, true); err != nil {
				return err
			}
			docs = nil
			for off := 0; ; off += docex.MaxPageLimit {
				page, err := originalIDs(ctx, tx, target.BasketID, docex.Page{Limit: docex.MaxPageLimit, Offset: off})
				if err != nil {
					return err
				}
				// Originals only: a derived document is its source's
				// output, not an input of its own.
				var cand []string
				for _, d := range page {
					if !d.HasKey {
						cand = append(cand, d.ID)
					}
				}
				derived, err := derivedAmong(ctx, tx, cand)
				if err != nil {
					return err
				}
				for _, id := range cand {
					if !derived[id] {
						docs = append(docs, id)
					}
				}
				if len(page) < docex.MaxPageLimit || len(docs) > MaxRunDocuments {
					break
				}
			}
			if len(docs) > MaxRunDocuments {
				return docex.Errorf(docex.ErrInvalid, "basket has more than %d documents", MaxRunDocuments)
			}
		} else {
			basketOf = map[string]string{}
			for _, id := range docs {
				d, err := tx.Document(ctx, id)
				if err != nil {
					return err
				}
				basketOf[id] = d.BasketID
			}
		}
		jobs := make([]driver.JobRecord, len(docs))
		for i, id := range docs {
			jobs[i] = s.newJob(rec, p.MaxAttempts, id)
		}
		if err := s.enqueue(ctx, tx, rec, jobs, func(id string) string {
			if basketOf == nil {
				return target.BasketID
			}
			return basketOf[id]
		}); err != nil {
			return err
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		e := s.entry("pipeline.run", pipeline, docex.OutcomeOK, nil)
		e.Detail = map[string]any{"version": rec.Version, "jobs": len(ids)}
		if target.BasketID != "" {
			e.Detail["basket_id"] = target.BasketID
		}
		return tx.AppendAudit(ctx, e)
	})
	if err != nil {
		return nil, err
	}
	return append([]string{}, ids...), nil
}

// JobInfo describes a job.
type JobInfo struct {
	ID          string       `json:"id"`
	Pipeline    string       `json:"pipeline"`
	Version     int          `json:"version"`
	DocumentID  string       `json:"document_id"`
	State       string       `json:"state"`
	Attempts    int          `json:"attempts"`
	MaxAttempts int          `json:"max_attempts"`
	RunAt       time.Time    `json:"run_at"`
	UserID      string       `json:"user_id"`
	Roles       []string     `json:"roles"`
	ErrorCode   string       `json:"error_code"`
	Error       string       `json:"error"`
	Progress    JobProgress  `json:"progress"`
	History     []JobAttempt `json:"attempt_history"`
	// AttemptsOmitted is the number of attempts left out of History:
	// it keeps the job's first attempt and its AttemptHistoryKept most
	// recent ones (0 for a job with no more than that).
	AttemptsOmitted int        `json:"attempts_omitted"`
	Failure         JobFailure `json:"failure"` // zero unless the job failed
	Steps           []JobStep  `json:"steps"`   // filled by Session.Job only
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// JobStep is a completed step of a job on one input document.
type JobStep struct {
	Step      string    `json:"step"`
	InputID   string    `json:"input_id"`
	Outcome   string    `json:"outcome"`
	Outputs   []string  `json:"outputs"`
	Report    RunReport `json:"report"` // zero unless the step ran the plugin
	CreatedAt time.Time `json:"created_at"`
}

// jobInfo returns j as its user sees it. Its progress's duration is that
// of the attempts in its history (attemptsDuration), not the one the
// record keeps: that one also counts attempts the history no longer
// holds (released at a shutdown, or not counted for a suspended tenant)
// and misses a running attempt ended by a cancel.
//
// A queued or running job's "waiting: tenant ... is suspended" is not
// shown: a session reads an active tenant only (Session.open), so the
// tenant was resumed since a worker wrote it, and the job waits only for
// its run_at (the record keeps the text until a worker looks at the job
// again), or runs (a worker clears the text when the attempt starts; a
// record written by an older worker may still hold it).
//
// A running job shows no error: the error of its previous attempt (a
// transient failure it is retried after) is in its history, and the
// current attempt has not failed. A worker clears it when the attempt
// starts; a record written by an older worker may still hold it.
func jobInfo(j driver.JobRecord) JobInfo {
	if j.State == driver.JobRunning || j.State == driver.JobQueued && waiting(j) {
		j.Error, j.ErrorCode = "", ""
	}
	det := jobDetailOf(j)
	roles := j.User.Roles
	if roles == nil {
		roles = []string{}
	}
	prog := det.Progress
	prog.DurationMS = attemptsDuration(det.Attempts)
	return JobInfo{ID: j.ID, Pipeline: j.Pipeline, Version: j.Version, DocumentID: j.DocumentID, State: j.State,
		Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, RunAt: j.RunAt, UserID: j.User.UserID, Roles: roles,
		ErrorCode: j.ErrorCode, Error: j.Error, Progress: prog, History: det.Attempts, AttemptsOmitted: det.Omitted, Failure: failureOf(det),
		Steps: []JobStep{}, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
}

// attemptsDuration is the sum of the durations of the attempts of a
// job's history, in milliseconds, added in their order. An attempt not
// ended (running, or lost by a killed worker) has a duration of 0.
func attemptsDuration(attempts []JobAttempt) float64 {
	var ms float64
	for _, a := range attempts {
		ms += a.DurationMS
	}
	return ms
}

// Job returns a job with its completed steps and their resource reports,
// or docex.ErrNotFound (docex.ErrInvalidID for a malformed id). Its
// progress counts (steps run, cached and filtered, documents derived) are
// those of the steps it returns: the job's record has them only as of the
// end of its last attempt, so a running job's record lags its steps. Its
// progress duration is the sum of its history's attempts' (as in Jobs).
func (s *Session) Job(ctx context.Context, id string) (JobInfo, error) {
	if err := checkID("job", id); err != nil {
		return JobInfo{}, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "job.get", id)
	if err != nil {
		return JobInfo{}, err
	}
	defer st.Close()
	j, err := st.Job(ctx, id)
	s.readDone(ctx, st, "job.get", id, err)
	if err != nil {
		return JobInfo{}, err
	}
	info := jobInfo(j)
	steps, err := st.JobSteps(ctx, id)
	if err != nil {
		return info, err
	}
	for _, r := range steps {
		js := JobStep{Step: r.Step, InputID: r.InputID, Outcome: r.Outcome, Outputs: r.Outputs, CreatedAt: r.CreatedAt}
		var d struct {
			Report *RunReport `json:"report"`
		}
		if jsonUnmarshal(r.Detail, &d) == nil && d.Report != nil {
			js.Report = *d.Report
		}
		if js.Report.CapabilityDenials == nil { // a cached or filtered step ran nothing: an empty list, not null
			js.Report.CapabilityDenials = []string{}
		}
		if js.Outputs == nil {
			js.Outputs = []string{}
		}
		info.Steps = append(info.Steps, js)
	}
	info.Progress = recordsProgress(info.Progress, steps)
	return info, nil
}

// recordsProgress returns p with its counts taken from a job's
// completion keys (as the worker counts them when they commit: a run's
// derived documents count, a cached step's do not); p's duration (the
// attempts') stays. Job show, a cancel, an attempt's start and a give-up
// all count this way, so job list agrees with job show.
func recordsProgress(p JobProgress, recs []driver.StepRecord) JobProgress {
	p.StepsRun, p.StepsCached, p.StepsFiltered, p.Derived = 0, 0, 0, 0
	for _, r := range recs {
		p.count(r.Outcome, len(r.Outputs))
	}
	return p
}

// count adds to p one completed step of the given outcome with its
// outputs (a run's outputs count as derived; a cached step's do not).
func (p *JobProgress) count(outcome string, outputs int) {
	switch outcome {
	case StepRan:
		p.StepsRun++
		p.Derived += outputs
	case StepCached:
		p.StepsCached++
	case StepFiltered:
		p.StepsFiltered++
	}
}

// JobFilter selects jobs by state, pipeline and document (empty: any).
type JobFilter = driver.JobFilter

// Jobs lists the tenant's jobs matching f, newest first (read action);
// docex.ErrInvalid for an unknown state, docex.ErrInvalidID for a
// malformed document or basket id. A pipeline name that no pipeline could
// have (malformed) matches no job, as a name no pipeline has does: names
// are looked up, not validated, as in Pipeline.
func (s *Session) Jobs(ctx context.Context, f JobFilter, page docex.Page) ([]JobInfo, error) {
	switch f.State {
	case "", driver.JobQueued, driver.JobRunning, driver.JobSucceeded, driver.JobFailed, driver.JobCancelled:
	default:
		return nil, docex.Errorf(docex.ErrInvalid, "job state %q: want queued, running, succeeded, failed or cancelled", f.State)
	}
	if f.DocumentID != "" {
		if err := checkID("document", f.DocumentID); err != nil {
			return nil, err
		}
	}
	if f.BasketID != "" {
		if err := checkID("basket", f.BasketID); err != nil {
			return nil, err
		}
	}
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "job.list", "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	js, err := st.Jobs(ctx, f, page)
	s.readDone(ctx, st, "job.list", "", err)
	if err != nil {
		return nil, err
	}
	out := make([]JobInfo, len(js))
	for i, j := range js {
		out[i] = jobInfo(j)
	}
	return out, nil
}

// CancelJob cancels a queued or running job (pipeline.run action); a
// running job stops before its next step. It returns docex.ErrNotFound
// for an unknown job, docex.ErrInvalidID for a malformed id and
// docex.ErrConflict for a finished one.
func (s *Session) CancelJob(ctx context.Context, id string) error {
	st, err := s.open(ctx, tenancy.ActionRunPipeline, "job.cancel", id)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkID("job", id); err != nil {
		return s.failed(ctx, st, "job.cancel", id, err)
	}
	return s.write(ctx, st, "job.cancel", id, func(tx driver.Tx) error {
		j, err := tx.Job(ctx, id)
		if err != nil {
			return err
		}
		if driver.JobFinal(j.State) {
			return docex.Errorf(docex.ErrConflict, "job %s %s already: only queued or running jobs can be cancelled", id, stateWords(j.State))
		}
		now := s.e.now()
		// The job's progress is what its steps recorded (as Job counts
		// it): an attempt cancelled while it ran, or lost, recorded its
		// steps but never wrote its counts (job list showed none).
		recs, err := tx.JobSteps(ctx, id)
		if err != nil {
			return err
		}
		det := jobDetailOf(j)
		det.Progress = recordsProgress(det.Progress, recs)
		if j.State == driver.JobRunning {
			// The attempt in progress ends here: its worker stops at its
			// next commit, which finds the job cancelled and leaves it so.
			if n := len(det.Attempts); n > 0 && det.Attempts[n-1].EndedAt.IsZero() && det.Attempts[n-1].Error == "" {
				a := &det.Attempts[n-1]
				a.EndedAt, a.DurationMS = now, docex.Milliseconds(now.Sub(a.StartedAt))
				a.Error, a.ErrorCode = "cancelled by "+s.uc.UserID, "cancelled"
			}
		}
		j.Detail = det.bytes()
		j.State, j.Error, j.ErrorCode, j.UpdatedAt = driver.JobCancelled, "cancelled by "+s.uc.UserID, "cancelled", now
		return tx.UpdateJob(ctx, j)
	})
}

// RetryJob queues a failed or cancelled job again with a fresh budget of
// attempts, its pipeline version's max_attempts (pipeline.run action);
// steps it completed are not run again.
// It returns docex.ErrNotFound for an unknown job, docex.ErrInvalidID for
// a malformed id and docex.ErrConflict for a job that is not failed or
// cancelled, or whose document was deleted.
func (s *Session) RetryJob(ctx context.Context, id string) error {
	st, err := s.open(ctx, tenancy.ActionRunPipeline, "job.retry", id)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkID("job", id); err != nil {
		return s.failed(ctx, st, "job.retry", id, err)
	}
	return s.write(ctx, st, "job.retry", id, func(tx driver.Tx) error {
		j, err := tx.Job(ctx, id)
		if err != nil {
			return err
		}
		if j.State != driver.JobFailed && j.State != driver.JobCancelled {
			return docex.Errorf(docex.ErrConflict, "job %s %s; only failed or cancelled jobs are retried", id, stateWords(j.State))
		}
		if _, err := tx.Document(ctx, j.DocumentID); errors.Is(err, docex.ErrNotFound) {
			return docex.Errorf(docex.ErrConflict, "job %s cannot be retried: its document %s was deleted", id, j.DocumentID)
		} else if err != nil {
			return err
		}
		// The fresh budget is the job's pipeline version's max_attempts
		// (1: one more attempt, no retries), read from the version, as the
		// job's own max_attempts counts the attempts spent before.
		rec, err := tx.Pipeline(ctx, j.Pipeline, j.Version)
		if err != nil {
			return fmt.Errorf("job %s: pipeline %s v%d: %w", id, j.Pipeline, j.Version, err)
		}
		p, err := ParsePipeline(rec.Definition)
		if err != nil {
			return fmt.Errorf("%w: job %s: stored pipeline %s v%d: %w", docex.ErrCorrupt, id, j.Pipeline, j.Version, err)
		}
		det := jobDetailOf(j)
		det.Failure = nil
		det.Retried = j.Attempts // the backoff restarts with the budget
		j.MaxAttempts = j.Attempts + p.MaxAttempts
		j.State, j.Error, j.ErrorCode, j.RunAt, j.UpdatedAt = driver.JobQueued, "", "", s.e.now(), s.e.now()
		j.Detail = det.bytes()
		return tx.RequeueJob(ctx, j)
	})
}

// WorkerConfig configures a Worker. Zero values take the defaults.
type WorkerConfig struct {
	// Tenants to serve; nil serves every tenant (new ones are found as
	// they are created). A tenant named twice is served once. A tenant
	// deleted while the worker runs is no longer served (logged once, at
	// warn: "tenant deleted: no longer served"); a named one is not
	// served again, and once every named tenant was deleted Run returns
	// a *driver.TenantsDeletedError.
	Tenants []string
	// Concurrency bounds the batches of jobs run at once (default 4, at
	// most MaxConcurrency).
	Concurrency int
	// TenantConcurrency bounds one tenant's batches run at once (default
	// Concurrency/2, at least 1; at most Concurrency), so that one
	// tenant's backlog cannot take every slot. A worker that serves one
	// tenant only (Tenants of one name, or single-file mode) has no other
	// tenant to leave slots to: its default is Concurrency.
	TenantConcurrency int
	// Batch bounds the jobs of one batch (default 32; 1 runs every job on
	// its own). The jobs a worker has taken from one tenant run together:
	// each step's runs commit in one transaction for all of them, which
	// is what makes small documents fast (docs/jobs.md, "Batches"). A
	// worker takes up to Concurrency*Batch jobs at once, and up to
	// TenantConcurrency*Batch of one tenant.
	Batch int
	// ShutdownTimeout bounds the wait for running jobs once the context
	// is done (default 10s); jobs still running are then cancelled and
	// delivered again later. A context cancelled with the cause
	// driver.ErrStopNow (context.WithCancelCause) cancels them at once.
	ShutdownTimeout time.Duration
	// Lease is how long a job stays with a worker that died before another
	// worker takes it: a running worker renews the lease of every job it
	// holds, started or waiting (default: SQLite 1m, PostgreSQL 1h, River's
	// rescue of running jobs). On PostgreSQL it also bounds each job's own
	// run: the time its steps run, counted from when they start, not its
	// waits in the worker (for a slot, for the other jobs of its batch); a
	// job stopped by it spends the attempt, as a transient failure with
	// code plugin_failed (docs/jobs.md, "Workers").
	Lease time.Duration
	// Poll is the longest wait for new work (default 1s).
	Poll time.Duration
	// RetryBase is the first retry delay of a transient failure, doubled
	// at every attempt (default 1s).
	RetryBase time.Duration
	// SuspendedWait is how long a job of a suspended tenant waits before
	// it is looked at again (default 30s).
	SuspendedWait time.Duration
	// Name identifies the worker in logs and attempt records (default:
	// random).
	Name string
	// Logger receives structured logs (default: discarded).
	Logger *slog.Logger
	// OnWatch is driver.WorkConfig.OnWatch: a test hook called before
	// each look of the worker's tenant watch at the tenants it serves.
	OnWatch func()
	// OnDelivery, when not nil, is called with each delivery the queue
	// hands the worker, before the worker handles it, and may block (a
	// test hook, to hold a delivery in the worker); the function it
	// returns, when not nil, is called with the delivery's outcome.
	OnDelivery func(driver.Delivery) func(driver.Outcome)
}

// WorkerConfig.Batch's default and largest value, and
// WorkerConfig.Concurrency's largest.
const (
	DefaultBatch   = 32
	MaxBatch       = 1024
	MaxConcurrency = 1024
)

// Worker runs pipeline jobs: the engine's side of the backend's job
// queue. Embed it in a program or run docex worker.
type Worker struct {
	e   *Engine
	cfg WorkerConfig
}

// Worker returns a worker over the engine's backend.
func (e *Engine) Worker(cfg WorkerConfig) *Worker {
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.SuspendedWait <= 0 {
		cfg.SuspendedWait = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	cfg.Batch = min(cfg.Batch, MaxBatch)
	cfg.Concurrency = min(cfg.Concurrency, MaxConcurrency)
	cfg.TenantConcurrency = min(cfg.TenantConcurrency, cfg.Concurrency)
	if cfg.Tenants != nil {
		cfg.Tenants = uniqueIDs(cfg.Tenants)
	}
	if cfg.Name == "" {
		cfg.Name = "worker-" + newID()
	}
	return &Worker{e: e, cfg: cfg}
}

// Run runs jobs until ctx is done, then stops taking jobs, releases at
// once those it took but has not started (delivered again later, no
// attempt spent), lets running ones finish within ShutdownTimeout, and
// returns nil. It stops the same way and returns a
// *driver.TenantsDeletedError (a docex.ErrTenantNotFound) once every
// tenant of WorkerConfig.Tenants was deleted. It returns an error when it
// cannot start (docex.ErrNoSandbox without a sandbox, a backend error, the
// errors of a content store that is not this system's:
// docex.ErrNotInitialized and driver.ErrUnclaimed, docex.ErrInvalidConfig
// and driver.ErrOtherSystem).
func (w *Worker) Run(ctx context.Context) error {
	if w.e.cfg.Sandbox == nil {
		return docex.ErrNoSandbox
	}
	if w.e.closed.Load() {
		return docex.ErrClosed
	}
	// A content store that storage.documents no longer names as this
	// system's refuses the worker at its start (one read of the claim
	// marker, checkClaimOnce), not each job's outputs; one that cannot be
	// read now is checked again at the first write: the worker starts,
	// with a warning in its log.
	if err := w.e.checkClaimOnce(ctx); errors.Is(err, driver.ErrUnclaimed) || errors.Is(err, driver.ErrOtherSystem) || errors.Is(err, docex.ErrNotInitialized) {
		return err
	} else if err != nil && ctx.Err() == nil && w.cfg.Logger != nil {
		w.cfg.Logger.Warn("could not read the content store's claim marker at start; the first job that writes content reads it again", "worker", w.cfg.Name, "error", err.Error())
	}
	wc := driver.WorkConfig{Concurrency: w.cfg.Concurrency, TenantConcurrency: w.cfg.TenantConcurrency}
	if wc.TenantConcurrency <= 0 && (!w.e.cfg.MultiTenancy || len(w.cfg.Tenants) == 1) {
		wc.TenantConcurrency = wc.WithDefaults().Concurrency // one tenant: every slot is its own
	}
	wc = wc.WithDefaults()
	r := &jobRunner{e: w.e, worker: w.cfg.Name, retryBase: w.cfg.RetryBase, suspendedWait: w.cfg.SuspendedWait,
		runs: newFairSlots(runtime.GOMAXPROCS(0)), onDelivery: w.cfg.OnDelivery, log: w.cfg.Logger}
	// Once ctx is done the worker is stopping: a job delivered and not
	// yet in a batch that runs is released (delivered again later, no
	// attempt spent), while the batches running finish within the
	// shutdown timeout.
	r.batches = newBatcher(w.cfg.Batch, wc.Concurrency, wc.TenantConcurrency, ctx.Done(), r.runBatch)
	if w.cfg.Logger != nil {
		// The backend's "worker started" line counts job slots:
		// concurrency x batch.
		// What it serves: the tenants, or in single-file mode (no
		// tenants) the local store.
		serves := []any{"tenants", "all"}
		switch {
		case !w.e.cfg.MultiTenancy:
			serves = []any{"mode", "single-file"}
		case w.cfg.Tenants != nil:
			serves = []any{"tenants", w.cfg.Tenants}
		}
		w.cfg.Logger.Info("worker batches", append(append([]any{"worker", w.cfg.Name}, serves...),
			"concurrency", wc.Concurrency, "tenant_concurrency", wc.TenantConcurrency, "batch", w.cfg.Batch)...)
	}
	return w.e.be.Jobs().Work(ctx, driver.WorkConfig{
		Tenants: w.cfg.Tenants, Concurrency: wc.Concurrency * w.cfg.Batch, TenantConcurrency: wc.TenantConcurrency * w.cfg.Batch,
		Lease: w.cfg.Lease, Poll: w.cfg.Poll, ShutdownTimeout: w.cfg.ShutdownTimeout, WorkerID: w.cfg.Name, Logger: w.cfg.Logger,
		OnWatch: w.cfg.OnWatch,
	}, r.handle)
}

// stateWords says a job's state in a sentence: "has succeeded", "is
// queued", "was cancelled".
func stateWords(state string) string {
	switch state {
	case "succeeded", "failed":
		return "has " + state
	case "cancelled":
		return "was cancelled"
	}
	return "is " + state
}

// JobsStatus summarises a set of jobs.
type JobsStatus struct {
	Total       int `json:"total"`
	Succeeded   int `json:"succeeded"`
	Failed      int `json:"failed"`
	Cancelled   int `json:"cancelled"`
	Pending     int `json:"pending"`
	Running     int `json:"running"`      // of Pending, the jobs a worker has taken
	StepsRun    int `json:"steps_run"`    // steps run by the jobs that ended
	StepsCached int `json:"steps_cached"` // steps taken from the step cache by the jobs that ended
	// StepsFiltered counts the step inputs the steps' accept lists
	// skipped in the jobs that ended.
	StepsFiltered int           `json:"steps_filtered"`
	Failures      []FailedJob   `json:"failures"`
	Elapsed       time.Duration `json:"-"`
}

// FailedJob names a failed or cancelled job's document and why.
type FailedJob struct {
	JobID      string `json:"job_id"`
	DocumentID string `json:"document_id"`
	Step       string `json:"step"`
	ErrorCode  string `json:"error_code"`
	Error      string `json:"error"`
}

// Done reports whether every job is final.
func (j JobsStatus) Done() bool { return j.Pending == 0 }

// JobsStatus reads the state of the given jobs (read action).
func (s *Session) JobsStatus(ctx context.Context, ids []string) (JobsStatus, error) {
	return s.jobsStatus(ctx, ids, nil, nil)
}

// jobsStatus is JobsStatus; final, when not nil, keeps what final jobs
// contribute between calls, so that each is read and decoded once.
// incarnation, when not nil, is the tenant incarnation an earlier call
// read ("" before the first, which sets it): a tenant found under
// another one was deleted (and created again) since, and jobsStatus
// returns a *TenantDeletedError.
func (s *Session) jobsStatus(ctx context.Context, ids []string, final map[string]jobState, incarnation *string) (JobsStatus, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "job.list", "")
	if err != nil {
		return JobsStatus{}, err
	}
	defer st.Close()
	if incarnation != nil {
		switch inc := st.Tenant().Incarnation; {
		case *incarnation == "":
			*incarnation = inc
		case inc != *incarnation:
			return JobsStatus{}, &TenantDeletedError{Tenant: s.uc.TenantID}
		}
	}
	out := JobsStatus{Total: len(ids), Failures: []FailedJob{}}
	// The jobs not known final are read in one statement (a few for long
	// lists): a run --wait over a large basket polls them all.
	var unknown []string
	for _, id := range ids {
		if _, ok := final[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	read := map[string]jobState{}
	if len(unknown) > 0 {
		// Their states first (no detail: the poll of a run over a large
		// basket reads every pending job), then the records of those
		// that ended, decoded once.
		states, err := st.JobStates(ctx, unknown)
		if err != nil {
			return out, err
		}
		var ended []string
		for id, state := range states {
			if driver.JobFinal(state) {
				ended = append(ended, id)
			} else {
				read[id] = jobState{state: state}
			}
		}
		if len(ended) > 0 {
			recs, err := st.JobsByID(ctx, ended)
			if err != nil {
				return out, err
			}
			for _, j := range recs {
				js := jobStateOf(j)
				read[j.ID] = js
				if final != nil && driver.JobFinal(j.State) {
					final[j.ID] = js
				}
			}
		}
	}
	for _, id := range ids {
		j, ok := final[id]
		if !ok {
			if j, ok = read[id]; !ok {
				return out, docex.Errorf(docex.ErrNotFound, "job %q not found", id)
			}
		}
		out.StepsRun += j.stepsRun
		out.StepsCached += j.stepsCached
		out.StepsFiltered += j.stepsFiltered
		switch j.state {
		case driver.JobSucceeded:
			out.Succeeded++
		case driver.JobFailed:
			out.Failed++
			out.Failures = append(out.Failures, *j.failure)
		case driver.JobCancelled:
			out.Cancelled++
			out.Failures = append(out.Failures, *j.failure)
		default:
			out.Pending++
			if j.state == driver.JobRunning {
				out.Running++
			}
		}
	}
	return out, nil
}

// jobState is what one job contributes to a JobsStatus.
type jobState struct {
	state                                string
	stepsRun, stepsCached, stepsFiltered int
	failure                              *FailedJob // failed and cancelled jobs
}

func jobStateOf(j driver.JobRecord) jobState {
	det := jobDetailOf(j)
	js := jobState{state: j.State, stepsRun: det.Progress.StepsRun, stepsCached: det.Progress.StepsCached, stepsFiltered: det.Progress.StepsFiltered}
	if j.State == driver.JobFailed || j.State == driver.JobCancelled {
		js.failure = &FailedJob{JobID: j.ID, DocumentID: j.DocumentID, ErrorCode: j.ErrorCode, Error: j.Error}
		if det.Failure != nil {
			js.failure.Step = det.Failure.Step
		}
	}
	return js
}

// TenantDeletedError: the session's tenant was deleted while WaitJobs
// waited for its jobs (it was read by an earlier poll): its jobs were
// deleted with it, and nothing is left to wait for. Also when a tenant of
// the same id was created again meanwhile, whose jobs are others. It is
// a docex.ErrTenantUnknown (denied).
type TenantDeletedError struct {
	Tenant string
}

func (e *TenantDeletedError) Error() string {
	return fmt.Sprintf("tenant %q was deleted while waiting for its jobs: they were deleted with it", e.Tenant)
}

// Unwrap makes the error a docex.ErrTenantUnknown.
func (e *TenantDeletedError) Unwrap() error { return docex.ErrTenantUnknown }

// WaitJobs polls the jobs every interval until all are final or ctx is
// done, calling progress (when not nil) after each poll; when this
// process's workers settle the last of them, it polls at once. A poll
// that took longer than a fifth of interval stretches the wait before
// the next to four times its own time. It returns the last status, and
// ctx's error when ctx ended first; a *TenantDeletedError when the tenant,
// read by an earlier poll, was deleted meanwhile (or deleted and created
// again). On an error (ctx's included) the status is the last complete
// one read (the zero JobsStatus before the first), never one a failed
// poll left half counted.
func (s *Session) WaitJobs(ctx context.Context, ids []string, interval time.Duration, progress func(JobsStatus)) (JobsStatus, error) {
	start := time.Now()
	final := map[string]jobState{}
	sub := s.e.ends.subscribe(s.uc.TenantID, ids)
	defer s.e.ends.unsubscribe(sub)
	var last JobsStatus
	incarnation := "" // the tenant's, read by the first poll
	for {
		polled := time.Now()
		st, err := s.jobsStatus(ctx, ids, final, &incarnation)
		took := time.Since(polled)
		st.Elapsed = time.Since(start)
		if err != nil && incarnation != "" && ctx.Err() == nil && !errors.As(err, new(*TenantDeletedError)) {
			// It was there at the first poll. A poll that raced the
			// tenant's deletion may fail with whatever it met half way:
			// both stores say ErrTenantUnknown themselves (their reads
			// check the registry, and read it again after a failure),
			// but this check is kept as defence in depth for any other
			// failure. The registry says whether the tenant went.
			if t, terr := s.e.be.Tenant(ctx, s.uc.TenantID); errors.Is(err, docex.ErrTenantUnknown) ||
				errors.Is(terr, docex.ErrTenantNotFound) || terr == nil && t.Incarnation != incarnation {
				err = &TenantDeletedError{Tenant: s.uc.TenantID}
			}
		}
		if err != nil {
			last.Elapsed = st.Elapsed
			return last, err
		}
		last = st
		if progress != nil {
			progress(st)
		}
		if st.Done() {
			return st, nil
		}
		seen := make([]string, 0, len(final))
		for id := range final {
			seen = append(seen, id)
		}
		s.e.ends.known(sub, seen)
		// A poll of many jobs takes long: waiting four times as long
		// keeps the waiter's share of a core under a fifth.
		t := time.NewTimer(max(interval, 4*took))
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ctx.Err()
		case <-t.C:
		case <-sub.wake:
			t.Stop()
		}
	}
}

func parseInt(s string) (int64, error)     { return strconv.ParseInt(s, 10, 64) }
func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

func jsonUnmarshal(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	return json.Unmarshal(b, v)
}

func failureOf(d *jobDetail) JobFailure {
	if d.Failure == nil {
		return JobFailure{Report: RunReport{CapabilityDenials: []string{}}}
	}
	f := *d.Failure
	if f.Report.CapabilityDenials == nil {
		f.Report.CapabilityDenials = []string{}
	}
	return f
}
