package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// lookupEnv is a tenant acme with the lookup test plugin and the pipeline
// "look" (one step, lookup of salaries.txt in the input's basket), and a
// way to run its jobs as one batch.
type lookupEnv struct {
	t *testing.T
	e *Engine
	s *Session
}

func newLookupEnv(t *testing.T) *lookupEnv {
	t.Helper()
	e := acmeSession(t, newTestSandbox(t)).e
	s := e.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	installTestPlugins(t, s, "lookup")
	if _, err := s.CreatePipeline(context.Background(), []byte("name = \"look\"\n[[steps]]\nname = \"look\"\nplugin = \"lookup\"\n[steps.params]\nname = \"salaries.txt\"\n")); err != nil {
		t.Fatal(err)
	}
	return &lookupEnv{t: t, e: e, s: s}
}

func (l *lookupEnv) basket(name string) string {
	l.t.Helper()
	bk, err := l.s.CreateBasket(context.Background(), name)
	if err != nil {
		l.t.Fatal(err)
	}
	return bk.ID
}

func (l *lookupEnv) add(basketID, name, content string, meta map[string]docex.Value) docex.Document {
	l.t.Helper()
	d, err := l.s.AddDocument(context.Background(), basketID, NewDocument{Name: name, Content: strings.NewReader(content), Metadata: meta})
	if err != nil {
		l.t.Fatal(err)
	}
	return d.Document
}

// run runs pipeline look on docs as one batch (no queue timing decides
// what shares) and returns each document as it is after, and its job's
// look step's outcome.
func (l *lookupEnv) run(docs ...docex.Document) ([]docex.Document, []string) {
	l.t.Helper()
	ctx := context.Background()
	ids := make([]string, len(docs))
	for i, d := range docs {
		got, err := l.s.RunPipeline(ctx, "look", RunTarget{DocumentIDs: []string{d.ID}})
		if err != nil {
			l.t.Fatal(err)
		}
		ids[i] = got[0]
	}
	runDirect(l.t, l.e, "acme", ids)
	after, outcomes := make([]docex.Document, len(docs)), make([]string, len(docs))
	for i, id := range ids {
		after[i], outcomes[i] = l.result(id, docs[i].ID)
	}
	return after, outcomes
}

// result returns document docID and the look step's outcome in job id,
// which must have succeeded.
func (l *lookupEnv) result(id, docID string) (docex.Document, string) {
	l.t.Helper()
	ctx := context.Background()
	j, err := l.s.Job(ctx, id)
	if err != nil || j.State != driver.JobSucceeded || len(j.Steps) != 1 {
		l.t.Fatalf("job: %+v %v", j, err)
	}
	if run, cached := j.Progress.StepsRun, j.Progress.StepsCached; (j.Steps[0].Outcome == StepRan) != (run == 1 && cached == 0) {
		l.t.Errorf("job %s: step %s, yet progress %d run, %d cached", id, j.Steps[0].Outcome, run, cached)
	}
	d, err := l.s.Document(ctx, docID)
	if err != nil {
		l.t.Fatal(err)
	}
	return d, j.Steps[0].Outcome
}

// cacheKey returns the step cache key a cacheable lookup plugin would have
// for doc in pipeline look.
func (l *lookupEnv) cacheKey(st driver.TenantStore, doc docex.Document) string {
	l.t.Helper()
	ctx := context.Background()
	rec, _, err := st.Plugins().Plugin(ctx, "lookup")
	if err != nil {
		l.t.Fatal(err)
	}
	pl, err := l.s.Pipeline(ctx, "look", 0)
	if err != nil {
		l.t.Fatal(err)
	}
	return cacheKey(doc, rec.ModuleSHA256, manifestSHA256(rec.Manifest), pl.Steps[0].CanonicalParams(), l.e.guestEnvironment())
}

