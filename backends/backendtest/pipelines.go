package backendtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// RunPipelines runs the pipeline and job part of the suite: definitions,
// bound baskets (the transactional outbox), workers, exactly-once effect
// on replay, error classification, suspended and deleted tenants, two
// tenants at once, lineage and the step cache.
func RunPipelines(t *testing.T, h Harness) {
	f := &fixture{h: h, storage: engine.ContentFilesystem}
	t.Run("Definitions", f.testPipelineDefinitions)
	t.Run("BoundBasket", f.testBoundBasket)
	t.Run("BoundUpdate", f.testBoundUpdate)
	t.Run("DirectRunLineage", f.testDirectRunLineage)
	t.Run("InterruptedRunAudited", f.testInterruptedRunAudited)
	t.Run("DedupLineage", f.testDedupLineage)
	t.Run("Replay", f.testReplay)
	t.Run("LostAttempt", f.testLostAttempt)
	t.Run("CancelRunning", f.testCancelRunning)
	t.Run("CancelRetryOnce", f.testCancelRetryOnce)
	t.Run("RetryWhileCancelledRuns", f.testRetryWhileCancelledRuns)
	t.Run("StaleDeliveryNeverStarts", f.testStaleDeliveryNeverStarts)
	t.Run("WaitWakes", f.testWaitWakes)
	t.Run("SharedRuns", f.testSharedRuns)
	t.Run("LookupNotCached", f.testLookupNotCached)
	t.Run("MetadataBatch", f.testMetadataBatch)
	t.Run("MetadataTotals", f.testMetadataTotals)
	t.Run("Failures", f.testJobFailures)
	t.Run("RetryBackoff", f.testRetryBackoff)
	t.Run("RetryHistoryBounded", f.testRetryHistoryBounded)
	t.Run("MaxDerived", f.testMaxDerived)
	t.Run("MixedBatch", f.testMixedBatch)
	t.Run("BatchReads", f.testBatchReads)
	t.Run("DatabaseContentInputs", (&fixture{h: h, storage: engine.ContentDatabase}).testDatabaseContentInputs)
	t.Run("LargeRuns", f.testLargeRuns)
	t.Run("SuspendedAndDeleted", f.testSuspendedTenant)
	t.Run("ResumedNotWaiting", f.testResumedNotWaiting)
	t.Run("ResumedRunningNotWaiting", f.testResumedRunningNotWaiting)
	t.Run("WaitTenantDeleted", f.testWaitTenantDeleted)
	t.Run("WorkerTenantsDeleted", f.testWorkerTenantsDeleted)
	t.Run("WorkerTenantRecreated", f.testWorkerTenantRecreated)
	t.Run("ShowWhileRunning", f.testShowWhileRunning)
	t.Run("SuspendedWhileRunning", f.testSuspendedWhileRunning)
	t.Run("DeletedWhileStepRuns", f.testDeletedWhileStepRuns)
	t.Run("SuspendedWhileStepRuns", f.testSuspendedWhileStepRuns)
	t.Run("RetryRunningNoError", f.testRetryRunningNoError)
	t.Run("TwoTenants", f.testTwoTenantsPipelines)
	t.Run("OtherTenantWriteHeld", f.testOtherTenantWriteHeld)
	t.Run("RandomInterleaving", f.testPipelineInterleaving)
	t.Run("BindDeleteRace", f.testBindDeleteRace)
	t.Run("DeleteBetweenReadAndBind", f.testDeleteBetweenReadAndBind)
	t.Run("CreateRace", f.testCreateRace)
	t.Run("CascadeDuringJobs", f.testCascadeDuringJobs)
	t.Run("DeleteUnderivedDuringJobs", f.testDeleteUnderivedDuringJobs)
	t.Run("BindWaitsForAdds", f.testBindWaitsForAdds)
	t.Run("CancelWhileRecording", f.testCancelWhileRecording)
	t.Run("RunBasketWhileDeleting", f.testRunBasketWhileDeleting)
	t.Run("UnstorableNames", f.testUnstorableNames)
	t.Run("LeaseCountsOwnRun", f.testLeaseCountsOwnRun)
	t.Run("LeaseExpiry", f.testLeaseExpiry)
	t.Run("StopReleasesWaiting", f.testStopReleasesWaiting)
	t.Run("PruneJobs", f.testPruneJobs)
}

// testCreateRace: definitions of one pipeline name created at once each
// get a version of their own (on PostgreSQL two could read the same
// newest version and the second insert failed as if the name existed).
func (f *fixture) testCreateRace(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split", "upper", "tag")
	const writers, rounds = 4, 10
	for round := range rounds {
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() { _, errs[w] = admin.CreatePipeline(bg, []byte(threeSteps)) })
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("round %d, writer %d: %v", round, w, err)
			}
		}
		p, err := admin.Pipeline(bg, "three", 0)
		must(t, err)
		if want := (round + 1) * writers; p.Version != want {
			t.Fatalf("round %d: newest version %d, want %d", round, p.Version, want)
		}
	}
}

// testBindDeleteRace: binding a basket to a pipeline and deleting the
// pipeline, at once, must not leave the basket bound to the deleted
// pipeline (each checked the other's table before writing its own: on
// PostgreSQL both could commit). One of the two wins.
func (f *fixture) testBindDeleteRace(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split", "upper", "tag")
	b := e.basket(admin, "in")
	bound := 0
	for i := range 40 {
		_, err := admin.CreatePipeline(bg, []byte(threeSteps))
		must(t, err)
		var bindErr, delErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, bindErr = admin.BindBasket(bg, b.ID, "three") })
		wg.Go(func() { delErr = admin.DeletePipeline(bg, "three") })
		wg.Wait()
		got, err := admin.Basket(bg, b.ID)
		must(t, err)
		p, perr := admin.Pipeline(bg, "three", 0)
		deleted := perr == nil && p.Deleted || errors.Is(perr, docex.ErrNotFound)
		switch {
		case bindErr == nil && delErr == nil:
			t.Fatalf("round %d: both the bind and the delete succeeded; basket bound to %q, pipeline deleted %v", i, got.Pipeline, deleted)
		case got.Pipeline == "three" && deleted:
			t.Fatalf("round %d: the basket is bound to the deleted pipeline (bind: %v, delete: %v)", i, bindErr, delErr)
		case bindErr == nil:
			wantErr(t, delErr, docex.ErrConflict)
			bound++
			_, err := admin.UnbindBasket(bg, b.ID)
			must(t, err)
			must(t, admin.DeletePipeline(bg, "three"))
		default:
			// The bind lost: it says that the pipeline was deleted, as a
			// bind after the delete does (on PostgreSQL a bind whose own
			// statement found the pipeline deleted said so untyped).
			wantErr(t, bindErr, docex.ErrNotFound)
			if de, ok := errors.AsType[*engine.DeletedPipelineError](bindErr); !ok || de.Name != "three" || de.Already {
				t.Fatalf("round %d: bind %v, want an *engine.DeletedPipelineError", i, bindErr)
			}
			if delErr != nil || got.Pipeline != "" {
				t.Fatalf("round %d: bind %v, delete %v, basket bound to %q", i, bindErr, delErr, got.Pipeline)
			}
		}
	}
	t.Logf("the bind won %d of 40 rounds", bound)
}

// pipelineReadHook is a backend whose tenant stores run an armed hook
// once, right after a write transaction's next read of a pipeline
// (driver.Tx.Pipeline), before the transaction's next statement: to
// commit another transaction at that point.
type pipelineReadHook struct {
	driver.Backend
	mu   sync.Mutex
	hook func()
}

func (b *pipelineReadHook) arm(hook func()) {
	b.mu.Lock()
	b.hook = hook
	b.mu.Unlock()
}

func (b *pipelineReadHook) take() func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	hook := b.hook
	b.hook = nil
	return hook
}

func (b *pipelineReadHook) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	st, err := b.Backend.OpenTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return &pipelineReadHookStore{TenantStore: st, b: b}, nil
}

type pipelineReadHookStore struct {
	driver.TenantStore
	b *pipelineReadHook
}

func (s *pipelineReadHookStore) Write(ctx context.Context, fn func(tx driver.Tx) error) error {
	return s.TenantStore.Write(ctx, func(tx driver.Tx) error { return fn(&pipelineReadHookTx{Tx: tx, b: s.b}) })
}

type pipelineReadHookTx struct {
	driver.Tx
	b *pipelineReadHook
}

func (t *pipelineReadHookTx) Pipeline(ctx context.Context, name string, version int) (driver.PipelineRecord, error) {
	p, err := t.Tx.Pipeline(ctx, name, version)
	if hook := t.b.take(); hook != nil {
		hook()
	}
	return p, err
}

// testDeleteBetweenReadAndBind: a pipeline deleted after a bind (basket
// bind, basket create --pipeline) or a run read it, before they write,
// makes them fail as a bind or run of a deleted pipeline does, with an
// *engine.DeletedPipelineError, or else the delete fails (the basket is
// bound). The delete runs right after their read of the pipeline; a
// backend whose write transactions run at once (PostgreSQL) commits it
// there (before, the bind then failed with a plain "pipeline was
// deleted" not found, not the typed error: no hint in the CLI); one that
// runs them one at a time (SQLite) commits it after them. A run that
// read the pipeline before the delete commits enqueues its jobs, of the
// version it read (its versions stay for them), or fails so.
func (f *fixture) testDeleteBetweenReadAndBind(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	hb := &pipelineReadHook{Backend: e.be}
	eng, err := engine.New(bg, hb, e.cfg)
	must(t, err)
	defer eng.Close()
	hooked := eng.As(docex.UserContext{UserID: "u-acme", TenantID: "acme", Roles: []string{"admin"}})
	doc := e.add(admin, e.basket(admin, "docs").ID, "a.txt", "run me", nil)
	interleaved := 0
	for i, op := range []string{"bind", "create", "run", "bind", "create", "run"} {
		if i > 0 {
			_, err := admin.CreatePipeline(bg, []byte(threeSteps))
			must(t, err)
		}
		b := e.basket(admin, fmt.Sprintf("b%d", i))
		done := make(chan error, 1)
		ended := false
		hb.arm(func() {
			go func() { done <- admin.DeletePipeline(bg, "three") }()
			ended = endedMeanwhile(done)
		})
		bound := b.ID
		var opErr error
		switch op {
		case "bind":
			_, opErr = hooked.BindBasket(bg, b.ID, "three")
		case "create":
			var nb docex.Basket
			nb, opErr = hooked.CreateBasketWithPipeline(bg, fmt.Sprintf("c%d", i), "three")
			bound = nb.ID
		case "run":
			_, opErr = hooked.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{doc.ID}})
		}
		delErr := <-done
		if ended {
			interleaved++
		}
		if opErr != nil {
			if de, ok := errors.AsType[*engine.DeletedPipelineError](opErr); !ok || de.Name != "three" {
				t.Fatalf("%s %d: %v (code %s), want an *engine.DeletedPipelineError", op, i, opErr, docex.Code(opErr))
			}
			if delErr != nil {
				t.Fatalf("%s %d failed (%v) and so did the delete: %v", op, i, opErr, delErr)
			}
			continue
		}
		if op == "run" {
			must(t, delErr)
			continue
		}
		if ended {
			t.Fatalf("%s %d succeeded after the delete committed", op, i)
		}
		wantErr(t, delErr, docex.ErrConflict)
		got, err := admin.Basket(bg, bound)
		must(t, err)
		if got.Pipeline != "three" {
			t.Fatalf("%s %d: basket bound to %q", op, i, got.Pipeline)
		}
		_, err = admin.UnbindBasket(bg, bound)
		must(t, err)
		must(t, admin.DeletePipeline(bg, "three"))
	}
	t.Logf("the delete committed between the read and the write in %d of 6 rounds", interleaved)
}

var (
	sbOnce sync.Once
	sb     *sandbox.Sandbox
	sbErr  error
)

func sharedSandbox(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	sbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docex-backendtest-wasm-")
		if err != nil {
			sbErr = err
			return
		}
		sb, sbErr = sandbox.New(context.Background(), sandbox.Config{CacheDir: dir})
	})
	if sbErr != nil {
		t.Fatal(sbErr)
	}
	return sb
}

// pipeEnv is an env with a sandbox and helpers for pipelines.
type pipeEnv struct {
	*env
}

func (f *fixture) pipeEnv(t *testing.T) *pipeEnv {
	t.Helper()
	be, cfg := f.config(t, true)
	cfg.Sandbox = sharedSandbox(t)
	if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	eng, err := engine.New(bg, be, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return &pipeEnv{&env{t: t, be: be, cfg: cfg, eng: eng}}
}

// install installs test plugins for a tenant.
func (e *pipeEnv) install(s *engine.Session, names ...string) {
	e.t.Helper()
	for _, name := range names {
		e.installEdited(s, name, nil)
	}
}

// installEdited installs test plugin name for a tenant with its manifest
// changed by edit (nil: as it is).
func (e *pipeEnv) installEdited(s *engine.Session, name string, edit func(string) string) {
	e.t.Helper()
	fsys, err := testplugins.Dir(name)
	must(e.t, err)
	manifest, err := fs.ReadFile(fsys, "plugin.toml")
	must(e.t, err)
	if edit != nil {
		manifest = []byte(edit(string(manifest)))
	}
	m, err := pluginapi.ParseManifest(manifest)
	must(e.t, err)
	module, err := fs.ReadFile(fsys, m.Module)
	must(e.t, err)
	if _, err := s.InstallPlugin(bg, manifest, module); err != nil {
		e.t.Fatalf("install %s: %v", name, err)
	}
}

// threeStepsTenant provisions tenant id with the test plugins split,
// upper and tag (and extra) and the pipeline "three", and returns its
// admin session.
func (e *pipeEnv) threeStepsTenant(id string, extra ...string) *engine.Session {
	e.t.Helper()
	e.tenant(id)
	admin := e.as(id, "admin")
	e.install(admin, append([]string{"split", "upper", "tag"}, extra...)...)
	_, err := admin.CreatePipeline(bg, []byte(threeSteps))
	must(e.t, err)
	return admin
}

// threeSteps is the suite's pipeline: split each document into two
// parts, upper-case each part, tag each upper-cased part.
const threeSteps = `name = "three"
description = "split, upper, tag"

[[steps]]
name = "split"
plugin = "split"

[[steps]]
name = "upper"
plugin = "upper"
input = "split"
accept = ["text/*"]

[[steps]]
name = "tag"
plugin = "tag"
input = "upper"
`

// work runs a worker until every job of ids (of tenant s) is final, and
// returns their status.
func (e *pipeEnv) work(s *engine.Session, tenants []string, ids []string) engine.JobsStatus {
	e.t.Helper()
	return e.workBatch(s, tenants, ids, 0)
}

// workBatch is work with a worker that runs batches of batch jobs (0: the
// default).
func (e *pipeEnv) workBatch(s *engine.Session, tenants []string, ids []string, batch int) engine.JobsStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(bg, 3*time.Minute)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: tenants, Concurrency: 4, TenantConcurrency: 2, Batch: batch, Poll: 50 * time.Millisecond,
			RetryBase: 10 * time.Millisecond, SuspendedWait: 50 * time.Millisecond, ShutdownTimeout: 30 * time.Second}).Run(wctx)
	}()
	st, err := s.WaitJobs(ctx, ids, 20*time.Millisecond, nil)
	stop()
	if werr := <-done; werr != nil {
		e.t.Fatalf("worker: %v", werr)
	}
	if err != nil {
		e.t.Fatalf("wait for jobs: %v (status %+v)", err, st)
	}
	return st
}

