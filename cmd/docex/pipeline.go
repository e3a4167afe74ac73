package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/spell"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
)

// pipelineCommands are the commands of pipelines, jobs, workers and
// lineage (docs/jobs.md).
func pipelineCommands() []*command {
	var (
		version   int
		run       runOpts
		jf        engine.JobFilter
		jobBasket string
		page      docex.Page
		wk        workerOpts
		quiet     bool
		prune     pruneOpts
	)
	return []*command{
		{path: "pipeline create", args: "FILE", access: "admin", minArgs: 1, maxArgs: 1,
			summary: "define a pipeline from a TOML file; an existing name gets a new version",
			help: `See docs/jobs.md for the format. Errors name the line and key. Jobs already
enqueued keep the version they were enqueued with.

Example:
  docex pipeline create ocr.toml`,
			plugins: true, run: cmdPipelineCreate},
		{path: "pipeline list", access: "reader", maxArgs: 0,
			summary: "list pipelines (newest versions) and the baskets bound to them",
			help: `Example:
  docex pipeline list --json`,
			run: cmdPipelineList},
		{path: "pipeline show", args: "NAME", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "show a pipeline (its newest version, or --version N)",
			help: `Example:
  docex pipeline show ocr --version 1`,
			flags: func(fs *pflag.FlagSet) {
				fs.IntVar(&version, "version", 0, "version to show (0 or left out: the newest)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdPipelineShow(ctx, c, args[0], version)
			}},
		{path: "pipeline delete", args: "NAME", access: "admin", minArgs: 1, maxArgs: 1,
			summary: "delete a pipeline; its versions stay for jobs and lineage",
			help: `Example:
  docex pipeline delete ocr`,
			run: cmdPipelineDelete},
		{path: "pipeline run", args: "NAME (--doc ID... | --basket BASKET)", access: "writer", minArgs: 1, maxArgs: -1, plugins: true,
			summary: "run a pipeline on documents or on a basket's originals; --wait follows it to the end",
			help: `With --wait: a progress bar on a terminal (none with --json), then a summary
(done, failed, cancelled when a job was, steps skipped thanks to the
cache, time). Exit 6 when a document's job failed or was cancelled; the
summary says which and why (a "failed:" or "cancelled:" line each), and
docex job retry ID runs a failed or cancelled job again. On SQLite, --wait runs a
worker in this process (--worker=no to rely on running workers only); on
PostgreSQL it relies on running workers (--worker=yes runs one here too);
when no worker has taken a job of the run after 10s, it asks on stderr
whether one is running (not with --json). Interrupted (Ctrl-C), it stops the worker it runs
here at once (a job it was running is queued again, no attempt spent),
prints the summary so far and exits 130: the jobs not finished stay queued.
A wait that fails (the tenant suspended meanwhile) prints the summary so
far too, then the error, with its own exit code (4 for a suspension).
Several documents: --doc ID --doc ID, --doc ID,ID or --doc ID ID
(a repeated id counts once).

Examples:
  docex pipeline run ocr --basket invoices --wait
  docex pipeline run ocr --doc 0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b --wait --json`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringArrayVar(&run.docs, "doc", nil, "document ids (repeatable, or comma-separated)")
				fs.StringVar(&run.basket, "basket", "", "every original document of this basket (name or id)")
				fs.BoolVar(&run.wait, "wait", false, "wait until every job is final; exit 6 when one failed or was cancelled")
				run.worker = setString{v: "auto"}
				fs.Var(&run.worker, "worker", "with --wait, run a worker in this process: auto (SQLite only), yes or no")
				fs.BoolVarP(&run.quiet, "quiet", "q", false, "without --wait, print only the jobs' ids, one per line (for scripts)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdPipelineRun(ctx, c, args[0], args[1:], run)
			}},

		{path: "basket bind", args: "BASKET PIPELINE", access: "admin", minArgs: 2, maxArgs: 2,
			summary: "bind a basket to a pipeline: every document added is processed",
			help: `Documents the basket holds already are not processed (it says how to process
them: docex pipeline run PIPELINE --basket BASKET). Binding a basket to the
pipeline it is bound to changes nothing and says so.

Example:
  docex basket bind invoices ocr`,
			run: cmdBasketBind},
		{path: "basket unbind", args: "BASKET", access: "admin", minArgs: 1, maxArgs: 1,
			summary: "remove a basket's pipeline",
			help: `Jobs already queued still run (it says how many). Unbinding a basket that is
not bound changes nothing and says so (exit 0).

Example:
  docex basket unbind invoices`,
			run: cmdBasketUnbind},

		{path: "job list", access: "reader", maxArgs: 0,
			summary: "list jobs, newest first",
			help: `Example:
  docex job list --state failed --pipeline ocr`,
			flags: func(fs *pflag.FlagSet) {
				fs.Var(filterFlag{s: &jf.State}, "state", "queued, running, succeeded, failed or cancelled")
				fs.Var(filterFlag{s: &jf.Pipeline}, "pipeline", "only jobs of this pipeline")
				fs.Var(filterFlag{s: &jf.DocumentID}, "doc", "only jobs of this document")
				fs.Var(filterFlag{s: &jobBasket}, "basket", "only jobs of this basket's documents (name or id)")
				pageFlags(fs, &page)
				fs.BoolVarP(&quiet, "quiet", "q", false, "print only the jobs' ids, one per line (for scripts)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdJobList(ctx, c, jf, jobBasket, page, quiet)
			}},
		{path: "job show", args: "ID", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "show a job: steps, attempts, errors, resource reports",
			help: `Example:
  docex job show JOB_ID`,
			run: cmdJobShow},
		{path: "job retry", args: "ID", access: "writer", minArgs: 1, maxArgs: 1,
			summary: "queue a failed or cancelled job again; completed steps are kept",
			help: `Example:
  docex job retry JOB_ID`,
			run: cmdJobRetry},
		{path: "job cancel", args: "ID", access: "writer", minArgs: 1, maxArgs: 1,
			summary: "cancel a queued or running job",
			help: `Example:
  docex job cancel JOB_ID`,
			run: cmdJobCancel},
		{path: "job prune", access: "admin", maxArgs: 0,
			summary: "delete finished jobs that ended more than a duration ago; lineage and derived documents stay",
			help: `Deletes the jobs that are succeeded, failed or cancelled (or those of --state)
and were last updated (ended) more than --older-than ago, with their step
records (completion keys). A queued or running job is never deleted. What
the jobs produced stays: derived documents, metadata, lineage edges (their
job_id then names a job that no longer exists), the step cache (running the
pipeline on the same document again takes the steps from it) and the audit
log. A pruned job is not found (job show, job retry: exit 3).

It deletes 1,000 jobs per transaction: interrupted (Ctrl-C, exit 130), what
it deleted stays deleted, and running it again deletes the rest. The tenant's
audit log gets one job.prune entry with the counts and the cutoff, written
with the first transaction (counting what the prune sets out to delete), so
a prune killed part-way leaves it.
--older-than takes a Go duration (720h, 90m) or whole days (30d); it must be
more than zero. --dry-run counts what would be deleted, deleting nothing.
On SQLite the file does not shrink: the freed pages are reused by later
writes (docs/jobs.md, "Retention", says how to reclaim them).

Examples:
  docex job prune --older-than 30d --dry-run
  docex job prune --older-than 720h --state succeeded --json`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringVar(&prune.olderThan, "older-than", "", "delete jobs that ended more than this long ago: a Go duration (720h) or days (30d); required")
				fs.StringArrayVar(&prune.states, "state", nil, "only jobs of this final state: succeeded, failed or cancelled (repeatable; default: all three)")
				fs.BoolVar(&prune.dryRun, "dry-run", false, "delete nothing: count what would be deleted")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdJobPrune(ctx, c, prune)
			}},

		{path: "worker", access: "operator", maxArgs: 0, plugins: true,
			summary: "run pipeline jobs until SIGINT/SIGTERM; logs JSON lines on stderr",
			help: `Serves --tenants a,b or --all (the default: every tenant, also those created
later; the local store in single-file mode). A tenant deleted while it runs
is no longer served (one log line, "tenant deleted: no longer served"); a
worker of --tenants stops once every one of them was deleted, with an error
naming them (exit 3), as it does not start with a tenant that does not
exist. Several workers, on one machine or many, share the work (docs/scale-out.md). On SIGINT or SIGTERM it takes
no new job, releases those it took but has not started (they run again
later), lets running ones finish within --shutdown-timeout (then releases
them too) and exits 0; so it does when the signal comes while it starts
(a log line, "worker stopped while starting", says what was cut short).
A second signal exits 130 at once, not waiting for running jobs: they
run again once their lease expired (--lease).
The jobs a worker takes
from one tenant run in batches of up to --batch: each step's outputs commit
in one transaction for the whole batch (docs/jobs.md, "Batches").

Example:
  docex worker --all --concurrency 8`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringSliceVar(&wk.tenants, "tenants", nil, "serve only these tenants (comma-separated; spaces around a name are ignored)")
				fs.VarPF(&wk.all, "all", "", "serve every tenant, also those created later (the default; --all=false needs --tenants; single-file mode serves its one store)").NoOptDefVal = "true"
				fs.IntVar(&wk.concurrency, "concurrency", 4, "batches of jobs run at once, 1 to 1024")
				fs.IntVar(&wk.tenantConcurrency, "tenant-concurrency", 0, "batches of one tenant run at once, at most --concurrency (default concurrency/2; all of --concurrency when serving one tenant or in single-file mode)")
				fs.IntVar(&wk.batch, "batch", engine.DefaultBatch, "jobs of one tenant run together, each step committed once for all, 1 to 1024 (1: each job alone)")
				fs.DurationVar(&wk.shutdown, "shutdown-timeout", 10*time.Second, "how long running jobs may finish after a stop signal")
				fs.DurationVar(&wk.lease, "lease", 0, "how long a killed worker's jobs wait before another worker takes them (a running worker renews the lease of those it holds); on PostgreSQL also the longest a job may run, counted from when its steps start, its waits in the worker not counted (0 or left out: the backend's default, SQLite 1m, PostgreSQL 1h)")
			},
			run: func(ctx context.Context, c *cli, args []string) error { return cmdWorker(ctx, c, wk) }},

		{path: "doc lineage", args: "ID", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "show what a document was derived from and what was derived from it",
			help: `An edge whose step's output had the content of a document the basket held
already is marked "(deduplicated onto an existing document)" ("deduplicated"
in --json): it did not create that document, which doc delete --cascade of
the source keeps and pipeline run --basket takes as an original.
The text draws the same relation made by several jobs (a pipeline run twice
on one document: same documents, pipeline, version, step, plugin, module and
parameters) once, as the first job made it; --json lists every job's edge.

Example:
  docex doc lineage DOC_ID --json`,
			run: cmdDocLineage},
	}
}