// TestLookupStepsNotCached: a step whose plugin has documents.lookup
// depends on the other documents of its input's basket, which the step
// cache key does not name, so it is never served from the cache, never
// writes an entry and never shares a call: a result computed in basket hr
// (the plugin read salaries.txt and copied its author) is not served to
// the same bytes in basket public, whether in a later batch or in the
// same one, and once salaries.txt is deleted a new run does not get the
// result computed from it. Each run is recorded as run. (Before, the
// public document got names=salaries.txt; and author=payroll-secret from
// the cache, and the deleted document's author came back.)
func TestLookupStepsNotCached(t *testing.T) {
	ctx := context.Background()
	l := newLookupEnv(t)
	hr, public := l.basket("hr"), l.basket("public")
	salaries := l.add(hr, "salaries.txt", "ceo 1,000,000", map[string]docex.Value{"author": docex.String("payroll-secret")})
	leaked := func(d docex.Document) bool {
		return strings.Contains(d.Metadata["names"].Str(), "salaries.txt") || d.Metadata["author"].Str() == "payroll-secret"
	}

	// Two batches: hr's memo, then the same bytes in basket public.
	got, outs := l.run(l.add(hr, "memo.txt", "same bytes", nil))
	memo := got[0]
	if outs[0] != StepRan || !leaked(memo) || memo.Metadata["found"].Num() != 1 {
		t.Fatalf("hr's memo: step %s, metadata %v; want run, salaries.txt found", outs[0], memo.Metadata)
	}
	got, outs = l.run(l.add(public, "memo.txt", "same bytes", nil))
	if outs[0] != StepRan || leaked(got[0]) || got[0].Metadata["found"].Num() != 0 {
		t.Errorf("public's memo, same bytes as hr's: step %s, metadata %v; want run, nothing found (a result computed from basket hr was served)", outs[0], got[0].Metadata)
	}

	// One batch: equal documents of hr and public (an in-round share).
	got, outs = l.run(l.add(hr, "note.txt", "other bytes", nil), l.add(public, "note.txt", "other bytes", nil))
	if outs[0] != StepRan || outs[1] != StepRan {
		t.Errorf("equal documents in one batch: steps %v; want both run", outs)
	}
	if !leaked(got[0]) || leaked(got[1]) {
		t.Errorf("equal documents in one batch: hr's %v, public's %v; want salaries.txt found in hr only", got[0].Metadata, got[1].Metadata)
	}

	// salaries.txt deleted: hr's memo, its metadata removed, runs again.
	if err := l.s.DeleteDocument(ctx, salaries.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"author", "found", "names", "total_bytes"} {
		if err := l.s.DeleteMetadata(ctx, memo.ID, k); err != nil {
			t.Fatal(err)
		}
	}
	got, outs = l.run(memo)
	if outs[0] != StepRan || leaked(got[0]) || got[0].Metadata["found"].Num() != 0 {
		t.Errorf("after salaries.txt was deleted, hr's memo: step %s, metadata %v; want run, nothing found (the deleted document's data came back)", outs[0], got[0].Metadata)
	}

	// No entry was written, and one there (written before lookup steps
	// were left out of the cache) is not used.
	st, err := l.e.be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := l.cacheKey(st, memo)
	if _, err := st.CacheEntry(ctx, key); !errors.Is(err, docex.ErrNotFound) {
		t.Errorf("cache entry of the lookup step on the memo: %v; want none", err)
	}
	if err := st.Write(ctx, func(tx driver.Tx) error {
		return tx.PutCacheEntry(ctx, driver.CacheEntry{Key: key, Result: []byte(`{"metadata":{"author":"planted"},"derived":[]}`), CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	got, outs = l.run(l.add(public, "memo2.txt", "same bytes", nil))
	if outs[0] != StepRan || got[0].Metadata["author"].Str() == "planted" {
		t.Errorf("with a cache entry there: step %s, metadata %v; want run, the entry unused", outs[0], got[0].Metadata)
	}
}

// TestLookupStepsNotSharedAcrossBatches: two batches of one tenant
// running the lookup step at once on equal documents of two baskets each
// call the plugin (both runs park at the worker's only plugin slot; none
// waits for the other's call), and each gets what its own basket holds.
// Before, the second waited for the first's call and took its result,
// computed from the other basket.
func TestLookupStepsNotSharedAcrossBatches(t *testing.T) {
	ctx := context.Background()
	l := newLookupEnv(t)
	hr, public := l.basket("hr"), l.basket("public")
	l.add(hr, "salaries.txt", "ceo 1,000,000", map[string]docex.Value{"author": docex.String("payroll-secret")})
	docs := []docex.Document{l.add(hr, "memo.txt", "same bytes", nil), l.add(public, "memo.txt", "same bytes", nil)}
	var jobs []string
	for _, d := range docs {
		ids, err := l.s.RunPipeline(ctx, "look", RunTarget{DocumentIDs: []string{d.ID}})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, ids[0])
	}
	r := &jobRunner{e: l.e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1)}
	if err := r.runs.acquire(ctx, "test"); err != nil { // the only slot
		t.Fatal(err)
	}
	outs := make(chan driver.Outcome, len(jobs))
	for _, id := range jobs { // two batches of one job each, at once
		go func() {
			p := &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: id}, done: make(chan struct{})}
			outs <- r.handleBatch(ctx, "acme", []*pending{p})[0]
		}()
	}
	queued, waiting := parked(r, "acme", len(jobs))
	r.runs.release()
	for range jobs {
		if out := <-outs; out.Kind != driver.Done {
			t.Fatalf("outcome %+v", out)
		}
	}
	if queued != 2 || waiting != 0 {
		t.Errorf("parked runs: %d at the slot, %d waiting for another batch's call; want 2 and 0", queued, waiting)
	}
	for i, id := range jobs {
		d, outcome := l.result(id, docs[i].ID)
		wantFound := float64(1 - i) // hr's finds salaries.txt, public's nothing
		if outcome != StepRan || d.Metadata["found"].Num() != wantFound || (i == 1 && d.Metadata["author"].Str() != "") {
			t.Errorf("memo of basket %s: step %s, metadata %v; want run, found %v", d.BasketID, outcome, d.Metadata, wantFound)
		}
	}
}