func (f *fixture) testPipelineDefinitions(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split", "upper", "tag", "derive")

	p, err := admin.CreatePipeline(bg, []byte(threeSteps))
	must(t, err)
	if p.Version != 1 || len(p.Steps) != 3 || p.Steps[1].Input != "split" || p.Steps[0].Input != engine.InputDocument {
		t.Fatalf("created %+v", p)
	}
	p2, err := admin.CreatePipeline(bg, []byte(threeSteps+"\n# v2\n"))
	must(t, err)
	if p2.Version != 2 {
		t.Fatalf("second create: version %d, want 2", p2.Version)
	}
	v1, err := admin.Pipeline(bg, "three", 1)
	must(t, err)
	if v1.Version != 1 || strings.Contains(v1.Definition, "# v2") {
		t.Fatalf("version 1 = %+v", v1)
	}
	_, err = admin.Pipeline(bg, "three", 9)
	wantErr(t, err, docex.ErrNotFound)
	if want := `pipeline "three" has no version 9 (its newest version is 2)`; !strings.Contains(err.Error(), want) {
		t.Errorf("version 9: %q, want %q", err, want)
	}
	list, err := admin.Pipelines(bg)
	must(t, err)
	if len(list) != 1 || list[0].Version != 2 {
		t.Fatalf("list = %+v", list)
	}

	bad := []struct {
		name, src, want string
	}{
		{"syntax", "name = \"x\"\n[[steps]\nname=", "pipeline line 2"},
		{"unknown top key", "name = \"x\"\ncolour = 1\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key colour"},
		{"unknown step key", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugn = \"tag\"\n", "line 4"},
		{"unknown plugin", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"nope\"\n", "line 4, key steps[0].plugin: unknown plugin"},
		{"misspelt plugin", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"splot\"\n", `line 4, key steps[0].plugin: unknown plugin "splot" (did you mean "split"?)`},
		{"misspelt param", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\n[steps.params]\ntitel = \"t\"\n", `has no parameter "titel" (did you mean "title"?)`},
		{"misspelt key", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"split\"\nimput = \"a\"\n", `line 5, key steps[0].imput: unknown key "imput" (did you mean "input"?)`},
		{"misspelt input", "name = \"x\"\n[[steps]]\nname = \"parts\"\nplugin = \"split\"\n[[steps]]\nname = \"b\"\nplugin = \"tag\"\ninput = \"part\"\n", `(did you mean "parts"?)`},
		{"unknown param", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\n[steps.params]\ntitle = \"t\"\ncolour = \"red\"\n", "line 7, key steps[0].params.colour"},
		{"missing param", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\n", "needs parameter \"title\""},
		{"missing capability", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n[[steps]]\nname = \"b\"\nplugin = \"tag\"\ninput = \"a\"\n", "line 8, key steps[1].input"},
		{"cycle", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"split\"\ninput = \"b\"\n[[steps]]\nname = \"b\"\nplugin = \"split\"\ninput = \"a\"\n", "cycle"},
		{"unknown input", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"split\"\ninput = \"zz\"\n", "line 5, key steps[0].input"},
		{"duplicate step", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "duplicate step name"},
		{"bad filter", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\naccept = [\"text\"]\n", "line 5, key steps[0].accept"},
		{"bad name", "name = \"X Y\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 1, key name"},
		{"wrong type", "name = \"x\"\ndescription = 5\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "pipeline line 2, key description: want a string, got an integer"},
		{"steps as a table", "name = \"x\"\n[steps]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key steps: want [[steps]] tables"},
		{"accept as a string", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\naccept = \"text/plain\"\n", `pipeline line 5, key steps[0].accept: want an array of content types, for example accept = ["text/plain", "application/pdf"], got a string`},
		{"attempts as a string", "name = \"x\"\nmax_attempts = \"3\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key max_attempts: want an integer, got a string"},
		{"another tool's filter key", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\ncontent_type = \"text/plain\"\n", `line 5, key steps[0].content_type: unknown key "content_type" (did you mean "accept"?`},
		{"another tool's params key", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\nwith = { title = \"t\" }\n", `(did you mean "params"?`},
		{"another tool's retries key", "name = \"x\"\nretries = 2\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", `unknown key "retries" (did you mean "max_attempts"?)`},
		{"a step's retries", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\nretries = 2\n", `a step has no such key: max_attempts, at the top of the file`},
		{"no steps", "name = \"x\"\n", "at least one"},
		{"no attempts", "name = \"x\"\nmax_attempts = 0\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key max_attempts: max_attempts 0: want 1 to 20 (1: no retries"},
		{"too many attempts", "name = \"x\"\nmax_attempts = 21\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key max_attempts: max_attempts 21: want 1 to 20"},
		{"no derived documents", "name = \"x\"\nmax_derived = 0\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key max_derived: max_derived 0: want 1 to 1000000"},
		{"too many derived documents", "name = \"x\"\nmax_derived = 1000001\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key max_derived: max_derived 1000001: want 1 to 1000000"},
		{"derived documents as a string", "name = \"x\"\nmax_derived = \"10\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "line 2, key max_derived: want an integer, got a string"},
		{"array param", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\nparams = { title = [1, 2] }\n", "line 5, key steps[0].params.title: parameter \"title\": want a string, number or bool, not an array"},
		{"table param", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\n[steps.params]\ntitle = { a = 1 }\n", "not a table"},
	}
	// Of several bad parameters, the first by name, every time (map order
	// chose one).
	for range 6 {
		bad = append(bad, struct{ name, src, want string }{"several unknown params", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"derive\"\nparams = { zz = \"1\", title = \"t\", bb = \"2\", mm = \"3\" }\n", `key steps[0].params.bb: plugin "derive" has no parameter "bb"`})
	}
	for _, c := range bad {
		_, err := admin.CreatePipeline(bg, []byte(c.src))
		wantErr(t, err, docex.ErrInvalid)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, err, c.want)
		}
	}
	// Roles: writers run pipelines, only admins define them.
	_, err = e.as("acme", "writer").CreatePipeline(bg, []byte(threeSteps))
	wantErr(t, err, docex.ErrForbidden)
	_, err = e.as("acme", "reader").Pipelines(bg)
	must(t, err)

	b := e.basket(admin, "in")
	if b.Pipeline != "" {
		t.Fatalf("a new basket is bound to %q", b.Pipeline)
	}
	prev, err := admin.BindBasket(bg, b.ID, "three")
	must(t, err)
	if prev != "" {
		t.Fatalf("first bind: previous binding %q", prev)
	}
	lastAudit := func(op string, unchanged bool) {
		t.Helper()
		es, err := admin.Audit(bg, docex.Page{Limit: 1})
		must(t, err)
		if len(es) != 1 || es[0].Operation != op || es[0].Outcome != docex.OutcomeOK || (es[0].Detail["unchanged"] == true) != unchanged {
			t.Fatalf("audit after %s: %+v, want unchanged %t", op, es, unchanged)
		}
	}
	lastAudit("basket.bind", false)
	// Every read of the basket says what it is bound to.
	boundTo := func(want string) {
		t.Helper()
		got, err := admin.Basket(bg, b.ID)
		must(t, err)
		byName, err := admin.BasketByName(bg, "in")
		must(t, err)
		all, err := admin.Baskets(bg, docex.Page{})
		must(t, err)
		if got.Pipeline != want || byName.Pipeline != want || len(all) != 1 || all[0].Pipeline != want {
			t.Fatalf("basket reads %q, %q, %+v: want pipeline %q", got.Pipeline, byName.Pipeline, all, want)
		}
	}
	boundTo("three")
	_, err = e.as("acme", "writer").BindBasket(bg, b.ID, "three")
	wantErr(t, err, docex.ErrForbidden)
	wantErr(t, admin.DeletePipeline(bg, "three"), docex.ErrConflict) // bound
	_, err = admin.BindBasket(bg, b.ID, "nope")
	wantErr(t, err, docex.ErrNotFound)
	_, err = admin.BindBasket(bg, "01a236c1-4232-7399-aaae-bf07b074825f", "three")
	wantErr(t, err, docex.ErrNotFound)
	// Binding again to the same pipeline, and unbinding an unbound basket,
	// change nothing: they succeed, say what the binding was, and their
	// audit entries say that nothing changed.
	prev, err = admin.BindBasket(bg, b.ID, "three")
	must(t, err)
	if prev != "three" {
		t.Fatalf("bind again: previous binding %q, want three", prev)
	}
	lastAudit("basket.bind", true)
	boundTo("three")
	prev, err = admin.UnbindBasket(bg, b.ID)
	must(t, err)
	if prev != "three" {
		t.Fatalf("unbind: previous binding %q, want three", prev)
	}
	lastAudit("basket.unbind", false)
	boundTo("")
	prev, err = admin.UnbindBasket(bg, b.ID)
	must(t, err)
	if prev != "" {
		t.Fatalf("unbind of an unbound basket: previous binding %q", prev)
	}
	lastAudit("basket.unbind", true)
	boundTo("")
	_, err = admin.UnbindBasket(bg, "01a236c1-4232-7399-aaae-bf07b074825f")
	wantErr(t, err, docex.ErrNotFound)
	_, err = e.as("acme", "writer").UnbindBasket(bg, b.ID)
	wantErr(t, err, docex.ErrForbidden)
	must(t, admin.DeletePipeline(bg, "three"))
	if _, err := admin.Pipeline(bg, "three", 2); err != nil {
		t.Fatalf("a deleted pipeline's versions stay readable: %v", err)
	}
	// A deleted pipeline is not found for a delete, a run or a bind, and
	// each says that it was deleted (a delete: already), not that no such
	// pipeline exists (a delete said "not found").
	_, runErr := admin.RunPipeline(bg, "three", engine.RunTarget{BasketID: b.ID})
	_, bindErr := admin.BindBasket(bg, b.ID, "three")
	for _, c := range []struct {
		op      string
		err     error
		already bool
	}{{"delete", admin.DeletePipeline(bg, "three"), true}, {"run", runErr, false}, {"bind", bindErr, false}} {
		var de *engine.DeletedPipelineError
		wantErr(t, c.err, docex.ErrNotFound)
		if !errors.As(c.err, &de) || de.Name != "three" || de.Already != c.already {
			t.Errorf("%s of a deleted pipeline: %v, want an *engine.DeletedPipelineError (already %t)", c.op, c.err, c.already)
		}
	}
	if err := admin.DeletePipeline(bg, "three"); err == nil || err.Error() != `pipeline "three" was already deleted` {
		t.Errorf("delete of a deleted pipeline: %v", err)
	}
	wantErr(t, admin.DeletePipeline(bg, "never"), docex.ErrNotFound)
	if err := admin.DeletePipeline(bg, "never"); errors.As(err, new(*engine.DeletedPipelineError)) {
		t.Errorf("delete of a pipeline never defined: %v, want not found, not deleted", err)
	}
	list, err = admin.Pipelines(bg)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("deleted pipeline still listed: %+v", list)
	}
	p3, err := admin.CreatePipeline(bg, []byte(threeSteps))
	must(t, err)
	if p3.Version != 3 {
		t.Fatalf("re-created after delete: version %d, want 3", p3.Version)
	}
	created, err := admin.CreateBasketWithPipeline(bg, "bound", "three")
	must(t, err)
	if got, err := admin.BasketByName(bg, "bound"); err != nil || created.Pipeline != "three" || got.Pipeline != "three" {
		t.Fatalf("basket created bound: %+v, read back %+v, %v", created, got, err)
	}
	_, err = admin.CreateBasketWithPipeline(bg, "unbound", "nope")
	wantErr(t, err, docex.ErrNotFound)
	if _, err := admin.BasketByName(bg, "unbound"); err == nil {
		t.Fatal("basket created although its pipeline does not exist")
	}
	// The list names each pipeline's bound baskets, in id order, as
	// Pipeline does; a pipeline bound to none has an empty list.
	second := e.basket(admin, "second")
	_, err = admin.BindBasket(bg, second.ID, "three")
	must(t, err)
	_, err = admin.CreatePipeline(bg, []byte(strings.Replace(threeSteps, `name = "three"`, `name = "alone"`, 1)))
	must(t, err)
	list, err = admin.Pipelines(bg)
	must(t, err)
	want := []string{created.ID, second.ID}
	slices.Sort(want)
	if len(list) != 2 || list[0].Name != "alone" || list[0].Baskets == nil || len(list[0].Baskets) != 0 ||
		list[1].Name != "three" || !slices.Equal(list[1].Baskets, want) {
		t.Fatalf("list = %+v, want alone bound to none and three to %v", list, want)
	}
	one, err := admin.Pipeline(bg, "three", 0)
	must(t, err)
	if !slices.Equal(one.Baskets, want) {
		t.Fatalf("pipeline three's baskets = %v, want %v", one.Baskets, want)
	}
	// The backend reads the bound baskets with the pipeline, in the same
	// statement (one state), for every read of a pipeline: a show racing
	// an unbind, delete, create and bind could otherwise pair a deleted
	// version with a binding made after it.
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	for _, v := range []int{0, 1, 2} {
		rec, err := st.Pipeline(bg, "three", v)
		must(t, err)
		if !slices.Equal(rec.Baskets, want) {
			t.Fatalf("store: pipeline three v%d's baskets = %v, want %v read with it", v, rec.Baskets, want)
		}
	}
	rec, err := st.Pipeline(bg, "alone", 0)
	must(t, err)
	if rec.Baskets == nil || len(rec.Baskets) != 0 {
		t.Fatalf("store: pipeline alone's baskets = %#v, want an empty list read with it", rec.Baskets)
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		rec, err := tx.Pipeline(bg, "three", 0)
		if err == nil && !slices.Equal(rec.Baskets, want) {
			err = fmt.Errorf("in a transaction: pipeline three's baskets = %v, want %v", rec.Baskets, want)
		}
		return err
	}))
}

// derivedOf returns the documents whose lineage source is id.
func derivedOf(t *testing.T, s *engine.Session, id string) []engine.LineageEdge {
	t.Helper()
	l, err := s.Lineage(bg, id)
	must(t, err)
	var out []engine.LineageEdge
	for _, d := range l.Descendants {
		if d.Depth == 1 {
			out = append(out, d)
		}
	}
	return out
}

// testDirectRunLineage: documents derived by a direct run (docex run)
// have lineage edges without a pipeline, step or job; an output that is
// the input itself (the same content, deduplicated) is no derivation.
func (f *fixture) testDirectRunLineage(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin, writer := e.as("acme", "admin"), e.as("acme", "writer")
	e.install(admin, "split", "upper")
	b, err := writer.CreateBasket(bg, "direct")
	must(t, err)
	d := e.add(writer, b.ID, "d.txt", "hello direct run", nil)
	res, err := writer.RunPlugin(bg, "split", d.ID, nil)
	must(t, err)
	if len(res.Derived) != 2 {
		t.Fatalf("split derived %d documents, want 2", len(res.Derived))
	}
	parts := derivedOf(t, writer, d.ID)
	if len(parts) != 2 {
		t.Fatalf("%d lineage edges from the run's input, want 2: %+v", len(parts), parts)
	}
	for _, p := range parts {
		if p.Pipeline != "" || p.Step != "" || p.JobID != "" || p.Version != 0 || p.Plugin != "split" ||
			len(p.ModuleSHA256) != 64 || len(p.Params) != 0 || p.SourceID != d.ID {
			t.Fatalf("edge of a direct run %+v", p)
		}
		l, err := writer.Lineage(bg, p.DerivedID)
		must(t, err)
		if len(l.Ancestors) != 1 || l.Ancestors[0].SourceID != d.ID {
			t.Fatalf("ancestors of %s: %+v", p.DerivedID, l.Ancestors)
		}
	}
	same := e.add(writer, b.ID, "same.txt", "ALREADY UPPER", nil)
	res, err = writer.RunPlugin(bg, "upper", same.ID, nil)
	must(t, err)
	if len(res.Derived) != 1 || res.Derived[0].ID != same.ID {
		t.Fatalf("upper of upper-case text: derived %+v, want the input itself", res.Derived)
	}
	if l, err := writer.Lineage(bg, same.ID); err != nil || len(l.Ancestors)+len(l.Descendants) != 0 {
		t.Fatalf("a run whose output is its input: lineage %+v, %v", l, err)
	}
	// The same through a pipeline step: the input feeds the next step, but
	// gets no edge to itself.
	_, err = admin.CreatePipeline(bg, []byte("name = \"up\"\n[[steps]]\nname = \"u\"\nplugin = \"upper\"\n[[steps]]\nname = \"s\"\nplugin = \"split\"\ninput = \"u\"\n"))
	must(t, err)
	ids, err := admin.RunPipeline(bg, "up", engine.RunTarget{DocumentIDs: []string{same.ID}})
	must(t, err)
	if st := e.work(admin, []string{"acme"}, ids); st.Succeeded != 1 {
		t.Fatalf("pipeline up: %+v", st)
	}
	l, err := writer.Lineage(bg, same.ID)
	must(t, err)
	if len(l.Ancestors) != 0 || len(l.Descendants) != 2 {
		t.Fatalf("a step whose output is its input: ancestors %+v, descendants %+v (want none, and the 2 split parts)", l.Ancestors, l.Descendants)
	}
	for _, d := range l.Descendants {
		if d.SourceID != same.ID || d.DerivedID == same.ID || d.Step != "s" {
			t.Fatalf("edge %+v", d)
		}
	}
}

// testBoundUpdate: new content of an original document of a bound basket
// is processed like an add (its job commits with the update); the same
// content again, a derived document's new content and an unbound basket's
// document enqueue nothing.
func (f *fixture) testBoundUpdate(t *testing.T) {
	e := f.pipeEnv(t)
	admin, writer := e.threeStepsTenant("acme"), e.as("acme", "writer")
	b, err := admin.CreateBasketWithPipeline(bg, "inbox", "three")
	must(t, err)
	free, err := admin.CreateBasket(bg, "free")
	must(t, err)
	d := e.add(writer, b.ID, "d.txt", "first words here", nil)
	loose := e.add(writer, free.ID, "loose.txt", "loose words here", nil)
	jobsOf := func(id string) []engine.JobInfo {
		t.Helper()
		js, err := writer.Jobs(bg, engine.JobFilter{DocumentID: id}, docex.Page{})
		must(t, err)
		return js
	}
	first := jobsOf(d.ID)
	if len(first) != 1 {
		t.Fatalf("%d jobs after the add, want 1", len(first))
	}
	if st := e.work(writer, []string{"acme"}, []string{first[0].ID}); st.Succeeded != 1 {
		t.Fatalf("status %+v", st)
	}
	// The same content again: nothing to process.
	_, err = writer.UpdateContent(bg, d.ID, strings.NewReader("first words here"), "")
	must(t, err)
	if n := len(jobsOf(d.ID)); n != 1 {
		t.Fatalf("an update with the same content enqueued a job: %d jobs", n)
	}
	// New content: one queued job, run as the updating user.
	_, err = writer.UpdateContent(bg, d.ID, strings.NewReader("second text now"), "")
	must(t, err)
	js := jobsOf(d.ID)
	if len(js) != 2 || js[0].State != driver.JobQueued || js[0].UserID != "u-acme" || js[0].ID == first[0].ID {
		t.Fatalf("jobs after new content: %+v", js)
	}
	if st := e.work(writer, []string{"acme"}, []string{js[0].ID}); st.Succeeded != 1 || st.StepsRun != 5 {
		t.Fatalf("status %+v, want the new content's 5 steps run", st)
	}
	var parts []string
	for _, edge := range derivedOf(t, writer, d.ID) {
		if edge.JobID == js[0].ID {
			c, err := writer.ReadContent(bg, edge.DerivedID)
			must(t, err)
			parts = append(parts, string(c))
		}
	}
	if got := strings.Join(parts, ""); got != "second text now" {
		t.Fatalf("the new job split %q, want the new content", got)
	}
	// A derived document's new content: its source's job makes it.
	part := derivedOf(t, writer, d.ID)[0].DerivedID
	_, err = writer.UpdateContent(bg, part, strings.NewReader("edited part"), "")
	must(t, err)
	if n := len(jobsOf(part)); n != 0 {
		t.Fatalf("updating a derived document enqueued %d jobs", n)
	}
	// An unbound basket: nothing.
	_, err = writer.UpdateContent(bg, loose.ID, strings.NewReader("other loose words"), "")
	must(t, err)
	if n := len(jobsOf(loose.ID)); n != 0 {
		t.Fatalf("updating a document of an unbound basket enqueued %d jobs", n)
	}
}

func (f *fixture) testBoundBasket(t *testing.T) {
	e := f.pipeEnv(t)
	admin, writer := e.threeStepsTenant("acme"), e.as("acme", "writer")
	b, err := admin.CreateBasketWithPipeline(bg, "inbox", "three")
	must(t, err)
	// The outbox: each acknowledged add has its job, committed with it.
	var docs []docex.Document
	for i := range 3 {
		docs = append(docs, e.add(writer, b.ID, fmt.Sprintf("d%d.txt", i), fmt.Sprintf("%d hello document %d", i, i), nil))
	}
	jobs, err := writer.Jobs(bg, engine.JobFilter{Pipeline: "three"}, docex.Page{})
	must(t, err)
	if len(jobs) != 3 {
		t.Fatalf("%d jobs after 3 adds to a bound basket, want 3", len(jobs))
	}
	ids := []string{}
	for _, j := range jobs {
		if j.State != driver.JobQueued || j.UserID != "u-acme" || j.Version != 1 {
			t.Fatalf("job before a worker = %+v", j)
		}
		ids = append(ids, j.ID)
	}
	// By basket: the jobs of its documents; another basket's: none; a
	// malformed basket id is refused.
	inBasket, err := writer.Jobs(bg, engine.JobFilter{BasketID: b.ID, State: driver.JobQueued}, docex.Page{})
	must(t, err)
	if len(inBasket) != 3 {
		t.Fatalf("%d queued jobs of basket inbox, want 3", len(inBasket))
	}
	other := e.basket(admin, "other")
	e.add(writer, other.ID, "o.txt", "other basket's document", nil)
	if js, err := writer.Jobs(bg, engine.JobFilter{BasketID: other.ID}, docex.Page{}); err != nil || len(js) != 0 {
		t.Fatalf("jobs of an unbound basket: %d, %v", len(js), err)
	}
	_, err = writer.Jobs(bg, engine.JobFilter{BasketID: "../inbox"}, docex.Page{})
	wantErr(t, err, docex.ErrInvalidID)
	// A duplicate add enqueues nothing.
	e.add(writer, b.ID, "again.txt", "0 hello document 0", nil)
	jobs, _ = writer.Jobs(bg, engine.JobFilter{}, docex.Page{})
	if len(jobs) != 3 {
		t.Fatalf("duplicate add enqueued a job: %d jobs", len(jobs))
	}
	st := e.work(writer, []string{"acme"}, ids)
	if st.Succeeded != 3 || st.Failed != 0 {
		t.Fatalf("status %+v", st)
	}
	for _, d := range docs {
		parts := derivedOf(t, writer, d.ID)
		if len(parts) != 2 {
			t.Fatalf("document %s has %d direct derivatives, want 2: %+v", d.Name, len(parts), parts)
		}
		for _, p := range parts {
			if p.Step != "split" || p.Pipeline != "three" || p.Version != 1 || p.Plugin != "split" || len(p.ModuleSHA256) != 64 || len(p.Params) != 0 {
				t.Fatalf("edge %+v", p)
			}
			ups := derivedOf(t, writer, p.DerivedID)
			if len(ups) != 1 || ups[0].Step != "upper" {
				t.Fatalf("part %s: derivatives %+v", p.DerivedID, ups)
			}
			up, err := writer.Document(bg, ups[0].DerivedID)
			must(t, err)
			if up.Metadata["tagged"] != docex.Bool(true) {
				t.Fatalf("upper-cased part not tagged: %+v", up.Metadata)
			}
			content, err := writer.ReadContent(bg, up.ID)
			must(t, err)
			if len(content) == 0 || strings.ToUpper(string(content)) != string(content) || !strings.Contains("0123 HELLO DOCUMENT 0123", string(content)[:1]) {
				t.Fatalf("upper content %q", content)
			}
			// Each upper-cased part is its own part's (the worker passes a
			// step's derived content on to the next step in memory).
			part, err := writer.ReadContent(bg, p.DerivedID)
			must(t, err)
			if string(content) != strings.ToUpper(string(part)) {
				t.Fatalf("part %q was upper-cased into %q", part, content)
			}
			// Ancestors, both ways.
			l, err := writer.Lineage(bg, up.ID)
			must(t, err)
			if len(l.Ancestors) != 2 || l.Ancestors[1].SourceID != d.ID || l.Ancestors[1].Depth != 2 {
				t.Fatalf("ancestors of %s: %+v", up.ID, l.Ancestors)
			}
		}
	}
	j, err := writer.Job(bg, ids[0])
	must(t, err)
	if j.State != driver.JobSucceeded || j.Attempts != 1 || len(j.Steps) != 1+2+2 || j.Progress.StepsRun != 5 {
		t.Fatalf("job = %+v", j)
	}
	bk, err := writer.Basket(bg, b.ID)
	must(t, err)
	if want := int64(3 + 3*4); bk.DocumentCount != want {
		t.Fatalf("basket holds %d documents, want %d", bk.DocumentCount, want)
	}
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	for _, op := range []string{"job.enqueue", "pipeline.step", "job.succeeded", "basket.create"} {
		if !hasAudit(log, op, docex.OutcomeOK) {
			t.Errorf("audit has no %s", op)
		}
	}

	// Re-running over unchanged input: every step comes from the cache,
	// nothing new is derived, lineage gains no duplicate edge.
	again, err := writer.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{docs[0].ID, docs[1].ID}})
	must(t, err)
	st = e.work(writer, []string{"acme"}, again)
	if st.Succeeded != 2 || st.StepsRun != 0 || st.StepsCached != 10 {
		t.Fatalf("re-run status %+v, want every step cached", st)
	}
	bk, _ = writer.Basket(bg, b.ID)
	if bk.DocumentCount != int64(3+3*4) {
		t.Fatalf("re-run added documents: %d", bk.DocumentCount)
	}
	// pipeline run is audited: the run (with its pipeline version and
	// job count) and each job it enqueued (with its document).
	log, err = admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	enqueued := map[string]string{}
	runs := 0
	for _, a := range log {
		switch {
		case a.Operation == "job.enqueue":
			enqueued[a.Target], _ = a.Detail["document_id"].(string)
		case a.Operation == "pipeline.run" && a.Target == "three" && a.Outcome == docex.OutcomeOK:
			if n, _ := a.Detail["jobs"].(float64); n == 2 {
				runs++
			}
		}
	}
	if enqueued[again[0]] != docs[0].ID || enqueued[again[1]] != docs[1].ID {
		t.Errorf("job.enqueue entries of the re-run's jobs: %v (jobs %v)", enqueued, again)
	}
	if runs != 1 {
		t.Errorf("%d pipeline.run entries for a run of 2 jobs, want 1", runs)
	}
	parts := map[string]bool{}
	for _, e := range derivedOf(t, writer, docs[0].ID) {
		parts[e.DerivedID] = true
	}
	if len(parts) != 2 {
		t.Fatalf("after re-run: %d split derivatives, want the same 2", len(parts))
	}

	// Deleting a source: lineage says it is gone; --cascade removes descendants.
	must(t, writer.DeleteDocument(bg, docs[2].ID))
	l, err := writer.Lineage(bg, docs[2].ID)
	must(t, err)
	if !l.Gone || len(l.Descendants) != 4 { // 2 parts, 2 upper-cased parts (tag derives nothing)
		t.Fatalf("lineage of a deleted source: %+v", l)
	}
	deleted, err := writer.DeleteDocumentCascade(bg, docs[1].ID)
	must(t, err)
	if len(deleted) != 5 {
		t.Fatalf("cascade deleted %d documents, want 5 (the source and 4 descendants)", len(deleted))
	}
	if deleted[len(deleted)-1] != docs[1].ID {
		t.Fatalf("cascade deleted %v: the source last (descendants first)", deleted)
	}
	for _, id := range deleted {
		if _, err := writer.Document(bg, id); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("document %s after the cascade: %v", id, err)
		}
	}
	// One transaction: every deletion is audited with the cascade's source.
	alog, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	cascaded := 0
	for _, a := range alog {
		if a.Operation == "document.delete" && a.Outcome == docex.OutcomeOK && a.Detail["cascade_from"] == docs[1].ID {
			cascaded++
		}
	}
	if cascaded != 5 {
		t.Fatalf("%d document.delete audit entries name the cascade, want 5", cascaded)
	}
	if _, err := writer.DeleteDocumentCascade(bg, docs[1].ID); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("cascade of a deleted document: %v, want not found", err)
	}
	_, err = e.as("acme", "reader").RunPipeline(bg, "three", engine.RunTarget{BasketID: b.ID})
	wantErr(t, err, docex.ErrForbidden)
}