// idleRunHint is how long pipeline run --wait without a worker of its own
// waits for a worker to take one of its jobs before it asks whether a
// worker is running.
const idleRunHint = 10 * time.Second

// idleHintKey is the context key of an idleHint: tests wait less than
// idleRunHint, and learn when the question is due (--json prints nothing).
type idleHintKey struct{}

// idleHint replaces idleRunHint for a run whose context carries one.
type idleHint struct {
	after time.Duration
	due   func() // called once, when the question is due
}

// idleHintOf returns the idleHint of ctx, or idleRunHint's.
func idleHintOf(ctx context.Context) idleHint {
	if h, ok := ctx.Value(idleHintKey{}).(idleHint); ok {
		return h
	}
	return idleHint{after: idleRunHint, due: func() {}}
}

// workerStartError is the error of pipeline run's own worker, which
// stopped without running the jobs.
type workerStartError struct{ err error }

func (e *workerStartError) Error() string { return e.err.Error() }
func (e *workerStartError) Unwrap() error { return e.err }

type runOpts struct {
	docs   []string
	basket string
	wait   bool
	worker setString
	quiet  bool
}

// setString is a string flag that remembers whether it was given.
type setString struct {
	v   string
	set bool
}

func (f *setString) String() string     { return f.v }
func (f *setString) Set(v string) error { f.v, f.set = v, true; return nil }
func (f *setString) Type() string       { return "string" }

type workerOpts struct {
	tenants           []string
	all               givenBool
	concurrency       int
	tenantConcurrency int
	batch             int
	shutdown          time.Duration
	lease             time.Duration
}

// givenBool is a boolean flag that remembers whether it was given
// (--all=false is not --all left out).
type givenBool struct{ val, given bool }

func (b *givenBool) String() string { return strconv.FormatBool(b.val) }
func (b *givenBool) Type() string   { return "bool" }
func (b *givenBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.val, b.given = v, true
	return nil
}

func cmdPipelineCreate(ctx context.Context, c *cli, args []string) error {
	// The configuration first: without it nothing can be done, whatever
	// the file (one error, not_initialized, where a missing file and a
	// missing docex.yaml were both reported).
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	src, rerr := readPipelineFile(args[0])
	if rerr != nil { // refused before the engine saw it: audited all the same
		return s.RefusePipeline(ctx, rerr)
	}
	p, err := s.CreatePipeline(ctx, src)
	if err != nil {
		return err
	}
	return c.emit(p, func(w io.Writer) {
		writef(w, "created pipeline %s version %d (%d steps)\n", p.Name, p.Version, len(p.Steps))
	})
}

// readPipelineFile reads pipeline create's FILE: a regular file of at
// most engine.MaxPipelineBytes (a device such as /dev/zero, or a huge
// file, is never read whole: one byte past the limit is read).
func readPipelineFile(path string) ([]byte, error) {
	f, _, err := openFileArg(path)
	if err != nil {
		return nil, err
	}
	src, err := io.ReadAll(io.LimitReader(f, engine.MaxPipelineBytes+1))
	f.Close()
	if err != nil {
		return nil, fileErr(docex.ErrInvalid, "cannot read "+path, err)
	}
	if len(src) > engine.MaxPipelineBytes {
		return nil, docex.Errorf(docex.ErrTooLarge, "%s is larger than %d bytes, the most a pipeline definition may be", path, engine.MaxPipelineBytes)
	}
	return src, nil
}