// parked waits until n runs of tenant are parked in r, at its plugin slot
// or waiting for a call of the worker's other batches (nothing moves while
// its only slot is held), and returns how many are at each.
func parked(r *jobRunner, tenant string, n int) (queued, waiting int) {
	for {
		r.runs.mu.Lock()
		queued = len(r.runs.queue[tenant])
		r.runs.mu.Unlock()
		waiting = 0
		r.shares.mu.Lock()
		for _, c := range r.shares.runs {
			waiting += int(c.waiting.Load())
		}
		r.shares.mu.Unlock()
		if queued+waiting >= n {
			return queued, waiting
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkerSharesByIncarnation: a tenant deleted and provisioned again
// with the same id while a batch of the old incarnation is about to call
// a plugin does not share that call: the new incarnation's run on the
// same bytes parks at the plugin slot itself instead of waiting for the
// old call's result (computed from the deleted incarnation's data).
func TestWorkerSharesByIncarnation(t *testing.T) {
	ctx := context.Background()
	e := acmeSession(t, newTestSandbox(t)).e
	job := func(s *Session) string {
		bk, err := s.CreateBasket(ctx, "in")
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", Content: strings.NewReader("the same words")})
		if err != nil {
			t.Fatal(err)
		}
		ids, err := s.RunPipeline(ctx, "three", RunTarget{DocumentIDs: []string{d.Document.ID}})
		if err != nil {
			t.Fatal(err)
		}
		return ids[0]
	}
	old := job(threeStepSession(t, e, "acme"))
	r := &jobRunner{e: e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1)}
	if err := r.runs.acquire(ctx, "test"); err != nil { // the only slot
		t.Fatal(err)
	}
	outs := make(chan driver.Outcome, 2)
	start := func(id string) {
		go func() {
			p := &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: id}, done: make(chan struct{})}
			outs <- r.handleBatch(ctx, "acme", []*pending{p})[0]
		}()
	}
	start(old)
	parked(r, "acme", 1) // the old incarnation's split run leads its call
	ops := e.Provisioner("ops")
	if err := ops.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Create(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	s := threeStepSession(t, e, "acme")
	renewed := job(s)
	start(renewed)
	queued, waiting := parked(r, "acme", 2)
	r.runs.release()
	<-outs // the old incarnation's job: gone with it, whatever its outcome
	<-outs
	if queued != 2 || waiting != 0 {
		t.Errorf("parked runs: %d at the slot, %d waiting for the old incarnation's call; want 2 and 0", queued, waiting)
	}
	j, err := s.Job(ctx, renewed)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != driver.JobSucceeded || j.Progress.StepsRun != 5 || j.Progress.StepsCached != 0 {
		t.Errorf("the new incarnation's job: %s, %+v; want succeeded, 5 steps run", j.State, j.Progress)
	}
}

// TestCacheable: a plugin's steps are cached and shared only when each of
// its capabilities writes, or reads nothing but its input's content;
// every built-in step is.
func TestCacheable(t *testing.T) {
	want := map[pluginapi.Capability]bool{
		pluginapi.CapLog: true, pluginapi.CapContentRead: true, pluginapi.CapMetadataWrite: true, pluginapi.CapDocumentsEmit: true,
		pluginapi.CapMetadataRead: false, pluginapi.CapDocumentsLookup: false,
	}
	for _, c := range pluginapi.Capabilities() {
		w, ok := want[c]
		if !ok {
			t.Errorf("capability %q: decide whether a plugin granted it may be cached (cacheable), and say so here", c)
			continue
		}
		if got := cacheable(&pluginapi.Manifest{Capabilities: []string{string(c)}}); got != w {
			t.Errorf("cacheable with capability %q = %v, want %v", c, got, w)
		}
	}
	if !cacheable(&pluginapi.Manifest{}) {
		t.Error("a plugin with no capability is not cacheable")
	}
	steps, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		m, err := pluginapi.ParseManifest(s.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if !cacheable(m) {
			t.Errorf("built-in step %s (capabilities %v) is not cacheable", m.Name, m.Capabilities)
		}
	}
	for name, w := range map[string]bool{"wordcount": true, "split": true, "derive": true, "lookup": false, "lookupflood": false, "forge": false} {
		_, m, _ := testPlugin(t, name)
		if got := cacheable(m); got != w {
			t.Errorf("test plugin %s (capabilities %v): cacheable %v, want %v", name, m.Capabilities, got, w)
		}
	}
}