// testReplay puts a finished job back as if its worker had died before
// recording the end: the replay finds every completion key and applies
// nothing twice.
func (f *fixture) testReplay(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "replay me please", nil)
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	e.work(admin, []string{"acme"}, ids)
	before, _ := admin.Basket(bg, b.ID)
	l1, _ := admin.Lineage(bg, d.ID)

	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		j, err := tx.Job(bg, ids[0])
		if err != nil {
			return err
		}
		j.State, j.Attempts = driver.JobFailed, 0
		if err := tx.UpdateJob(bg, j); err != nil {
			return err
		}
		j.State = driver.JobQueued
		return tx.RequeueJob(bg, j)
	}))
	st.Close()
	s := e.work(admin, []string{"acme"}, ids)
	if s.Succeeded != 1 {
		t.Fatalf("replayed job: %+v", s)
	}
	after, _ := admin.Basket(bg, b.ID)
	l2, _ := admin.Lineage(bg, d.ID)
	if after.DocumentCount != before.DocumentCount || len(l2.Descendants) != len(l1.Descendants) {
		t.Fatalf("replay applied twice: documents %d -> %d, lineage edges %d -> %d",
			before.DocumentCount, after.DocumentCount, len(l1.Descendants), len(l2.Descendants))
	}
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.Progress.StepsRun != 5 {
		t.Fatalf("replay ran steps again: %+v", j.Progress)
	}
}

// testLostAttempt: a job delivered again while its record holds an attempt
// that never ended (as a worker killed with kill -9 leaves it: running,
// the attempt started) records that attempt as not finished, with its
// worker; the attempt counts. With attempts left the job runs again; with
// none it fails, and the lost attempt keeps what happened to it.
func (f *fixture) testLostAttempt(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	d1 := e.add(admin, b.ID, "a.txt", "killed once", nil)
	d2 := e.add(admin, b.ID, "b.txt", "killed for good", nil)
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d1.ID, d2.ID}})
	must(t, err)
	e.work(admin, []string{"acme"}, ids)
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		for i, id := range ids {
			j, err := tx.Job(bg, id)
			if err != nil {
				return err
			}
			j.State, j.Attempts, j.MaxAttempts = driver.JobRunning, 1, 2-i
			j.Detail = []byte(`{"attempts": [{"n": 1, "started_at": "2026-01-02T03:04:05Z", "worker": "worker-killed"}]}`)
			if err := tx.RequeueJob(bg, j); err != nil {
				return err
			}
		}
		return nil
	}))
	st.Close()
	e.work(admin, []string{"acme"}, ids)
	for i, want := range []struct {
		state    string
		attempts int
	}{{"succeeded", 2}, {"failed", 1}} {
		j, err := admin.Job(bg, ids[i])
		must(t, err)
		if j.State != want.state || j.Attempts != want.attempts || len(j.History) != want.attempts {
			t.Fatalf("job %d: %s, %d attempts, history %+v; want %s, %d attempts", i, j.State, j.Attempts, j.History, want.state, want.attempts)
		}
		lost := j.History[0]
		if !strings.Contains(lost.Error, "did not finish") || !strings.Contains(lost.Error, "worker-killed") || !lost.Transient || !lost.EndedAt.IsZero() {
			t.Errorf("job %d: the killed worker's attempt reads %+v; want it not finished (error naming its worker, transient, no end time)", i, lost)
		}
		if want.state == "failed" && !strings.HasPrefix(j.Error, "gave up after 1 attempt: it did not finish (its worker did not record its end: ") {
			t.Errorf("job %d: error %q, want the give-up (no step named: none failed)", i, j.Error)
		}
		if last := j.History[len(j.History)-1]; want.state == "succeeded" && (last.EndedAt.IsZero() || last.Error != "") {
			t.Errorf("job %d: its last attempt reads %+v; want it ended without error", i, last)
		}
		checkJobDuration(t, admin, ids[i], fmt.Sprintf("job %d (%s after a lost attempt)", i, want.state))
		checkListProgress(t, admin, ids[i], fmt.Sprintf("job %d (%s after a lost attempt)", i, want.state))
	}
	// Each lost attempt is audited once, as job.attempt_lost, before what
	// its job's next delivery did (a new attempt, or the give-up).
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	for i, id := range ids {
		var lost []docex.AuditEntry
		at, end := -1, -1
		for k, a := range log { // newest first
			switch {
			case a.Target != id:
			case a.Operation == "job.attempt_lost":
				lost, at = append(lost, a), k
			case end < 0 && (a.Operation == "job.succeeded" || a.Operation == "job.failed"):
				end = k
			}
		}
		if len(lost) != 1 {
			t.Fatalf("job %d: %d job.attempt_lost entries %+v, want 1", i, len(lost), lost)
		}
		a := lost[0]
		n, _ := a.Detail["attempt"].(float64)
		if a.Outcome != docex.OutcomeError || !strings.Contains(a.Error, "did not finish") || !strings.Contains(a.Error, "worker-killed") ||
			n != 1 || a.Detail["worker"] != "worker-killed" || a.Detail["pipeline"] != "three" || a.UserID != "u-acme" {
			t.Errorf("job %d: the lost attempt is audited as %+v; want outcome error, its error, attempt 1 of worker worker-killed, pipeline three, by the job's user", i, a)
		}
		if end < 0 || at < end {
			t.Errorf("job %d: job.attempt_lost at %d, the job's end at %d (newest first): want the loss audited before the end", i, at, end)
		}
	}
}

// slowJob provisions tenant acme with pipeline "slow" (split, then the
// loop plugin spinning for a minute on each part; maxAttempts attempts)
// and runs it on one document; it returns acme's admin session and the
// job's id in a slice.
func (e *pipeEnv) slowJob(maxAttempts int) (*engine.Session, []string) {
	e.t.Helper()
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split")
	e.spinMinute(admin)
	_, err := admin.CreatePipeline(bg, []byte(fmt.Sprintf("name = \"slow\"\nmax_attempts = %d\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n"+
		"[[steps]]\nname = \"spin\"\nplugin = \"loop\"\ninput = \"s\"\n", maxAttempts)))
	must(e.t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "split me, then spin on each part", nil)
	ids, err := admin.RunPipeline(bg, "slow", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(e.t, err)
	return admin, ids
}

// testCancelRunning: cancelling a running job ends its attempt in the
// history (cancelled, with its end time), so that the attempt of a retry
// does not take it for one its worker never ended (testLostAttempt).
func (f *fixture) testCancelRunning(t *testing.T) {
	e := f.pipeEnv(t)
	admin, ids := e.slowJob(3)
	_, stop := e.runningJob(admin, "acme", ids[0], 1)
	must(t, admin.CancelJob(bg, ids[0]))
	stop()
	cancelled := func(a engine.JobAttempt) bool {
		return !a.EndedAt.IsZero() && a.ErrorCode == "cancelled" && a.Error == "cancelled by u-acme"
	}
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.State != driver.JobCancelled || len(j.History) != 1 || !cancelled(j.History[0]) {
		t.Fatalf("job cancelled while running: %s, history %+v; want cancelled, its attempt ended as cancelled", j.State, j.History)
	}
	checkJobDuration(t, admin, ids[0], "job cancelled while running")
	checkListProgress(t, admin, ids[0], "job cancelled while running")
	must(t, admin.RetryJob(bg, ids[0]))
	// The job lists the step its first attempt completed: wait for the
	// second attempt to start (SQLite marks a job running when a worker
	// claims it, before its attempt starts).
	j, stop = e.runningJob(admin, "acme", ids[0], 1)
	defer stop()
	defer func() { must(t, admin.CancelJob(bg, ids[0])) }()
	for deadline := time.Now().Add(2 * time.Minute); len(j.History) < 2 && time.Now().Before(deadline); { // a bound on a hung test
		time.Sleep(10 * time.Millisecond)
		j, err = admin.Job(bg, ids[0])
		must(t, err)
	}
	if len(j.History) != 2 || !cancelled(j.History[0]) || !j.History[1].EndedAt.IsZero() || j.History[1].Error != "" {
		t.Fatalf("retried job, running: history %+v; want the cancelled attempt, then the one running", j.History)
	}
}

// checkListProgress: job list's progress of job id (the counts its
// attempts wrote) is job show's (its recorded steps). An attempt
// cancelled while it ran, or lost, recorded its steps but not its counts:
// job list showed fewer (probe p15).
func checkListProgress(t *testing.T, s *engine.Session, id, what string) {
	t.Helper()
	j, err := s.Job(bg, id)
	must(t, err)
	js, err := s.Jobs(bg, engine.JobFilter{}, docex.Page{Limit: 1000})
	must(t, err)
	for _, l := range js {
		if l.ID == id {
			if l.Progress != j.Progress {
				t.Errorf("%s: job list's progress %+v, job show's %+v", what, l.Progress, j.Progress)
			}
			return
		}
	}
	t.Fatalf("%s: job %s not listed", what, id)
}

// testCancelRetryOnce: a queued job cancelled and retried twice, then
// worked, runs once: one attempt, its steps run (not taken from another
// delivery's results), one job.succeeded entry. On PostgreSQL each retry
// enqueued a River job while the cancelled one's stayed: three deliveries
// of the job, run side by side.
func (f *fixture) testCancelRetryOnce(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "cancel me, retry me", nil)
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	for range 2 {
		must(t, admin.CancelJob(bg, ids[0]))
		must(t, admin.RetryJob(bg, ids[0]))
	}
	e.work(admin, []string{"acme"}, ids)
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.State != driver.JobSucceeded || j.Attempts != 1 || len(j.History) != 1 || j.Progress.StepsRun != 5 || j.Progress.StepsCached != 0 {
		t.Fatalf("job cancelled and retried twice, then run: %+v; want succeeded at its one attempt, its 5 runs made by it", j)
	}
	checkJobDuration(t, admin, ids[0], "job succeeded")
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	ends := 0
	for _, a := range log {
		if a.Target == ids[0] && a.Operation == "job.succeeded" {
			ends++
		}
	}
	if ends != 1 {
		t.Fatalf("%d job.succeeded entries for the job, want 1", ends)
	}
}

// testRetryWhileCancelledRuns: a job cancelled while it runs and retried
// before its attempt stopped is the retry's: the cancelled attempt, when
// it stops, writes nothing over it. The attempt (stopped at once here,
// as a shutdown does) wrote the job back as queued with the attempt
// uncounted and left out of the history.
func (f *fixture) testRetryWhileCancelledRuns(t *testing.T) {
	e := f.pipeEnv(t)
	admin, ids := e.slowJob(2)
	_, stop := e.runningJob(admin, "acme", ids[0], 1)
	must(t, admin.CancelJob(bg, ids[0]))
	must(t, admin.RetryJob(bg, ids[0]))
	stop()
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.State != driver.JobQueued || j.Attempts != 1 || j.MaxAttempts != 3 || len(j.History) != 1 || j.History[0].ErrorCode != "cancelled" {
		t.Fatalf("job retried while its cancelled attempt ran, once that stopped: %s, %d of %d attempts, history %+v; "+
			"want it as the retry left it: queued, 1 of 3 attempts, the cancelled attempt in its history", j.State, j.Attempts, j.MaxAttempts, j.History)
	}
}

// testStaleDeliveryNeverStarts: a delivery a worker held (not started)
// while its job was cancelled and retried is not the job's current one:
// it neither starts the job nor, the retry's delivery having started it
// meanwhile, takes it over. The job runs once, by the retry's delivery,
// with no attempt lost. Before, worker A started the job from the held
// delivery (on PostgreSQL a River job the cancel had marked superseded;
// on SQLite a claim whose lease the cancel had ended), and worker B,
// given the retry's delivery, recorded A's attempt lost (job.attempt_lost,
// A alive) and started another: both ran the job at once (probe P7).
// Worker A holds the delivery in its OnDelivery hook, and runs one job at
// a time; the hook holds A's later deliveries until A stops, which then
// releases them unstarted, so that the retry's delivery goes to B (A,
// having completed its stale delivery, could otherwise be handed the
// retry's and start the job legitimately). Worker A logs the stale
// delivery it dropped (docs/jobs.md, "Worker log lines"): before, it
// logged nothing.
func (f *fixture) testStaleDeliveryNeverStarts(t *testing.T) {
	e := f.pipeEnv(t)
	admin, ids := e.slowJob(3)
	id := ids[0]
	held, release := make(chan struct{}), make(chan struct{})
	outs := make(chan driver.Outcome, 4)
	var once sync.Once
	ctxA, stopA := context.WithCancelCause(bg)
	hook := func(d driver.Delivery) func(driver.Outcome) {
		first := false
		once.Do(func() { first = true })
		if !first {
			// A later delivery (the retry's, once A completed its stale
			// one): held until A stops, then released unstarted (the
			// worker stopping), so that it goes to B. Before, A could
			// take it and start the job legitimately before the test
			// stopped A, and B then waited for a delivery that A held.
			<-ctxA.Done()
			return nil
		}
		if d.JobID != id {
			t.Errorf("worker A's first delivery is of job %s, want %s", d.JobID, id)
			return nil
		}
		close(held)
		<-release
		return func(o driver.Outcome) { outs <- o }
	}
	doneA := make(chan error, 1)
	var logsA logLines
	go func() {
		doneA <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Name: "worker-a", Concurrency: 1, Batch: 1,
			Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, ShutdownTimeout: time.Hour, OnDelivery: hook,
			Logger: slog.New(slog.NewJSONHandler(&logsA, nil))}).Run(ctxA)
	}()
	stoppedA := false
	stop := func(cancel context.CancelCauseFunc, done chan error, name string) {
		cancel(driver.ErrStopNow)
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	defer func() {
		if !stoppedA {
			stop(stopA, doneA, "worker A")
		}
	}()
	select {
	case <-held:
	case <-time.After(time.Minute): // a bound on a hung test
		t.Fatal("worker A was not delivered the job")
	}
	must(t, admin.CancelJob(bg, id))
	must(t, admin.RetryJob(bg, id))
	close(release)
	// A either completes its delivery without starting the job, or (the
	// old code) starts an attempt from it.
	byWorker := func(j engine.JobInfo, w string) int {
		n := 0
		for _, a := range j.History {
			if a.Worker == w {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) { // a bound on a hung test
		select {
		case o := <-outs:
			if o.Kind != driver.Done {
				t.Errorf("worker A's stale delivery: outcome %+v, want done (completed, the job not touched)", o)
			}
			stop(stopA, doneA, "worker A")
			stoppedA = true
			checkStaleLogged(t, &logsA, "worker-a", "acme", id)
		default:
		}
		if stoppedA {
			break
		}
		j, err := admin.Job(bg, id)
		must(t, err)
		if byWorker(j, "worker-a") > 0 {
			break // started by A: B's delivery comes while A runs it
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker A neither completed its delivery nor started the job: %+v", j)
		}
	}
	ctxB, stopB := context.WithCancelCause(bg)
	doneB := make(chan error, 1)
	go func() {
		doneB <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Name: "worker-b", Poll: 20 * time.Millisecond,
			RetryBase: 10 * time.Millisecond, ShutdownTimeout: time.Hour}).Run(ctxB)
	}()
	defer stop(stopB, doneB, "worker B")
	var j engine.JobInfo
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) { // a bound on a hung test
		var err error
		j, err = admin.Job(bg, id)
		must(t, err)
		if byWorker(j, "worker-b") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker B never started the retried job: %+v", j)
		}
	}
	if n := byWorker(j, "worker-a"); n > 0 || j.Attempts != 1 || j.State != driver.JobRunning || len(j.History) != 1 || !j.History[0].EndedAt.IsZero() || j.History[0].Error != "" {
		t.Errorf("retried job: %s, %d attempts, history %+v; want running its one attempt, worker B's, none started by worker A's "+
			"held delivery (%d were)", j.State, j.Attempts, j.History, n)
	}
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	for _, a := range log {
		if a.Operation == "job.attempt_lost" {
			t.Errorf("an attempt recorded lost, its worker alive: %+v", a)
		}
	}
	must(t, admin.CancelJob(bg, id))
}