func cmdPipelineList(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	ps, err := s.Pipelines(ctx)
	if err != nil {
		return err
	}
	return c.emit(ps, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tVERSION\tSTEPS\tBASKETS\tDESCRIPTION")
		for _, p := range ps {
			writef(w, "%s\t%d\t%s\t%s\t%s\n", p.Name, p.Version, stepChain(p.Pipeline), basketNames(ctx, s, p.Baskets), p.Description)
		}
	})
}

// basketNames is the names of the baskets ids (an id when its basket
// cannot be read), comma-separated; "-" for none. For text output only.
func basketNames(ctx context.Context, s *engine.Session, ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id
		if b, err := s.Basket(ctx, id); err == nil {
			names[i] = b.Name
		}
	}
	return strings.Join(names, ",")
}

func stepChain(p engine.Pipeline) string {
	var parts []string
	for _, s := range p.Steps {
		parts = append(parts, s.Name)
	}
	return strings.Join(parts, ",")
}

func cmdPipelineShow(ctx context.Context, c *cli, name string, version int) error {
	if version < 0 {
		return docex.Errorf(errUsage, "--version %d: want a version number (1, 2, ...), or 0 for the newest", version)
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	p, err := s.Pipeline(ctx, name, version)
	if err != nil {
		return unknownPipelineHint(ctx, s, err, name)
	}
	return c.emit(p, func(w io.Writer) {
		writef(w, "pipeline %s version %d, created %s by %s", p.Name, p.Version, p.CreatedAt.Format(time.RFC3339), p.CreatedBy)
		if p.Deleted {
			fmt.Fprint(w, " (deleted)")
		}
		if p.Description != "" {
			writef(w, "\ndescription: %s", p.Description)
		}
		writef(w, "\nmax attempts %d, max derived %d, bound baskets: %s\n\nSTEP\tPLUGIN\tINPUT\tACCEPT\tPARAMS\n", p.MaxAttempts, p.MaxDerived, basketNames(ctx, s, p.Baskets))
		for _, st := range p.Steps {
			writef(w, "%s\t%s\t%s\t%s\t%s\n", st.Name, st.Plugin, st.Input, strings.Join(st.Accept, ","), st.CanonicalParams())
		}
	})
}

// unknownPipelineHint gives err, when it says that pipeline name does not
// exist (not a document or basket), the likely name or the command that
// lists the pipelines.
func unknownPipelineHint(ctx context.Context, s *engine.Session, err error, name string) error {
	if de, ok := errors.AsType[*engine.DeletedPipelineError](err); ok {
		// Not a typo: the name was a pipeline. Its versions stay.
		if de.Already {
			return withHint(err, fmt.Sprintf("nothing to delete; docex pipeline show %s shows its last version (its versions stay for its jobs and lineage); docex pipeline list shows the tenant's pipelines", name))
		}
		return withHint(err, fmt.Sprintf("docex pipeline create FILE defines %s again, as a new version; docex pipeline list shows the tenant's pipelines", name))
	}
	if !errors.Is(err, docex.ErrNotFound) || !strings.HasPrefix(err.Error(), fmt.Sprintf("pipeline %q not found", name)) {
		return err
	}
	var names []string
	if ps, lerr := s.Pipelines(ctx); lerr == nil {
		for _, p := range ps {
			names = append(names, p.Name)
		}
	}
	if best, ok := spell.Closest(name, names); ok {
		return withHint(err, fmt.Sprintf("did you mean %q? docex pipeline list shows the tenant's pipelines", best))
	}
	return withHint(err, "docex pipeline list shows the tenant's pipelines; docex pipeline create FILE defines one")
}

func cmdPipelineDelete(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	if err := s.DeletePipeline(ctx, args[0]); err != nil {
		return unknownPipelineHint(ctx, s, err, args[0])
	}
	return c.emit(pipelineDeleted{Name: args[0], Deleted: true}, func(w io.Writer) { writef(w, "deleted pipeline %s\n", args[0]) })
}

// pipelineDeleted is the JSON result of pipeline delete (docs/json.md,
// Deleted).
type pipelineDeleted struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

func cmdBasketBind(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	b, err := s.ResolveBasketFor(ctx, "basket.bind", args[0], args[1])
	if err != nil {
		return err
	}
	prev, err := s.BindBasket(ctx, b.ID, args[1])
	if err != nil {
		return unknownPipelineHint(ctx, s, err, args[1])
	}
	return c.emit(map[string]any{"basket": b.Name, "basket_id": b.ID, "pipeline": args[1]}, func(w io.Writer) {
		if prev == args[1] {
			writef(w, "basket %s is already bound to pipeline %s: nothing changed\n", b.Name, args[1])
			return
		}
		writef(w, "basket %s is bound to pipeline %s: every document added is processed\n", b.Name, args[1])
		if b.DocumentCount > 0 {
			writef(w, "documents added before the binding are not processed by it (the basket holds %d, counting derived ones); to process its original documents: docex pipeline run %s --basket %s\n", b.DocumentCount, args[1], b.Name)
		}
	})
}

func cmdBasketUnbind(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	b, err := s.ResolveBasketFor(ctx, "basket.unbind", args[0], "")
	if err != nil {
		return err
	}
	prev, err := s.UnbindBasket(ctx, b.ID)
	if err != nil {
		return err
	}
	// Jobs already queued still run: say how many (up to a page's worth)
	// and how to see or stop them.
	queued := 0
	if !c.g.json && prev != "" {
		js, err := s.Jobs(ctx, engine.JobFilter{State: "queued", Pipeline: prev, BasketID: b.ID}, docex.Page{Limit: docex.MaxPageLimit})
		if err != nil {
			return err
		}
		queued = len(js)
	}
	return c.emit(map[string]any{"basket": b.Name, "basket_id": b.ID, "pipeline": ""}, func(w io.Writer) {
		if prev == "" {
			writef(w, "basket %s was not bound to a pipeline: nothing changed\n", b.Name)
			return
		}
		writef(w, "basket %s has no pipeline any more\n", b.Name)
		if queued > 0 {
			more := ""
			if queued == docex.MaxPageLimit {
				more = " or more"
			}
			writef(w, "%d%s job(s) of pipeline %s on its documents are still queued and will run (docex job list --basket %s --state queued; docex job cancel ID stops one)\n", queued, more, prev, b.Name)
		}
	})
}

// runSummary is the machine summary of pipeline run.
type runSummary struct {
	Pipeline    string   `json:"pipeline"`
	Jobs        []string `json:"jobs"`
	Waited      bool     `json:"waited"`
	Total       int      `json:"total"`
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	Cancelled   int      `json:"cancelled"`
	Pending     int      `json:"pending"`
	StepsRun    int      `json:"steps_run"`
	StepsCached int      `json:"steps_cached"`
	// StepsFiltered: step inputs the steps' accept lists skipped.
	StepsFiltered int                `json:"steps_filtered"`
	ElapsedMS     float64            `json:"elapsed_ms"`
	Failures      []engine.FailedJob `json:"failures"`
}

// cmdPipelineRun runs pipeline name; more holds the words after --doc's
// first id ("--doc ID ID..."): more document ids.
func cmdPipelineRun(ctx context.Context, c *cli, name string, more []string, o runOpts) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil && !errors.Is(err, docex.ErrInterrupted) {
			// Interrupted before the jobs' ids were known: the interrupt
			// may have come after their commit. Say where to look rather
			// than guess.
			err = docex.Errorf(docex.ErrInterrupted, "interrupted while queuing the run: its jobs may have been queued (docex job list --pipeline %s shows them)", name)
		}
	}()
	if len(more) > 0 && len(o.docs) == 0 {
		return docex.Errorf(errUsage, "usage: docex pipeline run NAME (--doc ID... | --basket BASKET): %q is not a flag (see docex help pipeline run)", more[0])
	}
	var docs []string
	for _, d := range append(append([]string(nil), o.docs...), more...) {
		docs = append(docs, strings.Split(d, ",")...)
	}
	o.docs = docs
	if (len(o.docs) == 0) == (o.basket == "") {
		return docex.Errorf(errUsage, "pipeline run: give --doc ID... or --basket BASKET (one of the two)")
	}
	if o.quiet && o.wait {
		return docex.Errorf(errUsage, "pipeline run: -q prints the enqueued jobs' ids, without --wait (with --wait, --json gives them)")
	}
	switch o.worker.v {
	case "auto", "yes", "no":
	default:
		return docex.Errorf(errUsage, "--worker %q: want auto, yes or no", o.worker.v)
	}
	if o.worker.set && !o.wait {
		return docex.Errorf(errUsage, "pipeline run: --worker runs a worker while --wait follows the jobs: add --wait, or start one with docex worker")
	}
	sys, err := c.system(ctx)
	if err != nil {
		return err
	}
	s := sys.eng.As(c.userContext())
	target := engine.RunTarget{DocumentIDs: o.docs}
	if o.basket != "" {
		b, err := s.ResolveBasketFor(ctx, "pipeline.run", o.basket, name)
		if err != nil {
			return err
		}
		target.BasketID = b.ID
	}
	start := time.Now()
	ids, err := s.RunPipeline(ctx, name, target)
	if err != nil {
		return unknownPipelineHint(ctx, s, err, name)
	}
	sum := runSummary{Pipeline: name, Jobs: ids, Total: len(ids), Pending: len(ids), Failures: []engine.FailedJob{}}
	if !o.wait {
		return c.emit(sum, func(w io.Writer) {
			if o.quiet {
				for _, id := range ids {
					writef(w, "%s\n", id)
				}
				return
			}
			writef(w, "enqueued %d job(s) of pipeline %s (docex job list --pipeline %s)\n", len(ids), name, name)
			here := "" // on SQLite, --wait runs a worker in this process
			if sys.file.Database.Type == config.SQLiteBackend {
				here = " runs them here and"
			}
			writef(w, "a worker runs them (docex worker); with --wait, pipeline run%s follows them to the end\n", here)
		})
	}
	inProcess := o.worker.v == "yes" || (o.worker.v == "auto" && sys.file.Database.Type == config.SQLiteBackend)
	stopWorker := func(error) {}
	// A worker of this process that cannot start (a content store that
	// is not this system's) ends the wait with its error.
	waitCtx, workerFailed := context.WithCancelCause(ctx)
	defer workerFailed(nil)
	if inProcess {
		// When the wait ends, the jobs it is running (of other runs) may
		// finish within its shutdown timeout; when the wait is
		// interrupted, it stops at once (driver.ErrStopNow): the jobs it
		// runs are released, queued again with no attempt spent.
		wctx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
		werr := make(chan error, 1)
		go func() {
			err := sys.eng.Worker(engine.WorkerConfig{Tenants: []string{c.g.tenant}, Poll: 100 * time.Millisecond}).Run(wctx)
			if err != nil {
				workerFailed(&workerStartError{err})
			}
			werr <- err
		}()
		var once sync.Once
		stopWorker = func(cause error) { once.Do(func() { stop(cause); <-werr }) }
		defer stopWorker(nil)
	}
	bar := c.progressBar(len(ids))
	hinted, hint := inProcess, idleHintOf(ctx)
	st, err := s.WaitJobs(waitCtx, ids, 100*time.Millisecond, func(st engine.JobsStatus) {
		if !hinted && time.Since(start) > hint.after && st.Running+st.Succeeded+st.Failed+st.Cancelled == 0 {
			hinted = true // once: the jobs wait for a worker of another process
			// A note (not with --json, whose stderr is the error alone).
			c.progress("\ndocex: no worker has taken a job of this run after %v: is a worker running for tenant %s? (docex worker, or pipeline run --worker=yes)", hint.after, c.g.tenant)
			hint.due()
		}
		bar.show(st)
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(c.stderr)
	}
	if we, ok := errors.AsType[*workerStartError](context.Cause(waitCtx)); ok && err != nil && ctx.Err() == nil {
		err = we.err
	}
	if err != nil {
		// Interrupted, or the wait failed (the tenant suspended meanwhile,
		// say, or this process's worker could not start): the summary as
		// far as it got (waited false), so that the
		// job ids are not lost, then the error. The worker of this process
		// stops first, so that the summary is what it left; read again
		// when the tenant can still be read, else the last poll's.
		stopWorker(driver.ErrStopNow)
		if now, err := s.JobsStatus(context.WithoutCancel(ctx), ids); err == nil {
			st = now
		}
		if st.Total == 0 { // not polled yet
			st = engine.JobsStatus{Total: len(ids), Pending: len(ids), Failures: []engine.FailedJob{}}
		}
		sum.finish(st, false, time.Since(start))
		if perr := c.emit(sum, func(w io.Writer) { printRunSummary(w, sum, nil) }); perr != nil {
			return perr
		}
		if ctx.Err() != nil {
			return docex.Errorf(docex.ErrInterrupted, "interrupted while waiting: the jobs not finished stay queued and run when a worker takes them (docex job list --pipeline %s)", name)
		}
		if deletedDuringWait(err) {
			// The jobs are gone with the tenant: nothing stays queued, and
			// no command of the tenant can list them.
			var de *engine.TenantDeletedError
			if !errors.As(err, &de) {
				err = &engine.TenantDeletedError{Tenant: c.g.tenant}
			}
			return withHint(fmt.Errorf("stopped waiting for the jobs of pipeline %s: %w", name, err),
				"nothing is left to wait for: the tenant's documents and jobs were deleted with it (an operator lists the tenants with docex tenant list)")
		}
		return fmt.Errorf("stopped waiting for the jobs of pipeline %s: %w; the jobs not finished stay queued (docex job list --pipeline %s)", name, err, name)
	}
	sum.finish(st, true, time.Since(start))
	names := map[string]string{} // the named failures' document names
	named := []engine.FailedJob{}
	if len(sum.Failures) > 0 {
		named = append(named, firstFailure(sum)) // the error's message names it, with --json too
	}
	if !c.g.json {
		named = append(named, sum.Failures[:min(len(sum.Failures), maxFailureLines)]...)
	}
	for _, f := range named {
		if _, ok := names[f.DocumentID]; ok {
			continue
		}
		if d, err := s.Document(ctx, f.DocumentID); err == nil {
			names[f.DocumentID] = d.Name
		}
	}
	if perr := c.emit(sum, func(w io.Writer) { printRunSummary(w, sum, names) }); perr != nil {
		return perr
	}
	if sum.Failed+sum.Cancelled > 0 {
		return runFailed(sum, names, c.g)
	}
	return nil
}

