package engine

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// TestSharedRuns: the runs of one batch on identical content share one
// plugin call: of two jobs on equal documents in two baskets, run as one
// batch, one runs each step and the other counts it as cached, yet each
// derives its own documents, in its own basket, with its own lineage.
// Runs on different content do not share. The step cache entries of the
// shared calls are written once (lastPerKey).
func TestSharedRuns(t *testing.T) {
	ctx := context.Background()
	e := acmeSession(t, newTestSandbox(t)).e
	s := threeStepSession(t, e, "acme")
	baskets := map[string]string{}
	for _, name := range []string{"one", "two"} {
		bk, err := s.CreateBasket(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		baskets[name] = bk.ID
	}
	var docs []docex.Document
	for _, c := range []struct{ basket, content string }{{"one", "the same words"}, {"two", "the same words"}, {"two", "other words here"}} {
		d, err := s.AddDocument(ctx, baskets[c.basket], NewDocument{Name: "a.txt", Content: strings.NewReader(c.content)})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d.Document)
	}
	ids, err := s.RunPipeline(ctx, "three", RunTarget{DocumentIDs: []string{docs[0].ID, docs[1].ID, docs[2].ID}})
	if err != nil {
		t.Fatal(err)
	}
	// One batch, run directly: no queue timing decides what shares.
	runDirect(t, e, "acme", ids)
	var run, cached [3]int
	for i, id := range ids {
		j, err := s.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != driver.JobSucceeded {
			t.Fatalf("job %d: %+v", i, j)
		}
		run[i], cached[i] = j.Progress.StepsRun, j.Progress.StepsCached
	}
	if run[0]+run[1] != 5 || cached[0]+cached[1] != 5 {
		t.Errorf("equal documents: steps run %d+%d, cached %d+%d; want 5 run and 5 shared in all", run[0], run[1], cached[0], cached[1])
	}
	if run[2] != 5 || cached[2] != 0 {
		t.Errorf("the other document: %d steps run, %d cached; want 5 and 0", run[2], cached[2])
	}
	for _, d := range docs[:2] {
		l, err := s.Lineage(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Descendants) != 4 {
			t.Fatalf("document of basket %s: %d descendants, want 4", d.BasketID, len(l.Descendants))
		}
		for _, edge := range l.Descendants {
			dd, err := s.Document(ctx, edge.DerivedID)
			if err != nil {
				t.Fatal(err)
			}
			if dd.BasketID != d.BasketID || dd.Metadata["derived_from"].Str() != edge.SourceID {
				t.Errorf("descendant %s: basket %s, derived_from %v; want basket %s, source %s", dd.ID, dd.BasketID, dd.Metadata["derived_from"], d.BasketID, edge.SourceID)
			}
		}
	}
}

// runDirect runs the jobs ids of tenant on e as one batch, directly (no
// worker, no queue: no timing decides what the batch holds), and fails t
// unless each is handled (driver.Done).
func runDirect(t testing.TB, e *Engine, tenant string, ids []string) {
	t.Helper()
	ctx := context.Background()
	r := &jobRunner{e: e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(2)}
	batch := make([]*pending, len(ids))
	for i, id := range ids {
		batch[i] = &pending{ctx: ctx, d: driver.Delivery{TenantID: tenant, JobID: id}, done: make(chan struct{})}
	}
	for i, out := range r.handleBatch(ctx, tenant, batch) {
		if out.Kind != driver.Done {
			t.Fatalf("job %d: outcome %+v", i, out)
		}
	}
}

func TestLastPerKey(t *testing.T) {
	in := []driver.CacheEntry{{Key: "a", Result: []byte("1")}, {Key: "b", Result: []byte("2")}, {Key: "a", Result: []byte("3")}}
	got := lastPerKey(in)
	if len(got) != 2 || got[0].Key != "a" || string(got[0].Result) != "3" || got[1].Key != "b" {
		t.Fatalf("lastPerKey = %+v", got)
	}
	if len(lastPerKey(nil)) != 0 {
		t.Fatal("lastPerKey(nil) not empty")
	}
}

// threeStepSession returns a session of tenant on e, as admin, with the
// split, upper and tag test plugins installed and the pipeline "three"
// (split, then upper on its outputs, then tag).
func threeStepSession(t *testing.T, e *Engine, tenant string) *Session {
	t.Helper()
	ctx := context.Background()
	s := e.As(docex.UserContext{UserID: "ann", TenantID: tenant, Roles: []string{"admin"}})
	installTestPlugins(t, s, "split", "upper", "tag")
	if _, err := s.CreatePipeline(ctx, []byte("name = \"three\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n"+
		"[[steps]]\nname = \"upper\"\nplugin = \"upper\"\ninput = \"split\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\ninput = \"upper\"\n")); err != nil {
		t.Fatal(err)
	}
	return s
}

// installTestPlugins installs the test plugins names (testplugins) in s's
// tenant.
func installTestPlugins(t *testing.T, s *Session, names ...string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range names {
		manifest, _, module := testPlugin(t, name)
		if _, err := s.InstallPlugin(ctx, manifest, module); err != nil {
			t.Fatal(err)
		}
	}
}