// checkStaleLogged checks that l holds the one line of a stale delivery
// of the job id of tenant dropped by worker (docs/jobs.md, "Worker log
// lines"): INFO, with the worker, the tenant, the job, the delivery (not
// empty: a River job's id, or the worker that leased the job) and a
// reason that says the delivery was superseded (PostgreSQL) or its lease
// ended (SQLite), the job having been cancelled and retried.
func checkStaleLogged(t *testing.T, l *logLines, worker, tenant, id string) {
	t.Helper()
	const msg = "dropped a stale delivery (not its job's current one: the job was left as it was)"
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	n := 0
	for line := range strings.Lines(text) {
		var got struct {
			Level, Msg, Worker, Tenant, Job, Delivery, Reason string
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Errorf("log line %q: %v", line, err)
			continue
		}
		if got.Msg != msg {
			continue
		}
		n++
		if got.Level != "INFO" || got.Worker != worker || got.Tenant != tenant || got.Job != id || got.Delivery == "" ||
			(got.Reason != driver.StaleSuperseded && got.Reason != driver.StaleLeaseEnded) {
			t.Errorf("log line %s; want level INFO, worker %q, tenant %q, job %q, a delivery, reason %q or %q",
				line, worker, tenant, id, driver.StaleSuperseded, driver.StaleLeaseEnded)
		}
	}
	if n != 1 {
		t.Errorf("%d log lines %q, want 1:\n%s", n, msg, text)
	}
}

// testSharedRuns: jobs on identical content in two baskets (in one batch
// their runs share plugin calls: engine's TestSharedRuns) each derive, in
// their own basket, what a job of its own would have; a document whose two
// halves are identical (one derived document, taken twice as input) is
// processed like any other.
func (f *fixture) testSharedRuns(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b1, b2 := e.basket(admin, "one"), e.basket(admin, "two")
	d1 := e.add(admin, b1.ID, "a.txt", "the same words", nil)
	d2 := e.add(admin, b2.ID, "a.txt", "the same words", nil)
	twin := e.add(admin, b1.ID, "twin.txt", "abcabc", nil)
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d1.ID, d2.ID, twin.ID}})
	must(t, err)
	st := e.workBatch(admin, []string{"acme"}, ids, 32)
	if st.Succeeded != 3 {
		t.Fatalf("status %+v", st)
	}
	// d1 and d2: whether they ran in one batch (sharing calls) or apart
	// (the second from the step cache), 10 steps, at least 5 run.
	j1, err := admin.Job(bg, ids[0])
	must(t, err)
	j2, err := admin.Job(bg, ids[1])
	must(t, err)
	if run, cached := j1.Progress.StepsRun+j2.Progress.StepsRun, j1.Progress.StepsCached+j2.Progress.StepsCached; run+cached != 10 || run < 5 {
		t.Errorf("two jobs on identical content: %d steps run and %d cached, want 10 in all, 5 or more run (%+v, %+v)", run, cached, j1.Progress, j2.Progress)
	}
	for _, b := range []docex.Basket{b1, b2} {
		bk, err := admin.Basket(bg, b.ID)
		must(t, err)
		want := int64(1 + 2 + 2) // the input, its halves, their upper-case (tag sets metadata only)
		if b.ID == b1.ID {
			want += 1 + 1 + 1 // twin: one half (both identical), one upper-case half
		}
		if bk.DocumentCount != want {
			t.Errorf("basket %s holds %d documents, want %d", b.Name, bk.DocumentCount, want)
		}
	}
	for _, d := range []docex.Document{d1, d2} {
		l, err := admin.Lineage(bg, d.ID)
		must(t, err)
		if len(l.Descendants) != 4 {
			t.Errorf("document in basket %s: %d descendants, want 4: %+v", d.BasketID, len(l.Descendants), l.Descendants)
		}
		for _, edge := range l.Descendants {
			dd, err := admin.Document(bg, edge.DerivedID)
			must(t, err)
			if dd.BasketID != d.BasketID {
				t.Errorf("a descendant of %s is in basket %s", d.BasketID, dd.BasketID)
			}
		}
	}
	jt, err := admin.Job(bg, ids[2])
	must(t, err)
	if jt.State != driver.JobSucceeded {
		t.Fatalf("twin job: %+v", jt)
	}
}

// testLookupNotCached: a step whose plugin has documents.lookup reads
// other documents of its input's basket, which the step cache key does not
// name, so it is never taken from the step cache nor shares a call (the
// engine's TestLookupStepsNotCached): of equal documents in baskets hr and
// public, each job runs the step and public's finds nothing of hr's
// salaries.txt; once salaries.txt is deleted, a new run on hr's memo finds
// nothing either. The steps of the other plugins are still cached: of two
// jobs of the pipeline "three" on one document, one after the other, the
// second takes every step from the cache.
func (f *fixture) testLookupNotCached(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme", "lookup")
	_, err := admin.CreatePipeline(bg, []byte("name = \"look\"\n[[steps]]\nname = \"look\"\nplugin = \"lookup\"\n[steps.params]\nname = \"salaries.txt\"\n"))
	must(t, err)
	hr, public := e.basket(admin, "hr"), e.basket(admin, "public")
	salaries := e.add(admin, hr.ID, "salaries.txt", "ceo 1,000,000", map[string]docex.Value{"author": docex.String("payroll-secret")})
	memo := e.add(admin, hr.ID, "memo.txt", "same bytes", nil)
	pub := e.add(admin, public.ID, "memo.txt", "same bytes", nil)
	// check runs pipeline look on docs (in one batch or apart) and checks
	// that each job ran its step and found found documents.
	check := func(what string, docs []docex.Document, found []float64) {
		t.Helper()
		ids := make([]string, len(docs))
		for i, d := range docs {
			got, err := admin.RunPipeline(bg, "look", engine.RunTarget{DocumentIDs: []string{d.ID}})
			must(t, err)
			ids[i] = got[0]
		}
		if st := e.workBatch(admin, []string{"acme"}, ids, 32); st.Succeeded != len(ids) {
			t.Fatalf("%s: status %+v", what, st)
		}
		for i, id := range ids {
			j, err := admin.Job(bg, id)
			must(t, err)
			d, err := admin.Document(bg, docs[i].ID)
			must(t, err)
			if j.Progress.StepsRun != 1 || j.Progress.StepsCached != 0 || len(j.Steps) != 1 || j.Steps[0].Outcome != engine.StepRan {
				t.Errorf("%s, %s of basket %s: progress %+v, steps %+v; want the step run, not cached", what, d.Name, d.BasketID, j.Progress, j.Steps)
			}
			leaked := strings.Contains(d.Metadata["names"].Str(), "salaries.txt") || d.Metadata["author"].Str() == "payroll-secret"
			if d.Metadata["found"].Num() != found[i] || (found[i] == 0 && leaked) {
				t.Errorf("%s, %s of basket %s: metadata %v; want found = %v", what, d.Name, d.BasketID, d.Metadata, found[i])
			}
		}
	}
	check("equal documents of hr and public", []docex.Document{memo, pub}, []float64{1, 0})
	check("public's again", []docex.Document{pub}, []float64{0})
	must(t, admin.DeleteDocument(bg, salaries.ID))
	for _, k := range []string{"author", "found", "names", "total_bytes"} {
		must(t, admin.DeleteMetadata(bg, memo.ID, k))
	}
	check("hr's memo, salaries.txt deleted", []docex.Document{memo}, []float64{0})

	// Not a lookup: cached.
	d := e.add(admin, hr.ID, "a.txt", "the same words", nil)
	var progress []engine.JobProgress
	for range 2 {
		ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d.ID}})
		must(t, err)
		if st := e.work(admin, []string{"acme"}, ids); st.Succeeded != 1 {
			t.Fatalf("three: status %+v", st)
		}
		j, err := admin.Job(bg, ids[0])
		must(t, err)
		progress = append(progress, j.Progress)
	}
	if progress[0].StepsRun != 5 || progress[1].StepsRun != 0 || progress[1].StepsCached != 5 {
		t.Errorf("pipeline three on a document, one job after the other: %+v then %+v; want 5 steps run, then 5 cached", progress[0], progress[1])
	}
}

// testMetadataBatch: a backend's SetMetadataBatch (driver.MetadataBatchTx)
// has the effect of SetMetadata on each set in order: a key set twice
// keeps the later value, keys of other sets and earlier keys stay, each
// document's updated_at moves; a missing document is ErrNotFound and the
// transaction changes nothing.
func (f *fixture) testMetadataBatch(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	b := e.basket(admin, "in")
	d1 := e.add(admin, b.ID, "a.txt", "first", map[string]docex.Value{"keep": docex.String("yes"), "n": docex.Number(1)})
	d2 := e.add(admin, b.ID, "b.txt", "second", nil)
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	var mb driver.MetadataBatchTx
	at := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
	sets := []driver.MetadataSet{
		{DocumentID: d1.ID, Values: map[string]docex.Value{"n": docex.Number(2), "s": docex.String("x")}},
		{DocumentID: d2.ID, Values: map[string]docex.Value{"flag": docex.Bool(true)}},
		{DocumentID: d1.ID, Values: map[string]docex.Value{"n": docex.Number(3)}},
	}
	err = st.Write(bg, func(tx driver.Tx) error {
		var ok bool
		if mb, ok = tx.(driver.MetadataBatchTx); !ok {
			return nil
		}
		return mb.SetMetadataBatch(bg, sets, at)
	})
	must(t, err)
	if mb == nil {
		t.Fatal("the backend's transactions do not implement driver.MetadataBatchTx (both of docex's do)")
	}
	got1, err := admin.Document(bg, d1.ID)
	must(t, err)
	got2, err := admin.Document(bg, d2.ID)
	must(t, err)
	if got1.Metadata["n"].Num() != 3 || got1.Metadata["s"].Str() != "x" || got1.Metadata["keep"].Str() != "yes" || !got2.Metadata["flag"].Truth() {
		t.Fatalf("after SetMetadataBatch: %v and %v", got1.Metadata, got2.Metadata)
	}
	if !got1.UpdatedAt.Equal(at) || !got2.UpdatedAt.Equal(at) {
		t.Fatalf("updated_at %v and %v, want %v", got1.UpdatedAt, got2.UpdatedAt, at)
	}
	found, _, err := admin.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "n", Value: docex.Number(3)}}, docex.Page{})
	must(t, err)
	if len(found) != 1 || found[0].ID != d1.ID {
		t.Fatalf("find n=3: %v", found)
	}
	err = st.Write(bg, func(tx driver.Tx) error {
		return tx.(driver.MetadataBatchTx).SetMetadataBatch(bg, []driver.MetadataSet{
			{DocumentID: d2.ID, Values: map[string]docex.Value{"flag": docex.Bool(false)}},
			{DocumentID: "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b", Values: map[string]docex.Value{"x": docex.Number(1)}},
		}, at.Add(time.Hour))
	})
	wantErr(t, err, docex.ErrNotFound)
	if again, _ := admin.Document(bg, d2.ID); !again.Metadata["flag"].Truth() || !again.UpdatedAt.Equal(at) {
		t.Fatalf("a failed SetMetadataBatch changed %v (updated %v)", again.Metadata, again.UpdatedAt)
	}
}

// testWaitWakes: WaitJobs returns when this process's worker settles the
// last job it waits for, not at its next poll: here the poll interval is
// an hour, and the wait must end well within the test's deadline, with
// the status read from the job records (a failed job included).
func (f *fixture) testWaitWakes(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	var docs []string
	for i := range 5 {
		docs = append(docs, e.add(admin, b.ID, fmt.Sprintf("w%d.txt", i), fmt.Sprintf("wake me %d", i), nil).ID)
	}
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: docs})
	must(t, err)
	ctx, cancel := context.WithTimeout(bg, 3*time.Minute)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Concurrency: 2, Poll: 50 * time.Millisecond}).Run(wctx)
	}()
	polls := 0
	st, err := admin.WaitJobs(ctx, ids, time.Hour, func(engine.JobsStatus) { polls++ })
	stop()
	if werr := <-done; werr != nil {
		t.Fatalf("worker: %v", werr)
	}
	if err != nil {
		t.Fatalf("WaitJobs with an hour's poll interval did not return when the in-process worker settled the jobs: %v (status %+v)", err, st)
	}
	if st.Succeeded != len(ids) || !st.Done() {
		t.Fatalf("status %+v, want %d succeeded", st, len(ids))
	}
	if polls < 1 {
		t.Fatalf("progress called %d times", polls)
	}
	// Final jobs: the first poll returns.
	again, err := admin.WaitJobs(ctx, ids, time.Hour, nil)
	if err != nil || again.Succeeded != len(ids) || again.StepsRun != st.StepsRun {
		t.Fatalf("waiting again on final jobs: %+v %v, want %+v", again, err, st)
	}
	// An interrupted wait (ctx ended, here before or during its first
	// poll) returns a status that adds up: never one a failed poll left
	// half counted (pipeline run --wait prints it: total 1, pending 0).
	// The context ends at its n-th look (Done or Err), for every n up to
	// past the whole first poll: at each point of it, deterministically.
	queued, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: docs[:2]})
	must(t, err)
	for n := 1; n <= 120; n++ {
		// Past the poll's last look, its wait ends by the deadline.
		dctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		cctx := &endsAfter{Context: dctx, looks: n, done: make(chan struct{})}
		part, err := admin.WaitJobs(cctx, queued, time.Hour, nil)
		cancel()
		if err == nil {
			t.Fatalf("WaitJobs with a context ending at look %d: no error", n)
		}
		if part.Succeeded+part.Failed+part.Cancelled+part.Pending != part.Total || (part.Total != 0 && part.Total != len(queued)) {
			t.Fatalf("WaitJobs interrupted at look %d (%v): status %+v does not add up", n, err, part)
		}
	}
}

// endsAfter is a context that ends (Done closed, Err context.Canceled)
// at its looks-th call of Done or Err, or when its parent does.
type endsAfter struct {
	context.Context
	mu    sync.Mutex
	looks int
	done  chan struct{}
}

// ended counts a look and reports whether the context has ended.
func (c *endsAfter) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.looks > 0 {
		if c.looks--; c.looks == 0 {
			close(c.done)
		}
	}
	return c.looks == 0
}

func (c *endsAfter) Done() <-chan struct{} {
	if c.ended() {
		return c.done
	}
	return c.Context.Done()
}

func (c *endsAfter) Err() error {
	if c.ended() {
		return context.Canceled
	}
	return c.Context.Err()
}