// deletedDuringWait reports whether err, a wait's error for the jobs a
// run of this command enqueued, says that the tenant was deleted
// meanwhile: the engine's *engine.TenantDeletedError, or an unknown
// tenant or job found by the wait's first poll (the run had just
// committed them, and jobs are deleted only with their tenant).
func deletedDuringWait(err error) bool {
	return errors.As(err, new(*engine.TenantDeletedError)) || errors.Is(err, docex.ErrTenantUnknown) || errors.Is(err, docex.ErrNotFound)
}

// runFailed returns the error of a waited run some of whose jobs failed
// or were cancelled: exit 6 (plugin_failed), though the step's plugin may
// not have run at all (damaged content, a plugin removed, a job
// cancelled). The message names the pipeline, the counts and the first
// failed job (else the first cancelled one), the hint the commands that
// show and run it again.
func runFailed(sum runSummary, names map[string]string, g globals) error {
	f := firstFailure(sum)
	doc := "document " + f.DocumentID
	if name := names[f.DocumentID]; name != "" {
		doc = fmt.Sprintf("%s (%s)", name, f.DocumentID)
	}
	var counts string
	switch {
	case sum.Cancelled == 0:
		counts = fmt.Sprintf("%d of %d document(s) failed", sum.Failed, sum.Total)
	case sum.Failed == 0:
		counts = fmt.Sprintf("%d of %d document(s) cancelled", sum.Cancelled, sum.Total)
	default:
		counts = fmt.Sprintf("%d of %d document(s) failed, %d cancelled", sum.Failed, sum.Total, sum.Cancelled)
	}
	err := docex.Errorf(docex.ErrPluginFailed, "pipeline %s: %s; first: %s: %s", sum.Pipeline, counts, doc, failureText(f))
	var hint string
	if jobCancelled(f) {
		hint = fmt.Sprintf("docex job retry %s runs the cancelled job again (completed steps are kept); docex job show %s shows it", f.JobID, f.JobID)
	} else {
		hint = fmt.Sprintf("docex job show %s shows the failed step, its error and resource report; once the cause is fixed, docex job retry %s runs it again (completed steps are kept)", f.JobID, f.JobID)
		switch f.ErrorCode {
		case docex.ErrCorrupt.Code():
			hint = hintFor(docex.ErrCorrupt, g) + "; " + hint
		case docex.ErrTooLarge.Code():
			// A retry keeps the job's pipeline version, so its max_derived:
			// it would fail the same way.
			hint = fmt.Sprintf("docex job show %s shows the failed step; a retry keeps the job's pipeline version and fails the same way: raise max_derived in pipeline %s, create it again (docex pipeline create FILE makes a new version) and run it on the document (docex pipeline run %s --doc %s)", f.JobID, sum.Pipeline, sum.Pipeline, f.DocumentID)
		}
	}
	switch {
	case sum.Failed > 0 && sum.Cancelled > 0:
		hint += fmt.Sprintf("; docex job list --pipeline %s --state failed lists the failed jobs (--state cancelled, the cancelled ones)", sum.Pipeline)
	case sum.Failed > 1:
		hint += fmt.Sprintf("; docex job list --pipeline %s --state failed lists the failed jobs", sum.Pipeline)
	case sum.Cancelled > 1:
		hint += fmt.Sprintf("; docex job list --pipeline %s --state cancelled lists the cancelled jobs", sum.Pipeline)
	}
	return withHint(err, hint)
}

