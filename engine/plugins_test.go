package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

var (
	sbOnce   sync.Once
	sharedSB *sandbox.Sandbox
	sbErr    error
)

// testSandbox is one sandbox for the whole package: modules compile once.
func testSandbox(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	sbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docex-wasm-cache-")
		if err != nil {
			sbErr = err
			return
		}
		sharedSB, sbErr = sandbox.New(context.Background(), sandbox.Config{CacheDir: dir})
	})
	if sbErr != nil {
		t.Fatal(sbErr)
	}
	return sharedSB
}

func pluginFiles(t testing.TB, name string) (manifest, module []byte) {
	t.Helper()
	fsys, err := testplugins.Dir(name)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err = fs.ReadFile(fsys, "plugin.toml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(manifest)
	if err != nil {
		// Hostile manifests are read raw; the module name is in the file.
		return manifest, nil
	}
	module, err = fs.ReadFile(fsys, m.Module)
	if err != nil {
		t.Fatal(err)
	}
	return manifest, module
}

type pluginEnv struct {
	eng      *engine.Engine
	a, b     *engine.Session
	aBasket  string
	bBasket  string
	aDoc     docex.Document
	bDoc     docex.Document
	aSecret  docex.Document
	bSecret  docex.Document
	readerA  *engine.Session
	writerA  *engine.Session
	provisio *engine.TenantProvisioner
}

func newPluginEnv(t *testing.T) *pluginEnv {
	t.Helper()
	ctx := context.Background()
	be, dir := engine.OpenTestSQLite(t)
	cfg := engine.Config{MultiTenancy: true, ContentDir: dir + "/content", Sandbox: testSandbox(t)}
	eng := startEngine(t, be, cfg, "alpha", "beta")
	p := eng.Provisioner("ops")
	e := &pluginEnv{eng: eng, provisio: p,
		a:       eng.As(docex.UserContext{UserID: "ann", TenantID: "alpha", Roles: []string{"admin"}}),
		b:       eng.As(docex.UserContext{UserID: "bob", TenantID: "beta", Roles: []string{"admin"}}),
		readerA: eng.As(docex.UserContext{UserID: "rita", TenantID: "alpha", Roles: []string{"reader"}}),
		writerA: eng.As(docex.UserContext{UserID: "will", TenantID: "alpha", Roles: []string{"writer"}}),
	}
	add := func(s *engine.Session, basket, name, content string, meta map[string]docex.Value) docex.Document {
		a, err := s.AddDocument(ctx, basket, engine.NewDocument{Name: name, Content: strings.NewReader(content), Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		return a.Document
	}
	ab, err := e.a.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := e.b.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	e.aBasket, e.bBasket = ab.ID, bb.ID
	e.aDoc = add(e.a, ab.ID, "doc.txt", "one two three four", map[string]docex.Value{"author": docex.String("ann")})
	e.aSecret = add(e.a, ab.ID, "secret.txt", "alpha's secret: 42", map[string]docex.Value{"author": docex.String("alpha-author")})
	e.bDoc = add(e.b, bb.ID, "doc.txt", "beta words here", nil)
	e.bSecret = add(e.b, bb.ID, "secret.txt", "beta", map[string]docex.Value{"author": docex.String("beta-author")})
	return e
}

func (e *pluginEnv) install(t *testing.T, s *engine.Session, name string) {
	t.Helper()
	manifest, module := pluginFiles(t, name)
	if _, err := s.InstallPlugin(context.Background(), manifest, module); err != nil {
		t.Fatalf("install %s: %v", name, err)
	}
}

func TestPluginRunWordcount(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "wordcount")
	res, err := e.writerA.RunPlugin(ctx, "wordcount", e.aDoc.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "ok" || res.Document.Metadata["words"] != docex.Number(4) || res.Document.Metadata["author"] != docex.String("ann") {
		t.Fatalf("result %+v", res)
	}
	if res.Report.HostCalls == 0 || res.Report.DurationMS <= 0 || res.Report.PeakMemoryBytes == 0 {
		t.Fatalf("resource report %+v", res.Report)
	}
	log, err := e.a.Audit(ctx, docex.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if rep, _ := log[0].Detail["report"].(map[string]any); log[0].Operation != "plugin.run" || log[0].Outcome != docex.OutcomeOK || rep["host_calls"] == nil || log[0].Detail["document_id"] != e.aDoc.ID {
		t.Fatalf("audit %+v", log[0])
	}
	// Another tenant does not see alpha's plugin, and cannot run it on
	// alpha's document either way.
	_, err = e.b.RunPlugin(ctx, "wordcount", e.bDoc.ID, nil)
	if !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("beta ran alpha's plugin: %v", err)
	}
	e.install(t, e.b, "wordcount")
	_, err = e.b.RunPlugin(ctx, "wordcount", e.aDoc.ID, nil)
	if !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("beta ran a plugin on alpha's document: %v", err)
	}
	// Roles.
	if _, err := e.readerA.RunPlugin(ctx, "wordcount", e.aDoc.ID, nil); !errors.Is(err, docex.ErrForbidden) {
		t.Fatalf("reader ran a plugin: %v", err)
	}
	manifest, module := pluginFiles(t, "echo")
	if _, err := e.writerA.InstallPlugin(ctx, manifest, module); !errors.Is(err, docex.ErrForbidden) {
		t.Fatalf("writer installed a plugin: %v", err)
	}
}

func TestPluginDeriveAndLookup(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "derive")
	res, err := e.a.RunPlugin(ctx, "derive", e.aDoc.ID, map[string]string{"title": "hello summary"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Derived) != 1 {
		t.Fatalf("derived %+v", res)
	}
	d := res.Derived[0]
	if d.BasketID != e.aBasket || d.Metadata["derived_from"] != docex.String(e.aDoc.ID) || d.Metadata["derived_by"] != docex.String("derive") ||
		d.Metadata["kind"] != docex.String("summary") {
		t.Fatalf("derived doc %+v", d)
	}
	if _, err := e.a.RunPlugin(ctx, "derive", e.aDoc.ID, nil); !errors.Is(err, docex.ErrPluginInvalid) {
		t.Fatalf("missing required param: %v", err)
	}
	// A bad parameter: the plugin is fine, the message says what is not
	// (and the misspelt name's match); the code stays plugin_invalid.
	_, err = e.a.RunPlugin(ctx, "derive", e.aDoc.ID, map[string]string{"titel": "x"})
	if !errors.Is(err, docex.ErrPluginInvalid) || !errors.Is(err, pluginapi.ErrInvalidParams) || docex.Code(err) != "plugin_invalid" ||
		err.Error() != `invalid parameters: plugin "derive" has no parameter "titel" (did you mean "title"?)` {
		t.Fatalf("misspelt param: %v (code %s)", err, docex.Code(err))
	}

	// lookup: beta's plugin looking up "secret.txt" finds beta's only.
	e.install(t, e.b, "lookup")
	res, err = e.b.RunPlugin(ctx, "lookup", e.bDoc.ID, map[string]string{"name": "secret.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Document.Metadata["found"] != docex.Number(1) || res.Document.Metadata["total_bytes"] != docex.Number(4) || res.Document.Metadata["author"] != docex.String("beta-author") {
		t.Fatalf("lookup result %+v", res.Document.Metadata)
	}
	res, err = e.b.RunPlugin(ctx, "lookup", e.bDoc.ID, map[string]string{"key": "author", "value": "alpha-author"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Document.Metadata["found"] != docex.Number(0) {
		t.Fatalf("lookup by metadata crossed tenants: %+v", res.Document.Metadata)
	}
}

func TestPluginForgedHandles(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.b, "forge")
	res, err := e.b.RunPlugin(ctx, "forge", e.bDoc.ID, nil)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	if res.Document.Metadata["forged"] != docex.Number(0) {
		t.Fatalf("forged handles worked: %+v", res.Document.Metadata)
	}
	got, err := e.a.Document(ctx, e.aSecret.ID)
	if err != nil || len(got.Metadata) != 1 {
		t.Fatalf("alpha's document changed: %+v %v", got, err)
	}
}

func TestHostilePlugins(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	cases := []struct {
		name string
		want []error
	}{
		{"loop", []error{docex.ErrPluginFailed, pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		{"fanout", []error{docex.ErrPluginFailed, pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		{"binrec", []error{docex.ErrPluginFailed, pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		// A loop of 32 MiB memory.fills: each pays for its length, so the
		// deadline stops it between two fills (before, it ran on for minutes).
		{"fillbomb", []error{docex.ErrPluginFailed, pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		{"wasiflood", []error{docex.ErrPluginFailed, pluginapi.ErrHostCallLimit}},
		{"membomb", []error{docex.ErrPluginFailed, pluginapi.ErrPluginMemory}},
		{"trap", []error{docex.ErrPluginFailed, pluginapi.ErrPluginTrap}},
		{"bigoutput", []error{docex.ErrPluginFailed, pluginapi.ErrPluginOutputTooLarge}},
		{"nocap", []error{docex.ErrPluginDenied, docex.ErrDenied, pluginapi.ErrCapabilityDenied}},
	}
	before, err := e.a.Basket(ctx, e.aBasket)
	if err != nil {
		t.Fatal(err)
	}
	e.install(t, e.b, "wordcount")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.install(t, e.a, c.name)
			// Beta runs a friendly plugin at the same time: unaffected.
			var wg sync.WaitGroup
			var bErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, bErr = e.b.RunPlugin(ctx, "wordcount", e.bDoc.ID, nil)
			}()
			_, err := e.a.RunPlugin(ctx, c.name, e.aDoc.ID, nil)
			wg.Wait()
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Fatalf("err = %v, want errors.Is %v", err, w)
				}
			}
			if bErr != nil {
				t.Fatalf("beta affected: %v", bErr)
			}
			got, err := e.a.Document(ctx, e.aDoc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Metadata) != 1 || got.Metadata["author"] != docex.String("ann") {
				t.Fatalf("failed run wrote metadata: %+v", got.Metadata)
			}
			after, err := e.a.Basket(ctx, e.aBasket)
			if err != nil {
				t.Fatal(err)
			}
			if after.DocumentCount != before.DocumentCount {
				t.Fatal("failed run added documents")
			}
			log, err := e.a.Audit(ctx, docex.Page{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := log[0].Detail["report"].(map[string]any); log[0].Operation != "plugin.run" || log[0].Outcome == docex.OutcomeOK || !ok {
				t.Fatalf("audit %+v", log[0])
			}
		})
	}
}

func TestInvalidPlugins(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	for _, name := range []string{"notwasm", "badimport", "badsig", "badhash", "importglobal", "refuel", "badvalidate", "badvalidatename"} {
		t.Run(name, func(t *testing.T) {
			manifest, module := pluginFiles(t, name)
			if module == nil {
				fsys, _ := testplugins.Dir(name)
				entries, _ := fs.ReadDir(fsys, ".")
				for _, en := range entries {
					if strings.HasSuffix(en.Name(), ".wasm") {
						module, _ = fs.ReadFile(fsys, en.Name())
					}
				}
			}
			_, err := e.a.InstallPlugin(ctx, manifest, module)
			if !errors.Is(err, docex.ErrPluginInvalid) || !errors.Is(err, docex.ErrInvalid) {
				t.Fatalf("install %s: %v", name, err)
			}
			ps, err := e.a.Plugins(ctx)
			if err != nil || len(ps) != 0 {
				t.Fatalf("something was installed: %+v %v", ps, err)
			}
		})
	}
}

func TestSystemPlugins(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	manifest, module := pluginFiles(t, "wordcount")
	if _, err := e.provisio.InstallSystemPlugin(ctx, manifest, module); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*engine.Session{e.a, e.b} {
		ps, err := s.Plugins(ctx)
		if err != nil || len(ps) != 1 || !ps[0].System {
			t.Fatalf("plugins %+v %v", ps, err)
		}
	}
	// Runs as the calling tenant: results land in that tenant only.
	res, err := e.b.RunPlugin(ctx, "wordcount", e.bDoc.ID, nil)
	if err != nil || res.Document.Metadata["words"] != docex.Number(3) {
		t.Fatalf("beta run: %+v %v", res, err)
	}
	if _, err := e.b.RunPlugin(ctx, "wordcount", e.aDoc.ID, nil); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("system plugin crossed tenants: %v", err)
	}
	// A tenant cannot remove a system plugin.
	if err := e.a.RemovePlugin(ctx, "wordcount"); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("tenant removed a system plugin: %v", err)
	}
	if err := e.provisio.RemoveSystemPlugin(ctx, "wordcount"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.RunPlugin(ctx, "wordcount", e.aDoc.ID, nil); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("removed plugin still runs: %v", err)
	}
}

// TestPluginsRandomInterleaving runs friendly and hostile plugins of
// several tenants from many goroutines in a random order, and checks that
// every lookup sees only its own tenant's documents and that hostile runs
// never write anything.
func TestPluginsRandomInterleaving(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: dir, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	cfg := engine.Config{MultiTenancy: true, ContentDir: dir + "/content", Sandbox: testSandbox(t), NoContentSync: true}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const tenants = 4
	type tenantEnv struct {
		s      *engine.Session
		basket string
		doc    string
		secret int // size of the tenant's secret.txt
	}
	envs := make([]tenantEnv, tenants)
	for i := range envs {
		id := fmt.Sprintf("rt%d", i)
		if _, err := eng.Provisioner("").Create(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		s := eng.As(docex.UserContext{UserID: "u" + id, TenantID: id, Roles: []string{"admin"}})
		b, err := s.CreateBasket(ctx, "in")
		if err != nil {
			t.Fatal(err)
		}
		secret := strings.Repeat("s", 10*(i+1))
		for _, d := range []struct{ name, body string }{{"doc.txt", "words of " + id}, {"secret.txt", secret}} {
			a, err := s.AddDocument(ctx, b.ID, engine.NewDocument{Name: d.name, Content: strings.NewReader(d.body), Metadata: map[string]docex.Value{"author": docex.String(id)}})
			if err != nil {
				t.Fatal(err)
			}
			if d.name == "doc.txt" {
				envs[i].doc = a.Document.ID
			}
		}
		for _, p := range []string{"lookup", "loop", "trap", "forge", "nocap"} {
			manifest, module := pluginFiles(t, p)
			if _, err := s.InstallPlugin(ctx, manifest, module); err != nil {
				t.Fatal(err)
			}
		}
		envs[i].s, envs[i].basket, envs[i].secret = s, b.ID, len(secret)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 12 {
				i := r.IntN(tenants)
				e := envs[i]
				id := fmt.Sprintf("rt%d", i)
				switch r.IntN(4) {
				case 0, 1:
					res, err := e.s.RunPlugin(ctx, "lookup", e.doc, map[string]string{"name": "secret.txt"})
					if err != nil {
						errc <- fmt.Errorf("%s lookup: %w", id, err)
						return
					}
					m := res.Document.Metadata
					if m["found"] != docex.Number(1) || m["total_bytes"] != docex.Number(float64(e.secret)) || m["author"] != docex.String(id) {
						errc <- fmt.Errorf("%s lookup saw %+v", id, m)
						return
					}
				case 2:
					res, err := e.s.RunPlugin(ctx, "forge", e.doc, nil)
					if err != nil || res.Document.Metadata["forged"] != docex.Number(0) {
						errc <- fmt.Errorf("%s forge: %+v %v", id, res.Document.Metadata, err)
						return
					}
				case 3:
					name := []string{"loop", "trap", "nocap"}[r.IntN(3)]
					if _, err := e.s.RunPlugin(ctx, name, e.doc, nil); err == nil {
						errc <- fmt.Errorf("%s: hostile %s succeeded", id, name)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for i, e := range envs {
		b, err := e.s.Basket(ctx, e.basket)
		if err != nil || b.DocumentCount != 2 {
			t.Fatalf("tenant %d basket %+v %v", i, b, err)
		}
	}
}

// A plugin that keeps its last input in memory or a global never shows it
// to a later run: of another basket, or of the tenant re-created with the
// same id after a delete (issue 7, defect 5).
func TestPluginStateDoesNotCrossRuns(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	runStash := func(s *engine.Session, docID string) {
		t.Helper()
		res, err := s.RunPlugin(ctx, "stash", docID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Derived) != 0 {
			t.Fatalf("run saw a previous input: %+v", res.Derived)
		}
	}
	e.install(t, e.a, "stash")
	other, err := e.a.CreateBasket(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.a.AddDocument(ctx, other.ID, engine.NewDocument{Name: "o.txt", Content: strings.NewReader("other basket")})
	if err != nil {
		t.Fatal(err)
	}
	runStash(e.a, e.aSecret.ID)
	runStash(e.a, o.Document.ID)
	if err := e.provisio.Delete(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.provisio.Create(ctx, "alpha", ""); err != nil {
		t.Fatal(err)
	}
	e.install(t, e.a, "stash")
	b, err := e.a.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.a.AddDocument(ctx, b.ID, engine.NewDocument{Name: "new.txt", Content: strings.NewReader("new tenant")})
	if err != nil {
		t.Fatal(err)
	}
	runStash(e.a, d.Document.ID)
}

// A document the plugin does not accept is the caller's invalid input, not
// an invalid plugin, and the error says what the plugin accepts.
func TestPluginContentTypeRefused(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "wordcount")
	a, err := e.a.AddDocument(ctx, e.aBasket, engine.NewDocument{Name: "x.pdf", ContentType: "application/pdf", Content: strings.NewReader("%PDF-1.4")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.a.RunPlugin(ctx, "wordcount", a.Document.ID, nil)
	if !errors.Is(err, docex.ErrInvalid) || errors.Is(err, docex.ErrPluginInvalid) || !strings.Contains(err.Error(), "accepts text/") {
		t.Fatalf("err = %v", err)
	}
}

// startEngine bootstraps be with cfg, opens an engine on it (closed when
// the test ends) and creates the tenants; it fails the test on any error.
func startEngine(t testing.TB, be driver.Backend, cfg engine.Config, tenants ...string) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	for _, id := range tenants {
		if _, err := eng.Provisioner("ops").Create(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	return eng
}

// TestDeriveOntoExistingKeepsItsMetadata: a derived document whose content
// the basket holds already is that document (deduplicated by content): the
// run's output is its id and lineage records the edge, but the document
// keeps its own name and metadata; what the plugin set on its output
// (kind, derived_from, derived_by) is not applied to it (docs/plugin-abi.md).
func TestDeriveOntoExistingKeepsItsMetadata(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "derive")
	before, err := e.a.Document(ctx, e.aSecret.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.a.RunPlugin(ctx, "derive", e.aDoc.ID, map[string]string{"title": "alpha's secret: 42"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Derived) != 1 || res.Derived[0].ID != e.aSecret.ID {
		t.Fatalf("derived %+v, want the existing document %s", res.Derived, e.aSecret.ID)
	}
	after, err := e.a.Document(ctx, e.aSecret.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Name != before.Name || len(after.Metadata) != len(before.Metadata) || after.Metadata["author"] != docex.String("alpha-author") {
		t.Fatalf("existing document changed: before %+v, after %+v", before, after)
	}
	for _, k := range []string{"kind", "derived_from", "derived_by"} {
		if _, ok := after.Metadata[k]; ok {
			t.Errorf("existing document got %s=%v from the run", k, after.Metadata[k])
		}
	}
	if _, ok := res.Derived[0].Metadata["kind"]; ok {
		t.Errorf("the run's result shows kind on the existing document: %+v", res.Derived[0])
	}
	l, err := e.a.Lineage(ctx, e.aSecret.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Ancestors) != 1 || l.Ancestors[0].SourceID != e.aDoc.ID {
		t.Fatalf("lineage of the existing document: %+v, want one edge from %s", l.Ancestors, e.aDoc.ID)
	}
}

// A run's report carries the time and units of the start function and
// _initialize when they ran for it (startwork's: a loop of 100,000 turns,
// a grow of 16 pages and a 1 MiB fill), as init_duration_ms and
// init_instructions, apart from the run's own, and the making of the
// instance besides them as instantiate_duration_ms; a run on an instance
// that did not run them (warm, or made from the snapshot) reports 0, and a
// warm one 0 instantiate_duration_ms. Before, initialisation was in no
// report, and instantiation in none until P12.
func TestPluginInitReport(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "startwork")
	res, err := e.a.RunPlugin(ctx, "startwork", e.aDoc.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	if !r.ColdStart || r.InitDurationMS <= 0 || r.InitInstructions < 100_000+2*16_384 || r.Instructions >= r.InitInstructions {
		t.Fatalf("cold run: report = %+v, want the initialisation's time and at least %d units, apart from the run's", r, 100_000+2*16_384)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	if keys["init_instructions"] != float64(r.InitInstructions) || keys["init_duration_ms"] != r.InitDurationMS ||
		r.InstantiateDurationMS <= 0 || keys["instantiate_duration_ms"] != r.InstantiateDurationMS {
		t.Fatalf("JSON report = %s", b)
	}
	res, err = e.a.RunPlugin(ctx, "startwork", e.aDoc.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Report; r.InitDurationMS != 0 || r.InitInstructions != 0 || r.InstantiateDurationMS != 0 {
		t.Fatalf("second run: report = %+v, want no initialisation", r)
	}
}

// A run whose start function fails (starthost traps: a docex host call
// outside docex_run) fails with the typed error, and its audit entry says
// the plugin ran, with the report of its failed initialisation (a cold
// start, its time, the instance retired). Before, the sandbox returned no
// report for a failed initialisation: the entry said ran=false with a zero
// report, as for a run refused before the plugin ran.
func TestPluginInitFailureReport(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "starthost")
	for i := range 2 {
		_, err := e.a.RunPlugin(ctx, "starthost", e.aDoc.ID, nil)
		if !errors.Is(err, docex.ErrPluginFailed) || !errors.Is(err, pluginapi.ErrPluginTrap) || !strings.Contains(err.Error(), "the start function") {
			t.Fatalf("run %d: err = %v, want ErrPluginFailed and ErrPluginTrap in the start function", i, err)
		}
		log, err := e.a.Audit(ctx, docex.Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		d := log[0].Detail
		rep, _ := d["report"].(engine.RunReport)
		if m, ok := d["report"].(map[string]any); ok { // as read back from the store
			b, _ := json.Marshal(m)
			_ = json.Unmarshal(b, &rep)
		}
		if log[0].Operation != "plugin.run" || log[0].Outcome != docex.OutcomeError || d["ran"] != true {
			t.Fatalf("run %d: audit %+v, want a failed plugin.run that ran", i, log[0])
		}
		if !rep.ColdStart || !rep.InstanceRetired || rep.InitDurationMS <= 0 || rep.PeakMemoryBytes == 0 || rep.DurationMS != 0 || rep.Instructions != 0 {
			t.Fatalf("run %d: report %+v, want the failed initialisation's", i, rep)
		}
	}
}

// TestRunFailureCarriesReport: a run that failed once the plugin ran, its
// docex_validate refusing the parameters or trapping or its entry
// trapping, returns a *engine.RunFailure with the run's report (the one
// of its audit entry, which says ran=true), matching the typed error as
// before; a run refused before the plugin ran (no such document,
// parameters the manifest refused) has none and its entry says
// ran=false. Before, RunPlugin's error had no report, and a
// docex_validate that refused or failed was audited ran=false with a
// zero report.
func TestRunFailureCarriesReport(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "validate")
	e.install(t, e.a, "trap")
	cases := []struct {
		name, plugin, doc string
		params            map[string]string
		kind              error
		ran               bool
	}{
		{"validate refuses", "validate", e.aDoc.ID, map[string]string{"mode": "refuse"}, docex.ErrPluginInvalid, true},
		{"validate traps", "validate", e.aDoc.ID, map[string]string{"mode": "trap"}, docex.ErrPluginFailed, true},
		{"entry traps", "trap", e.aDoc.ID, nil, docex.ErrPluginFailed, true},
		{"manifest refuses", "validate", e.aDoc.ID, map[string]string{"bogus": "1"}, docex.ErrPluginInvalid, false},
		{"no document", "trap", "0190c1a2-0000-7000-8000-000000000000", nil, docex.ErrNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.writerA.RunPlugin(ctx, tc.plugin, tc.doc, tc.params)
			var rf *engine.RunFailure
			if !errors.Is(err, tc.kind) || errors.As(err, &rf) != tc.ran {
				t.Fatalf("err = %v (%T), want %v, a RunFailure: %v", err, err, tc.kind, tc.ran)
			}
			log, aerr := e.a.Audit(ctx, docex.Page{Limit: 1})
			if aerr != nil {
				t.Fatal(aerr)
			}
			d := log[0].Detail
			var rep engine.RunReport
			b, _ := json.Marshal(d["report"])
			_ = json.Unmarshal(b, &rep)
			if log[0].Operation != "plugin.run" || d["ran"] != tc.ran {
				t.Fatalf("audit %+v, want plugin.run with ran=%v", log[0], tc.ran)
			}
			if !tc.ran {
				if rep.Instructions != 0 || rep.PeakMemoryBytes != 0 {
					t.Fatalf("audit report %+v, want zeros", rep)
				}
				return
			}
			if rf.Report.PeakMemoryBytes == 0 || rf.Report.Instructions == 0 && rf.Report.InitInstructions == 0 {
				t.Fatalf("report %+v, want what the run used", rf.Report)
			}
			if rep.PeakMemoryBytes != rf.Report.PeakMemoryBytes || rep.Instructions != rf.Report.Instructions || rep.ColdStart != rf.Report.ColdStart {
				t.Fatalf("audit report %+v, error's %+v: want the same", rep, rf.Report)
			}
		})
	}
}