func (f *fixture) testJobFailures(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split", "trap", "tag")
	_, err := admin.CreatePipeline(bg, []byte("name = \"bad\"\nmax_attempts = 5\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\ninput = \"s\"\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "to be trapped", nil)
	ids, err := admin.RunPipeline(bg, "bad", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	checkJobDuration(t, admin, ids[0], "job queued, never run")
	st := e.work(admin, []string{"acme"}, ids)
	if st.Failed != 1 || len(st.Failures) != 1 || st.Failures[0].Step != "t" || st.Failures[0].DocumentID != d.ID {
		t.Fatalf("status %+v", st)
	}
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	// A trap is permanent: one attempt, typed error, resource report.
	if j.State != driver.JobFailed || j.Attempts != 1 || j.ErrorCode != "plugin_failed" || j.Failure.Step != "t" || j.Failure.Report.DurationMS <= 0 {
		t.Fatalf("failed job = %+v", j)
	}
	// The split step committed before the failure and is not redone on retry.
	// The retried job's fresh budget is its pipeline's max_attempts (5).
	must(t, admin.RetryJob(bg, ids[0]))
	if j, _ := admin.Job(bg, ids[0]); j.Attempts != 1 || j.MaxAttempts != 1+5 {
		t.Fatalf("retried job's budget: %d attempts of %d, want 1 of 6", j.Attempts, j.MaxAttempts)
	}
	st = e.work(admin, []string{"acme"}, ids)
	j, _ = admin.Job(bg, ids[0])
	if j.State != driver.JobFailed || j.Attempts != 2 || j.Progress.StepsRun != 1 || len(j.Steps) != 1 {
		t.Fatalf("after retry: %+v", j)
	}
	checkJobDuration(t, admin, ids[0], "job failed twice")
	wantErr(t, admin.RetryJob(bg, "nope"), docex.ErrInvalidID)
	wantErr(t, admin.RetryJob(bg, "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b"), docex.ErrNotFound)
	for _, call := range []struct {
		name string
		err  error
	}{
		{"Job", func() error { _, err := admin.Job(bg, "nope"); return err }()},
		{"CancelJob", admin.CancelJob(bg, "../x")},
		{"Lineage", func() error { _, err := admin.Lineage(bg, "nope"); return err }()},
		{"Jobs --doc", func() error { _, err := admin.Jobs(bg, engine.JobFilter{DocumentID: "nope"}, docex.Page{}); return err }()},
		{"RunPipeline --doc", func() error {
			_, err := admin.RunPipeline(bg, "bad", engine.RunTarget{DocumentIDs: []string{d.ID, "nope"}})
			return err
		}()},
		{"RunPipeline --basket", func() error { _, err := admin.RunPipeline(bg, "bad", engine.RunTarget{BasketID: "in"}); return err }()},
	} {
		if !errors.Is(call.err, docex.ErrInvalidID) {
			t.Errorf("%s with a malformed id: %v, want ErrInvalidID", call.name, call.err)
		}
	}

	// A job that spent its whole budget gets a fresh one on retry, and
	// the retry runs its plugin (the budget is written, not only computed).
	// The fresh budget is exactly the pipeline's max_attempts: with
	// max_attempts = 1, one more attempt, every time it is retried.
	_, err = admin.CreatePipeline(bg, []byte("name = \"once\"\nmax_attempts = 1\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\n"))
	must(t, err)
	ids1, err := admin.RunPipeline(bg, "once", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	e.work(admin, []string{"acme"}, ids1)
	for n := 1; n <= 2; n++ {
		must(t, admin.RetryJob(bg, ids1[0]))
		if j, _ := admin.Job(bg, ids1[0]); j.Attempts != n || j.MaxAttempts != n+1 {
			t.Fatalf("retry %d: budget %d attempts of %d, want %d of %d", n, j.Attempts, j.MaxAttempts, n, n+1)
		}
		e.work(admin, []string{"acme"}, ids1)
		if j, _ := admin.Job(bg, ids1[0]); j.State != driver.JobFailed || j.Attempts != n+1 || j.ErrorCode != "plugin_failed" || len(j.History) != n+1 {
			t.Fatalf("retry %d: retried job did not run again once: %+v", n, j)
		}
	}

	// Cancel a queued job: it never runs.
	ids2, err := admin.RunPipeline(bg, "bad", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	must(t, admin.CancelJob(bg, ids2[0]))
	err = admin.CancelJob(bg, ids2[0])
	wantErr(t, err, docex.ErrConflict)
	if want := "job " + ids2[0] + " was cancelled already: only queued or running jobs can be cancelled"; err.Error() != want {
		t.Errorf("cancel of a cancelled job: %q, want %q", err, want)
	}
	st = e.work(admin, []string{"acme"}, ids2)
	if st.Cancelled != 1 {
		t.Fatalf("cancelled job: %+v", st)
	}
	j, _ = admin.Job(bg, ids2[0])
	if j.Attempts != 0 {
		t.Fatalf("cancelled job ran: %+v", j)
	}
	checkJobDuration(t, admin, ids2[0], "job cancelled before it ran")
	// A job whose document was deleted has nothing to retry: refused, and
	// the job stays as it was.
	must(t, admin.DeleteDocument(bg, d.ID))
	wantErr(t, admin.RetryJob(bg, ids2[0]), docex.ErrConflict)
	if j, _ = admin.Job(bg, ids2[0]); j.State != driver.JobCancelled {
		t.Fatalf("after a refused retry: %+v", j)
	}
	// A queued job whose document is deleted before it runs is cancelled
	// with that reason: not failed, no attempt spent, audited.
	gone := e.add(admin, b.ID, "gone.txt", "deleted before its job ran", nil)
	ids3, err := admin.RunPipeline(bg, "bad", engine.RunTarget{DocumentIDs: []string{gone.ID}})
	must(t, err)
	must(t, admin.DeleteDocument(bg, gone.ID))
	if st = e.work(admin, []string{"acme"}, ids3); st.Cancelled != 1 || st.Failed != 0 {
		t.Fatalf("job of a deleted document: %+v", st)
	}
	j, _ = admin.Job(bg, ids3[0])
	if j.State != driver.JobCancelled || j.Attempts != 0 || j.ErrorCode != "cancelled" || !strings.Contains(j.Error, gone.ID+" was deleted") {
		t.Fatalf("job of a deleted document: %+v", j)
	}
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	found := false
	for _, a := range log {
		found = found || (a.Operation == "job.cancelled" && a.Target == ids3[0])
	}
	if !found {
		t.Error("no job.cancelled audit entry for the job of a deleted document")
	}
}

// testRetryBackoff: job retry gives a failed job a fresh budget of
// attempts, and the backoff of its transient failures starts again with
// it: the first one after the retry waits the first delay (RetryBase,
// +-20%), as a job's first ever does. It counted every attempt the job
// had made: the first transient failure after a retry of a job of
// max_attempts = 2 (its third attempt) waited 4 x RetryBase. The test
// reads the delay the engine chose, recorded in the attempt history
// (retry_after_ms), not the times the records were written, so it needs
// no allowance for a loaded machine.
func (f *fixture) testRetryBackoff(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "loop") // spins until its timeout (200 ms): transient with retry_timeout
	_, err := admin.CreatePipeline(bg, []byte("name = \"spin\"\nmax_attempts = 2\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\nretry_timeout = true\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "spin", nil)
	ids, err := admin.RunPipeline(bg, "spin", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	const base = 10 * time.Millisecond // e.work's RetryBase
	// check runs a worker until the job has failed again, and checks the
	// history of the budget's two attempts: the first a transient
	// failure retried after the first delay (base +-20%: the jitter is
	// the only latitude), the last not retried.
	check := func(what string, n int) {
		t.Helper()
		if st := e.work(admin, []string{"acme"}, ids); st.Failed != 1 {
			t.Fatalf("%s: %+v, want the job failed", what, st)
		}
		j, err := admin.Job(bg, ids[0])
		must(t, err)
		if j.State != driver.JobFailed || j.Attempts != n || len(j.History) != n {
			t.Fatalf("%s: %+v; want failed after %d attempts, all in its history", what, j, n)
		}
		lo, hi := docex.Milliseconds(base*8/10), docex.Milliseconds(base*12/10)
		if a := j.History[n-2]; !a.Transient || a.RetryAfterMS < lo || a.RetryAfterMS > hi {
			t.Errorf("%s: attempt %d (transient %v) retried after %v ms, want a transient failure retried after the first delay, %v ms +-20%%", what, a.N, a.Transient, a.RetryAfterMS, docex.Milliseconds(base))
		}
		if a := j.History[n-1]; a.RetryAfterMS != 0 {
			t.Errorf("%s: attempt %d, the budget's last, retried after %v ms, want 0 (not retried)", what, a.N, a.RetryAfterMS)
		}
	}
	check("first run", 2)
	must(t, admin.RetryJob(bg, ids[0]))
	check("after job retry", 4)
	// The history's first attempts keep the delays recorded then.
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	if j.History[0].RetryAfterMS == 0 || j.History[1].RetryAfterMS != 0 {
		t.Errorf("after job retry, the first budget's history: %+v", j.History[:2])
	}
}

// testMaxDerived: a job whose derived documents (all its steps and
// attempts together) would pass its pipeline's max_derived fails at once
// (too_large, no retry) at the step that would pass it, none of whose
// outputs commit; what earlier steps committed stays. Three split steps
// on 8 bytes derive 2, then 4, then 8 documents: 14 in all.
func (f *fixture) testMaxDerived(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split")
	define := func(max int) {
		t.Helper()
		_, err := admin.CreatePipeline(bg, []byte(fmt.Sprintf("name = \"fan\"\nmax_derived = %d\n"+
			"[[steps]]\nname = \"a\"\nplugin = \"split\"\n"+
			"[[steps]]\nname = \"b\"\nplugin = \"split\"\ninput = \"a\"\n"+
			"[[steps]]\nname = \"c\"\nplugin = \"split\"\ninput = \"b\"\n", max)))
		must(t, err)
	}
	define(10)
	if p, err := admin.Pipeline(bg, "fan", 0); err != nil || p.MaxDerived != 10 {
		t.Fatalf("pipeline: %+v, %v; want max_derived 10", p, err)
	}
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "abcdefgh", nil)
	run := func() (string, engine.JobInfo) {
		t.Helper()
		ids, err := admin.RunPipeline(bg, "fan", engine.RunTarget{DocumentIDs: []string{d.ID}})
		must(t, err)
		e.work(admin, []string{"acme"}, ids)
		j, err := admin.Job(bg, ids[0])
		must(t, err)
		return ids[0], j
	}
	outputs := func(j engine.JobInfo) (steps map[string]int, derived int) {
		steps = map[string]int{}
		for _, s := range j.Steps {
			steps[s.Step]++
			derived += len(s.Outputs)
		}
		return steps, derived
	}
	failed := func(j engine.JobInfo, attempts, reach, max int) {
		t.Helper()
		want := fmt.Sprintf("the job would derive %d documents, more than its pipeline's max_derived = %d (all steps together), so nothing more was committed (to allow more, raise max_derived, at most 1000000, in pipeline \"fan\", create it again and run it on document %s)", reach, max, d.ID)
		if j.State != driver.JobFailed || j.Attempts != attempts || j.ErrorCode != "too_large" || j.Failure.Step != "c" ||
			!strings.HasPrefix(j.Error, "step c on ") || !strings.HasSuffix(j.Error, want) || j.Failure.Error != j.Error {
			t.Fatalf("job = %+v; want failed at its attempt %d, too_large, at step c: %q", j, attempts, want)
		}
		if steps, derived := outputs(j); steps["a"] != 1 || steps["b"] != 2 || steps["c"] != 0 || derived != 6 {
			t.Fatalf("committed steps %v with %d outputs; want a once, b twice, c never: 6 outputs", steps, derived)
		}
	}
	id, j := run()
	// c on its third input would reach 2+4+6 = 12 > 10: none of c's runs
	// commit, a's and b's stay, with their lineage; no retry.
	failed(j, 1, 12, 10)
	if bk, _ := admin.Basket(bg, b.ID); bk.DocumentCount != 1+6 {
		t.Fatalf("basket holds %d documents, want 7 (the input and what a and b derived)", bk.DocumentCount)
	}
	l, err := admin.Lineage(bg, d.ID)
	must(t, err)
	if len(l.Descendants) != 6 {
		t.Fatalf("lineage: %d descendants, want 6: %+v", len(l.Descendants), l.Descendants)
	}
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	audited := false
	for _, a := range log {
		audited = audited || (a.Operation == "job.failed" && a.Target == id && a.Outcome == docex.OutcomeError && a.Error == j.Error)
	}
	if !audited {
		t.Error("no job.failed audit entry with the job's error")
	}
	// A retried attempt counts what the earlier one committed: it fails
	// at the same run.
	must(t, admin.RetryJob(bg, id))
	e.work(admin, []string{"acme"}, []string{id})
	j, err = admin.Job(bg, id)
	must(t, err)
	failed(j, 2, 12, 10)

	// One under the 14 documents the pipeline derives: the last run
	// of c fails it (the runs of a and b are cached results now, and
	// count alike).
	define(13)
	_, j = run()
	failed(j, 1, 14, 13)
	// Exactly 14: the job succeeds.
	define(14)
	_, j = run()
	if steps, derived := outputs(j); j.State != driver.JobSucceeded || steps["a"] != 1 || steps["b"] != 2 || steps["c"] != 4 || derived != 14 {
		t.Fatalf("job with max_derived = 14: %+v; steps %v, %d outputs; want it succeeded with 14", j, steps, derived)
	}
}

// testMixedBatch runs, in batches of one worker, jobs that end
// differently: jobs of two pipeline versions, one of which traps at its
// second step; a job whose input was deleted after it was enqueued; a
// job cancelled while queued. Each ends as it would alone, and the
// successful ones derive exactly what a job run alone (Batch 1) derives.
func (f *fixture) testMixedBatch(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme", "trap")
	_, err := admin.CreatePipeline(bg, []byte("name = \"bad\"\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\ninput = \"s\"\n"))
	must(t, err)
	run := func(batch int, ids []string) { e.workBatch(admin, []string{"acme"}, ids, batch) }
	// The reference: one job alone.
	ref := e.basket(admin, "ref")
	rd := e.add(admin, ref.ID, "r.txt", "00 reference document body 00", nil)
	rids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{rd.ID}})
	must(t, err)
	run(1, rids)
	rj, err := admin.Job(bg, rids[0])
	must(t, err)
	rl, err := admin.Lineage(bg, rd.ID)
	must(t, err)
	if rj.State != driver.JobSucceeded || rj.Progress.Derived == 0 {
		t.Fatalf("reference job: %+v", rj)
	}

	b := e.basket(admin, "in")
	var good, bad []string
	docOf := map[string]string{}
	for i := range 12 {
		d := e.add(admin, b.ID, fmt.Sprintf("d%02d.txt", i), fmt.Sprintf("%02d mixed batch document body %02d", i+1, i+1), nil)
		pipe := "three"
		if i%4 == 3 {
			pipe = "bad"
		}
		ids, err := admin.RunPipeline(bg, pipe, engine.RunTarget{DocumentIDs: []string{d.ID}})
		must(t, err)
		docOf[ids[0]] = d.ID
		if pipe == "bad" {
			bad = append(bad, ids[0])
		} else {
			good = append(good, ids[0])
		}
	}
	// good[0]: cancelled while queued; good[1]: its input deleted.
	must(t, admin.CancelJob(bg, good[0]))
	must(t, admin.DeleteDocument(bg, docOf[good[1]]))
	all := append(append([]string{}, good...), bad...)
	run(64, all)

	for i, id := range good {
		j, err := admin.Job(bg, id)
		must(t, err)
		switch i {
		case 0:
			if j.State != driver.JobCancelled || j.Attempts != 0 {
				t.Fatalf("cancelled job: %+v", j)
			}
		case 1:
			if j.State != driver.JobCancelled || j.ErrorCode != "cancelled" || j.Attempts != 0 {
				t.Fatalf("job of a deleted input: %+v", j)
			}
		default:
			l, err := admin.Lineage(bg, docOf[id])
			must(t, err)
			if j.State != driver.JobSucceeded || j.Progress != withDuration(rj.Progress, j.Progress) || len(j.Steps) != len(rj.Steps) ||
				len(l.Descendants) != len(rl.Descendants) {
				t.Fatalf("job %d: %+v (%d descendants), want as the reference: %+v (%d descendants)", i, j, len(l.Descendants), rj, len(rl.Descendants))
			}
		}
	}
	for _, id := range bad {
		j, err := admin.Job(bg, id)
		must(t, err)
		if j.State != driver.JobFailed || j.Failure.Step != "t" || j.ErrorCode != "plugin_failed" || j.Progress.StepsRun != 1 {
			t.Fatalf("trapping job: %+v", j)
		}
	}
}

// testLargeRuns: a run over a basket and a batch add to a bound basket
// enqueue a job per document in a few statements (driver.JobsTx
// InsertJobs: more rows than one statement takes), each job queued for
// its own document, recorded in the audit log, delivered and run once.
func (f *fixture) testLargeRuns(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	const n = 150
	newDocs := func(tag string) []engine.NewDocument {
		docs := make([]engine.NewDocument, n)
		for i := range docs {
			docs[i] = engine.NewDocument{Name: fmt.Sprintf("%s%d.txt", tag, i), Content: strings.NewReader(fmt.Sprintf("%s %d large run body", tag, i))}
		}
		return docs
	}
	in := e.basket(admin, "in")
	_, err := admin.AddDocuments(bg, in.ID, newDocs("run"))
	must(t, err)
	ran, err := admin.RunPipeline(bg, "three", engine.RunTarget{BasketID: in.ID})
	must(t, err)
	bound, err := admin.CreateBasketWithPipeline(bg, "bound", "three")
	must(t, err)
	added, err := admin.AddDocuments(bg, bound.ID, newDocs("bound"))
	must(t, err)
	jobs, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{Limit: docex.MaxPageLimit})
	must(t, err)
	var boundIDs []string
	docOf := map[string]string{}
	for _, j := range jobs {
		if _, dup := docOf[j.DocumentID]; dup {
			t.Fatalf("two jobs for document %s", j.DocumentID)
		}
		docOf[j.DocumentID] = j.ID
		if j.State != "queued" || j.Pipeline != "three" {
			t.Fatalf("job %+v, want queued for pipeline three", j)
		}
	}
	for _, a := range added {
		id, ok := docOf[a.Document.ID]
		if !ok {
			t.Fatalf("no job for document %s added to the bound basket", a.Document.ID)
		}
		boundIDs = append(boundIDs, id)
	}
	if len(ran) != n || len(boundIDs) != n || len(jobs) != 2*n {
		t.Fatalf("%d jobs run, %d enqueued by the bound basket, %d in all; want %d, %d and %d", len(ran), len(boundIDs), len(jobs), n, n, 2*n)
	}
	audit, err := admin.Audit(bg, docex.Page{Limit: docex.MaxPageLimit})
	must(t, err)
	enqueued := 0
	for _, a := range audit {
		if a.Operation == "job.enqueue" && a.Outcome == docex.OutcomeOK {
			enqueued++
		}
	}
	if enqueued != 2*n {
		t.Fatalf("%d job.enqueue audit entries, want %d", enqueued, 2*n)
	}
	st := e.work(admin, []string{"acme"}, append(ran, boundIDs...))
	if st.Succeeded != 2*n {
		t.Fatalf("status %+v, want %d succeeded", st, 2*n)
	}
}

// testBatchReads: the batch reads of a store and of a transaction return
// what the one-item reads do, leave out what does not exist, and accept
// lists longer than one statement's parameters.
func (f *fixture) testBatchReads(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	var ids []string
	for i := range 3 {
		d := e.add(admin, b.ID, fmt.Sprintf("d%d.txt", i), fmt.Sprintf("%d batch reads body %d", i, i), nil)
		jids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d.ID}})
		must(t, err)
		ids = append(ids, jids...)
	}
	e.work(admin, []string{"acme"}, ids[:2]) // the third may still be queued
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	// 1,200 ids: more than one statement's worth.
	long := append([]string{}, ids...)
	for i := range 1200 {
		long = append(long, fmt.Sprintf("nope-%d", i))
	}
	all, err := admin.Documents(bg, b.ID, docex.Page{Limit: docex.MaxPageLimit})
	must(t, err)
	var docIDs []string
	for _, d := range all {
		docIDs = append(docIDs, d.ID)
	}
	check := func(name string, r driver.PipelineReader) {
		jobs, err := r.JobsByID(bg, long)
		must(t, err)
		if len(jobs) != len(ids) {
			t.Fatalf("%s: JobsByID: %d jobs, want %d", name, len(jobs), len(ids))
		}
		for _, j := range jobs {
			one, err := r.Job(bg, j.ID)
			must(t, err)
			if one.ID != j.ID || one.State != j.State || one.DocumentID != j.DocumentID || string(one.Detail) != string(j.Detail) {
				t.Fatalf("%s: JobsByID gave %+v, Job %+v", name, j, one)
			}
		}
		states, err := r.JobStates(bg, long)
		must(t, err)
		if len(states) != len(ids) {
			t.Fatalf("%s: JobStates: %d jobs, want %d", name, len(states), len(ids))
		}
		for _, j := range jobs {
			if states[j.ID] != j.State {
				t.Fatalf("%s: JobStates(%s) = %q, JobsByID %q", name, j.ID, states[j.ID], j.State)
			}
		}
		steps, err := r.StepsOfJobs(bg, long)
		must(t, err)
		for _, id := range ids {
			one, err := r.JobSteps(bg, id)
			must(t, err)
			if len(steps[id]) != len(one) {
				t.Fatalf("%s: StepsOfJobs(%s): %d steps, JobSteps %d", name, id, len(steps[id]), len(one))
			}
			for i := range one {
				if steps[id][i].Key != one[i].Key {
					t.Fatalf("%s: step %d of %s: %s, want %s (completion order)", name, i, id, steps[id][i].Key, one[i].Key)
				}
			}
		}
		entries, err := r.CacheEntries(bg, []string{"k1", "k2", "absent"})
		must(t, err)
		if len(entries) != 2 || string(entries["k1"].Result) != `{"a":1}` || entries["k2"].Key != "k2" {
			t.Fatalf("%s: CacheEntries = %+v", name, entries)
		}
		// The optional batch reads: both backends have them (the engine's
		// batches rely on them for speed), with the effect of the
		// one-by-one reads.
		br, ok := r.(driver.BatchReader)
		if !ok {
			t.Fatalf("%s: %T is not a driver.BatchReader", name, r)
		}
		rd := r.(driver.Reader)
		docs, err := br.DocumentsByID(bg, append(append([]string{}, docIDs...), long...))
		must(t, err)
		if len(docs) != len(docIDs) {
			t.Fatalf("%s: DocumentsByID: %d documents, want %d", name, len(docs), len(docIDs))
		}
		derived, err := br.DerivedAmong(bg, append(append([]string{}, docIDs...), long...))
		must(t, err)
		for _, id := range docIDs {
			one, err := rd.Document(bg, id)
			must(t, err)
			if d := docs[id]; d.ID != id || d.Checksum != one.Checksum || d.Name != one.Name || len(d.Metadata) != len(one.Metadata) || !d.UpdatedAt.Equal(one.UpdatedAt) {
				t.Fatalf("%s: DocumentsByID gave %+v, Document %+v", name, d, one)
			}
			srcs, _, err := r.Lineage(bg, id)
			must(t, err)
			if derived[id] != (len(srcs) > 0) {
				t.Fatalf("%s: DerivedAmong says %t for %s, which has %d sources", name, derived[id], id, len(srcs))
			}
		}
		if len(derived) == 0 || len(derived) == len(docIDs) {
			t.Fatalf("%s: DerivedAmong: %d of %d documents derived, want some", name, len(derived), len(docIDs))
		}
		// driver.LineageBatchReader: the edges into and out of many
		// documents (more than one statement's worth of ids), as the
		// one-by-one reads give them, in their order.
		lb, ok := r.(driver.LineageBatchReader)
		if !ok {
			t.Fatalf("%s: %T is not a driver.LineageBatchReader", name, r)
		}
		asked := append(append([]string{}, long...), docIDs...)
		for _, into := range []bool{true, false} {
			got, err := lb.LineageAmong(bg, asked, into)
			must(t, err)
			var want []driver.LineageEdge
			for _, id := range docIDs {
				srcs, ders, err := r.Lineage(bg, id)
				must(t, err)
				if into {
					want = append(want, srcs...)
				} else {
					want = append(want, ders...)
				}
			}
			slices.SortStableFunc(want, func(a, b driver.LineageEdge) int {
				return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.SourceID, b.SourceID), strings.Compare(a.DerivedID, b.DerivedID))
			})
			if len(got) != len(want) || len(got) == 0 {
				t.Fatalf("%s: LineageAmong(into %t): %d edges, want %d (and some)", name, into, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.SourceID != w.SourceID || g.DerivedID != w.DerivedID || g.Step != w.Step || g.Params != w.Params || !g.CreatedAt.Equal(w.CreatedAt) {
					t.Fatalf("%s: LineageAmong(into %t) edge %d: %+v, want %+v", name, into, i, g, w)
				}
			}
		}
		if none, err := lb.LineageAmong(bg, nil, true); err != nil || len(none) != 0 {
			t.Fatalf("%s: LineageAmong of no ids: %v %v", name, none, err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		if err := tx.PutCacheEntry(bg, driver.CacheEntry{Key: "k1", Result: []byte(`{"a":1}`), CreatedAt: now}); err != nil {
			return err
		}
		return tx.PutCacheEntry(bg, driver.CacheEntry{Key: "k2", Result: []byte(`{}`), CreatedAt: now})
	}))
	check("store", st)
	must(t, st.Write(bg, func(tx driver.Tx) error { check("tx", tx); return nil }))
	// driver.ChecksumTx: the effect of LockContent, DocumentByChecksum and
	// ContentRefs on each checksum.
	must(t, st.Write(bg, func(tx driver.Tx) error {
		ct, ok := tx.(driver.ChecksumTx)
		if !ok {
			t.Fatalf("%T is not a driver.ChecksumTx", tx)
		}
		var sums []string
		for _, d := range all {
			sums = append(sums, d.Checksum, d.Checksum) // duplicates allowed
		}
		sums = append(sums, strings.Repeat("0", 64))
		must(t, ct.LockContents(bg, sums))
		byChecksum, err := ct.DocumentsByChecksums(bg, b.ID, sums)
		must(t, err)
		refs, err := ct.ContentRefsOf(bg, sums)
		must(t, err)
		for _, d := range all {
			one, err := tx.DocumentByChecksum(bg, b.ID, d.Checksum)
			must(t, err)
			if got := byChecksum[d.Checksum]; got.ID != one.ID || len(got.Metadata) != len(one.Metadata) {
				t.Fatalf("DocumentsByChecksums gave %+v, DocumentByChecksum %+v", got, one)
			}
			n, err := tx.ContentRefs(bg, d.Checksum)
			must(t, err)
			if refs[d.Checksum] != n {
				t.Fatalf("ContentRefsOf(%s) = %d, ContentRefs %d", d.Checksum, refs[d.Checksum], n)
			}
		}
		if _, ok := byChecksum[strings.Repeat("0", 64)]; ok || refs[strings.Repeat("0", 64)] != 0 || len(byChecksum) != len(all) {
			t.Fatalf("DocumentsByChecksums found %d of %d documents, refs %v", len(byChecksum), len(all), refs)
		}
		// Another basket's documents are not the basket's.
		other, err := ct.DocumentsByChecksums(bg, "no-such-basket", sums)
		must(t, err)
		if len(other) != 0 {
			t.Fatalf("DocumentsByChecksums of another basket: %+v", other)
		}
		return nil
	}))
	// driver.JobsTx: UpdateJobs is UpdateJob on each, in order (a job
	// given twice takes its last update), every field written; a missing
	// job is docex.ErrNotFound and the transaction is rolled back.
	jobs, err := st.JobsByID(bg, ids)
	must(t, err)
	err = st.Write(bg, func(tx driver.Tx) error {
		jt, ok := tx.(driver.JobsTx)
		if !ok {
			t.Fatalf("%T is not a driver.JobsTx", tx)
		}
		at := time.Now().UTC().Truncate(time.Millisecond)
		for i := range jobs {
			jobs[i].Error, jobs[i].ErrorCode = "updated together", "E"+strconv.Itoa(i)
			jobs[i].Attempts = i + 2
			jobs[i].RunAt, jobs[i].UpdatedAt = at.Add(time.Duration(i)*time.Second), at.Add(time.Duration(i)*time.Minute)
			jobs[i].Detail = []byte(`{"n":` + strconv.Itoa(i) + `}`)
		}
		// A job given twice takes its last update.
		twice := jobs[0]
		twice.Error = "the last update"
		if err := jt.UpdateJobs(bg, append(slices.Clone(jobs), twice)); err != nil {
			return err
		}
		jobs[0] = twice
		for i, j := range jobs {
			one, err := tx.Job(bg, j.ID)
			must(t, err)
			if one.Error != j.Error || one.ErrorCode != j.ErrorCode || one.Attempts != j.Attempts ||
				!one.RunAt.Equal(j.RunAt) || !one.UpdatedAt.Equal(j.UpdatedAt) || string(one.Detail) != string(j.Detail) {
				t.Fatalf("UpdateJobs: job %d reads back as %+v, want %+v", i, one, j)
			}
		}
		ghost := jobs[0]
		ghost.ID = "no-such-job"
		return jt.UpdateJobs(bg, []driver.JobRecord{jobs[1], ghost})
	})
	if !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("UpdateJobs with a missing job: %v, want docex.ErrNotFound", err)
	}
	if j, err := st.Job(bg, jobs[0].ID); err != nil || j.Error == "the last update" {
		t.Fatalf("the failed UpdateJobs was not rolled back: %+v %v", j, err)
	}
}