// firstFailure is the failure a waited run's error names: the first
// failed job, else the first cancelled one. sum.Failures is not empty.
func firstFailure(sum runSummary) engine.FailedJob {
	if sum.Failed > 0 {
		for _, x := range sum.Failures {
			if !jobCancelled(x) {
				return x
			}
		}
	}
	return sum.Failures[0]
}

// jobCancelled reports whether f is a cancelled job's (a failed job's
// error code is never "cancelled").
func jobCancelled(f engine.FailedJob) bool { return f.ErrorCode == driver.JobCancelled }

// barText is the progress bar's description: the jobs done, failed and,
// when there are any, cancelled.
func barText(done, failed, cancelled int) string {
	s := fmt.Sprintf("done %d, failed %d", done, failed)
	if cancelled > 0 {
		s += fmt.Sprintf(", cancelled %d", cancelled)
	}
	return s
}

// finish records the final status of the jobs and the time taken
// (milliseconds at microsecond precision, docs/json.md rule 4).
func (s *runSummary) finish(st engine.JobsStatus, waited bool, elapsed time.Duration) {
	s.Waited = waited
	s.Succeeded, s.Failed, s.Cancelled, s.Pending = st.Succeeded, st.Failed, st.Cancelled, st.Pending
	s.StepsRun, s.StepsCached, s.StepsFiltered, s.ElapsedMS, s.Failures = st.StepsRun, st.StepsCached, st.StepsFiltered, docex.Milliseconds(elapsed), st.Failures
}

// maxFailureLines bounds the failures the human run summary lists (the
// JSON summary has them all).
const maxFailureLines = 20

// printRunSummary writes the human run summary; names are the documents'
// names by id, for the failures it lists (an id without one is printed
// alone: a deleted document).
func printRunSummary(w io.Writer, s runSummary, names map[string]string) {
	writef(w, "pipeline %s: %d document(s): %d done, %d failed", s.Pipeline, s.Total, s.Succeeded, s.Failed)
	if s.Cancelled > 0 {
		writef(w, ", %d cancelled", s.Cancelled)
	}
	if s.Pending > 0 { // an interrupted wait
		writef(w, ", %d pending", s.Pending)
	}
	writef(w, ", %d step run(s), %d skipped (cache)", s.StepsRun, s.StepsCached)
	if s.StepsFiltered > 0 {
		// Inputs a step's accept list left out: a run where they all
		// were would otherwise read as done with nothing run.
		writef(w, ", %d filtered (accept)", s.StepsFiltered)
	}
	writef(w, ", %s\n", time.Duration(s.ElapsedMS*float64(time.Millisecond)).Round(time.Millisecond).String())
	for i, f := range s.Failures {
		if i == maxFailureLines {
			state := "--state failed"
			switch {
			case s.Failed == 0:
				state = "--state cancelled"
			case s.Cancelled > 0:
				state = "--state failed or --state cancelled"
			}
			writef(w, "... and %d more (docex job list %s --pipeline %s; --json lists them all)\n", len(s.Failures)-i, state, s.Pipeline)
			break
		}
		doc := f.DocumentID
		if n := names[doc]; n != "" {
			doc = fmt.Sprintf("%s (%s)", n, doc)
		}
		state := "failed"
		if jobCancelled(f) {
			state = "cancelled"
		}
		writef(w, "%s: %s, job %s: %s\n", state, doc, f.JobID, failureText(f))
	}
}

// failureText says why a job failed: its error, which names the step and
// its input ("step pick on ID: ..."), or the step and the error when it
// does not (a cancelled job).
func failureText(f engine.FailedJob) string {
	if f.Step == "" || strings.HasPrefix(f.Error, "step "+f.Step+" ") {
		return f.Error
	}
	return fmt.Sprintf("step %s: %s", f.Step, f.Error)
}

// progressBar returns a bar on stderr when it is a terminal and --json is
// not given, else nil.
func (c *cli) progressBar(total int) *runBar {
	if c.g.json || !terminal(c.stderr) {
		return nil
	}
	return newRunBar(c.stderr, total)
}