// testPlugin returns the test plugin name's manifest (as written and
// parsed) and module (testplugins).
func testPlugin(t *testing.T, name string) ([]byte, *pluginapi.Manifest, []byte) {
	t.Helper()
	fsys, err := testplugins.Dir(name)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := fs.ReadFile(fsys, "plugin.toml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	module, err := fs.ReadFile(fsys, m.Module)
	if err != nil {
		t.Fatal(err)
	}
	return manifest, m, module
}

// TestSharedRunsAcrossBatches: two batches of one tenant running at once
// on equal documents make one plugin call between them (the other batch
// waits for it and counts the step as cached), while a batch of another
// tenant on the same content makes its own call: calls are never shared
// across tenants. The worker's only plugin slot is held until the first
// batch's call waits for it and the second batch waits for that call, so
// no timing decides the outcome.
func TestSharedRunsAcrossBatches(t *testing.T) {
	ctx := context.Background()
	e := acmeSession(t, newTestSandbox(t)).e
	if _, err := e.Provisioner("ops").Create(ctx, "beta", ""); err != nil {
		t.Fatal(err)
	}
	acme, beta := threeStepSession(t, e, "acme"), threeStepSession(t, e, "beta")
	type jobAt struct {
		s      *Session
		tenant string
		doc    docex.Document
		job    string
	}
	var jobs []jobAt
	for _, c := range []struct {
		s              *Session
		tenant, basket string
	}{{acme, "acme", "one"}, {acme, "acme", "two"}, {beta, "beta", "one"}} {
		bk, err := c.s.CreateBasket(ctx, c.basket)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", Content: strings.NewReader("the same words")})
		if err != nil {
			t.Fatal(err)
		}
		ids, err := c.s.RunPipeline(ctx, "three", RunTarget{DocumentIDs: []string{d.Document.ID}})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, jobAt{c.s, c.tenant, d.Document, ids[0]})
	}
	r := &jobRunner{e: e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(1)}
	if err := r.runs.acquire(ctx, "test"); err != nil { // the only slot
		t.Fatal(err)
	}
	outs := make(chan driver.Outcome, len(jobs))
	for _, j := range jobs { // three batches of one job each, at once
		go func() {
			p := &pending{ctx: ctx, d: driver.Delivery{TenantID: j.tenant, JobID: j.job}, done: make(chan struct{})}
			outs <- r.handleBatch(ctx, j.tenant, []*pending{p})[0]
		}()
	}
	// Wait until each batch's first run is parked (nothing moves while
	// the slot is held), then check where: acme's first call and beta's
	// wait for the slot, and acme's other batch waits for acme's call. No
	// clock decides: a wrong sharing parks the runs elsewhere.
	var acmeQueued, betaQueued int
	var acmeWaiting, otherWaiting int32
	for {
		r.runs.mu.Lock()
		acmeQueued, betaQueued = len(r.runs.queue["acme"]), len(r.runs.queue["beta"])
		r.runs.mu.Unlock()
		acmeWaiting, otherWaiting = 0, 0
		r.shares.mu.Lock()
		for k, c := range r.shares.runs {
			if strings.HasPrefix(k, "acme\x00") {
				acmeWaiting += c.waiting.Load()
			} else {
				otherWaiting += c.waiting.Load()
			}
		}
		r.shares.mu.Unlock()
		if acmeQueued+betaQueued+int(acmeWaiting+otherWaiting) == len(jobs) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.runs.release()
	if acmeQueued != 1 || betaQueued != 1 || acmeWaiting != 1 || otherWaiting != 0 {
		for range jobs {
			<-outs
		}
		t.Fatalf("parked runs: acme %d and beta %d at the slot, %d waiting for an acme call, %d for another; want 1, 1, 1, 0",
			acmeQueued, betaQueued, acmeWaiting, otherWaiting)
	}
	for range jobs {
		if out := <-outs; out.Kind != driver.Done {
			t.Fatalf("outcome %+v", out)
		}
	}
	// The first step of each job: acme's two share one call, beta's ran.
	outcome := func(j jobAt) string {
		info, err := j.s.Job(ctx, j.job)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != driver.JobSucceeded || info.Progress.StepsRun+info.Progress.StepsCached != 5 {
			t.Fatalf("job of %s: %+v", j.tenant, info)
		}
		for _, st := range info.Steps {
			if st.Step == "split" {
				return st.Outcome
			}
		}
		t.Fatalf("job of %s: no split step in %+v", j.tenant, info.Steps)
		return ""
	}
	a1, a2, b := outcome(jobs[0]), outcome(jobs[1]), outcome(jobs[2])
	if (a1 == StepRan) == (a2 == StepRan) || (a1 != StepCached && a2 != StepCached) {
		t.Errorf("acme's split steps: %q and %q; want one ran and one cached", a1, a2)
	}
	if b != StepRan {
		t.Errorf("beta's split step: %q; want ran (calls are not shared across tenants)", b)
	}
	// Each job derived its own documents, in its own basket and tenant.
	for _, j := range jobs {
		l, err := j.s.Lineage(ctx, j.doc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Descendants) != 4 {
			t.Fatalf("%s basket %s: %d descendants, want 4", j.tenant, j.doc.BasketID, len(l.Descendants))
		}
		for _, edge := range l.Descendants {
			dd, err := j.s.Document(ctx, edge.DerivedID)
			if err != nil {
				t.Fatalf("%s: descendant %s: %v", j.tenant, edge.DerivedID, err)
			}
			if dd.BasketID != j.doc.BasketID {
				t.Errorf("%s: descendant %s in basket %s, want %s", j.tenant, dd.ID, dd.BasketID, j.doc.BasketID)
			}
		}
	}
	r.shares.mu.Lock()
	left := len(r.shares.runs)
	r.shares.mu.Unlock()
	if left != 0 {
		t.Errorf("%d calls still kept after the batches ended", left)
	}
}

// newTestSandbox returns a sandbox with a compilation cache of the test's
// own, closed when the test ends.
func newTestSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.New(context.Background(), sandbox.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return sb
}