// spinMinute installs the loop plugin (it spins until its timeout) with
// the longest timeout the sandbox allows, a minute: a pipeline step that
// stays running until the worker running it stops (or, should the test
// be slower than that, is retried when its step has retry_timeout).
func (e *pipeEnv) spinMinute(s *engine.Session) {
	e.t.Helper()
	e.installEdited(s, "loop", func(m string) string {
		out := strings.Replace(m, "timeout_ms = 200\n", "timeout_ms = 60000\n", 1)
		if out == m {
			e.t.Fatalf("loop's manifest has no timeout_ms = 200:\n%s", m)
		}
		return out
	})
}

// runningJob runs a worker for tenant until job id is running with at
// least n completed steps (read with s.Job), and returns what s.Job read
// then and a function that stops the worker (the running step is
// interrupted, without spending an attempt). The worker is stopped with
// driver.ErrStopNow, its shutdown timeout an hour: were the cause not
// honoured, the step would spin to its timeout and spend the attempt.
func (e *pipeEnv) runningJob(s *engine.Session, tenant, id string, n int) (engine.JobInfo, func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancelCause(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{tenant}, Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond,
			ShutdownTimeout: time.Hour}).Run(ctx)
	}()
	stop := func() {
		cancel(driver.ErrStopNow)
		if err := <-done; err != nil {
			e.t.Errorf("worker: %v", err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
	for {
		j, err := s.Job(bg, id)
		if err != nil {
			stop()
			e.t.Fatalf("job %s: %v", id, err)
		}
		if j.State == driver.JobRunning && len(j.Steps) >= n {
			return j, stop
		}
		if driver.JobFinal(j.State) || time.Now().After(deadline) {
			stop()
			e.t.Fatalf("job never seen running after %d steps: %+v", n, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testShowWhileRunning: the progress of a running job, as Session.Job
// (job show) returns it, counts the steps it lists. The job's record has
// the counts only as of the end of an attempt: it said 0 steps run while
// listing the first step, run and committed.
func (f *fixture) testShowWhileRunning(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split")
	e.spinMinute(admin)
	_, err := admin.CreatePipeline(bg, []byte("name = \"slow\"\nmax_attempts = 20\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n"+
		"[[steps]]\nname = \"spin\"\nplugin = \"loop\"\ninput = \"s\"\nretry_timeout = true\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "split me, then spin on each part", nil)
	ids, err := admin.RunPipeline(bg, "slow", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	j, stop := e.runningJob(admin, "acme", ids[0], 1)
	stop()
	if len(j.Steps) != 1 || j.Steps[0].Step != "s" || j.Steps[0].Outcome != engine.StepRan || len(j.Steps[0].Outputs) != 2 {
		t.Fatalf("running job's steps: %+v", j.Steps)
	}
	want := engine.JobProgress{StepsRun: 1, Derived: 2}
	if got := withDuration(want, j.Progress); got != j.Progress {
		t.Fatalf("running job's progress %+v, want %+v: the counts of the steps it lists", j.Progress, want)
	}
	// Running, its attempt not ended: no duration yet.
	if j.Progress.DurationMS != 0 || len(j.History) != 1 || !j.History[0].EndedAt.IsZero() {
		t.Fatalf("running job's duration %v ms, history %+v; want 0: its one attempt has not ended", j.Progress.DurationMS, j.History)
	}
	// Released by the worker's stop (queued, the attempt left out of the
	// history): still none.
	checkJobDuration(t, admin, ids[0], "job released by a stopped worker")
}

// testSuspendedWhileRunning: a tenant suspended while a worker runs one
// of its jobs makes the job wait, as one suspended before it started
// (docs/jobs.md, invariant 3): queued, the attempt not counted, the record
// saying "waiting: ...". The store the worker opened for the attempt
// refused the write that ends it, so the attempt stayed counted (and, on
// the next delivery, the job waited with it spent and never ended in its
// history).
func (f *fixture) testSuspendedWhileRunning(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "split")
	e.spinMinute(admin)
	// loop2: the loop plugin with a 2 s timeout, a transient error in
	// the pipeline "short": a step that ends while the worker runs on.
	e.installEdited(admin, "loop", func(m string) string {
		return strings.Replace(strings.Replace(m, `name = "loop"`, `name = "loop2"`, 1), "timeout_ms = 200\n", "timeout_ms = 2000\n", 1)
	})
	for _, def := range []string{
		"name = \"slow\"\nmax_attempts = 2\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n[[steps]]\nname = \"spin\"\nplugin = \"loop\"\ninput = \"s\"\n",
		"name = \"short\"\nmax_attempts = 20\n[[steps]]\nname = \"s\"\nplugin = \"split\"\n[[steps]]\nname = \"spin\"\nplugin = \"loop2\"\ninput = \"s\"\nretry_timeout = true\n",
	} {
		_, err := admin.CreatePipeline(bg, []byte(def))
		must(t, err)
	}
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "split me, then spin on each part", nil)
	p := e.eng.Provisioner("ops")
	readJob := func(id string) driver.JobRecord {
		t.Helper()
		st, err := e.be.OpenTenant(bg, "acme")
		must(t, err)
		defer st.Close()
		j, err := st.Job(bg, id)
		must(t, err)
		return j
	}

	// The worker stops with the tenant suspended: the interrupted attempt
	// is not counted, and the job waits (the step spins for a minute, so
	// the attempt seen running is the one suspended).
	ids, err := admin.RunPipeline(bg, "slow", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	j, stop := e.runningJob(admin, "acme", ids[0], 1)
	must(t, p.Suspend(bg, "acme"))
	stop()
	// The worker may return before its cancelled attempts are recorded
	// (River's StopAndCancel waits only for the shutdown timeout).
	rec := readJob(ids[0])
	for deadline := time.Now().Add(time.Minute); rec.State == driver.JobRunning && time.Now().Before(deadline); rec = readJob(ids[0]) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := jobDetailHistory(t, rec); j.Attempts != 1 || rec.State != driver.JobQueued || rec.Attempts != 0 || n != 0 || rec.Error != waitingAcme {
		t.Fatalf("job of a tenant suspended while it ran (then the worker stopped) = %+v (%d attempts in its history; seen running: %+v), want queued, waiting, no attempt spent", rec, n, j)
	}
	must(t, p.Resume(bg, "acme"))
	checkJobDuration(t, admin, ids[0], "job waiting, its suspended attempt not counted")
	must(t, admin.CancelJob(bg, ids[0]))

	// The worker runs on: the step ends (a timeout, transient) with the
	// tenant suspended. The attempt seen running (n) is not counted; had
	// it ended before the suspension (a slow machine), it is, and the next
	// is not: at most n attempts, each ended in the history.
	ids, err = admin.RunPipeline(bg, "short", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	j, stop = e.runningJob(admin, "acme", ids[0], 1)
	must(t, p.Suspend(bg, "acme"))
	deadline := time.Now().Add(2 * time.Minute) // a bound on a hung test, not a measurement
	for rec = readJob(ids[0]); !strings.HasPrefix(rec.Error, "waiting: "); rec = readJob(ids[0]) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("job never waited for the tenant suspended while it ran: %+v", rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	rec = readJob(ids[0])
	var det struct {
		Attempts []engine.JobAttempt `json:"attempts"`
	}
	must(t, json.Unmarshal(rec.Detail, &det))
	ok := rec.State == driver.JobQueued && rec.Attempts <= j.Attempts && rec.Attempts == len(det.Attempts) && rec.Error == waitingAcme
	for _, a := range det.Attempts {
		ok = ok && !a.EndedAt.IsZero() && a.Transient
	}
	if !ok {
		t.Fatalf("job of a tenant suspended while it ran (the worker running on) = %+v, attempts %+v; seen running at attempt %d: want queued, waiting, the suspended attempt not counted", rec, det.Attempts, j.Attempts)
	}
	must(t, p.Resume(bg, "acme"))
	checkJobDuration(t, admin, ids[0], "job waiting after timeouts, its suspended attempt not counted")
	must(t, admin.CancelJob(bg, ids[0]))
}

// waitingAcme is the error of a job of tenant acme waiting for it to be
// resumed, the same whether the job was queued or running when the
// tenant was suspended, on every backend (on PostgreSQL, a running one
// said "waiting: postgres: tenant ...": the text of the commit the
// backend refused).
const waitingAcme = `waiting: tenant "acme" is suspended`

// jobDetailHistory returns the number of attempts in a job record's
// history.
func jobDetailHistory(t *testing.T, j driver.JobRecord) int {
	t.Helper()
	var d struct {
		Attempts []json.RawMessage `json:"attempts"`
	}
	if err := json.Unmarshal(j.Detail, &d); err != nil {
		t.Fatalf("job detail %s: %v", j.Detail, err)
	}
	return len(d.Attempts)
}

// checkJobDuration checks that job id's progress duration, as Session.Job
// (job show) and Session.Jobs (job list) return it, is the sum of the
// durations of the attempts in its history (docs/json.md, Job), whatever
// its state: the record's own sum counted attempts the history no longer
// holds (released at a shutdown, or not counted for a suspended tenant:
// a queued job that never ran a counted attempt showed seconds) and
// missed a running attempt ended by a cancel (0 ms). The job must not
// change meanwhile.
// testRetryHistoryBounded: a job retried again and again keeps its first
// attempt and its engine.AttemptHistoryKept most recent ones, and counts
// those left out, in job show and job list alike; its attempts count
// every one. Before, the history kept every attempt (docs/jobs.md, "The
// attempt history is bounded").
func (f *fixture) testRetryHistoryBounded(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "trap")
	_, err := admin.CreatePipeline(bg, []byte("name = \"once\"\nmax_attempts = 1\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\n"))
	must(t, err)
	d := e.add(admin, e.basket(admin, "in").ID, "a.txt", "to be trapped", nil)
	ids, err := admin.RunPipeline(bg, "once", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	e.work(admin, []string{"acme"}, ids)
	const retries = engine.AttemptHistoryKept + 3
	for range retries {
		must(t, admin.RetryJob(bg, ids[0]))
		e.work(admin, []string{"acme"}, ids)
	}
	const attempts = retries + 1
	const omitted = attempts - 1 - engine.AttemptHistoryKept
	j, err := admin.Job(bg, ids[0])
	must(t, err)
	check := func(what string, j engine.JobInfo) {
		t.Helper()
		h := j.History
		if j.State != driver.JobFailed || j.Attempts != attempts || len(h) != 1+engine.AttemptHistoryKept || j.AttemptsOmitted != omitted {
			t.Fatalf("%s: %s, %d attempts, %d in the history, %d left out; want failed, %d attempts, %d in the history, %d left out",
				what, j.State, j.Attempts, len(h), j.AttemptsOmitted, attempts, 1+engine.AttemptHistoryKept, omitted)
		}
		if h[0].N != 1 {
			t.Errorf("%s: the history's first attempt is attempt %d, want 1", what, h[0].N)
		}
		for i, a := range h[1:] {
			if want := 2 + omitted + i; a.N != want || a.ErrorCode != "plugin_failed" || a.EndedAt.IsZero() {
				t.Errorf("%s: history[%d] = attempt %d (%s, ended %v), want attempt %d, failed and ended", what, i+1, a.N, a.ErrorCode, a.EndedAt, want)
			}
		}
	}
	check("job show", j)
	js, err := admin.Jobs(bg, engine.JobFilter{DocumentID: d.ID}, docex.Page{Limit: docex.MaxPageLimit})
	must(t, err)
	if len(js) != 1 {
		t.Fatalf("job list: %d jobs, want 1", len(js))
	}
	check("job list", js[0])
	checkJobDuration(t, admin, ids[0], "job retried again and again")
}

func checkJobDuration(t *testing.T, s *engine.Session, id, what string) {
	t.Helper()
	j, err := s.Job(bg, id)
	must(t, err)
	var sum float64
	for _, a := range j.History {
		sum += a.DurationMS
	}
	if j.Progress.DurationMS != sum {
		t.Errorf("%s: job show's progress duration_ms %v, want %v, the sum of its attempts' (history %+v)", what, j.Progress.DurationMS, sum, j.History)
	}
	js, err := s.Jobs(bg, engine.JobFilter{DocumentID: j.DocumentID}, docex.Page{Limit: docex.MaxPageLimit})
	must(t, err)
	for _, l := range js {
		if l.ID == id && l.Progress.DurationMS != sum {
			t.Errorf("%s: job list's progress duration_ms %v, want %v, the sum of its attempts'", what, l.Progress.DurationMS, sum)
		}
	}
}

// withDuration returns p with got's duration, to compare progress counts.
func withDuration(p, got engine.JobProgress) engine.JobProgress {
	p.DurationMS = got.DurationMS
	return p
}

// tagJob creates tenant acme with the one-step pipeline "t" (plugin tag)
// and a document holding content in basket "in", and enqueues the
// document's job: it returns the tenant's admin session, the document
// and the job's id.
func (e *pipeEnv) tagJob(t *testing.T, content string) (*engine.Session, docex.Document, []string) {
	t.Helper()
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "tag")
	_, err := admin.CreatePipeline(bg, []byte("name = \"t\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\n"))
	must(t, err)
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", content, nil)
	ids, err := admin.RunPipeline(bg, "t", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	return admin, d, ids
}

func (f *fixture) testSuspendedTenant(t *testing.T) {
	e := f.pipeEnv(t)
	admin, d, ids := e.tagJob(t, "suspend me")
	p := e.eng.Provisioner("ops")
	must(t, p.Suspend(bg, "acme"))
	// A worker meets the job while the tenant is suspended: it waits
	// (queued, no attempt spent) and runs once the tenant is resumed.
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"acme"}, Poll: 20 * time.Millisecond, SuspendedWait: 20 * time.Millisecond}).Run(ctx)
	}()
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := st.Job(bg, ids[0])
		must(t, err)
		if strings.HasPrefix(j.Error, "waiting:") {
			if j.State != driver.JobQueued || j.Attempts != 0 || j.Error != waitingAcme || j.ErrorCode != "tenant_suspended" {
				t.Fatalf("waiting job = %+v", j)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never waited for the suspended tenant: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.Close()
	must(t, p.Resume(bg, "acme"))
	s, err := admin.WaitJobs(bg, ids, 20*time.Millisecond, nil)
	cancel()
	must(t, <-done)
	must(t, err)
	if s.Succeeded != 1 {
		t.Fatalf("after resume: %+v", s)
	}
	checkJobDuration(t, admin, ids[0], "job succeeded after waiting for its tenant")

	// A deleted tenant's jobs are cancelled (dropped), never retried.
	_, err = admin.RunPipeline(bg, "t", engine.RunTarget{DocumentIDs: []string{d.ID}})
	must(t, err)
	must(t, p.Delete(bg, "acme"))
	ctx, cancel = context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	must(t, e.eng.Worker(engine.WorkerConfig{Poll: 20 * time.Millisecond}).Run(ctx))
}

// testWaitTenantDeleted: a tenant deleted while WaitJobs follows its
// jobs ends the wait with an *engine.TenantDeletedError (an
// ErrTenantUnknown), also when a tenant of the same id is created again
// before the next poll, whose jobs are others (its jobs were "not
// found" before: the wait then read the new tenant).
func (f *fixture) testWaitTenantDeleted(t *testing.T) {
	e := f.pipeEnv(t)
	for _, recreate := range []bool{false, true} {
		admin, _, ids := e.tagJob(t, "delete my tenant")
		polls := 0
		st, err := admin.WaitJobs(bg, ids, time.Millisecond, func(engine.JobsStatus) {
			if polls++; polls == 1 { // no worker: the job stays queued
				must(t, e.eng.Provisioner("ops").Delete(bg, "acme"))
				if recreate {
					e.tenant("acme")
				}
			}
		})
		var de *engine.TenantDeletedError
		if !errors.As(err, &de) || de.Tenant != "acme" || !errors.Is(err, docex.ErrTenantUnknown) ||
			err.Error() != `tenant "acme" was deleted while waiting for its jobs: they were deleted with it` {
			t.Fatalf("recreated %t: wait: %v (%T), want a TenantDeletedError", recreate, err, err)
		}
		if st.Total != 1 || st.Pending != 1 {
			t.Errorf("recreated %t: status %+v: want the last poll's, the job pending", recreate, st)
		}
		if recreate {
			must(t, e.eng.Provisioner("ops").Delete(bg, "acme"))
		}
	}
}

// logLines is a log destination that tests read while a worker writes.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns the lines holding every one of parts.
func (l *logLines) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.Lines(l.b.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// testWorkerTenantsDeleted: a worker stops serving a tenant deleted while
// it runs, saying so once; one of given tenants (WorkerConfig.Tenants,
// docex worker --tenants) stops once all of them were deleted and returns
// a *driver.TenantsDeletedError (a docex.ErrTenantNotFound), as
// docex worker does not start with a tenant that does not exist. Before,
// the SQLite worker polled a deleted tenant forever, warning at every
// claim ("tenant not found"), and the PostgreSQL worker polled its queue
// forever, silently; a worker of every tenant warned a few times.
func (f *fixture) testWorkerTenantsDeleted(t *testing.T) {
	e := f.pipeEnv(t)
	for _, id := range []string{"a1", "a2", "a3"} {
		e.tenant(id)
	}
	p := e.eng.Provisioner("ops")
	var logs, allLogs logLines
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"a1", "a2"}, Poll: 20 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))}).Run(ctx)
	}()
	allDone := make(chan error, 1)
	go func() {
		allDone <- e.eng.Worker(engine.WorkerConfig{Poll: 20 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(&allLogs, nil))}).Run(ctx)
	}()
	// waitFor waits for a line of l holding every one of parts, failing
	// the test when the worker ended (ended) or after a minute (a bound on
	// a hung test).
	waitFor := func(l *logLines, ended chan error, parts ...string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); l.count(parts...) == 0; time.Sleep(10 * time.Millisecond) {
			select {
			case err := <-ended:
				t.Fatalf("the worker ended before it logged %q: %v\n%s", parts, err, l.b.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %q:\n%s", parts, l.b.String())
			}
		}
	}
	waitLine := func(l *logLines, tenant string, ended chan error) {
		t.Helper()
		waitFor(l, ended, `"tenant deleted: no longer served"`, `"tenant":"`+tenant+`"`)
	}
	// Both started (a tenant deleted before a worker lists its tenants
	// is never served, so never dropped: no line).
	waitFor(&logs, done, `"worker started"`)
	waitFor(&allLogs, allDone, `"worker started"`)
	must(t, p.Delete(bg, "a1"))
	waitLine(&logs, "a1", done)
	waitLine(&allLogs, "a1", allDone)
	select {
	case err := <-done:
		t.Fatalf("the worker of a1 and a2 stopped with a2 left: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	must(t, p.Delete(bg, "a2"))
	select {
	case err := <-done:
		var de *driver.TenantsDeletedError
		if !errors.As(err, &de) || !slices.Equal(de.Tenants, []string{"a1", "a2"}) || !errors.Is(err, docex.ErrTenantNotFound) ||
			err.Error() != `tenants "a1", "a2" were deleted: the worker has no tenant left to serve` {
			t.Fatalf("worker of deleted tenants: %v (%T), want a TenantsDeletedError naming a1 and a2", err, err)
		}
	case <-time.After(time.Minute): // a bound on a hung test
		t.Fatal("the worker of a1 and a2 did not stop once both were deleted")
	}
	waitLine(&allLogs, "a2", allDone)
	// A worker of every tenant goes on (a3, and tenants created later).
	select {
	case err := <-allDone:
		t.Fatalf("the worker of every tenant stopped: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	must(t, <-allDone)
	for _, l := range []*logLines{&logs, &allLogs} {
		for _, id := range []string{"a1", "a2"} {
			if n := l.count(`"tenant deleted: no longer served"`, `"tenant":"`+id+`"`); n > 1 {
				t.Errorf("tenant %s: %d lines saying it is no longer served, want one", id, n)
			}
		}
		if n := l.count(`"level":"WARN"`, "not found"); n > 0 {
			t.Errorf("%d warnings of a tenant not found:\n%s", n, l.b.String())
		}
	}
}

// watchGate is a worker's WorkerConfig.OnWatch: it counts the looks of
// the worker's tenant watch, and holds them while it is blocked.
type watchGate struct {
	mu    sync.Mutex
	looks int
	hold  chan struct{} // not nil: a look waits until it is closed
	at    chan struct{} // a look waits (buffered)
}

func (g *watchGate) look() {
	g.mu.Lock()
	g.looks++
	hold, at := g.hold, g.at
	g.mu.Unlock()
	if hold != nil {
		select {
		case at <- struct{}{}:
		default:
		}
		<-hold
	}
}

// block makes the watch's looks wait, and returns once one waits (a
// bound on a hung test: a minute).
func (g *watchGate) block(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	g.hold, g.at = make(chan struct{}), make(chan struct{}, 1)
	at := g.at
	g.mu.Unlock()
	select {
	case <-at:
	case <-time.After(time.Minute):
		t.Fatal("the worker's tenant watch did not look at its tenants")
	}
}

func (g *watchGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.hold)
	g.hold = nil
}

// testWorkerTenantRecreated: a tenant deleted and created again with the
// same id between two looks of a worker's tenant watch (made so by
// holding the watch, WorkerConfig.OnWatch) is a deleted tenant: a worker
// of given tenants (--tenants) says so, no longer serves it, and stops
// once the others it names were deleted too; a worker of every tenant
// says so and serves the new one. Before, both went on as if nothing had
// happened: the worker of given tenants served the new tenant and never
// stopped (PostgreSQL; the SQLite one claimed the new tenant's jobs).
func (f *fixture) testWorkerTenantRecreated(t *testing.T) {
	e := f.pipeEnv(t)
	for _, id := range []string{"r1", "r2"} {
		e.tenant(id)
	}
	p := e.eng.Provisioner("ops")
	var logs, allLogs logLines
	var gate, allGate watchGate
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"r1", "r2"}, Poll: 20 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)), OnWatch: gate.look}).Run(ctx)
	}()
	allDone := make(chan error, 1)
	go func() {
		allDone <- e.eng.Worker(engine.WorkerConfig{Poll: 20 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(&allLogs, nil)), OnWatch: allGate.look}).Run(ctx)
	}()
	waitFor := func(l *logLines, ended chan error, parts ...string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); l.count(parts...) == 0; time.Sleep(10 * time.Millisecond) {
			select {
			case err := <-ended:
				t.Fatalf("the worker ended before it logged %q: %v\n%s", parts, err, l.b.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %q:\n%s", parts, l.b.String())
			}
		}
	}
	waitFor(&logs, done, `"worker started"`)
	waitFor(&allLogs, allDone, `"worker started"`)
	gate.block(t)
	allGate.block(t)
	must(t, p.Delete(bg, "r1"))
	admin := e.threeStepsTenant("r1")
	gate.release()
	allGate.release()
	line := []string{`"tenant deleted: no longer served"`, `"tenant":"r1"`}
	waitFor(&logs, done, line...)
	waitFor(&allLogs, allDone, line...)
	// The worker of r1 and r2 serves r2 alone: it stops once r2 is
	// deleted.
	must(t, p.Delete(bg, "r2"))
	select {
	case err := <-done:
		var de *driver.TenantsDeletedError
		if !errors.As(err, &de) || !slices.Equal(de.Tenants, []string{"r1", "r2"}) {
			t.Fatalf("worker of deleted tenants: %v (%T), want a TenantsDeletedError naming r1 and r2", err, err)
		}
	case <-time.After(time.Minute): // a bound on a hung test
		t.Fatal("the worker of r1 and r2 did not stop once r2 was deleted (it still served r1, created again)")
	}
	// The worker of every tenant serves the new r1.
	b, err := admin.CreateBasketWithPipeline(bg, "inbox", "three")
	must(t, err)
	e.add(admin, b.ID, "d.txt", "a document of the new r1", nil)
	js, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{})
	must(t, err)
	if len(js) != 1 {
		t.Fatalf("%d jobs, want 1", len(js))
	}
	wctx, wcancel := context.WithTimeout(bg, time.Minute) // a bound on a hung test
	defer wcancel()
	st, err := admin.WaitJobs(wctx, []string{js[0].ID}, 20*time.Millisecond, nil)
	if err != nil || st.Succeeded != 1 {
		t.Fatalf("the new r1's job: %+v, %v", st, err)
	}
	cancel()
	must(t, <-allDone)
	for _, l := range []*logLines{&logs, &allLogs} {
		if n := l.count(line...); n != 1 {
			t.Errorf("%d lines saying r1 is no longer served, want one:\n%s", n, l.b.String())
		}
	}
}