// runBar is pipeline run --wait's progress bar: its label (done,
// failed, cancelled) and its count always from the same poll.
type runBar struct {
	*progressbar.ProgressBar
	shown time.Time
}

// runBarEvery bounds how often the bar is drawn.
const runBarEvery = 100 * time.Millisecond

func newRunBar(w io.Writer, total int) *runBar {
	return &runBar{ProgressBar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(barText(0, 0, 0)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("docs"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
	)}
}

// show draws st: the label, then the count, each of which draws the bar
// (the library's own throttle would drop the second, leaving the count
// one poll behind the label), at most every runBarEvery but the last
// state always. A nil bar shows nothing.
func (b *runBar) show(st engine.JobsStatus) {
	if b == nil || (time.Since(b.shown) < runBarEvery && !st.Done()) {
		return
	}
	b.shown = time.Now()
	b.Describe(barText(st.Succeeded, st.Failed, st.Cancelled))
	_ = b.Set(st.Succeeded + st.Failed + st.Cancelled)
}

func cmdJobList(ctx context.Context, c *cli, f engine.JobFilter, basket string, page docex.Page, quiet bool) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	if basket != "" {
		b, err := resolveBasket(ctx, s, basket)
		if err != nil {
			return err
		}
		f.BasketID = b.ID
	}
	js, err := s.Jobs(ctx, f, page)
	if err != nil {
		return err
	}
	if len(js) == 0 && f.Pipeline != "" {
		if err := checkPipelineName(ctx, s, f.Pipeline); err != nil {
			return err
		}
	}
	if !quiet {
		defer c.morePages(page, len(js), -1, "jobs")
	}
	return c.emit(js, func(w io.Writer) {
		if quiet {
			for _, j := range js {
				writef(w, "%s\n", j.ID)
			}
			return
		}
		fmt.Fprintln(w, "ID\tPIPELINE\tDOCUMENT\tSTATE\tATTEMPTS\tERROR")
		for _, j := range js {
			writef(w, "%s\t%s v%d\t%s\t%s\t%d/%d\t%s\n", j.ID, j.Pipeline, j.Version, j.DocumentID, j.State, j.Attempts, j.MaxAttempts, oneLine(j.Error, 80))
		}
	})
}

// filterFlag is a listing's filter flag (job list --state): a string
// that may not be given empty, which would filter nothing (as
// job prune --state "" is refused). instead, when set, says what leaving
// the flag out does, for a flag that is not a filter.
type filterFlag struct {
	s       *string
	instead string
}

func (f filterFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f filterFlag) Type() string { return "string" }

// Set returns an error for "": leave the flag out to filter nothing.
func (f filterFlag) Set(s string) error {
	if s == "" {
		instead := f.instead
		if instead == "" {
			instead = "filter nothing"
		}
		return fmt.Errorf("must not be empty (to %s, leave the flag out)", instead)
	}
	*f.s = s
	return nil
}

// checkPipelineName returns docex.ErrNotFound, with the likely name, when
// name never was a pipeline of the tenant: an empty listing of such a name
// is most likely a typo. A pipeline's versions are never removed (a
// deleted pipeline's stay, with their jobs), so a name with jobs always
// has a version.
func checkPipelineName(ctx context.Context, s *engine.Session, name string) error {
	if _, err := s.Pipeline(ctx, name, 0); err != nil {
		return unknownPipelineHint(ctx, s, err, name)
	}
	return nil
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func cmdJobShow(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	j, err := s.Job(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(j, func(w io.Writer) {
		attempt := fmt.Sprintf("attempt %d of %d", j.Attempts, j.MaxAttempts)
		if j.State == driver.JobRunning && j.Attempts == 0 {
			// Claimed by a worker whose attempt has not started yet.
			attempt = fmt.Sprintf("attempt 1 of %d starting", j.MaxAttempts)
		}
		writef(w, "job %s: pipeline %s v%d on document %s, %s (%s), run as %s %v\n",
			j.ID, j.Pipeline, j.Version, j.DocumentID, j.State, attempt, j.UserID, j.Roles)
		if j.Error != "" {
			// A cancelled job's error begins "cancelled: ": said once.
			writef(w, "error (%s): %s\n", j.ErrorCode, strings.TrimPrefix(j.Error, j.ErrorCode+": "))
			if j.ErrorCode == docex.ErrCorrupt.Code() {
				writef(w, "hint: %s\n", hintFor(docex.ErrCorrupt, c.g))
			}
		}
		// The duration is the attempts' in the history (an attempt not
		// ended has none), not the steps'.
		p := j.Progress
		writef(w, "steps: %d run, %d from cache, %d filtered; %d derived; attempts: %.3f ms\n", p.StepsRun, p.StepsCached, p.StepsFiltered, p.Derived, p.DurationMS)
		if f := j.Failure; f.Step != "" {
			writef(w, "failed step %s on %s: %.1f ms, %d instructions, peak memory %d bytes, %d host calls%s\n",
				f.Step, f.InputID, f.Report.DurationMS, f.Report.Instructions, f.Report.PeakMemoryBytes, f.Report.HostCalls, coldStartText(f.Report))
		}
		fmt.Fprintln(w, "\nSTEP\tINPUT\tOUTCOME\tOUTPUTS\tMS")
		for _, st := range j.Steps {
			ms := ""
			if st.Outcome == engine.StepRan {
				ms = fmt.Sprintf("%.1f", st.Report.DurationMS)
			}
			writef(w, "%s\t%s\t%s\t%d\t%s\n", st.Step, st.InputID, st.Outcome, len(st.Outputs), ms)
		}
		for i, a := range j.History {
			if i == 1 && j.AttemptsOmitted > 0 {
				// The history keeps the first and the most recent attempts.
				first := j.History[0].N + 1
				writef(w, "attempts %d to %d left out\n", first, first+j.AttemptsOmitted-1)
			}
			// An attempt not ended is running, or was lost by a killed
			// worker (its error says so once the job is delivered again).
			line := fmt.Sprintf("attempt %d: %s", a.N, a.StartedAt.Format(time.RFC3339))
			switch {
			case !a.EndedAt.IsZero():
				line += fmt.Sprintf(", %.3f ms", a.DurationMS)
			case a.Error == "" && j.State == driver.JobRunning:
				line += ", running"
			}
			if a.Error != "" {
				line += ": " + oneLine(a.Error, 100)
			}
			writef(w, "%s\n", line)
		}
	})
}

func cmdJobRetry(ctx context.Context, c *cli, args []string) error {
	return jobAction(ctx, c, args[0], (*engine.Session).RetryJob, "queued", "queued again")
}

func cmdJobCancel(ctx context.Context, c *cli, args []string) error {
	return jobAction(ctx, c, args[0], (*engine.Session).CancelJob, "cancelled", "cancelled")
}

// jobAction applies act to job id and reports the job's new state.
func jobAction(ctx context.Context, c *cli, id string, act func(*engine.Session, context.Context, string) error, state, done string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	if err := act(s, ctx, id); err != nil {
		return err
	}
	return c.emit(map[string]any{"job": id, "state": state}, func(w io.Writer) { writef(w, "job %s %s\n", id, done) })
}

// pruneOpts are job prune's flags.
type pruneOpts struct {
	olderThan string
	states    []string
	dryRun    bool
}

// parseAge parses job prune's --older-than: a Go duration (720h) or whole
// days (30d), more than zero. A well-formed age too large for a
// time.Duration gets an error that says so.
func parseAge(s string) (time.Duration, error) {
	return parseAgeOf(s, "how long ago the jobs to delete ended", "jobs that just ended")
}

// parseAgeOf is parseAge for a command that deletes what, whose errors say
// when (what --older-than is) and what a zero or negative age would take
// (fresh).
func parseAgeOf(s, when, fresh string) (time.Duration, error) {
	if s == "" {
		return 0, docex.Errorf(errUsage, "--older-than is required: %s (720h, 30d)", when)
	}
	const maxDays = int64(math.MaxInt64 / (24 * time.Hour))
	tooLarge := func() error {
		return docex.Errorf(errUsage, "--older-than %q: too large: at most %dd (%dh), the longest duration docex can hold", s, maxDays, int64(math.MaxInt64/time.Hour))
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(days, "-") || err == nil && n > maxDays {
			return 0, tooLarge()
		}
		if err != nil {
			return 0, docex.Errorf(errUsage, "--older-than %q: want a Go duration (720h) or whole days (30d)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			if durationSyntax(s) {
				return 0, tooLarge() // well formed: it overflowed
			}
			return 0, docex.Errorf(errUsage, "--older-than %q: want a Go duration (720h) or whole days (30d)", s)
		}
	}
	if d <= 0 {
		return 0, docex.Errorf(errUsage, "--older-than %q: must be more than zero (a zero or negative age would take %s, or none)", s, fresh)
	}
	return d, nil
}

// durationSyntax reports whether s is a positive Go duration as
// time.ParseDuration reads it ("1h30m", "1.5h"), whatever its size.
func durationSyntax(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" {
		return false
	}
	for s != "" {
		i, digits, dots := 0, 0, 0
		for ; i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.'); i++ {
			if s[i] == '.' {
				dots++
			} else {
				digits++
			}
		}
		if digits == 0 || dots > 1 {
			return false
		}
		s = s[i:]
		unit := ""
		for _, u := range []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"} {
			if strings.HasPrefix(s, u) {
				unit = u
				break
			}
		}
		if unit == "" {
			return false
		}
		s = s[len(unit):]
	}
	return true
}

