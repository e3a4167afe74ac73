package backendtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// pluginFiles returns a test plugin's manifest and module bytes.
func pluginFiles(t *testing.T, name string) (manifest, module []byte) {
	t.Helper()
	fsys, err := testplugins.Dir(name)
	must(t, err)
	manifest, err = fs.ReadFile(fsys, "plugin.toml")
	must(t, err)
	m, err := pluginapi.ParseManifest(manifest)
	must(t, err)
	module, err = fs.ReadFile(fsys, m.Module)
	must(t, err)
	return manifest, module
}

// testPlugins installs and runs plugins through the engine on this
// backend: output persisted with its audit entry in one transaction,
// tenant and system plugin stores, a hostile plugin that writes nothing,
// no state crossing runs, removal.
func (f *fixture) testPlugins(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	e.tenant("globex")
	a, g := e.as("acme", "admin"), e.as("globex", "admin")
	e.install(a, "derive", "loop", "stash")
	bk := e.basket(a, "in")
	doc := e.add(a, bk.ID, "q3.txt", "quarterly", nil)

	res, err := a.RunPlugin(bg, "derive", doc.ID, map[string]string{"title": "Q3 summary"})
	must(t, err)
	if res.Document.Metadata["derived"] != docex.Bool(true) || len(res.Derived) != 1 || res.Derived[0].Name != "summary.txt" {
		t.Fatalf("run result = %+v", res)
	}
	got, err := a.ReadContent(bg, res.Derived[0].ID)
	must(t, err)
	if string(got) != "Q3 summary" || res.Derived[0].Metadata["derived_from"] != docex.String(doc.ID) {
		t.Fatalf("derived document %q %+v", got, res.Derived[0].Metadata)
	}
	log, err := a.Audit(bg, docex.Page{Limit: 20})
	must(t, err)
	if !hasAudit(log, "plugin.run", docex.OutcomeOK) || !hasAudit(log, "document.add", docex.OutcomeOK) {
		t.Fatalf("audit lacks the run or its output: %+v", log)
	}

	// Another tenant does not see acme's plugins, nor its documents.
	if _, err := g.RunPlugin(bg, "derive", doc.ID, map[string]string{"title": "x"}); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("globex ran acme's plugin: %v", err)
	}
	// A system-wide plugin runs for every tenant, as that tenant.
	manifest, module := pluginFiles(t, "derive")
	if _, err := e.eng.Provisioner("ops").InstallSystemPlugin(bg, manifest, module); err != nil {
		t.Fatal(err)
	}
	gb := e.basket(g, "in")
	gd := e.add(g, gb.ID, "g.txt", "globex", nil)
	if _, err := g.RunPlugin(bg, "derive", doc.ID, map[string]string{"title": "x"}); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("globex's run reached acme's document: %v", err)
	}
	res, err = g.RunPlugin(bg, "derive", gd.ID, map[string]string{"title": "G"})
	must(t, err)
	if len(res.Derived) != 1 || res.Derived[0].BasketID != gb.ID {
		t.Fatalf("system plugin run = %+v", res)
	}

	// A hostile run fails and writes nothing but its audit entry.
	before, err := a.Basket(bg, bk.ID)
	must(t, err)
	if _, err := a.RunPlugin(bg, "loop", doc.ID, nil); !errors.Is(err, docex.ErrPluginFailed) || !errors.Is(err, pluginapi.ErrPluginTimeout) {
		t.Fatalf("loop: %v", err)
	}
	after, err := a.Basket(bg, bk.ID)
	must(t, err)
	if after.DocumentCount != before.DocumentCount {
		t.Fatal("a failed run added documents")
	}
	log, err = a.Audit(bg, docex.Page{Limit: 1})
	must(t, err)
	if log[0].Operation != "plugin.run" || log[0].Outcome != docex.OutcomeError {
		t.Fatalf("failed run audited as %+v", log[0])
	}

	// No run sees another's input, whatever the basket.
	other := e.basket(a, "other")
	for _, d := range []docex.Document{doc, e.add(a, other.ID, "o.txt", "other", nil)} {
		res, err := a.RunPlugin(bg, "stash", d.ID, nil)
		must(t, err)
		if len(res.Derived) != 0 {
			t.Fatalf("stash saw a previous input: %+v", res.Derived)
		}
	}

	must(t, a.RemovePlugin(bg, "stash"))
	if _, err := a.RunPlugin(bg, "stash", doc.ID, nil); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("removed plugin ran: %v", err)
	}
	if ps, err := a.Plugins(bg); err != nil || len(ps) != 2 {
		t.Fatalf("plugins = %+v, %v", ps, err)
	}
}

// testPluginModuleRace: plugins with the same module bytes share one
// stored module. Removing one plugin while another is installed with
// those bytes must leave the installed one its module (on PostgreSQL the
// removal could drop the module the install had just found, leaving the
// installed plugin without one).
func (f *fixture) testPluginModuleRace(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	for _, ps := range []struct {
		name  string
		store driver.PluginStore
	}{{"system", e.be.SystemPlugins()}, {"tenant", st.Plugins()}} {
		module := []byte("module shared by two plugins, " + ps.name)
		sum := sha256.Sum256(module)
		rec := func(name string) driver.PluginRecord {
			return driver.PluginRecord{Name: name, Version: "1.0.0", Manifest: []byte("name = \"" + name + "\""),
				ModuleSHA256: hex.EncodeToString(sum[:]), InstalledAt: time.Now(), InstalledBy: "test"}
		}
		for round := range 40 {
			must(t, ps.store.PutPlugin(bg, rec("old"), module))
			var putErr, delErr error
			var wg sync.WaitGroup
			wg.Go(func() { putErr = ps.store.PutPlugin(bg, rec("new"), module) })
			wg.Go(func() { delErr = ps.store.DeletePlugin(bg, "old") })
			wg.Wait()
			if putErr != nil || delErr != nil {
				t.Fatalf("%s, round %d: put %v, delete %v", ps.name, round, putErr, delErr)
			}
			_, got, err := ps.store.Plugin(bg, "new")
			if err != nil || !bytes.Equal(got, module) {
				t.Fatalf("%s, round %d: the plugin installed while another with its module was removed: module %q, %v", ps.name, round, got, err)
			}
			must(t, ps.store.DeletePlugin(bg, "new"))
		}

		// A plugin read while the plugin is replaced (its old module
		// dropped) returns the old plugin or the new one, whole.
		other := []byte("another module, " + ps.name)
		osum := sha256.Sum256(other)
		for round := range 20 {
			r, m := rec("p"), module
			if round%2 == 1 {
				r.ModuleSHA256, m = hex.EncodeToString(osum[:]), other
			}
			var putErr error
			done := make(chan struct{})
			go func() { defer close(done); putErr = ps.store.PutPlugin(bg, r, m) }()
			for reading := true; reading; {
				select {
				case <-done:
					reading = false
				default:
				}
				got, mod, err := ps.store.Plugin(bg, "p")
				if errors.Is(err, docex.ErrNotFound) && round == 0 {
					continue // not installed yet
				}
				if err != nil {
					t.Fatalf("%s, round %d: plugin read during its replacement: %v", ps.name, round, err)
				}
				if s := sha256.Sum256(mod); hex.EncodeToString(s[:]) != got.ModuleSHA256 {
					t.Fatalf("%s, round %d: module does not match the record read with it", ps.name, round)
				}
			}
			must(t, putErr)
		}
	}
}