func (f *fixture) testTwoTenantsPipelines(t *testing.T) {
	e := f.pipeEnv(t)
	var ids = map[string][]string{}
	var docs = map[string][]docex.Document{}
	for _, tn := range []string{"acme", "globex"} {
		admin := e.threeStepsTenant(tn)
		b, err := admin.CreateBasketWithPipeline(bg, "inbox", "three")
		must(t, err)
		for i := range 4 {
			docs[tn] = append(docs[tn], e.add(admin, b.ID, "d.txt", fmt.Sprintf("%d secret of %s number %d", i, tn, i), nil))
		}
		js, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{})
		must(t, err)
		for _, j := range js {
			ids[tn] = append(ids[tn], j.ID)
		}
	}
	// One worker for both tenants, jobs interleaved.
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Concurrency: 4, TenantConcurrency: 2, Poll: 20 * time.Millisecond}).Run(ctx)
	}()
	for _, tn := range []string{"acme", "globex"} {
		st, err := e.as(tn, "reader").WaitJobs(bg, ids[tn], 20*time.Millisecond, nil)
		must(t, err)
		if st.Succeeded != 4 {
			t.Fatalf("%s: %+v", tn, st)
		}
	}
	cancel()
	must(t, <-done)
	for _, tn := range []string{"acme", "globex"} {
		other := "globex"
		if tn == "globex" {
			other = "acme"
		}
		s := e.as(tn, "reader")
		b, err := s.BasketByName(bg, "inbox")
		must(t, err)
		all, err := s.Documents(bg, b.ID, docex.Page{Limit: 1000})
		must(t, err)
		if len(all) != 4*5 {
			t.Fatalf("%s holds %d documents, want 20", tn, len(all))
		}
		for _, d := range all {
			c, err := s.ReadContent(bg, d.ID)
			must(t, err)
			if strings.Contains(strings.ToLower(string(c)), other) {
				t.Fatalf("%s's document %s holds %s's content %q", tn, d.ID, other, c)
			}
		}
		// Another tenant's lineage and jobs are not found.
		_, err = e.as(other, "reader").Lineage(bg, docs[tn][0].ID)
		wantErr(t, err, docex.ErrNotFound)
		_, err = e.as(other, "reader").Job(bg, ids[tn][0])
		wantErr(t, err, docex.ErrNotFound)
	}
}

// testPipelineInterleaving extends the random interleaving with pipeline
// operations: adds to bound baskets, runs, job and lineage reads of the
// own and of other tenants, while a worker runs; no read ever returns
// another tenant's data and every job ends.
func (f *fixture) testPipelineInterleaving(t *testing.T) {
	e := f.pipeEnv(t)
	const tenants, goroutines, ops = 3, 6, 25
	names := make([]string, tenants)
	baskets := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
		admin := e.threeStepsTenant(names[i])
		b, err := admin.CreateBasketWithPipeline(bg, "shared-name", "three")
		must(t, err)
		baskets[i] = b.ID
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Concurrency: 3, Poll: 20 * time.Millisecond}).Run(ctx)
	}()
	var mu sync.Mutex
	docsOf := make([][]string, tenants)
	jobsOf := make([][]string, tenants)
	var wg sync.WaitGroup
	errc := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range ops {
				ti := r.IntN(tenants)
				s := e.as(names[ti], "writer")
				mu.Lock()
				own := append([]string{}, docsOf[ti]...)
				other := append([]string{}, docsOf[(ti+1)%tenants]...)
				ownJobs := append([]string{}, jobsOf[ti]...)
				mu.Unlock()
				var err error
				switch r.IntN(6) {
				case 0, 1:
					var a engine.Added
					a, err = s.AddDocument(bg, baskets[ti], engine.NewDocument{Name: "n.txt", Content: strings.NewReader(fmt.Sprintf("tenant %s g%d op%d", names[ti], g, i))})
					if err == nil {
						mu.Lock()
						docsOf[ti] = append(docsOf[ti], a.Document.ID)
						mu.Unlock()
					}
				case 2:
					if len(own) > 0 {
						var ids []string
						ids, err = s.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: own[:1]})
						mu.Lock()
						jobsOf[ti] = append(jobsOf[ti], ids...)
						mu.Unlock()
					}
				case 3:
					if len(other) > 0 {
						if _, lerr := s.Lineage(bg, other[0]); lerr == nil {
							err = fmt.Errorf("tenant %s read the lineage of another tenant's document", names[ti])
						}
						if _, rerr := s.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: other[:1]}); rerr == nil {
							err = fmt.Errorf("tenant %s ran a pipeline on another tenant's document", names[ti])
						}
					}
				case 4:
					var js []engine.JobInfo
					js, err = s.Jobs(bg, engine.JobFilter{}, docex.Page{Limit: 1000})
					for _, j := range js {
						if j.UserID != "u-"+names[ti] {
							err = fmt.Errorf("tenant %s lists a job of %s", names[ti], j.UserID)
						}
					}
				case 5:
					if len(ownJobs) > 0 {
						_, err = s.Job(bg, ownJobs[r.IntN(len(ownJobs))])
					}
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for ti, tn := range names {
		s := e.as(tn, "reader")
		js, err := s.Jobs(bg, engine.JobFilter{}, docex.Page{Limit: 10000})
		must(t, err)
		var ids []string
		for _, j := range js {
			ids = append(ids, j.ID)
		}
		st, err := s.WaitJobs(bg, ids, 20*time.Millisecond, nil)
		must(t, err)
		if st.Succeeded != len(ids) {
			t.Fatalf("%s: %+v", tn, st)
		}
		all, err := s.Documents(bg, baskets[ti], docex.Page{Limit: 10000})
		must(t, err)
		for _, d := range all {
			c, err := s.ReadContent(bg, d.ID)
			must(t, err)
			if !strings.Contains(strings.ToLower(string(c)), strings.ToLower(tn)) && len(c) > 12 {
				t.Fatalf("%s holds foreign content %q", tn, c)
			}
		}
	}
	cancel()
	must(t, <-done)
}

// testDatabaseContentInputs: with content in the database, a batch reads
// its inputs' content together (driver.ContentsReader, verified against
// the checksum before use): every job gets its own input's bytes, and an
// input whose stored bytes were altered fails its job as corrupt, as a
// read one by one does, while the rest of the batch succeeds.
func (f *fixture) testDatabaseContentInputs(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	e.tenant("beta")
	b := e.basket(admin, "in")
	var docs []docex.Document
	for i := range 40 {
		docs = append(docs, e.add(admin, b.ID, fmt.Sprintf("d%02d.txt", i), fmt.Sprintf("%02d database content input %d", i, i*i), nil))
	}
	bad := docs[17]
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	must(t, st.Write(bg, func(tx driver.Tx) error {
		if err := tx.DeleteContent(bg, bad.Checksum); err != nil {
			return err
		}
		// The same length: only the checksum tells it apart.
		return tx.PutContent(bg, bad.Checksum, []byte("17 tampered content input 289"))
	}))
	// The driver returns the rows as stored (the caller verifies), leaves
	// out what does not exist, and reads only its own tenant's.
	cr, ok := st.(driver.ContentsReader)
	if !ok {
		t.Fatalf("%T is not a driver.ContentsReader", st)
	}
	sums := []string{strings.Repeat("0", 64)}
	for _, d := range docs {
		sums = append(sums, d.Checksum)
	}
	rows, err := cr.ReadContents(bg, sums)
	must(t, err)
	if len(rows) != len(docs) || string(rows[bad.Checksum]) != "17 tampered content input 289" || string(rows[docs[3].Checksum]) != "03 database content input 9" {
		t.Fatalf("ReadContents: %d rows, bad %q, docs[3] %q", len(rows), rows[bad.Checksum], rows[docs[3].Checksum])
	}
	other, err := e.be.OpenTenant(bg, "beta")
	must(t, err)
	defer other.Close()
	if rows, err := other.(driver.ContentsReader).ReadContents(bg, sums); err != nil || len(rows) != 0 {
		t.Fatalf("another tenant's ReadContents: %d rows, %v", len(rows), err)
	}
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{BasketID: b.ID})
	must(t, err)
	status := e.workBatch(admin, []string{"acme"}, ids, 64)
	if status.Succeeded != len(docs)-1 || status.Failed != 1 {
		t.Fatalf("status %+v, want %d succeeded and the altered input's job failed", status, len(docs)-1)
	}
	for _, d := range docs {
		parts := derivedOf(t, admin, d.ID)
		if d.ID == bad.ID {
			if len(parts) != 0 {
				t.Fatalf("the altered input has %d derived documents", len(parts))
			}
			continue
		}
		if len(parts) != 2 {
			t.Fatalf("%s: %d parts, want 2", d.Name, len(parts))
		}
		var got []string
		for _, p := range parts {
			c, err := admin.ReadContent(bg, p.DerivedID)
			must(t, err)
			got = append(got, string(c))
		}
		orig, err := admin.ReadContent(bg, d.ID)
		must(t, err)
		if got[0]+got[1] != string(orig) && got[1]+got[0] != string(orig) {
			t.Fatalf("%s: parts %q and %q, not its content %q", d.Name, got[0], got[1], orig)
		}
	}
	jobs, err := admin.Jobs(bg, engine.JobFilter{}, docex.Page{Limit: 100})
	must(t, err)
	for _, j := range jobs {
		if j.DocumentID == bad.ID && (j.State != "failed" || j.ErrorCode != "corrupt") {
			t.Fatalf("the altered input's job: %s, %s: %s", j.State, j.ErrorCode, j.Error)
		}
	}
}

// threeStepsJobs makes tenant acme with the three-step pipeline, adds n
// documents to a basket "in" and runs the pipeline on them (no worker):
// it returns the admin session, the basket, the documents' ids and the
// jobs' ids.
func (e *pipeEnv) threeStepsJobs(t *testing.T, n int) (*engine.Session, docex.Basket, []string, []string) {
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	var roots []string
	for i := range n {
		roots = append(roots, e.add(admin, b.ID, fmt.Sprintf("d%d.txt", i), fmt.Sprintf("doc %d first, doc %d second", i, i), nil).ID)
	}
	ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: roots})
	must(t, err)
	return admin, b, roots, ids
}