func cmdJobPrune(ctx context.Context, c *cli, o pruneOpts) error {
	age, err := parseAge(o.olderThan)
	if err != nil {
		return err
	}
	var states []string
	for _, s := range o.states { // --state succeeded,failed
		for _, one := range strings.Split(s, ",") {
			states = append(states, strings.TrimSpace(one))
		}
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	res, err := s.PruneJobs(ctx, engine.PruneJobsOptions{Before: time.Now().Add(-age), States: states, DryRun: o.dryRun})
	if err != nil {
		return err
	}
	return c.emit(res, func(w io.Writer) {
		verb := "deleted"
		if res.DryRun {
			verb = "would delete"
		}
		writef(w, "%s %d jobs (%s) that ended before %s, and their %d step records; lineage, derived documents and the step cache are kept\n",
			verb, res.Jobs, strings.Join(res.States, ", "), res.Before.Format(time.RFC3339), res.Steps)
	})
}

func cmdWorker(ctx context.Context, c *cli, o workerOpts) error {
	for i, id := range o.tenants { // --tenants "a, b"
		o.tenants[i] = strings.TrimSpace(id)
	}
	if o.all.val && len(o.tenants) > 0 {
		return docex.Errorf(errUsage, "--tenants and --all exclude each other")
	}
	if o.all.given && !o.all.val && o.tenants == nil {
		// Not every tenant, and none named: not taken for --all. In
		// single-file mode --tenants is no way out (there are no tenants:
		// the worker serves the one store): say so instead.
		if f, err := loadConfig(c.g.config); err == nil && !f.MultiTenant() {
			return docex.Errorf(errUsage, "--all=false: this docex.yaml is local single-file mode, which has no tenants: the worker serves its one store; leave --all out")
		}
		return docex.Errorf(errUsage, "--all=false needs --tenants (the tenants to serve); leave --all out to serve every tenant")
	}
	if o.tenants != nil && len(o.tenants) == 0 { // --tenants "": not every tenant
		return docex.Errorf(errUsage, "--tenants needs at least one tenant id (every tenant: --all)")
	}
	if o.concurrency < 1 || o.concurrency > engine.MaxConcurrency {
		return docex.Errorf(errUsage, "--concurrency must be 1 to %d", engine.MaxConcurrency)
	}
	if o.tenantConcurrency < 0 || o.tenantConcurrency > o.concurrency {
		return docex.Errorf(errUsage, "--tenant-concurrency must be 0 to --concurrency (%d) (0: half of it, or all of it for one tenant)", o.concurrency)
	}
	if o.batch < 1 || o.batch > engine.MaxBatch {
		return docex.Errorf(errUsage, "--batch must be 1 to %d", engine.MaxBatch)
	}
	if o.shutdown < 0 {
		return docex.Errorf(errUsage, "--shutdown-timeout must not be negative")
	}
	if o.lease < 0 {
		return docex.Errorf(errUsage, "--lease must not be negative (0: the backend's default)")
	}
	err := runWorker(ctx, c, o)
	if err != nil && ctx.Err() != nil && !errors.As(err, new(*driver.TenantsDeletedError)) {
		// Stopped (SIGINT, SIGTERM) while it started: whatever the stop
		// cut short (opening the system, listing the tenants), no job
		// was taken, and a stop exits 0 as a running worker's does. The
		// error is logged, not lost.
		slog.New(slog.NewJSONHandler(c.stderr, nil)).Info("worker stopped while starting", "error", err.Error())
		return nil
	}
	return err
}

// runWorker is cmdWorker once its flags are checked.
func runWorker(ctx context.Context, c *cli, o workerOpts) error {
	sys, err := c.system(ctx)
	if err != nil {
		return err
	}
	// A tenant the worker cannot serve is an error now, not a queue
	// polled forever.
	for _, id := range o.tenants {
		t, err := sys.eng.Provisioner(c.g.user).Get(ctx, id)
		if err != nil {
			return fmt.Errorf("--tenants: %w", err)
		}
		if t.IsSystem {
			return docex.Errorf(docex.ErrDenied, "--tenants: %q is the bootstrap tenant, which holds no documents or jobs", id)
		}
	}
	log := slog.New(slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var tenants []string // nil: every tenant; one named twice is served once (engine.Worker)
	if len(o.tenants) > 0 {
		tenants = o.tenants
	}
	err = sys.eng.Worker(engine.WorkerConfig{Tenants: tenants, Concurrency: o.concurrency, TenantConcurrency: o.tenantConcurrency,
		Batch: o.batch, ShutdownTimeout: o.shutdown, Lease: o.lease, Logger: log}).Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if errors.As(err, new(*driver.TenantsDeletedError)) {
		// As at the start for a tenant that does not exist: not a queue
		// polled forever.
		return withHint(fmt.Errorf("--tenants: %w", err), "docex tenant list shows the tenants: start the worker with --tenants naming existing ones, or --all")
	}
	return err
}

func cmdDocLineage(ctx context.Context, c *cli, args []string) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	l, err := s.Lineage(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(l, func(w io.Writer) {
		label := func(id, name string, gone bool) string {
			if gone {
				return id + " (gone)"
			}
			return id + " " + name
		}
		writef(w, "document %s\n", label(l.DocumentID, l.Name, l.Gone))
		if len(l.Ancestors) == 0 {
			fmt.Fprintln(w, "derived from: nothing (an original)")
		}
		// The same relation made by several jobs is shown once; the same
		// documents linked by another pipeline, version, step or plugin are
		// another relation, shown on their own line (--json lists each job's).
		type edgeKey struct {
			source, derived, pipeline, step, plugin, module, params string
			version                                                 int
		}
		seen := map[edgeKey]bool{}
		dup := func(e engine.LineageEdge) bool {
			k := edgeKey{e.SourceID, e.DerivedID, e.Pipeline, e.Step, e.Plugin, e.ModuleSHA256, jsonText(e.Params), e.Version}
			defer func() { seen[k] = true }()
			return seen[k]
		}
		// Each chain is drawn as a tree: a document's sources (or derived
		// documents) under it, one level deeper. A document reached again
		// (a second source, or a step's output that deduplicated onto a
		// document already shown) is not expanded twice.
		tree := func(edges []engine.LineageEdge, up bool, line func(e engine.LineageEdge, indent string, more bool)) {
			next := map[string][]engine.LineageEdge{}
			for _, e := range edges {
				from := e.SourceID
				if up {
					from = e.DerivedID
				}
				next[from] = append(next[from], e)
			}
			expanded := map[string]bool{l.DocumentID: true}
			var walk func(id string, depth int)
			walk = func(id string, depth int) {
				for _, e := range next[id] {
					if dup(e) {
						continue
					}
					to := e.DerivedID
					if up {
						to = e.SourceID
					}
					again := expanded[to]
					line(e, strings.Repeat("  ", depth), again && len(next[to]) > 0)
					if !again {
						expanded[to] = true
						walk(to, depth+1)
					}
				}
			}
			walk(l.DocumentID, 0)
			for _, e := range edges { // not reached from the document (a truncated listing)
				if !dup(e) {
					line(e, strings.Repeat("  ", max(0, e.Depth-1)), false)
				}
			}
		}
		const shown = " (its own chain is shown above)"
		// An edge that did not create its document (the output had the
		// content of one the basket held): not a descendant for delete
		// --cascade nor derived for pipeline run --basket.
		const dedup = " (deduplicated onto an existing document)"
		tree(l.Ancestors, true, func(e engine.LineageEdge, indent string, more bool) {
			writef(w, "%s<- %s\tby %s (plugin %s %s, params %s)%s%s\n", indent,
				label(e.SourceID, e.SourceName, e.SourceGone), producedBy(e), e.Plugin, e.ModuleSHA256[:min(12, len(e.ModuleSHA256))], jsonText(e.Params), cond(e.Deduplicated, dedup), cond(more, shown))
		})
		if len(l.Descendants) == 0 {
			fmt.Fprintln(w, "derived: nothing")
		}
		tree(l.Descendants, false, func(e engine.LineageEdge, indent string, more bool) {
			writef(w, "%s-> %s\tby %s (plugin %s)%s%s\n", indent,
				label(e.DerivedID, e.DerivedName, e.DerivedGone), producedBy(e), e.Plugin, cond(e.Deduplicated, dedup), cond(more, shown))
		})
		if l.Truncated {
			writef(w, "(the chain goes on: at most %d edges and %d levels are listed each way)\n", engine.MaxLineageEdges, engine.MaxLineageDepth)
		}
	})
}

// cond returns s when ok, else "".
func cond(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

// producedBy names what made a lineage edge: a pipeline's step
// ("PIPELINE/STEP vN") or a direct run (docex run, no pipeline).
func producedBy(e engine.LineageEdge) string {
	if e.Pipeline == "" {
		return "docex run"
	}
	return fmt.Sprintf("%s/%s v%d", e.Pipeline, e.Step, e.Version)
}

// deleteDocument deletes a document; a document with derived documents
// needs --cascade (delete them too) or --keep-derived (they stay and
// their lineage says the source is gone). Without either, on a terminal
// (c.interactive), it asks which; otherwise, and when the answer is
// neither, it returns an ErrConflict error and deletes nothing. It calls
// deleted with the ids deleted as each transaction commits (a cascade's
// descendants first, the document last: engine.DeleteDocumentCascadeEach)
// and returns deleted's error, which stops it.
func deleteDocument(ctx context.Context, c *cli, s *engine.Session, id string, cascade, keepDerived bool, deleted func([]string) error) error {
	if cascade && keepDerived {
		return docex.Errorf(errUsage, "--cascade and --keep-derived exclude each other")
	}
	if cascade {
		return s.DeleteDocumentCascadeEach(ctx, id, deleted)
	}
	one := func(err error) error {
		if err != nil {
			return err
		}
		return deleted([]string{id})
	}
	if keepDerived {
		return one(s.DeleteDocument(ctx, id))
	}
	// Checked where the document is deleted, not before: a job that
	// derives from it meanwhile is counted.
	err := s.DeleteUnderivedDocument(ctx, id)
	if !errors.Is(err, docex.ErrHasDerived) {
		return one(err)
	}
	if !c.interactive() {
		return fmt.Errorf("%w: add --cascade to delete them too, or --keep-derived to keep them (their lineage will say the source is gone)", err)
	}
	ds, err := s.DescendantIDs(ctx, id)
	if err != nil {
		return err
	}
	switch askDerived(c.stdin, c.stderr, id, len(ds)) {
	case 'c':
		return s.DeleteDocumentCascadeEach(ctx, id, deleted)
	case 'k':
		return one(s.DeleteDocument(ctx, id))
	}
	return docex.Errorf(docex.ErrConflict, "document %s not deleted: it has %d derived document(s) (--cascade deletes them too, --keep-derived keeps them)", id, len(ds))
}

// askDerived asks on w what to do with the n documents derived from
// document id and reads one line of answer from r: it returns 'c'
// (delete them too), 'k' (keep them) or 0 (do not delete: an empty or
// other answer, or the end of r).
func askDerived(r io.Reader, w io.Writer, id string, n int) byte {
	fmt.Fprintf(w, "document %s has %d derived document(s) (docex doc lineage %s lists them).\n", id, n, id)
	fmt.Fprint(w, "delete them too [c], keep them with their lineage saying the source is gone [k], or do nothing [N]? ")
	line, _ := bufio.NewReader(r).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "c", "cascade":
		return 'c'
	case "k", "keep":
		return 'k'
	}
	return 0
}

// deletedDocs is the JSON result of doc delete: the document and every id
// deleted with it (itself included), and content_error, the error of
// removing content no document refers to any more after the deletion
// committed ("" when it all went, as tenant delete's). doc delete writes
// it with idSpool.emitDeleted, as the encoding of c.emit would.
type deletedDocs struct {
	ID           string   `json:"id"`
	Deleted      bool     `json:"deleted"`
	DeletedIDs   []string `json:"deleted_ids"`
	ContentError string   `json:"content_error"`
}

// jsonText is v as compact JSON, for human output.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