// derivedFromNone fails t when a document of the basket derives from one
// of deleted, and returns the basket's documents.
func derivedFromNone(t *testing.T, s *engine.Session, basketID string, deleted map[string]bool) []docex.Document {
	t.Helper()
	docs, err := s.Documents(bg, basketID, docex.Page{Limit: docex.MaxPageLimit})
	must(t, err)
	for _, d := range docs {
		l, err := s.Lineage(bg, d.ID)
		must(t, err)
		for _, a := range l.Ancestors {
			if deleted[a.SourceID] {
				t.Fatalf("document %s (%s) is derived from %s, which was deleted", d.ID, d.Name, a.SourceID)
			}
		}
	}
	return docs
}

// testCascadeDuringJobs: documents deleted with their descendants
// (DeleteDocumentCascade) while workers run their jobs leave no document
// derived from them: a step's results on a document deleted before they
// were committed are not written (the job is cancelled), and a cascade
// sees every derived document committed before it. On PostgreSQL a job
// could commit derived documents of a document a cascade was deleting,
// which then outlived it.
func (f *fixture) testCascadeDuringJobs(t *testing.T) {
	e := f.pipeEnv(t)
	admin, b, roots, ids := e.threeStepsJobs(t, 24)
	deleted := map[string]bool{}
	var delErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		for i, id := range roots {
			if i%3 == 0 {
				continue // left to finish
			}
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			var err error
			for range 10 { // a deadlock with a job's commit is retried
				if _, err = admin.DeleteDocumentCascade(bg, id); !errors.Is(err, docex.ErrConflict) {
					break
				}
			}
			if err != nil {
				delErr = fmt.Errorf("cascade delete of %s: %w", id, err)
				return
			}
			deleted[id] = true
		}
	}()
	e.work(admin, []string{"acme"}, ids)
	<-done
	must(t, delErr)
	states := map[string]int{}
	for _, id := range ids {
		j, err := admin.Job(bg, id)
		must(t, err)
		states[j.State]++
		if j.State != driver.JobSucceeded && (j.State != driver.JobCancelled || !strings.Contains(j.Error, "deleted")) {
			t.Fatalf("job %s: %s (%s); want it succeeded, or cancelled as its document was deleted", id, j.State, j.Error)
		}
	}
	docs := derivedFromNone(t, admin, b.ID, deleted)
	t.Logf("%d documents left, jobs %v", len(docs), states)
}

// testDeleteUnderivedDuringJobs: a document deleted only when nothing
// derives from it (DeleteUnderivedDocument, the CLI's doc delete without
// --cascade or --keep-derived) while workers run its job either is refused
// (ErrHasDerived, and stays) or is deleted with no document derived from
// it left behind: a job that derives from it commits before the delete
// and is counted, or after it and writes nothing. Before, the CLI read the
// descendants, then deleted in a transaction of its own, so a job that
// committed in between left documents derived from a deleted source.
func (f *fixture) testDeleteUnderivedDuringJobs(t *testing.T) {
	e := f.pipeEnv(t)
	admin, b, roots, ids := e.threeStepsJobs(t, 24)
	deleted, refused := map[string]bool{}, map[string]bool{}
	var delErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
		for _, id := range roots {
			time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
			var err error
			for range 10 { // a deadlock with a job's commit is retried
				err = admin.DeleteUnderivedDocument(bg, id)
				if errors.Is(err, docex.ErrHasDerived) || !errors.Is(err, docex.ErrConflict) {
					break
				}
			}
			switch {
			case err == nil:
				deleted[id] = true
			case errors.Is(err, docex.ErrHasDerived):
				refused[id] = true
			default:
				delErr = fmt.Errorf("delete of %s: %w", id, err)
				return
			}
		}
	}()
	e.work(admin, []string{"acme"}, ids)
	<-done
	must(t, delErr)
	for _, id := range ids {
		j, err := admin.Job(bg, id)
		must(t, err)
		if j.State != driver.JobSucceeded && (j.State != driver.JobCancelled || !strings.Contains(j.Error, "deleted")) {
			t.Fatalf("job %s: %s (%s); want it succeeded, or cancelled as its document was deleted", id, j.State, j.Error)
		}
	}
	for id := range refused {
		if _, err := admin.Document(bg, id); err != nil {
			t.Fatalf("document %s, refused as derived from, is gone: %v", id, err)
		}
	}
	docs := derivedFromNone(t, admin, b.ID, deleted)
	t.Logf("%d deleted, %d refused, %d documents left", len(deleted), len(refused), len(docs))
}

// endedMeanwhile reports whether the other transaction's result arrives
// on done within 300 ms (put back for its reader): it should be waiting
// for the caller's open transaction instead. On a very slow machine a
// transaction that does not wait may be missed; it is never reported
// falsely.
func endedMeanwhile(done chan error) bool {
	select {
	case err := <-done:
		done <- err
		return true
	case <-time.After(300 * time.Millisecond):
		return false
	}
}

// testBindWaitsForAdds: binding a basket to a pipeline waits for the
// transactions in flight that add a document to the basket, or give one
// of its documents new content, having read the basket unbound (and so
// enqueued no job): they commit before the bind does, never after it.
// The transactions here do what the engine's add and update do (the add's
// insert holds a shared lock on the basket; the update takes one with
// driver.Tx.LockBasket before it reads the binding). On PostgreSQL a bind
// could commit in between, and the add that committed after it, with no
// job, broke "from the bind's commit on, every document added is
// processed".
func (f *fixture) testBindWaitsForAdds(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	for _, update := range []bool{false, true} {
		for round := range 3 {
			b := e.basket(admin, fmt.Sprintf("b-%v-%d", update, round))
			var old docex.Document
			if update {
				old = e.add(admin, b.ID, "d.txt", fmt.Sprintf("old %d", round), nil)
			}
			read, bound := make(chan struct{}), make(chan error, 1)
			go func() {
				<-read
				_, err := admin.BindBasket(bg, b.ID, "three")
				bound <- err
			}()
			boundFirst := false
			now := time.Now().UTC()
			err := st.Write(bg, func(tx driver.Tx) error {
				if update {
					// The same size: no basket counter changes.
					if err := tx.UpdateContent(bg, old.ID, old.Size, sum(fmt.Sprintf("new %d", round)), "text/plain", now); err != nil {
						return err
					}
					if _, err := tx.LockBasket(bg, b.ID, false); err != nil {
						return err
					}
				} else {
					d := docex.Document{ID: fmt.Sprintf("01a24760-0000-7000-8000-%012d", round), BasketID: b.ID, Name: "n.txt",
						ContentType: "text/plain", Size: 1, Checksum: sum(fmt.Sprint(round)), CreatedAt: now, UpdatedAt: now}
					if err := tx.InsertDocument(bg, d); err != nil {
						return err
					}
				}
				if name, err := tx.BasketPipeline(bg, b.ID); !errors.Is(err, docex.ErrNotFound) {
					return fmt.Errorf("basket bound to %q before the bind: %v", name, err)
				}
				close(read)
				// The bind waits for this transaction: it cannot end
				// before it commits. (Should it not wait, it ends within
				// this time, unless the machine is very slow.)
				boundFirst = endedMeanwhile(bound)
				return nil
			})
			must(t, err)
			must(t, <-bound)
			if boundFirst {
				t.Fatalf("update %v, round %d: the bind committed while a transaction that read the basket unbound was open; it committed after the bind with no job", update, round)
			}
		}
	}
}

// testCancelWhileRecording: a job's read-modify-write transactions do not
// interleave. Here a worker's transaction reads a running job to record
// its end (as the engine's record does) while the job is cancelled: the
// cancel waits for it and then refuses (the job succeeded), or, had it come
// first, the worker would find the job cancelled. On PostgreSQL the cancel
// could commit in between and the worker's write then overwrote it: the
// cancel had succeeded, yet the job showed succeeded.
func (f *fixture) testCancelWhileRecording(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	for round := range 3 {
		d := e.add(admin, b.ID, fmt.Sprintf("d%d.txt", round), fmt.Sprintf("doc %d", round), nil)
		ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{DocumentIDs: []string{d.ID}})
		must(t, err)
		id := ids[0]
		must(t, st.Write(bg, func(tx driver.Tx) error {
			j, err := tx.Job(bg, id)
			if err != nil {
				return err
			}
			j.State = driver.JobRunning
			return tx.UpdateJob(bg, j)
		}))
		read, cancelled := make(chan struct{}), make(chan error, 1)
		go func() {
			<-read
			cancelled <- admin.CancelJob(bg, id)
		}()
		cancelFirst := false
		err = st.Write(bg, func(tx driver.Tx) error {
			j, err := tx.Job(bg, id)
			if err != nil {
				return err
			}
			if j.State != driver.JobRunning {
				return fmt.Errorf("job %s before the cancel", j.State)
			}
			close(read)
			// The cancel waits for this transaction. (Should it not
			// wait, it ends within this time, unless the machine is
			// very slow.)
			cancelFirst = endedMeanwhile(cancelled)
			j.State, j.UpdatedAt = driver.JobSucceeded, time.Now().UTC()
			return tx.UpdateJob(bg, j)
		})
		must(t, err)
		cerr := <-cancelled
		j, err := admin.Job(bg, id)
		must(t, err)
		switch {
		case cancelFirst:
			t.Fatalf("round %d: the cancel (%v) ended while a transaction that had read the job running was open; the job is now %s", round, cerr, j.State)
		case cerr == nil:
			t.Fatalf("round %d: the cancel succeeded after the job succeeded; the job is %s", round, j.State)
		case !errors.Is(cerr, docex.ErrConflict) || j.State != driver.JobSucceeded:
			t.Fatalf("round %d: cancel: %v; job %s; want a conflict (the job succeeded first)", round, cerr, j.State)
		}
	}
}

// testRunBasketWhileDeleting: a run over a basket of more than one page of
// documents (docex.MaxPageLimit) enqueues one job for every document that
// stays in the basket, however many others are deleted meanwhile. The run
// read its pages by offset in statements of their own: on PostgreSQL a
// delete between two pages shifted a live document from the second page
// into the first, and the run skipped it.
func (f *fixture) testRunBasketWhileDeleting(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "big")
	const n = docex.MaxPageLimit + 50
	var all []docex.Document
	for off := 0; off < n; off += 1000 {
		var docs []engine.NewDocument
		for i := off; i < min(n, off+1000); i++ {
			docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%d.txt", i), Content: strings.NewReader(fmt.Sprintf("doc %d", i))})
		}
		added, err := admin.AddDocuments(bg, b.ID, docs)
		must(t, err)
		for _, a := range added {
			all = append(all, a.Document)
		}
	}
	slices.SortFunc(all, func(a, b docex.Document) int { return strings.Compare(a.ID, b.ID) })
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	gone := map[string]bool{}
	for round := range 2 {
		stop, done := make(chan struct{}), make(chan struct{})
		deleted := map[string]bool{}
		go func() {
			defer close(done)
			for _, d := range all[round*200 : round*200+200] {
				select {
				case <-stop:
					return
				default:
				}
				if err := admin.DeleteDocument(bg, d.ID); err != nil {
					t.Errorf("delete %s: %v", d.ID, err)
					return
				}
				deleted[d.ID] = true
			}
		}()
		ids, err := admin.RunPipeline(bg, "three", engine.RunTarget{BasketID: b.ID})
		close(stop)
		<-done
		must(t, err)
		maps.Copy(gone, deleted)
		jobs, err := st.JobsByID(bg, ids)
		must(t, err)
		got := map[string]bool{}
		for _, j := range jobs {
			if got[j.DocumentID] {
				t.Fatalf("round %d: two jobs for document %s", round, j.DocumentID)
			}
			got[j.DocumentID] = true
		}
		for _, d := range all {
			if !gone[d.ID] && !got[d.ID] {
				t.Fatalf("round %d: the run skipped document %s, which was never deleted (%d jobs, %d deleted during the run)", round, d.ID, len(ids), len(deleted))
			}
		}
	}
}

// testUnstorableNames: a name that no object can have, text that is not
// UTF-8 or holds a NUL byte, is not found by every lookup by name, on both
// backends alike. On PostgreSQL such text reached the server, which
// refused it (SQLSTATE 22021), and the lookups failed as internal errors
// quoting the server's message.
func (f *fixture) testUnstorableNames(t *testing.T) {
	e := f.pipeEnv(t)
	admin := e.threeStepsTenant("acme")
	b := e.basket(admin, "in")
	d := e.add(admin, b.ID, "a.txt", "a document", nil)
	for _, name := range []string{"\xff", "a\x00b", "three\x00"} {
		for _, c := range []struct {
			op  string
			err func() error
		}{
			{"basket by name", func() error { _, err := admin.BasketByName(bg, name); return err }},
			{"resolve basket", func() error { _, err := admin.ResolveBasket(bg, name); return err }},
			{"pipeline", func() error { _, err := admin.Pipeline(bg, name, 0); return err }},
			{"pipeline version", func() error { _, err := admin.Pipeline(bg, name, 2); return err }},
			{"delete pipeline", func() error { return admin.DeletePipeline(bg, name) }},
			{"bind", func() error { _, err := admin.BindBasket(bg, b.ID, name); return err }},
			{"run pipeline", func() error {
				_, err := admin.RunPipeline(bg, name, engine.RunTarget{DocumentIDs: []string{d.ID}})
				return err
			}},
			{"plugin", func() error { _, err := admin.Plugin(bg, name); return err }},
			{"remove plugin", func() error { return admin.RemovePlugin(bg, name) }},
			{"run plugin", func() error { _, err := admin.RunPlugin(bg, name, d.ID, nil); return err }},
		} {
			if err := c.err(); !errors.Is(err, docex.ErrNotFound) {
				t.Errorf("%s %q: %v, want not found", c.op, name, err)
			}
		}
	}
}

// testMetadataTotals: a document's metadata is bounded in total
// (engine.MaxDocumentMetaKeys, engine.MaxDocumentMetaBytes), whatever the
// number of calls that set it: SetMetadata, a plugin run and a pipeline
// step that would go past a limit are refused with docex.ErrInvalid,
// naming the document, and change nothing; within the limits (a key
// replaced at the limit) they succeed. Before, every call was bounded on
// its own (256 keys) and one document could carry any number of keys.
func (f *fixture) testMetadataTotals(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	e.install(admin, "tag")
	_, err := admin.CreatePipeline(bg, []byte(`name = "tagit"
[[steps]]
name = "tag"
plugin = "tag"
`))
	must(t, err)
	b := e.basket(admin, "in")

	// The driver's totals: keys and the bytes of keys and values as
	// stored (a number or a bool as its text).
	small := e.add(admin, b.ID, "small.txt", "small", map[string]docex.Value{"s": docex.String("héllo"), "n": docex.Number(3.5), "f": docex.Bool(true)})
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	var totals map[string]driver.MetadataTotal
	must(t, st.Write(bg, func(tx driver.Tx) error {
		var err error
		totals, err = tx.MetadataTotals(bg, []string{small.ID, unknownID})
		return err
	}))
	wantBytes := int64(len("s"+"héllo") + len("n"+docex.Number(3.5).Canonical()) + len("f"+docex.Bool(true).Canonical()))
	if len(totals) != 1 || totals[small.ID] != (driver.MetadataTotal{Keys: 3, Bytes: wantBytes}) {
		t.Fatalf("MetadataTotals = %+v, want %s: 3 keys, %d bytes", totals, small.ID, wantBytes)
	}

	// Keys: MaxDocumentMetaKeys in calls of MaxMetaKeys each.
	full := e.add(admin, b.ID, "full.txt", "full", nil)
	for c := range engine.MaxDocumentMetaKeys / engine.MaxMetaKeys {
		kv := map[string]docex.Value{}
		for i := range engine.MaxMetaKeys {
			kv[fmt.Sprintf("k%04d", c*engine.MaxMetaKeys+i)] = docex.Number(float64(i))
		}
		_, err := admin.SetMetadata(bg, full.ID, kv)
		must(t, err)
	}
	before, err := admin.Document(bg, full.ID)
	must(t, err)
	if len(before.Metadata) != engine.MaxDocumentMetaKeys {
		t.Fatalf("%d keys, want %d", len(before.Metadata), engine.MaxDocumentMetaKeys)
	}
	unchanged := func(what string) {
		t.Helper()
		got, err := admin.Document(bg, full.ID)
		must(t, err)
		if len(got.Metadata) != len(before.Metadata) || !got.UpdatedAt.Equal(before.UpdatedAt) || got.Metadata["k0000"] != before.Metadata["k0000"] {
			t.Fatalf("%s changed the document: %d keys (updated %v), before %d (updated %v)", what, len(got.Metadata), got.UpdatedAt, len(before.Metadata), before.UpdatedAt)
		}
	}
	_, err = admin.SetMetadata(bg, full.ID, map[string]docex.Value{"k0000": docex.String("changed"), "one-more": docex.Bool(true)})
	wantErr(t, err, docex.ErrInvalid)
	if msg := err.Error(); !strings.Contains(msg, full.ID) || !strings.Contains(msg, fmt.Sprint(engine.MaxDocumentMetaKeys+1)) || !strings.Contains(msg, fmt.Sprint(engine.MaxDocumentMetaKeys)) {
		t.Fatalf("the error does not name the document, the total and the limit: %v", err)
	}
	unchanged("a refused SetMetadata")
	res, err := admin.RunPlugin(bg, "tag", full.ID, nil)
	wantErr(t, err, docex.ErrInvalid)
	if err != nil && !strings.Contains(err.Error(), full.ID) {
		t.Fatalf("the run's error does not name the document: %v (%+v)", err, res)
	}
	unchanged("a refused plugin run")
	// A pipeline step: the job on the full document fails, the other's
	// succeeds.
	other := e.add(admin, b.ID, "other.txt", "other", nil)
	ids, err := admin.RunPipeline(bg, "tagit", engine.RunTarget{DocumentIDs: []string{full.ID, other.ID}})
	must(t, err)
	js := e.work(admin, []string{"acme"}, ids)
	if js.Succeeded != 1 || js.Failed != 1 {
		t.Fatalf("jobs %+v, want 1 succeeded and 1 failed", js)
	}
	if len(js.Failures) != 1 || !strings.Contains(js.Failures[0].Error, full.ID) {
		t.Fatalf("failures %+v do not name %s", js.Failures, full.ID)
	}
	unchanged("a refused pipeline step")
	if got, err := admin.Document(bg, other.ID); err != nil || !got.Metadata["tagged"].Truth() {
		t.Fatalf("the other document was not tagged: %v %v", got.Metadata, err)
	}
	// At the limit, replacing keys adds none: allowed.
	_, err = admin.SetMetadata(bg, full.ID, map[string]docex.Value{"k0000": docex.String("replaced")})
	must(t, err)

	// Bytes: MaxMetaKeys values of MaxMetaValueLen in one call, then one
	// more value that would go past MaxDocumentMetaBytes.
	big := e.add(admin, b.ID, "big.txt", "big", nil)
	kv := map[string]docex.Value{}
	value := strings.Repeat("v", engine.MaxMetaValueLen)
	var total int
	for i := range engine.MaxMetaKeys {
		k := fmt.Sprintf("b%03d", i)
		kv[k] = docex.String(value)
		total += len(k) + len(value)
	}
	_, err = admin.SetMetadata(bg, big.ID, kv)
	must(t, err)
	_, err = admin.SetMetadata(bg, big.ID, map[string]docex.Value{"x": docex.String(value)})
	wantErr(t, err, docex.ErrInvalid)
	if msg := err.Error(); !strings.Contains(msg, big.ID) || !strings.Contains(msg, fmt.Sprint(total+1+len(value))) || !strings.Contains(msg, fmt.Sprint(engine.MaxDocumentMetaBytes)) {
		t.Fatalf("the error does not name the document, the total and the limit: %v", err)
	}
	got, err := admin.Document(bg, big.ID)
	must(t, err)
	if _, ok := got.Metadata["x"]; ok || len(got.Metadata) != engine.MaxMetaKeys {
		t.Fatalf("a refused SetMetadata changed the document: %d keys", len(got.Metadata))
	}
}
