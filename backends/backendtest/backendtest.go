package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

// unknownID is a well-formed id that names nothing.
const unknownID = "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b"

// Harness makes backends for the suite.
type Harness struct {
	// New returns a fresh backend that has not been bootstrapped, and an
	// engine configuration for it. The suite sets MultiTenancy,
	// BootstrapTenantID and ContentStorage itself; when ContentDir is empty
	// it uses a temporary directory. New registers its own cleanup.
	New func(t *testing.T) (driver.Backend, engine.Config)

	// Reopen, when set, returns a second backend over the same storage
	// as be (as after a process restart). The suite closes be first.
	Reopen func(t *testing.T, be driver.Backend) driver.Backend
}

// Run runs the whole conformance suite.
func Run(t *testing.T, h Harness) {
	for _, storage := range []string{engine.ContentFilesystem, engine.ContentDatabase} {
		t.Run(storage, func(t *testing.T) {
			f := &fixture{h: h, storage: storage}
			t.Run("Bootstrap", f.testBootstrap)
			t.Run("SystemID", f.testSystemID)
			t.Run("InitResumes", f.testInitResumes)
			t.Run("SharedContentStore", f.testSharedContentStore)
			t.Run("ContentDirGone", f.testContentDirGone)
			t.Run("TenantLifecycle", f.testTenantLifecycle)
			t.Run("ConcurrentCreate", f.testConcurrentCreate)
			t.Run("RuntimeDenials", f.testRuntimeDenials)
			t.Run("Baskets", f.testBaskets)
			t.Run("Documents", f.testDocuments)
			t.Run("Metadata", f.testMetadata)
			t.Run("ReadsAreSnapshots", f.testReadsAreSnapshots)
			t.Run("Find", f.testFind)
			t.Run("DocumentIDs", f.testDocumentIDs)
			t.Run("MetaBound", f.testMetaBound)
			t.Run("Limits", f.testLimits)
			t.Run("StagedMemory", f.testStagedMemory)
			t.Run("Audit", f.testAudit)
			t.Run("AuditPrune", f.testAuditPrune)
			t.Run("OrphanContentRows", f.testOrphanContentRows)
			t.Run("InterruptedWritesAudited", f.testInterruptedWritesAudited)
			t.Run("RegistryRefusalsAudited", f.testRegistryRefusalsAudited)
			t.Run("UnknownBasketWritesAudited", f.testUnknownBasketWritesAudited)
			t.Run("MalformedInput", f.testMalformedInput)
			t.Run("BidiLabels", f.testBidiLabels)
			t.Run("BasketNamesAreNotIDs", f.testBasketNamesAreNotIDs)
			t.Run("StaleStores", f.testStaleStores)
			t.Run("DeletedUnderOpenStore", f.testDeletedUnderOpenStore)
			t.Run("DocumentsByName", f.testDocumentsByName)
			t.Run("Verify", f.testVerify)
			t.Run("Compact", f.testCompact)
			t.Run("SuspendIsAWriteBarrier", f.testSuspendIsAWriteBarrier)
			t.Run("CrossTenant", f.testCrossTenant)
			t.Run("RandomInterleaving", f.testRandomInterleaving)
			t.Run("LocalMode", f.testLocalMode)
			t.Run("Reopen", f.testReopen)
			t.Run("Sweep", f.testSweep)
			t.Run("SweepDryRun", f.testSweepDryRun)
			t.Run("SweepContentRows", f.testSweepContentRows)
			t.Run("ForceDeleteReleasesContent", f.testForceDeleteReleasesContent)
			t.Run("CascadeChunks", f.testCascadeChunks)
			t.Run("CascadeDeep", f.testCascadeDeep)
			t.Run("DeleteBasketRace", f.testDeleteBasketRace)
			t.Run("ConcurrentUpdates", f.testConcurrentUpdates)
			t.Run("LockSeesContentUpdates", f.testLockSeesContentUpdates)
			t.Run("ConcurrentSameContent", f.testConcurrentSameContent)
			t.Run("Plugins", f.testPlugins)
			t.Run("PluginModuleRace", f.testPluginModuleRace)
		})
	}
}

type fixture struct {
	h       Harness
	storage string
}

var bg = context.Background()

// env is a bootstrapped engine with helpers.
type env struct {
	t   *testing.T
	be  driver.Backend
	cfg engine.Config
	eng *engine.Engine
}

func (f *fixture) config(t *testing.T, multi bool) (driver.Backend, engine.Config) {
	be, cfg := f.h.New(t)
	cfg.MultiTenancy = multi
	cfg.BootstrapTenantID = "system"
	cfg.ContentStorage = f.storage
	if cfg.ContentDir == "" {
		cfg.ContentDir = t.TempDir()
	}
	return be, cfg
}

func (f *fixture) env(t *testing.T) *env {
	t.Helper()
	be, cfg := f.config(t, true)
	if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	eng, err := engine.New(bg, be, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return &env{t: t, be: be, cfg: cfg, eng: eng}
}

func (e *env) tenant(id string) {
	e.t.Helper()
	if _, err := e.eng.Provisioner("test").Create(bg, id, strings.ToUpper(id)); err != nil {
		e.t.Fatalf("create tenant %s: %v", id, err)
	}
}

func (e *env) as(tenant string, roles ...string) *engine.Session {
	return e.eng.As(docex.UserContext{UserID: "u-" + tenant, TenantID: tenant, Roles: roles})
}

func (e *env) basket(s *engine.Session, name string) docex.Basket {
	e.t.Helper()
	b, err := s.CreateBasket(bg, name)
	if err != nil {
		e.t.Fatalf("create basket %s: %v", name, err)
	}
	return b
}

func (e *env) add(s *engine.Session, basketID, name, content string, meta map[string]docex.Value) docex.Document {
	e.t.Helper()
	a, err := s.AddDocument(bg, basketID, engine.NewDocument{Name: name, Content: strings.NewReader(content), Metadata: meta})
	if err != nil {
		e.t.Fatalf("add %s: %v", name, err)
	}
	return a.Document
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func wantErr(t *testing.T, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("got error %q (code %s), want errors.Is %v", err, docex.Code(err), w)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) testBootstrap(t *testing.T) {
	be, cfg := f.config(t, true)
	_, err := engine.New(bg, be, cfg)
	wantErr(t, err, docex.ErrNotInitialized)
	created, err := engine.Bootstrap(bg, be, cfg)
	must(t, err)
	if !created {
		t.Fatal("first Bootstrap: created=false")
	}
	eng, err := engine.New(bg, be, cfg)
	must(t, err)
	_, err = eng.Provisioner("").Create(bg, "acme", "Acme")
	must(t, err)
	s := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})
	b, err := s.CreateBasket(bg, "keep")
	must(t, err)
	// Second bootstrap changes nothing and destroys nothing.
	created, err = engine.Bootstrap(bg, be, cfg)
	must(t, err)
	if created {
		t.Fatal("second Bootstrap: created=true")
	}
	if _, err := s.Basket(bg, b.ID); err != nil {
		t.Fatalf("basket lost after second bootstrap: %v", err)
	}
	// Other settings are refused.
	other := cfg
	other.BootstrapTenantID = "root0"
	_, err = engine.Bootstrap(bg, be, other)
	wantErr(t, err, docex.ErrInvalidConfig)
	_, err = engine.New(bg, be, other)
	wantErr(t, err, docex.ErrInvalidConfig)
	other = cfg
	other.MultiTenancy = false
	_, err = engine.New(bg, be, other)
	wantErr(t, err, docex.ErrInvalidConfig)
}

// testSystemID: Bootstrap stores a system id, keeps it, and adds one to a
// system bootstrapped without (before system ids); SystemID writes nothing.
// testInitResumes: a system engine.BeginInit creates stays unfinished,
// through Bootstrap and BeginInit again, until RecordInit (docex init's
// last step) writes its audit entry and clears the mark in one
// transaction; a system plain Bootstrap creates is never unfinished.
// Each backend is a driver.InitTracker, in single-file mode too.
func (f *fixture) testInitResumes(t *testing.T) {
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprintf("multi=%v", multi), func(t *testing.T) {
			be, cfg := f.config(t, multi)
			if _, ok := be.(driver.InitTracker); !ok {
				t.Fatalf("%T is not a driver.InitTracker", be)
			}
			begin := func(wantCreated, wantUnfinished bool) {
				t.Helper()
				created, unfinished, err := engine.BeginInit(bg, be, cfg)
				must(t, err)
				if created != wantCreated || unfinished != wantUnfinished {
					t.Fatalf("BeginInit: created %v unfinished %v, want %v %v", created, unfinished, wantCreated, wantUnfinished)
				}
			}
			begin(true, false)
			begin(false, true) // the init failed after BeginInit: the next one completes it
			if created, err := engine.Bootstrap(bg, be, cfg); err != nil || created {
				t.Fatalf("Bootstrap on an unfinished system: %v %v", created, err)
			}
			begin(false, true)
			eng, err := engine.New(bg, be, cfg) // an unfinished system is usable
			must(t, err)
			defer eng.Close()
			must(t, eng.Provisioner("ops").RecordInit(bg))
			begin(false, false)
			log, err := be.SystemAudit(bg, docex.Page{Limit: 100})
			must(t, err)
			inits := 0
			for _, e := range log {
				if e.Operation == "system.init" {
					inits++
					if e.UserID != "ops" || e.Outcome != docex.OutcomeOK {
						t.Fatalf("system.init entry %+v", e)
					}
				}
			}
			if inits != 1 {
				t.Fatalf("%d system.init entries, want 1", inits)
			}

			// Created by plain Bootstrap: finished from the start.
			be2, cfg2 := f.config(t, multi)
			created, err := engine.Bootstrap(bg, be2, cfg2)
			must(t, err)
			if !created {
				t.Fatal("Bootstrap: created=false")
			}
			if pending, err := be2.(driver.InitTracker).InitPending(bg); err != nil || pending {
				t.Fatalf("InitPending after Bootstrap: %v %v", pending, err)
			}
			// Before any Bootstrap: not initialised.
			be3, _ := f.config(t, multi)
			if _, err := be3.(driver.InitTracker).InitPending(bg); !errors.Is(err, docex.ErrNotInitialized) {
				t.Fatalf("InitPending before Bootstrap: %v", err)
			}
			if err := be3.(driver.InitTracker).FinishInit(bg, docex.AuditEntry{}); !errors.Is(err, docex.ErrNotInitialized) {
				t.Fatalf("FinishInit before Bootstrap: %v", err)
			}
		})
	}
}

func (f *fixture) testSystemID(t *testing.T) {
	be, cfg := f.config(t, true)
	_, err := be.SystemID(bg)
	wantErr(t, err, docex.ErrNotInitialized)
	_, err = be.SystemID(bg)
	wantErr(t, err, docex.ErrNotInitialized) // the first call created nothing
	info := driver.BootstrapInfo{BootstrapTenantID: cfg.BootstrapTenantID, MultiTenancy: true, Now: time.Now().UTC()}
	_, err = be.Bootstrap(bg, info) // as before system ids
	must(t, err)
	id, err := be.SystemID(bg)
	must(t, err)
	if id != "" {
		t.Fatalf("SystemID of a system bootstrapped without one = %q", id)
	}
	first, second := uuid.NewString(), uuid.NewString()
	for _, step := range []struct {
		give, want string
	}{
		{"", ""},        // no id given: none stored
		{first, first},  // an old system gets one
		{second, first}, // never changed
		{"", first},
	} {
		info.SystemID = step.give
		created, err := be.Bootstrap(bg, info)
		must(t, err)
		if created {
			t.Fatal("Bootstrap of an existing system: created=true")
		}
		if id, err := be.SystemID(bg); err != nil || id != step.want {
			t.Fatalf("after Bootstrap with %q: SystemID = %q, %v; want %q", step.give, id, err, step.want)
		}
	}
	// engine.Bootstrap draws a random UUID for a new system.
	be2, cfg2 := f.config(t, true)
	_, err = engine.Bootstrap(bg, be2, cfg2)
	must(t, err)
	id, err = be2.SystemID(bg)
	must(t, err)
	if u, err := uuid.Parse(id); err != nil || u.Version() != 4 {
		t.Fatalf("new system id %q: want a random UUID", id)
	}
	_, err = engine.Bootstrap(bg, be2, cfg2)
	must(t, err)
	if again, _ := be2.SystemID(bg); again != id {
		t.Fatalf("system id changed by a second Bootstrap: %q, then %q", id, again)
	}
}

// testSharedContentStore: a second system configured with the content
// directory of the first is refused before its backend creates anything;
// a system whose content store lost its marker or carries another's
// neither sweeps nor verifies, and removes nothing.
func (f *fixture) testSharedContentStore(t *testing.T) {
	if f.storage != engine.ContentFilesystem {
		t.Skip("content in the database belongs to its system")
	}
	a := f.env(t)
	a.tenant("acme")
	s := a.as("acme", "admin")
	b := a.basket(s, "b")
	doc := a.add(s, b.ID, "keep.txt", "system A's content", nil)
	// A second system on the same content directory.
	beB, cfgB := f.config(t, true)
	cfgB.ContentDir = a.cfg.ContentDir
	_, err := engine.Bootstrap(bg, beB, cfgB)
	wantErr(t, err, docex.ErrInvalidConfig)
	_, err = beB.SystemID(bg)
	wantErr(t, err, docex.ErrNotInitialized) // nothing bootstrapped
	if got := a.read(s, doc.ID); got != "system A's content" {
		t.Fatalf("system A's document reads %q", got)
	}
	// System B initialised elsewhere and then pointed at A's directory
	// (storage.documents changed): sweep and verify refuse.
	_, err = engine.Bootstrap(bg, beB, f.withDir(t, cfgB))
	must(t, err)
	engB, err := engine.New(bg, beB, cfgB)
	must(t, err)
	defer engB.Close()
	for _, dry := range []bool{true, false} {
		rep, err := engB.Provisioner("ops").Sweep(bg, engine.SweepOptions{DryRun: dry})
		wantErr(t, err, docex.ErrInvalidConfig)
		if len(rep.ContentDirs) != 0 || rep.ContentFiles != 0 {
			t.Fatalf("refused sweep (dry run %v) reports %+v", dry, rep)
		}
	}
	_, err = engB.Provisioner("ops").Verify(bg, "")
	wantErr(t, err, docex.ErrInvalidConfig)
	// A's store without its marker (lost, or a fresh directory): A refuses
	// too, until init claims the store again.
	marker := filepath.Join(a.cfg.ContentDir, ".docex-system")
	must(t, os.Remove(marker))
	_, err = a.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
	wantErr(t, err, docex.ErrNotInitialized)
	_, err = a.eng.Provisioner("ops").Verify(bg, "")
	wantErr(t, err, docex.ErrNotInitialized)
	_, err = engine.Bootstrap(bg, a.be, a.cfg)
	must(t, err)
	_, err = a.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
	must(t, err)
	if got := a.read(s, doc.ID); got != "system A's content" {
		t.Fatalf("after the sweeps, system A's document reads %q", got)
	}
}

// read returns the document's content, or the error's text.
func (e *env) read(s *engine.Session, id string) string {
	data, err := s.ReadContent(bg, id)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// testContentDirGone: the backend records the content directory
// engine.Bootstrap created or claimed (driver.ContentRecorder), and a
// Bootstrap that finds that directory missing, or any content directory
// missing on a system with documents, refuses with
// docex.ErrStorageUnavailable and creates nothing (it was deleted, or its
// volume is not mounted); in multi-tenant and local mode. A system that
// never had the directory (another one or none recorded, no documents)
// gets it created.
func (f *fixture) testContentDirGone(t *testing.T) {
	if f.storage != engine.ContentFilesystem {
		t.Skip("content in the database has no directory")
	}
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprintf("multi-tenant=%t", multi), func(t *testing.T) {
			be, cfg := f.config(t, multi)
			rec, ok := be.(driver.ContentRecorder)
			if !ok {
				t.Fatal("the backend does not implement driver.ContentRecorder")
			}
			_, err := rec.ContentDir(bg)
			wantErr(t, err, docex.ErrNotInitialized)
			wantErr(t, rec.RecordContentDir(bg, "/x"), docex.ErrNotInitialized)
			_, err = be.SystemID(bg)
			wantErr(t, err, docex.ErrNotInitialized) // nothing created
			cfg.ContentDir = filepath.Join(t.TempDir(), "content")
			must(t, engine.CheckContentDir(bg, be, cfg)) // no system yet
			_, err = engine.Bootstrap(bg, be, cfg)
			must(t, err)
			if dir, err := rec.ContentDir(bg); err != nil || dir != cfg.ContentDir {
				t.Fatalf("ContentDir = %q, %v; want %s", dir, err, cfg.ContentDir)
			}
			gone := func(what string) {
				t.Helper()
				must(t, os.RemoveAll(cfg.ContentDir))
				for name, err := range map[string]error{"CheckContentDir": engine.CheckContentDir(bg, be, cfg), "Bootstrap": func() error { _, err := engine.Bootstrap(bg, be, cfg); return err }()} {
					if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), "the content directory "+cfg.ContentDir+" is missing") {
						t.Fatalf("%s: %s: %v, want ErrStorageUnavailable naming %s", what, name, err, cfg.ContentDir)
					}
				}
				if _, err := os.Stat(cfg.ContentDir); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s: the content directory was created again (%v)", what, err)
				}
			}
			gone("recorded, no documents")
			// Another directory recorded (the configuration changed), no
			// documents: this one is new, and created.
			must(t, rec.RecordContentDir(bg, cfg.ContentDir+".old"))
			must(t, engine.CheckContentDir(bg, be, cfg))
			_, err = engine.Bootstrap(bg, be, cfg)
			must(t, err)
			if dir, _ := rec.ContentDir(bg); dir != cfg.ContentDir {
				t.Fatalf("ContentDir after a new directory = %q", dir)
			}
			eng, err := engine.New(bg, be, cfg)
			must(t, err)
			defer eng.Close()
			uc := docex.UserContext{UserID: "u", Roles: []string{"admin"}}
			if multi {
				_, err := eng.Provisioner("").Create(bg, "acme", "")
				must(t, err)
				uc.TenantID = "acme"
			}
			s := eng.As(uc)
			b, err := s.CreateBasket(bg, "b")
			must(t, err)
			_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("kept")})
			must(t, err)
			// Documents, whatever is recorded.
			must(t, rec.RecordContentDir(bg, ""))
			gone("documents, none recorded")
		})
	}
}

// withDir returns cfg with a content directory of its own.
func (f *fixture) withDir(t *testing.T, cfg engine.Config) engine.Config {
	cfg.ContentDir = t.TempDir()
	return cfg
}

func (f *fixture) testTenantLifecycle(t *testing.T) {
	e := f.env(t)
	p := e.eng.Provisioner("ops")
	tn, err := p.Create(bg, "acme", "Acme Corp")
	must(t, err)
	if tn.ID != "acme" || tn.DisplayName != "Acme Corp" || tn.Status != docex.TenantActive || tn.IsSystem || tn.CreatedAt.IsZero() {
		t.Fatalf("created tenant = %+v", tn)
	}
	_, err = p.Create(bg, "acme", "again")
	wantErr(t, err, docex.ErrTenantExists, docex.ErrConflict)
	if want := `tenant "acme" already exists`; err.Error() != want {
		t.Fatalf("second create: %q, want %q", err, want)
	}
	_, err = p.Create(bg, "system", "bootstrap")
	wantErr(t, err, docex.ErrConflict)

	for _, bad := range []string{"", " ", "Acme", "a b", "a;b", "a'b", `a"b`, "../x", "a/b", "a\x00b", "аcme", strings.Repeat("a", 41), "public", "pg_x", "docex1", "-a", "a-", "1a"} {
		_, err := p.Create(bg, bad, "x")
		wantErr(t, err, docex.ErrInvalid)
	}
	list, err := p.List(bg)
	must(t, err)
	// The bootstrap tenant's display name is the same on every backend.
	if len(list) != 2 || list[0].ID != "acme" || list[1].ID != "system" || !list[1].IsSystem || list[1].DisplayName != driver.BootstrapTenantDisplayName {
		t.Fatalf("tenants = %+v", list)
	}

	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	d := e.add(s, b.ID, "a.txt", "hello", nil)

	must(t, p.Suspend(bg, "acme"))
	_, err = s.Document(bg, d.ID)
	wantErr(t, err, docex.ErrTenantSuspended, docex.ErrDenied)
	got, err := p.Get(bg, "acme")
	must(t, err)
	if got.Status != docex.TenantSuspended {
		t.Fatalf("status = %s", got.Status)
	}
	must(t, p.Resume(bg, "acme"))
	if _, err := s.Document(bg, d.ID); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	wantErr(t, p.Suspend(bg, "nope"), docex.ErrNotFound)
	// The words of every backend, without the backend's name.
	for op, err := range map[string]error{"suspend": p.Suspend(bg, "nope"), "resume": p.Resume(bg, "nope"), "delete": p.Delete(bg, "nope")} {
		if want := `tenant "nope" not found`; err == nil || err.Error() != want {
			t.Fatalf("%s of an unknown tenant: %v, want %q", op, err, want)
		}
	}
	if _, err := p.Get(bg, "nope"); err == nil || err.Error() != `tenant "nope" not found` {
		t.Fatalf("get of an unknown tenant: %v", err)
	}
	wantErr(t, p.Suspend(bg, "system"), docex.ErrDenied)
	wantErr(t, p.Delete(bg, "system"), docex.ErrDenied)

	must(t, p.Delete(bg, "acme"))
	_, err = s.Document(bg, d.ID)
	wantErr(t, err, docex.ErrTenantUnknown, docex.ErrDenied)
	_, err = p.Get(bg, "acme")
	wantErr(t, err, docex.ErrNotFound)
	wantErr(t, p.Delete(bg, "acme"), docex.ErrNotFound)

	// Provisioned again: clean, nothing of the old tenant is visible.
	e.tenant("acme")
	bs, err := s.Baskets(bg, docex.Page{})
	must(t, err)
	if len(bs) != 0 {
		t.Fatalf("re-created tenant sees old baskets: %+v", bs)
	}
	b2 := e.basket(s, "b")
	a, err := s.AddDocument(bg, b2.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("hello")})
	must(t, err)
	if a.Duplicate {
		t.Fatal("re-created tenant deduplicated against the old tenant")
	}
	c, err := s.ReadContent(bg, a.Document.ID)
	must(t, err)
	if string(c) != "hello" {
		t.Fatalf("content = %q", c)
	}
}

func (f *fixture) testConcurrentCreate(t *testing.T) {
	e := f.env(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.eng.Provisioner("").Create(bg, "race", "Race")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, docex.ErrTenantExists):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", ok)
	}
	s := e.as("race", "writer")
	e.basket(s, "works")
}

func (f *fixture) testRuntimeDenials(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("beta")
	must(t, e.eng.Provisioner("").Suspend(bg, "beta"))
	cases := []struct {
		name string
		uc   docex.UserContext
		want error
	}{
		{"no user", docex.UserContext{TenantID: "acme", Roles: []string{"admin"}}, docex.ErrUserRequired},
		{"no tenant", docex.UserContext{UserID: "u", Roles: []string{"admin"}}, docex.ErrTenantRequired},
		{"unknown tenant", docex.UserContext{UserID: "u", TenantID: "nope", Roles: []string{"admin"}}, docex.ErrTenantUnknown},
		{"suspended tenant", docex.UserContext{UserID: "u", TenantID: "beta", Roles: []string{"admin"}}, docex.ErrTenantSuspended},
		{"bootstrap tenant", docex.UserContext{UserID: "u", TenantID: "system", Roles: []string{"admin"}}, docex.ErrBootstrapTenant},
		{"no roles", docex.UserContext{UserID: "u", TenantID: "acme"}, docex.ErrForbidden},
		{"unknown role", docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"superuser"}}, docex.ErrForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.eng.As(c.uc).Baskets(bg, docex.Page{})
			wantErr(t, err, c.want, docex.ErrDenied)
		})
	}
	_, err := e.eng.As(docex.UserContext{UserID: "u", TenantID: "../etc", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrInvalid)

	// Role matrix.
	admin := e.as("acme", "admin")
	b := e.basket(admin, "b")
	d := e.add(admin, b.ID, "x.txt", "x", nil)
	reader := e.as("acme", "reader")
	if _, err := reader.Document(bg, d.ID); err != nil {
		t.Fatalf("reader read: %v", err)
	}
	_, err = reader.CreateBasket(bg, "nope")
	wantErr(t, err, docex.ErrForbidden)
	_, err = reader.SetMetadata(bg, d.ID, map[string]docex.Value{"k": docex.String("v")})
	wantErr(t, err, docex.ErrForbidden)
	wantErr(t, reader.DeleteDocument(bg, d.ID), docex.ErrForbidden)
	writer := e.as("acme", "writer")
	if _, err := writer.SetMetadata(bg, d.ID, map[string]docex.Value{"k": docex.String("v")}); err != nil {
		t.Fatalf("writer set metadata: %v", err)
	}
	wantErr(t, writer.DeleteBasket(bg, b.ID, true), docex.ErrForbidden)
	_, err = writer.Audit(bg, docex.Page{})
	wantErr(t, err, docex.ErrForbidden)

	// Denials are audited: in the tenant for a forbidden role, in the
	// system log when there is no usable tenant.
	log, err := admin.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	if !hasAudit(log, "basket.create", docex.OutcomeDenied) {
		t.Fatalf("forbidden basket.create not audited in tenant: %+v", log)
	}
	sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 1000})
	must(t, err)
	if !hasAudit(sys, "basket.list", docex.OutcomeDenied) {
		t.Fatalf("denied basket.list not in system audit: %+v", sys)
	}
}

func hasAudit(log []docex.AuditEntry, op, outcome string) bool {
	for _, a := range log {
		if a.Operation == op && a.Outcome == outcome {
			return true
		}
	}
	return false
}

func (f *fixture) testBaskets(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "invoices")
	if b.ID == "" || b.Name != "invoices" {
		t.Fatalf("basket = %+v", b)
	}
	_, err := s.CreateBasket(bg, "invoices")
	wantErr(t, err, docex.ErrExists, docex.ErrConflict)
	// The message names the basket, in the same words on every backend
	// (never a driver's text: a PostgreSQL constraint name is no help).
	if want := `basket "invoices" already exists`; err.Error() != want {
		t.Fatalf("duplicate basket: %q, want %q", err, want)
	}
	for _, bad := range []string{"", "  ", "a\nb", strings.Repeat("x", 129), "bad\xffutf8"} {
		_, err := s.CreateBasket(bg, bad)
		wantErr(t, err, docex.ErrInvalid)
	}
	e.basket(s, "archive")
	got, err := s.BasketByName(bg, "invoices")
	must(t, err)
	if got.ID != b.ID {
		t.Fatalf("by name: %+v", got)
	}
	_, err = s.Basket(bg, unknownID)
	wantErr(t, err, docex.ErrNotFound)
	// A malformed id is invalid input, not "not found".
	for _, bad := range []string{"", "nope", "../x", unknownID + "0", strings.ToUpper(unknownID)[:35] + "\x00"} {
		_, err = s.Basket(bg, bad)
		wantErr(t, err, docex.ErrInvalidID)
		_, err = s.Document(bg, bad)
		wantErr(t, err, docex.ErrInvalidID)
	}
	_, err = s.BasketByName(bg, "nope")
	wantErr(t, err, docex.ErrNotFound)
	list, err := s.Baskets(bg, docex.Page{})
	must(t, err)
	if len(list) != 2 || list[0].Name != "archive" || list[1].Name != "invoices" {
		t.Fatalf("list = %+v", list)
	}
	page, err := s.Baskets(bg, docex.Page{Limit: 1, Offset: 1})
	must(t, err)
	if len(page) != 1 || page[0].Name != "invoices" {
		t.Fatalf("page = %+v", page)
	}

	e.add(s, b.ID, "a.txt", "aaaa", nil)
	e.add(s, b.ID, "b.txt", "bb", nil)
	c := e.add(s, b.ID, "c.txt", "c", nil)
	_, err = s.UpdateContent(bg, c.ID, strings.NewReader("cccccc"), "")
	must(t, err)
	d := e.add(s, b.ID, "d.txt", "ddd", nil)
	must(t, s.DeleteDocument(bg, d.ID))
	got, err = s.Basket(bg, b.ID)
	must(t, err)
	if got.DocumentCount != 3 || got.Bytes != 12 {
		t.Fatalf("stats = %+v", got)
	}
	byName, err := s.BasketByName(bg, "invoices")
	must(t, err)
	if byName.DocumentCount != 3 || byName.Bytes != 12 {
		t.Fatalf("stats by name = %+v", byName)
	}
	wantErr(t, s.DeleteBasket(bg, b.ID, false), docex.ErrBasketNotEmpty, docex.ErrConflict)
	must(t, s.DeleteBasket(bg, b.ID, true))
	_, err = s.Basket(bg, b.ID)
	wantErr(t, err, docex.ErrNotFound)
	wantErr(t, s.DeleteBasket(bg, b.ID, true), docex.ErrNotFound)
	// The name is free again and the old documents are gone.
	b2 := e.basket(s, "invoices")
	a, err := s.AddDocument(bg, b2.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("aaaa")})
	must(t, err)
	if a.Duplicate {
		t.Fatal("document survived basket deletion")
	}
}

func (f *fixture) testDocuments(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	b := e.basket(s, "docs")
	other := e.basket(s, "other")

	a, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "hello.txt", Content: strings.NewReader("hello world"),
		Metadata: map[string]docex.Value{"lang": docex.String("en"), "pages": docex.Number(3), "draft": docex.Bool(true)}})
	must(t, err)
	d := a.Document
	if a.Duplicate || d.Size != 11 || d.Checksum != sum("hello world") || d.Name != "hello.txt" ||
		!strings.HasPrefix(d.ContentType, "text/plain") || d.BasketID != b.ID || d.Status != docex.DocumentActive {
		t.Fatalf("added = %+v", a)
	}
	got, err := s.Document(bg, d.ID)
	must(t, err)
	if got.Checksum != d.Checksum || got.Metadata["pages"] != docex.Number(3) || got.Metadata["draft"] != docex.Bool(true) || got.Metadata["lang"] != docex.String("en") {
		t.Fatalf("get = %+v", got)
	}
	if !got.CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("created_at round trip: %v vs %v", got.CreatedAt, d.CreatedAt)
	}

	// Dedup within a basket, not across baskets.
	dup, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "copy.txt", Content: strings.NewReader("hello world")})
	must(t, err)
	if !dup.Duplicate || dup.Document.ID != d.ID {
		t.Fatalf("dedup = %+v", dup)
	}
	o, err := s.AddDocument(bg, other.ID, engine.NewDocument{Name: "copy.txt", Content: strings.NewReader("hello world")})
	must(t, err)
	if o.Duplicate || o.Document.ID == d.ID {
		t.Fatalf("dedup across baskets: %+v", o)
	}

	// Content streaming.
	rc, meta, err := s.OpenContent(bg, d.ID)
	must(t, err)
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "hello world" || meta.ID != d.ID {
		t.Fatalf("content = %q", body)
	}

	// Update rewrites content, checksum and size; keeps id and metadata.
	upd, err := s.UpdateContent(bg, d.ID, strings.NewReader("goodbye"), "")
	must(t, err)
	if upd.ID != d.ID || upd.Size != 7 || upd.Checksum != sum("goodbye") || upd.Metadata["lang"] != docex.String("en") || !upd.UpdatedAt.After(d.UpdatedAt.Add(-1)) {
		t.Fatalf("updated = %+v", upd)
	}
	c, err := s.ReadContent(bg, d.ID)
	must(t, err)
	if string(c) != "goodbye" {
		t.Fatalf("content after update = %q", c)
	}
	// The other basket's copy of the old content is still readable.
	c, err = s.ReadContent(bg, o.Document.ID)
	must(t, err)
	if string(c) != "hello world" {
		t.Fatalf("shared content lost after update: %q", c)
	}
	// Update to content another document of the basket has: conflict.
	e.add(s, b.ID, "x.txt", "xxx", nil)
	_, err = s.UpdateContent(bg, d.ID, strings.NewReader("xxx"), "")
	wantErr(t, err, docex.ErrDuplicateContent)
	_, err = s.UpdateContent(bg, unknownID, strings.NewReader("x"), "")
	wantErr(t, err, docex.ErrNotFound)

	// Wrong basket: not found, nothing deleted.
	_, err = s.DocumentIn(bg, other.ID, d.ID)
	wantErr(t, err, docex.ErrNotFound)
	wantErr(t, s.DeleteDocumentIn(bg, other.ID, d.ID), docex.ErrNotFound)
	if _, err := s.Document(bg, d.ID); err != nil {
		t.Fatalf("document deleted through the wrong basket: %v", err)
	}
	must(t, s.DeleteDocumentIn(bg, b.ID, d.ID))
	_, err = s.Document(bg, d.ID)
	wantErr(t, err, docex.ErrNotFound)
	// The words of every backend: the id quoted, as the user typed it.
	if want := fmt.Sprintf("document %q not found", d.ID); err.Error() != want {
		t.Fatalf("deleted document: %q, want %q", err, want)
	}
	_, err = s.ReadContent(bg, d.ID)
	wantErr(t, err, docex.ErrNotFound)
	if want := fmt.Sprintf("document %q not found", d.ID); err.Error() != want {
		t.Fatalf("content of a deleted document: %q, want %q", err, want)
	}
	wantErr(t, s.DeleteDocument(bg, d.ID), docex.ErrNotFound)
	c, err = s.ReadContent(bg, o.Document.ID)
	must(t, err)
	if string(c) != "hello world" {
		t.Fatalf("shared content lost after delete: %q", c)
	}
	// Re-adding deleted content works.
	again, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "again.txt", Content: strings.NewReader("goodbye")})
	must(t, err)
	if again.Duplicate {
		t.Fatal("deleted document still deduplicated")
	}
	c, err = s.ReadContent(bg, again.Document.ID)
	must(t, err)
	if string(c) != "goodbye" {
		t.Fatalf("re-added content = %q", c)
	}

	// Listing: pagination and ordering.
	lb := e.basket(s, "list")
	var ids []string
	for i := range 25 {
		ids = append(ids, e.add(s, lb.ID, fmt.Sprintf("doc-%02d.txt", 24-i), fmt.Sprintf("content %d", i), nil).ID)
	}
	var seen []string
	for off := 0; ; off += 10 {
		page, err := s.Documents(bg, lb.ID, docex.Page{Limit: 10, Offset: off})
		must(t, err)
		for _, d := range page {
			seen = append(seen, d.ID)
		}
		if len(page) < 10 {
			break
		}
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("pagination in creation order:\n got %v\nwant %v", seen, ids)
	}
	desc, err := s.Documents(bg, lb.ID, docex.Page{Limit: 1, Order: docex.OrderCreatedDesc})
	must(t, err)
	if desc[0].ID != ids[24] {
		t.Fatal("OrderCreatedDesc")
	}
	byName, err := s.Documents(bg, lb.ID, docex.Page{Limit: 1, Order: docex.OrderName})
	must(t, err)
	if byName[0].Name != "doc-00.txt" {
		t.Fatalf("OrderName first = %s", byName[0].Name)
	}
	_, err = s.Documents(bg, unknownID, docex.Page{})
	wantErr(t, err, docex.ErrNotFound)
	_, err = s.Documents(bg, lb.ID, docex.Page{Limit: -1})
	wantErr(t, err, docex.ErrInvalid)

	// Batch add is all or nothing.
	bb := e.basket(s, "batch")
	_, err = s.AddDocuments(bg, bb.ID, []engine.NewDocument{
		{Name: "ok.txt", Content: strings.NewReader("ok")},
		{Name: "bad", Content: strings.NewReader("x"), Metadata: map[string]docex.Value{"": docex.String("x")}},
	})
	wantErr(t, err, docex.ErrInvalid)
	added, err := s.AddDocuments(bg, bb.ID, []engine.NewDocument{
		{Name: "1.txt", Content: strings.NewReader("one")},
		{Name: "2.txt", Content: strings.NewReader("two")},
		{Name: "3.txt", Content: strings.NewReader("one")},
	})
	must(t, err)
	if len(added) != 3 || added[0].Duplicate || added[1].Duplicate || !added[2].Duplicate || added[2].Document.ID != added[0].Document.ID {
		t.Fatalf("batch = %+v", added)
	}
	// Adding to a missing basket adds nothing.
	_, err = s.AddDocument(bg, unknownID, engine.NewDocument{Name: "x", Content: strings.NewReader("x")})
	wantErr(t, err, docex.ErrNotFound)
}

func (f *fixture) testMetadata(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	b := e.basket(s, "m")
	d := e.add(s, b.ID, "a", "a", map[string]docex.Value{"k": docex.String("v")})
	upd, err := s.SetMetadata(bg, d.ID, map[string]docex.Value{"n": docex.Number(42.5), "flag": docex.Bool(false), "k": docex.String("w")})
	must(t, err)
	if upd.Metadata["n"] != docex.Number(42.5) || upd.Metadata["flag"] != docex.Bool(false) || upd.Metadata["k"] != docex.String("w") {
		t.Fatalf("metadata = %+v", upd.Metadata)
	}
	must(t, s.DeleteMetadata(bg, d.ID, "k"))
	got, err := s.Document(bg, d.ID)
	must(t, err)
	if _, ok := got.Metadata["k"]; ok || len(got.Metadata) != 2 {
		t.Fatalf("after delete = %+v", got.Metadata)
	}
	wantErr(t, s.DeleteMetadata(bg, d.ID, "k"), docex.ErrNotFound)
	wantErr(t, s.DeleteMetadata(bg, unknownID, "n"), docex.ErrNotFound)
	_, err = s.SetMetadata(bg, unknownID, map[string]docex.Value{"a": docex.String("b")})
	wantErr(t, err, docex.ErrNotFound)
	for _, bad := range []map[string]docex.Value{
		nil,
		{"": docex.String("x")},
		{"k": {}},
		{"k\x00": docex.String("x")},
		{strings.Repeat("k", 257): docex.String("x")},
	} {
		_, err := s.SetMetadata(bg, d.ID, bad)
		wantErr(t, err, docex.ErrInvalid)
	}
}

func (f *fixture) testFind(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	b := e.basket(s, "f")
	other := e.basket(s, "other")
	var evens []string
	for i := range 30 {
		meta := map[string]docex.Value{"parity": docex.String([]string{"even", "odd"}[i%2]), "n": docex.Number(float64(i % 3)), "flag": docex.Bool(i%5 == 0)}
		d := e.add(s, b.ID, fmt.Sprintf("d%d", i), fmt.Sprintf("c%d", i), meta)
		if i%2 == 0 {
			evens = append(evens, d.ID)
		}
	}
	e.add(s, other.ID, "o", "o", map[string]docex.Value{"parity": docex.String("even")})

	docs, total, err := s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "parity", Value: docex.String("even")}}, docex.Page{Limit: 5})
	must(t, err)
	if total != 15 || len(docs) != 5 || docs[0].ID != evens[0] || docs[4].ID != evens[4] {
		t.Fatalf("find even: total %d, %d docs", total, len(docs))
	}
	docs, _, err = s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "parity", Value: docex.String("even")}}, docex.Page{Limit: 5, Offset: 10})
	must(t, err)
	if len(docs) != 5 || docs[0].ID != evens[10] {
		t.Fatalf("find page 3: %d docs", len(docs))
	}
	// AND of conditions: even and n == 0 => i in {0, 6, 12, 18, 24}.
	docs, total, err = s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "parity", Value: docex.String("even")}, {Key: "n", Value: docex.Number(0)}}, docex.Page{})
	must(t, err)
	if total != 5 || len(docs) != 5 {
		t.Fatalf("AND: total %d", total)
	}
	for _, d := range docs {
		if d.Metadata["n"] != docex.Number(0) || d.Metadata["parity"] != docex.String("even") {
			t.Fatalf("AND returned %+v", d.Metadata)
		}
	}
	// Three conditions: even, n == 0, flag => i in {0}.
	_, total, err = s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "parity", Value: docex.String("even")}, {Key: "n", Value: docex.Number(0.0)}, {Key: "flag", Value: docex.Bool(true)}}, docex.Page{})
	must(t, err)
	if total != 1 {
		t.Fatalf("3-way AND total = %d", total)
	}
	// Types are distinct: the string "0" is not the number 0.
	_, total, err = s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "n", Value: docex.String("0")}}, docex.Page{})
	must(t, err)
	if total != 0 {
		t.Fatalf("string/number confusion: %d", total)
	}
	_, _, err = s.FindDocuments(bg, b.ID, nil, docex.Page{})
	wantErr(t, err, docex.ErrInvalid)
	_, _, err = s.FindDocuments(bg, unknownID, []docex.MetaFilter{{Key: "a", Value: docex.String("b")}}, docex.Page{})
	wantErr(t, err, docex.ErrNotFound)
	// Metadata changes are reflected.
	_, err = s.SetMetadata(bg, evens[0], map[string]docex.Value{"parity": docex.String("odd")})
	must(t, err)
	_, total, err = s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "parity", Value: docex.String("even")}}, docex.Page{})
	must(t, err)
	if total != 14 {
		t.Fatalf("after set, total = %d", total)
	}
}

func (f *fixture) testLimits(t *testing.T) {
	be, cfg := f.config(t, true)
	cfg.MaxDocumentBytes = 1024
	_, err := engine.Bootstrap(bg, be, cfg)
	must(t, err)
	eng, err := engine.New(bg, be, cfg)
	must(t, err)
	_, err = eng.Provisioner("").Create(bg, "acme", "")
	must(t, err)
	s := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"writer"}})
	b, err := s.CreateBasket(bg, "b")
	must(t, err)
	_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "big", Content: bytes.NewReader(make([]byte, 1025))})
	wantErr(t, err, docex.ErrTooLarge, docex.ErrInvalid)
	got, err := s.Basket(bg, b.ID)
	must(t, err)
	if got.DocumentCount != 0 {
		t.Fatal("oversized document was stored")
	}
	a, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "fits", Content: bytes.NewReader(make([]byte, 1024))})
	must(t, err)
	_, err = s.UpdateContent(bg, a.Document.ID, bytes.NewReader(make([]byte, 2048)), "")
	wantErr(t, err, docex.ErrTooLarge)
	c, err := s.ReadContent(bg, a.Document.ID)
	must(t, err)
	if len(c) != 1024 {
		t.Fatal("failed update changed content")
	}
	for _, bad := range []string{"", strings.Repeat("n", 1025), "a\x00b"} {
		_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: bad, Content: strings.NewReader("x")})
		wantErr(t, err, docex.ErrInvalid)
	}
}

// testBidiLabels: a bidirectional control (U+202A-U+202E, U+2066-U+2069)
// in a label (a user id, an actor, a tenant's display name, a basket or
// document name, a metadata key) is refused as a control character is,
// ErrInvalid (ErrInvalidID for a user id) naming what with the character
// escaped, and nothing is stored; metadata values and content keep them.
// Before, they were stored and came back raw in JSON and through MCP,
// where a name with U+202E reads reversed ("Trojan Source").
func (f *fixture) testBidiLabels(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	d := e.add(s, b.ID, "x", "x", nil)
	for _, r := range []rune{'\u202a', '\u202e', '\u2066', '\u2069'} {
		bad := "in" + string(r) + "txt.exe"
		want := fmt.Sprintf("contains a bidirectional control character %U", r)
		check := func(what string, err error, sentinel error) {
			t.Helper()
			if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), want) || strings.ContainsRune(err.Error(), r) {
				t.Errorf("%s with %U: %v, want %v saying %q, the character escaped", what, r, err, sentinel, want)
			}
		}
		_, err := e.eng.As(docex.UserContext{UserID: bad, TenantID: "acme", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
		check("user id", err, docex.ErrInvalidID)
		_, err = e.eng.Provisioner(bad).Create(bg, "acme2", "")
		check("actor", err, docex.ErrInvalidID)
		_, err = e.eng.Provisioner("ops").Create(bg, "acme2", bad)
		check("display name", err, docex.ErrInvalid)
		_, err = s.CreateBasket(bg, bad)
		check("basket name", err, docex.ErrInvalid)
		_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: bad, Content: strings.NewReader("y")})
		check("document name", err, docex.ErrInvalid)
		_, err = s.SetMetadata(bg, d.ID, map[string]docex.Value{bad: docex.String("v")})
		check("metadata key", err, docex.ErrInvalid)
		_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "y", Content: strings.NewReader("y"), Metadata: map[string]docex.Value{bad: docex.String("v")}})
		check("metadata key of a new document", err, docex.ErrInvalid)
		// Values and content are free.
		got, err := s.SetMetadata(bg, d.ID, map[string]docex.Value{"k": docex.String(bad)})
		must(t, err)
		if v := got.Metadata["k"]; v != docex.String(bad) {
			t.Errorf("metadata value with %U read back %v", r, v)
		}
	}
	if _, err := e.eng.Provisioner("ops").Get(bg, "acme2"); !errors.Is(err, docex.ErrNotFound) {
		t.Errorf("a tenant was created with a bidirectional control in a label: %v", err)
	}
	// The refusals are audited with each control in a label field written
	// out as its escape (\u202e), the same text on every backend; before,
	// raw (probe P18 F2b).
	tlog, err := s.Audit(bg, docex.Page{Limit: 1000})
	must(t, err)
	slog, err := e.eng.Provisioner("ops").SystemAudit(bg, docex.Page{Limit: 1000})
	must(t, err)
	seen := map[string]bool{}
	for _, en := range append(tlog, slog...) {
		for _, l := range append([]string{en.UserID, en.TenantID, en.Target}, en.Roles...) {
			seen[l] = true
			if strings.IndexFunc(l, tenancy.IsBidiControl) >= 0 {
				t.Errorf("audit entry %s: label %q holds a bidirectional control", en.Operation, l)
			}
		}
	}
	for _, want := range []string{`in\u202atxt.exe`, `in\u202etxt.exe`, `in\u2066txt.exe`, `in\u2069txt.exe`} {
		if !seen[want] {
			t.Errorf("no audit entry names %s", want)
		}
	}
	bs, err := s.Baskets(bg, docex.Page{})
	must(t, err)
	ds, err := s.Documents(bg, b.ID, docex.Page{})
	must(t, err)
	if len(bs) != 1 || len(ds) != 1 {
		t.Errorf("stored %d baskets and %d documents, want 1 and 1", len(bs), len(ds))
	}
}

// testMalformedInput: user ids are validated, invalid UTF-8 and NUL bytes
// anywhere in a request give the same answer on every backend (ErrInvalid,
// nothing stored), and the denial of such a request is still audited (issue
// 8: PostgreSQL refused the audit row and the error was dropped).
func (f *fixture) testMalformedInput(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	for _, user := range []string{"bad\xffuser", "nul\x00user", "new\nline", "esc\x1b[31m", strings.Repeat("u", 257), " "} {
		_, err := e.eng.As(docex.UserContext{UserID: user, TenantID: "acme", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
		wantErr(t, err, docex.ErrInvalidID, docex.ErrInvalid)
		_, err = e.eng.Provisioner(user).Create(bg, "acme2", "")
		wantErr(t, err, docex.ErrInvalidID, docex.ErrInvalid)
	}
	if _, err := e.eng.Provisioner("").Get(bg, "acme2"); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("a provisioner with an invalid actor created a tenant: %v", err)
	}
	for _, ok := range []string{"alice@example.com", "CN=Alice,O=Acme", "用户", strings.Repeat("u", 256)} {
		_, err := e.eng.As(docex.UserContext{UserID: ok, TenantID: "acme", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
		must(t, err)
	}
	_, err := e.eng.As(docex.UserContext{UserID: "u", TenantID: "\xffacme\x00", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrInvalidID)
	sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 100})
	must(t, err)
	denied := 0
	for _, a := range sys {
		if a.Operation == "basket.list" && a.Outcome != docex.OutcomeOK {
			denied++
			if !utf8.ValidString(a.UserID+a.TenantID+a.Error) || strings.ContainsRune(a.UserID+a.TenantID, 0) {
				t.Fatalf("audit entry not sanitised: %+q", a)
			}
		}
	}
	if denied != 7 {
		t.Fatalf("%d denials of malformed requests in the system audit, want 7: %+v", denied, sys)
	}

	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	d := e.add(s, b.ID, "x", "x", nil)
	for _, v := range []string{"bad\xffvalue", "nul\x00value"} {
		meta := map[string]docex.Value{"k": docex.String(v)}
		_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "y", Content: strings.NewReader("y"), Metadata: meta})
		wantErr(t, err, docex.ErrInvalid)
		_, err = s.SetMetadata(bg, d.ID, meta)
		wantErr(t, err, docex.ErrInvalid)
		_, _, err = s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "k", Value: docex.String(v)}}, docex.Page{})
		wantErr(t, err, docex.ErrInvalid)
	}
	for _, k := range []string{"bad\xffkey", "nul\x00key"} {
		_, err = s.SetMetadata(bg, d.ID, map[string]docex.Value{k: docex.String("v")})
		wantErr(t, err, docex.ErrInvalid)
	}
	_, err = s.CreateBasket(bg, "bad\xffname")
	wantErr(t, err, docex.ErrInvalid)

	// Content types: a media type, printable ASCII, bounded; stored in
	// canonical form (issue 8: escape sequences, 100 KB and invalid UTF-8
	// were accepted).
	for _, ct := range []string{"\x1b[31mtext/plain", "text/plain\nX-Forged: 1", strings.Repeat("a", 100<<10), "text/pl\xffain", "notamediatype", "text/", "/plain", "text/plain; charset", "texte/plaîn"} {
		_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "ct", Content: strings.NewReader("ct"), ContentType: ct})
		wantErr(t, err, docex.ErrInvalid)
		_, err = s.UpdateContent(bg, d.ID, strings.NewReader("ct"), ct)
		wantErr(t, err, docex.ErrInvalid)
	}
	a, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "ct", Content: strings.NewReader("ct"), ContentType: "Text/Plain; Charset=utf-8"})
	must(t, err)
	if a.Document.ContentType != "text/plain; charset=utf-8" {
		t.Fatalf("content type stored as %q", a.Document.ContentType)
	}
	must(t, s.DeleteDocument(bg, a.Document.ID))
	got, err := s.Document(bg, d.ID)
	must(t, err)
	if len(got.Metadata) != 0 {
		t.Fatalf("malformed metadata stored: %v", got.Metadata)
	}
	if bs, err := s.Baskets(bg, docex.Page{}); err != nil || len(bs) != 1 {
		t.Fatalf("baskets %v %v", bs, err)
	}

	// Malformed ids are invalid input, never "not found" (and never reach
	// a backend: invalid UTF-8 in an id made PostgreSQL fail).
	for _, id := range []string{"nope", "bad\xffid", "nul\x00", strings.ToUpper(d.ID), "{" + d.ID + "}", "urn:uuid:" + d.ID, strings.ReplaceAll(d.ID, "-", "")} {
		_, err = s.Document(bg, id)
		wantErr(t, err, docex.ErrInvalidID)
		_, _, err = s.OpenContent(bg, id)
		wantErr(t, err, docex.ErrInvalidID)
		_, err = s.SetMetadata(bg, id, map[string]docex.Value{"k": docex.String("v")})
		wantErr(t, err, docex.ErrInvalidID)
		wantErr(t, s.DeleteDocument(bg, id), docex.ErrInvalidID)
		_, err = s.Basket(bg, id)
		wantErr(t, err, docex.ErrInvalidID)
		_, err = s.Documents(bg, id, docex.Page{})
		wantErr(t, err, docex.ErrInvalidID)
		_, err = s.AddDocument(bg, id, engine.NewDocument{Name: "z", Content: strings.NewReader("z")})
		wantErr(t, err, docex.ErrInvalidID)
		wantErr(t, s.DeleteBasket(bg, id, true), docex.ErrInvalidID)
	}
	_, err = s.Document(bg, uuid.NewString())
	wantErr(t, err, docex.ErrNotFound)
}

// testBasketNamesAreNotIDs: a basket name can never stand for another
// basket's id (issue 8: a writer created a basket named after another
// basket's id, and commands that accept a name or an id acted on it).
func (f *fixture) testBasketNamesAreNotIDs(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	victim := e.basket(s, "invoices")
	d := e.add(s, victim.ID, "x", "x", nil)
	for _, name := range []string{victim.ID, strings.ToUpper(victim.ID), "urn:uuid:" + victim.ID, "{" + victim.ID + "}", strings.ReplaceAll(victim.ID, "-", ""), uuid.NewString()} {
		_, err := s.CreateBasket(bg, name)
		wantErr(t, err, docex.ErrInvalid)
	}
	for _, ok := range []string{"2024-01-invoices", victim.ID + "-copy", "invoices " + victim.ID} {
		e.basket(s, ok)
	}
	for _, ref := range []string{victim.ID, "invoices"} {
		b, err := s.ResolveBasket(bg, ref)
		must(t, err)
		if b.ID != victim.ID {
			t.Fatalf("ResolveBasket(%q) = %s, want %s", ref, b.ID, victim.ID)
		}
	}
	_, err := s.ResolveBasket(bg, uuid.NewString())
	wantErr(t, err, docex.ErrNotFound)
	_, err = s.ResolveBasket(bg, "no such basket")
	wantErr(t, err, docex.ErrNotFound)
	if got, err := s.Document(bg, d.ID); err != nil || got.BasketID != victim.ID {
		t.Fatalf("%v %v", got, err)
	}
}

// testVerify: docex verify reads back every stored object once, of every
// tenant or one, suspended ones too, and is audited.
func (f *fixture) testVerify(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("beta")
	s := e.as("acme", "writer")
	b1, b2 := e.basket(s, "b1"), e.basket(s, "b2")
	e.add(s, b1.ID, "x", "shared", nil)
	e.add(s, b2.ID, "x", "shared", nil) // same content: one object
	e.add(s, b1.ID, "y", "other", nil)
	p := e.eng.Provisioner("ops")
	must(t, p.Suspend(bg, "acme"))
	rep, err := p.Verify(bg, "")
	must(t, err)
	if rep.Objects != 2 || rep.Bytes != int64(len("shared")+len("other")) || len(rep.Damaged) != 0 || len(rep.Tenants) != 2 {
		t.Fatalf("verify all: %+v", rep)
	}
	rep, err = p.Verify(bg, "beta")
	must(t, err)
	if rep.Objects != 0 || len(rep.Tenants) != 1 {
		t.Fatalf("verify beta: %+v", rep)
	}
	_, err = p.Verify(bg, "nope")
	wantErr(t, err, docex.ErrTenantNotFound)
	_, err = p.Verify(bg, "system")
	wantErr(t, err, docex.ErrBootstrapTenant)
	sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 10})
	must(t, err)
	if !hasAudit(sys, "system.verify", docex.OutcomeOK) {
		t.Fatalf("verify not audited: %+v", sys)
	}
}

// testDocumentsByName: the driver pages through a basket's documents of
// one name (the plugin host's lookup by name uses it).
func (f *fixture) testDocumentsByName(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	b := e.basket(s, "b")
	other := e.basket(s, "other")
	first := e.add(s, b.ID, "report.pdf", "one", map[string]docex.Value{"k": docex.String("v")})
	e.add(s, b.ID, "notes.txt", "two", nil)
	second := e.add(s, b.ID, "report.pdf", "three", nil)
	e.add(s, other.ID, "report.pdf", "four", nil)
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	got, err := st.DocumentsByName(bg, b.ID, "report.pdf", docex.Page{})
	must(t, err)
	if len(got) != 2 || got[0].ID != first.ID || got[1].ID != second.ID || got[0].Metadata["k"] != docex.String("v") {
		t.Fatalf("DocumentsByName = %+v", got)
	}
	got, err = st.DocumentsByName(bg, b.ID, "report.pdf", docex.Page{Limit: 1, Offset: 1})
	must(t, err)
	if len(got) != 1 || got[0].ID != second.ID {
		t.Fatalf("second page = %+v", got)
	}
	got, err = st.DocumentsByName(bg, b.ID, "absent", docex.Page{})
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Fatalf("no match = %#v, want an empty list", got)
	}
}

// testStaleStores: a store opened before its tenant was suspended, or
// deleted and provisioned again, takes no more writes (issue 8: on
// PostgreSQL such a store wrote a basket and an audit entry into the new
// tenant). A store opened while the tenant is suspended (the operator's
// sweep) keeps working.
func (f *fixture) testStaleStores(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("beta")
	p := e.eng.Provisioner("ops")
	insert := func(st driver.TenantStore, name string) error {
		return st.Write(bg, func(tx driver.Tx) error {
			return tx.InsertBasket(bg, docex.Basket{ID: uuid.NewString(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)})
		})
	}
	stale, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer stale.Close()
	must(t, insert(stale, "before"))
	must(t, p.Delete(bg, "acme"))
	e.tenant("acme")
	// The refusals say what the gate says, in the same words on every
	// backend: users see them (PostgreSQL's began "postgres: ", and a
	// job waiting for its suspended tenant, or a pipeline run --wait
	// stopped by the suspension, said so).
	err = insert(stale, "into the new tenant")
	wantErr(t, err, docex.ErrTenantUnknown)
	if want := `tenant "acme" was deleted since the store was opened`; err.Error() != want {
		t.Errorf("write through a store of a deleted tenant: %q, want %q", err, want)
	}
	// Its reads are refused the same way: they do not return the old
	// incarnation's baskets (SQLite's did), nor the new one's.
	bs, err := stale.Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrTenantUnknown)
	if want := `tenant "acme" was deleted since the store was opened`; err.Error() != want {
		t.Errorf("read through a store of a deleted tenant: %q (%+v), want %q", err, bs, want)
	}
	s := e.as("acme", "admin")
	if bs, err := s.Baskets(bg, docex.Page{}); err != nil || len(bs) != 0 {
		t.Fatalf("new incarnation of acme has baskets %+v (%v)", bs, err)
	}

	active, err := e.be.OpenTenant(bg, "beta")
	must(t, err)
	defer active.Close()
	must(t, p.Suspend(bg, "beta"))
	err = insert(active, "after suspension")
	wantErr(t, err, docex.ErrTenantSuspended)
	if want := `tenant "beta" is suspended`; err.Error() != want {
		t.Errorf("write through a store of a suspended tenant: %q, want %q", err, want)
	}
	bs, err = active.Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrTenantSuspended)
	if want := `tenant "beta" is suspended`; err.Error() != want {
		t.Errorf("read through a store of a suspended tenant: %q (%+v), want %q", err, bs, want)
	}
	operator, err := e.be.OpenTenant(bg, "beta")
	must(t, err)
	defer operator.Close()
	must(t, insert(operator, "operator while suspended"))
	if bs, err := operator.Baskets(bg, docex.Page{}); err != nil || len(bs) != 1 {
		t.Fatalf("read through a store opened while suspended: %+v (%v), want 1 basket", bs, err)
	}
	_, err = p.Sweep(bg, engine.SweepOptions{Grace: time.Hour})
	must(t, err)
	must(t, p.Resume(bg, "beta"))
	must(t, insert(active, "after resume"))
	if bs, err := active.Baskets(bg, docex.Page{}); err != nil || len(bs) != 2 {
		t.Fatalf("read after resume: %+v (%v), want 2 baskets", bs, err)
	}
}

// testDeletedUnderOpenStore: a store opened before its tenant was
// deleted (and not created again) refuses every write and every read
// (its plugin store's too) with the refusal of a store whose tenant was
// deleted and created again (testStaleStores): docex.ErrTenantUnknown,
// never docex.ErrCorrupt (on PostgreSQL the dropped schema read as a
// damaged one), "unable to open database file" (SQLite: the file is
// gone), an empty result or a success (SQLite's reads returned what the
// store held). The store of another tenant, open at the same time, is
// untouched.
func (f *fixture) testDeletedUnderOpenStore(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("beta")
	a, b := e.as("acme", "admin"), e.as("beta", "admin")
	ab, bb := e.basket(a, "b"), e.basket(b, "b")
	ad, bd := e.add(a, ab.ID, "a.txt", "acme text", nil), e.add(b, bb.ID, "b.txt", "beta text", nil)
	stale, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer stale.Close()
	other, err := e.be.OpenTenant(bg, "beta")
	must(t, err)
	defer other.Close()
	// Every operation below runs once before the deletion: a
	// connection or statement it prepares is then reused.
	// A read that returns nil must have found docID: fail when it did
	// not (an empty result is not a refusal).
	found := func(ok bool, err error) error {
		if err == nil && !ok {
			return fmt.Errorf("the document is missing from the result")
		}
		return err
	}
	ops := func(st driver.TenantStore, basketID, docID, checksum string) map[string]error {
		out := map[string]error{}
		d, err := st.Document(bg, docID)
		out["document"] = found(d.ID == docID, err)
		ds, err := st.Documents(bg, basketID, docex.Page{})
		out["documents"] = found(len(ds) == 1 && ds[0].ID == docID, err)
		bs, err := st.Baskets(bg, docex.Page{})
		out["baskets"] = found(slices.ContainsFunc(bs, func(b docex.Basket) bool { return b.ID == basketID }), err)
		_, out["job states"] = st.JobStates(bg, []string{unknownID})
		_, out["jobs"] = st.JobsByID(bg, []string{unknownID})
		_, out["audit"] = st.Audit(bg, docex.Page{})
		_, out["plugins"] = st.Plugins().Plugins(bg)
		if f.storage == engine.ContentDatabase {
			r, err := st.OpenContent(bg, checksum)
			if err == nil {
				r.Close()
			}
			out["content"] = err
		}
		out["insert"] = st.Write(bg, func(tx driver.Tx) error {
			return tx.InsertBasket(bg, docex.Basket{ID: uuid.NewString(), Name: "n-" + uuid.NewString(), CreatedAt: time.Now().UTC().Truncate(time.Microsecond)})
		})
		return out
	}
	for op, err := range ops(stale, ab.ID, ad.ID, ad.Checksum) {
		if err != nil {
			t.Fatalf("%s before the deletion: %v", op, err)
		}
	}
	must(t, e.eng.Provisioner("ops").Delete(bg, "acme"))
	for op, err := range ops(stale, ab.ID, ad.ID, ad.Checksum) {
		if !errors.Is(err, docex.ErrTenantUnknown) || errors.Is(err, docex.ErrCorrupt) {
			t.Errorf("%s through the store of a deleted tenant: %v (code %s), want %s", op, err, docex.Code(err), docex.ErrTenantUnknown.Code())
		} else if want := `tenant "acme" was deleted since the store was opened`; err.Error() != want {
			t.Errorf("%s through the store of a deleted tenant: %q, want %q", op, err, want)
		}
	}
	for op, err := range ops(other, bb.ID, bd.ID, bd.Checksum) {
		if err != nil {
			t.Errorf("%s through the store of another tenant: %v", op, err)
		}
	}
	if got, err := other.Document(bg, bd.ID); err != nil || got.ID != bd.ID {
		t.Errorf("beta's document after acme's deletion: %+v, %v", got, err)
	}
}

// testSuspendIsAWriteBarrier: when Suspend returns, no write of the tenant
// can commit any more, including writes that were in flight (they commit
// before Suspend returns, or fail). Writers run flat out while the tenant
// is suspended; the basket count read right after Suspend returns must be
// the final one.
func (f *fixture) testSuspendIsAWriteBarrier(t *testing.T) {
	e := f.env(t)
	for round := range 3 {
		id := fmt.Sprintf("t%d", round)
		e.tenant(id)
		s := e.as(id, "writer")
		var wg sync.WaitGroup
		var started sync.WaitGroup
		for w := range 6 {
			started.Add(1)
			wg.Go(func() {
				first := true
				for n := 0; ; n++ {
					_, err := s.CreateBasket(bg, fmt.Sprintf("w%d-%d", w, n))
					if first {
						started.Done()
						first = false
					}
					if err != nil {
						if !errors.Is(err, docex.ErrTenantSuspended) {
							t.Errorf("writer: %v", err)
						}
						return
					}
				}
			})
		}
		started.Wait()
		must(t, e.eng.Provisioner("ops").Suspend(bg, id))
		st, err := e.be.OpenTenant(bg, id)
		must(t, err)
		atSuspend, err := st.Baskets(bg, docex.Page{Limit: docex.MaxPageLimit})
		must(t, err)
		wg.Wait()
		final, err := st.Baskets(bg, docex.Page{Limit: docex.MaxPageLimit})
		must(t, err)
		st.Close()
		if len(final) != len(atSuspend) {
			t.Fatalf("round %d: %d baskets when Suspend returned, %d after the writers stopped: writes committed after the suspension", round, len(atSuspend), len(final))
		}
	}
}

func (f *fixture) testAudit(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "a")
	d := e.add(s, b.ID, "x", "x", nil)
	_, err := s.SetMetadata(bg, d.ID, map[string]docex.Value{"k": docex.Number(1)})
	must(t, err)
	must(t, s.DeleteMetadata(bg, d.ID, "k"))
	_, err = s.UpdateContent(bg, d.ID, strings.NewReader("y"), "")
	must(t, err)
	must(t, s.DeleteDocument(bg, d.ID))
	wantErr(t, s.DeleteDocument(bg, d.ID), docex.ErrNotFound)
	must(t, s.DeleteBasket(bg, b.ID, false))
	log, err := s.Audit(bg, docex.Page{Limit: 100})
	must(t, err)
	want := []string{"basket.delete/ok", "document.delete/error", "document.delete/ok", "document.update/ok", "metadata.delete/ok", "metadata.set/ok", "document.add/ok", "basket.create/ok"}
	var got []string
	for _, a := range log {
		got = append(got, a.Operation+"/"+a.Outcome)
		if a.UserID != "u-acme" || a.TenantID != "acme" || len(a.Roles) != 1 || a.Time.IsZero() || a.ID == "" {
			t.Fatalf("entry %+v", a)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("audit:\n got %v\nwant %v", got, want)
	}
	if log[1].Error == "" {
		t.Fatal("failed operation has no error recorded")
	}
	sys, err := e.be.SystemAudit(bg, docex.Page{})
	must(t, err)
	if !hasAudit(sys, "tenant.create", docex.OutcomeOK) {
		t.Fatal("tenant.create not in the system audit")
	}
	// Reading the system log is itself audited (issue 8), before the read.
	read, err := e.eng.Provisioner("auditor").SystemAudit(bg, docex.Page{Limit: 5})
	must(t, err)
	if len(read) == 0 || read[0].Operation != "system.audit.list" || read[0].UserID != "auditor" {
		t.Fatalf("system audit read not recorded first: %+v", read)
	}
	_, err = e.eng.Provisioner("bad\nactor").SystemAudit(bg, docex.Page{})
	wantErr(t, err, docex.ErrInvalidID)
}

func (f *fixture) testCrossTenant(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("evil")
	a := e.as("acme", "admin")
	ev := e.as("evil", "admin")
	ab := e.basket(a, "secret")
	ad := e.add(a, ab.ID, "s.txt", "acme secret", map[string]docex.Value{"k": docex.String("v")})
	eb := e.basket(ev, "secret") // same name, other tenant: fine
	_, err := ev.Basket(bg, ab.ID)
	wantErr(t, err, docex.ErrNotFound)
	_, err = ev.Document(bg, ad.ID)
	wantErr(t, err, docex.ErrNotFound)
	_, err = ev.ReadContent(bg, ad.ID)
	wantErr(t, err, docex.ErrNotFound)
	_, err = ev.UpdateContent(bg, ad.ID, strings.NewReader("pwned"), "")
	wantErr(t, err, docex.ErrNotFound)
	_, err = ev.SetMetadata(bg, ad.ID, map[string]docex.Value{"k": docex.String("pwned")})
	wantErr(t, err, docex.ErrNotFound)
	wantErr(t, ev.DeleteMetadata(bg, ad.ID, "k"), docex.ErrNotFound)
	wantErr(t, ev.DeleteDocument(bg, ad.ID), docex.ErrNotFound)
	wantErr(t, ev.DeleteBasket(bg, ab.ID, true), docex.ErrNotFound)
	_, err = ev.Documents(bg, ab.ID, docex.Page{})
	wantErr(t, err, docex.ErrNotFound)
	_, _, err = ev.FindDocuments(bg, ab.ID, []docex.MetaFilter{{Key: "k", Value: docex.String("v")}}, docex.Page{})
	wantErr(t, err, docex.ErrNotFound)
	_, err = ev.AddDocument(bg, ab.ID, engine.NewDocument{Name: "x", Content: strings.NewReader("x")})
	wantErr(t, err, docex.ErrNotFound)
	// The same content in the other tenant is not deduplicated against acme.
	dup, err := ev.AddDocument(bg, eb.ID, engine.NewDocument{Name: "guess", Content: strings.NewReader("acme secret")})
	must(t, err)
	if dup.Duplicate || dup.Document.ID == ad.ID {
		t.Fatal("cross-tenant dedup leaked the existence of content")
	}
	got, err := a.Document(bg, ad.ID)
	must(t, err)
	if got.Metadata["k"] != docex.String("v") {
		t.Fatal("acme's document was changed by another tenant")
	}
	c, err := a.ReadContent(bg, ad.ID)
	must(t, err)
	if string(c) != "acme secret" {
		t.Fatal("acme's content was changed")
	}
}

// testRandomInterleaving runs random operations of many tenants from many
// goroutines and checks that no read ever returns another tenant's data.
func (f *fixture) testRandomInterleaving(t *testing.T) {
	e := f.env(t)
	const tenants, workers, ops = 6, 8, 60
	ids := make([]string, tenants)
	baskets := make([]string, tenants)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%d", i)
		e.tenant(ids[i])
		baskets[i] = e.basket(e.as(ids[i], "admin"), "shared-name").ID
	}
	var mu sync.Mutex
	docsOf := make([][]string, tenants) // ids of documents added per tenant
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range ops {
				ti := r.IntN(tenants)
				tid := ids[ti]
				s := e.as(tid, "admin")
				switch r.IntN(5) {
				case 0, 1:
					body := fmt.Sprintf("tenant=%s worker=%d op=%d", tid, w, i)
					a, err := s.AddDocument(bg, baskets[ti], engine.NewDocument{Name: "n", Content: strings.NewReader(body), Metadata: map[string]docex.Value{"tenant": docex.String(tid)}})
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					docsOf[ti] = append(docsOf[ti], a.Document.ID)
					mu.Unlock()
				case 2:
					docs, err := s.Documents(bg, baskets[ti], docex.Page{Limit: 1000})
					if err != nil {
						errc <- err
						return
					}
					for _, d := range docs {
						if d.Metadata["tenant"] != docex.String(tid) || d.BasketID != baskets[ti] {
							errc <- fmt.Errorf("tenant %s listed a foreign document %+v", tid, d)
							return
						}
					}
				case 3:
					docs, _, err := s.FindDocuments(bg, baskets[ti], []docex.MetaFilter{{Key: "tenant", Value: docex.String(tid)}}, docex.Page{Limit: 1000})
					if err != nil {
						errc <- err
						return
					}
					for _, d := range docs {
						c, err := s.ReadContent(bg, d.ID)
						if err != nil {
							errc <- err
							return
						}
						if !strings.HasPrefix(string(c), "tenant="+tid+" ") {
							errc <- fmt.Errorf("tenant %s read foreign content %q", tid, c)
							return
						}
					}
				case 4:
					// Probe a document of another tenant: must be not found.
					oi := r.IntN(tenants)
					mu.Lock()
					var probe string
					if n := len(docsOf[oi]); n > 0 && oi != ti {
						probe = docsOf[oi][r.IntN(n)]
					}
					mu.Unlock()
					if probe == "" {
						continue
					}
					if d, err := s.Document(bg, probe); !errors.Is(err, docex.ErrNotFound) {
						errc <- fmt.Errorf("tenant %s got document %s of %s: %+v, %v", tid, probe, ids[oi], d, err)
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
	for ti, tid := range ids {
		b, err := e.as(tid, "reader").Basket(bg, baskets[ti])
		must(t, err)
		if b.DocumentCount != int64(len(docsOf[ti])) {
			t.Fatalf("tenant %s has %d documents, added %d", tid, b.DocumentCount, len(docsOf[ti]))
		}
	}
}

func (f *fixture) testLocalMode(t *testing.T) {
	be, cfg := f.config(t, false)
	_, err := engine.Bootstrap(bg, be, cfg)
	must(t, err)
	eng, err := engine.New(bg, be, cfg)
	must(t, err)
	_, err = eng.Provisioner("").Create(bg, "acme", "")
	wantErr(t, err, docex.ErrMultiTenancyOff)
	_, err = eng.As(docex.UserContext{Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrUserRequired)
	_, err = eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrInvalid)
	s := eng.As(docex.UserContext{UserID: "me", Roles: []string{"admin"}})
	b, err := s.CreateBasket(bg, "local")
	must(t, err)
	a, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "l.txt", Content: strings.NewReader("local"), Metadata: map[string]docex.Value{"k": docex.Bool(true)}})
	must(t, err)
	docs, total, err := s.FindDocuments(bg, b.ID, []docex.MetaFilter{{Key: "k", Value: docex.Bool(true)}}, docex.Page{})
	must(t, err)
	if total != 1 || docs[0].ID != a.Document.ID {
		t.Fatal("local find")
	}
	c, err := s.ReadContent(bg, a.Document.ID)
	must(t, err)
	if string(c) != "local" {
		t.Fatal("local content")
	}
	log, err := s.Audit(bg, docex.Page{})
	must(t, err)
	if len(log) == 0 || log[0].UserID != "me" {
		t.Fatalf("local audit = %+v", log)
	}
}

func (f *fixture) testReopen(t *testing.T) {
	if f.h.Reopen == nil {
		t.Skip("harness has no Reopen")
	}
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	d := e.add(s, b.ID, "x", "persist me", map[string]docex.Value{"k": docex.Number(7)})
	e.eng.Close()
	must(t, e.be.Close())
	be2 := f.h.Reopen(t, e.be)
	eng, err := engine.New(bg, be2, e.cfg)
	must(t, err)
	s2 := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"reader"}})
	got, err := s2.Document(bg, d.ID)
	must(t, err)
	if got.Metadata["k"] != docex.Number(7) {
		t.Fatal("metadata lost on reopen")
	}
	c, err := s2.ReadContent(bg, d.ID)
	must(t, err)
	if string(c) != "persist me" {
		t.Fatal("content lost on reopen")
	}
	// The bootstrap tenant stays refused after a reopen.
	_, err = eng.As(docex.UserContext{UserID: "u", TenantID: "system", Roles: []string{"admin"}}).Baskets(bg, docex.Page{})
	wantErr(t, err, docex.ErrBootstrapTenant)
}

func (f *fixture) testSweep(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("gone")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	keep := e.add(s, b.ID, "keep", "keep me", nil)
	drop := e.add(s, b.ID, "drop", "drop me", nil)
	g := e.as("gone", "admin")
	gb := e.basket(g, "b")
	e.add(g, gb.ID, "x", "tenant to be deleted", nil)
	must(t, s.DeleteDocument(bg, drop.ID))
	must(t, e.eng.Provisioner("").Delete(bg, "gone"))
	// A quiet system: grace 0 is allowed.
	rep, err := e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
	must(t, err)
	c, err := s.ReadContent(bg, keep.ID)
	must(t, err)
	if string(c) != "keep me" {
		t.Fatal("sweep removed referenced content")
	}
	if rep.ContentFiles != 0 {
		t.Fatalf("content should have been released at delete time, sweep found %d", rep.ContentFiles)
	}
	// Sweeping twice is a no-op.
	rep, err = e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
	must(t, err)
	if len(rep.Storage)+len(rep.ContentDirs)+rep.ContentFiles != 0 {
		t.Fatalf("second sweep removed %+v", rep)
	}
	if _, err := s.ReadContent(bg, keep.ID); err != nil {
		t.Fatal(err)
	}
	if f.storage == engine.ContentFilesystem {
		f.testSweepLeavesForeignFiles(t, e, s, keep)
	}
}

// testSweepDryRun: for each kind of leftover the sweep removes from a
// content directory, a dry run reports it exactly as the sweep then does
// and changes nothing: every file and directory under the content
// directory stays as it was, byte for byte, and the system audit log
// records a dry run (system.sweep.dry_run), never a removal. The real
// sweep then reports the same and removes the leftover. With database
// content there is nothing of the kind to leave: both report nothing.
func (f *fixture) testSweepDryRun(t *testing.T) {
	old := time.Now().Add(-48 * time.Hour)
	// file writes a file (and its directories), old enough for any grace.
	file := func(t *testing.T, p, content string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.WriteFile(p, []byte(content), 0o600))
		must(t, os.Chtimes(p, old, old))
	}
	for _, c := range []struct {
		name string
		// leave makes the leftover in tenant acme's content directory
		// (store; tenants is the directory of all tenants) and returns
		// the paths the sweep removes.
		leave func(t *testing.T, e *env, s *engine.Session, tenants, store string) []string
		want  engine.SweepReport // the counts; ContentDirs are the paths leave returns
	}{
		{"nothing", func(*testing.T, *env, *engine.Session, string, string) []string { return nil }, engine.SweepReport{}},
		{"content of a deleted incarnation", func(t *testing.T, e *env, s *engine.Session, tenants, store string) []string {
			dir := filepath.Join(tenants, "acme", uuid.NewString())
			file(t, filepath.Join(dir, sum("gone")[:2], sum("gone")), "gone")
			must(t, os.Chtimes(dir, old, old))
			return []string{dir}
		}, engine.SweepReport{ContentDirs: []string{"?"}}},
		{"unreferenced content file", func(t *testing.T, e *env, s *engine.Session, tenants, store string) []string {
			p := filepath.Join(store, sum("orphan")[:2], sum("orphan"))
			file(t, p, "orphan")
			return []string{p}
		}, engine.SweepReport{ContentFiles: 1}},
		{"staging leftover", func(t *testing.T, e *env, s *engine.Session, tenants, store string) []string {
			p := filepath.Join(store, "tmp", "stage-1234")
			file(t, p, "half staged")
			return []string{p}
		}, engine.SweepReport{ContentFiles: 1}},
		{"unreferenced pack", func(t *testing.T, e *env, s *engine.Session, tenants, store string) []string {
			p := filepath.Join(store, "packs", uuid.NewString()+".pack")
			file(t, p, "a pack whose documents never committed")
			return []string{p}
		}, engine.SweepReport{Packs: 1}},
		{"pack less than half referenced", func(t *testing.T, e *env, s *engine.Session, tenants, store string) []string {
			b := e.basket(s, "packed")
			had, err := filepath.Glob(filepath.Join(store, "packs", "*.pack"))
			must(t, err)
			var docs []engine.NewDocument
			for i := range 4 {
				docs = append(docs, engine.NewDocument{Name: fmt.Sprint("d", i), Content: strings.NewReader(fmt.Sprint("packed content ", i))})
			}
			added, err := s.AddDocuments(bg, b.ID, docs)
			must(t, err)
			for _, a := range added[1:] {
				must(t, s.DeleteDocument(bg, a.Document.ID))
			}
			all, err := filepath.Glob(filepath.Join(store, "packs", "*.pack"))
			must(t, err)
			var packs []string
			for _, p := range all {
				if !slices.Contains(had, p) {
					packs = append(packs, p)
				}
			}
			if len(packs) != 1 {
				t.Fatalf("new packs %v, want the batch's one", packs)
			}
			must(t, os.Chtimes(packs[0], old, old))
			return packs
		}, engine.SweepReport{Packs: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if f.storage != engine.ContentFilesystem && c.name != "nothing" {
				t.Skip("content in the database leaves nothing of the kind")
			}
			e := f.env(t)
			e.tenant("acme")
			s := e.as("acme", "admin")
			keep := e.add(s, e.basket(s, "b").ID, "keep", "keep me", nil)
			acme, err := e.eng.Provisioner("").Get(bg, "acme")
			must(t, err)
			tenants := filepath.Join(e.cfg.ContentDir, "tenants")
			gone := c.leave(t, e, s, tenants, filepath.Join(tenants, "acme", acme.Incarnation))
			want := c.want
			if len(want.ContentDirs) > 0 {
				want.ContentDirs = gone
			}
			p := e.eng.Provisioner("ops")

			before := snapshot(t, e.cfg.ContentDir)
			dry, err := p.Sweep(bg, engine.SweepOptions{DryRun: true})
			must(t, err)
			if !dry.DryRun || !sameSweep(dry, want) {
				t.Fatalf("dry run reported %+v, want %+v", dry, want)
			}
			if after := snapshot(t, e.cfg.ContentDir); !maps.Equal(after, before) {
				t.Fatalf("the dry run changed the content directory:\nbefore %v\nafter  %v", before, after)
			}
			for _, p := range gone {
				if _, err := os.Lstat(p); err != nil {
					t.Fatalf("the dry run removed %s: %v", p, err)
				}
			}
			sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 10})
			must(t, err)
			if !hasAudit(sys, "system.sweep.dry_run", docex.OutcomeOK) || hasAudit(sys, "system.sweep", docex.OutcomeOK) {
				t.Fatalf("the dry run's audit entries: %+v", sys)
			}

			real, err := p.Sweep(bg, engine.SweepOptions{})
			must(t, err)
			if real.DryRun || !sameSweep(real, dry) {
				t.Fatalf("the sweep reported %+v, the dry run %+v", real, dry)
			}
			for _, p := range gone {
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s after the sweep: %v", p, err)
				}
			}
			if c, err := s.ReadContent(bg, keep.ID); err != nil || string(c) != "keep me" {
				t.Fatalf("content after the sweep: %q, %v", c, err)
			}
			sys, err = e.be.SystemAudit(bg, docex.Page{Limit: 10})
			must(t, err)
			if !hasAudit(sys, "system.sweep", docex.OutcomeOK) {
				t.Fatalf("the sweep is not audited: %+v", sys)
			}
			// Nothing is left for another dry run.
			again, err := p.Sweep(bg, engine.SweepOptions{DryRun: true})
			must(t, err)
			if !sameSweep(again, engine.SweepReport{}) {
				t.Fatalf("dry run after the sweep: %+v", again)
			}
		})
	}
}

// testSweepContentRows: with content in the database, a sweep removes the
// content rows no document of their tenant refers to, however many (more
// than one listing page), and a dry run counts them and removes none. Rows
// that a document refers to stay, and so does a row of the same checksum
// in another tenant that a document there refers to; a row whose name is
// not a checksum is left alone. Before, a sweep did not look at database
// content at all: rows left unreferenced (by an older version's concurrent
// content updates, or by a write outside docex) stayed for good.
func (f *fixture) testSweepContentRows(t *testing.T) {
	if f.storage != engine.ContentDatabase {
		t.Skip("content rows exist with database content only")
	}
	e := f.env(t)
	e.tenant("acme")
	e.tenant("beta")
	s := e.as("acme", "admin")
	keep := e.add(s, e.basket(s, "b").ID, "keep", "keep me", nil)
	bs := e.as("beta", "admin")
	shared := e.add(bs, e.basket(bs, "b").ID, "shared", "orphan 0", nil)
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	const orphans = 300 // more than one listing page (engine releaseBatch: 256)
	must(t, st.WriteIsolated(bg, func(tx driver.Tx) error {
		for i := range orphans {
			data := fmt.Sprint("orphan ", i)
			if err := tx.PutContent(bg, sum(data), []byte(data)); err != nil {
				return err
			}
		}
		return tx.PutContent(bg, "not-a-checksum", []byte("not docex's"))
	}))
	stored := func(name string) bool {
		t.Helper()
		rc, err := st.OpenContent(bg, name)
		if errors.Is(err, docex.ErrNotFound) {
			return false
		}
		must(t, err)
		must(t, rc.Close())
		return true
	}
	p := e.eng.Provisioner("ops")
	dry, err := p.Sweep(bg, engine.SweepOptions{DryRun: true, Grace: time.Hour})
	must(t, err)
	if !dry.DryRun || !sameSweep(dry, engine.SweepReport{ContentFiles: orphans}) {
		t.Fatalf("dry run reported %+v, want %d content rows", dry, orphans)
	}
	for i := range orphans {
		if !stored(sum(fmt.Sprint("orphan ", i))) {
			t.Fatalf("the dry run removed orphan %d", i)
		}
	}
	rep, err := p.Sweep(bg, engine.SweepOptions{Grace: time.Hour})
	must(t, err)
	if rep.DryRun || !sameSweep(rep, dry) {
		t.Fatalf("the sweep reported %+v, the dry run %+v", rep, dry)
	}
	for i := range orphans {
		if stored(sum(fmt.Sprint("orphan ", i))) {
			t.Fatalf("orphan %d is still stored after the sweep", i)
		}
	}
	if !stored("not-a-checksum") {
		t.Fatal("the sweep removed a row that is not named by a checksum")
	}
	if c, err := s.ReadContent(bg, keep.ID); err != nil || string(c) != "keep me" {
		t.Fatalf("referenced content after the sweep: %q, %v", c, err)
	}
	if c, err := bs.ReadContent(bg, shared.ID); err != nil || string(c) != "orphan 0" {
		t.Fatalf("another tenant's content of an orphan's checksum after the sweep: %q, %v", c, err)
	}
	again, err := p.Sweep(bg, engine.SweepOptions{})
	must(t, err)
	if !sameSweep(again, engine.SweepReport{}) {
		t.Fatalf("second sweep: %+v", again)
	}

	// A sweep while documents of the orphans' contents are added: each
	// add keeps its content (the sweep counts a row's references under
	// the content lock the add holds), and what is left unreferenced goes.
	putOrphans := func() {
		must(t, st.WriteIsolated(bg, func(tx driver.Tx) error {
			for i := range orphans {
				data := fmt.Sprint("orphan ", i)
				if err := tx.PutContent(bg, sum(data), []byte(data)); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	putOrphans()
	b := e.basket(s, "racing")
	const adds = 60
	added := make([]docex.Document, adds)
	var wg sync.WaitGroup
	errs := make(chan error, adds+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := p.Sweep(bg, engine.SweepOptions{})
		errs <- err
	}()
	for i := range adds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 { // single adds and one-document batches take different paths
				a, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: fmt.Sprint("r", i), Content: strings.NewReader(fmt.Sprint("orphan ", i))})
				added[i] = a.Document
				errs <- err
				return
			}
			res, err := s.AddDocuments(bg, b.ID, []engine.NewDocument{{Name: fmt.Sprint("r", i), Content: strings.NewReader(fmt.Sprint("orphan ", i))}})
			if err == nil {
				added[i] = res[0].Document
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for i, d := range added {
		if c, err := s.ReadContent(bg, d.ID); err != nil || string(c) != fmt.Sprint("orphan ", i) {
			t.Fatalf("document %d added during the sweep: %q, %v", i, c, err)
		}
	}
	if _, err := p.Sweep(bg, engine.SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range orphans {
		if got, want := stored(sum(fmt.Sprint("orphan ", i))), i < adds; got != want {
			t.Fatalf("orphan %d stored %v after the sweeps, want %v", i, got, want)
		}
	}

	t.Run("single-tenant", func(t *testing.T) {
		be, cfg := f.config(t, false)
		_, err := engine.Bootstrap(bg, be, cfg)
		must(t, err)
		eng, err := engine.New(bg, be, cfg)
		must(t, err)
		s := eng.As(docex.UserContext{UserID: "me", Roles: []string{"admin"}})
		b, err := s.CreateBasket(bg, "local")
		must(t, err)
		a, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "l.txt", Content: strings.NewReader("local")})
		must(t, err)
		st, err := be.OpenTenant(bg, "")
		must(t, err)
		defer st.Close()
		must(t, st.WriteIsolated(bg, func(tx driver.Tx) error { return tx.PutContent(bg, sum("orphan"), []byte("orphan")) }))
		rep, err := eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
		must(t, err)
		if !sameSweep(rep, engine.SweepReport{ContentFiles: 1}) {
			t.Fatalf("sweep of a single-tenant system: %+v, want one content row", rep)
		}
		if _, err := st.OpenContent(bg, sum("orphan")); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("orphan after the sweep: %v", err)
		}
		if c, err := s.ReadContent(bg, a.Document.ID); err != nil || string(c) != "local" {
			t.Fatalf("content after the sweep: %q, %v", c, err)
		}
	})
}

// sameSweep reports whether two sweep reports name and count the same,
// whether dry runs or not.
func sameSweep(a, b engine.SweepReport) bool {
	return slices.Equal(sorted(a.Storage), sorted(b.Storage)) && slices.Equal(sorted(a.ContentDirs), sorted(b.ContentDirs)) &&
		a.ContentFiles == b.ContentFiles && a.Packs == b.Packs
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// snapshot describes every file and directory under root: its type,
// mode, time and, for a file, its content's checksum.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %v", info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + sum(string(b))
		}
		out[p] = desc
		return nil
	})
	must(t, err)
	return out
}

// testForceDeleteReleasesContent: deleting a basket of more documents
// than one release transaction takes (engine releaseBatch: 256) releases every
// content no other document refers to, and none that another basket's
// documents still use; the sweep after it finds nothing left.
func (f *fixture) testForceDeleteReleasesContent(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	a := e.basket(s, "a")
	b := e.basket(s, "b")
	// Above the pack threshold (64 KiB): each content is a file of its
	// own, which the sweep would find and count if it were left behind.
	pad := strings.Repeat("x", 65<<10)
	var docs []engine.NewDocument
	for i := range 300 {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("a%d", i), Content: strings.NewReader(fmt.Sprintf("only in a %d %s", i, pad))})
	}
	var shared []docex.Document
	for i := range 5 {
		content := fmt.Sprintf("in a and b %d", i)
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("s%d", i), Content: strings.NewReader(content)})
		shared = append(shared, e.add(s, b.ID, fmt.Sprintf("s%d", i), content, nil))
	}
	_, err := s.AddDocuments(bg, a.ID, docs)
	must(t, err)
	must(t, s.DeleteBasket(bg, a.ID, true))
	for i, d := range shared {
		c, err := s.ReadContent(bg, d.ID)
		must(t, err)
		if string(c) != fmt.Sprintf("in a and b %d", i) {
			t.Fatalf("shared content %d: %q", i, c)
		}
	}
	rep, err := e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
	must(t, err)
	if rep.ContentFiles != 0 {
		t.Fatalf("the basket's contents should have been released when it was deleted; the sweep found %d", rep.ContentFiles)
	}
}

// testSweepLeavesForeignFiles: a sweep removes only what the engine
// creates, named as it names things, never whatever else is found in the
// content directory (issue 8: it deleted live tenant databases of a backend
// that shared the directory).
func (f *fixture) testSweepLeavesForeignFiles(t *testing.T, e *env, s *engine.Session, keep docex.Document) {
	acme, err := e.eng.Provisioner("").Get(bg, "acme")
	must(t, err)
	tenants := filepath.Join(e.cfg.ContentDir, "tenants")
	store := filepath.Join(tenants, "acme", acme.Incarnation)
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "precious"), []byte("x"), 0o600))
	sumOf := sum("some content nobody added")
	var foreign []string
	file := func(p string) {
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.WriteFile(p, []byte("not docex's"), 0o600))
		foreign = append(foreign, p)
	}
	link := func(p, target string) {
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.Symlink(target, p))
		foreign = append(foreign, p)
	}
	file(filepath.Join(tenants, "acme", "notes.txt"))
	file(filepath.Join(tenants, "acme", "not-an-incarnation", "x"))
	file(filepath.Join(tenants, "acme", uuid.NewString()+".db"))
	file(filepath.Join(tenants, "Not_A_Tenant", uuid.NewString(), "x"))
	link(filepath.Join(tenants, "acme", uuid.NewString()), outside)
	file(filepath.Join(store, sumOf[:2], "notes.txt"))
	file(filepath.Join(store, "zz", sumOf))
	file(filepath.Join(store, sumOf))
	file(filepath.Join(store, "tmp", "other"))
	link(filepath.Join(store, sumOf[:2], sumOf), filepath.Join(outside, "precious"))
	old := time.Now().Add(-48 * time.Hour)
	for _, p := range foreign {
		os.Chtimes(p, old, old)
		os.Chtimes(filepath.Dir(p), old, old)
	}
	_, err = e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
	must(t, err)
	for _, p := range append(foreign, filepath.Join(outside, "precious")) {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("sweep removed %s, which the engine did not create: %v", p, err)
		}
	}
	c, err := s.ReadContent(bg, keep.ID)
	if err != nil || string(c) != "keep me" {
		t.Fatalf("content after sweep: %q %v", c, err)
	}
}

// testReadsAreSnapshots: a document read while its metadata changes
// returns the row and the metadata of one committed state (on PostgreSQL
// the row and the metadata were read by two statements, each seeing
// what had committed when it started).
func (f *fixture) testReadsAreSnapshots(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	a := e.as("acme", "writer")
	b := e.basket(a, "in")
	d := e.add(a, b.ID, "n.txt", "n", map[string]docex.Value{"n": docex.Number(0)})
	type state struct {
		n  int64
		at time.Time
	}
	valid := map[state]bool{{0, d.UpdatedAt}: true}
	var reads []state
	const writes = 300
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := a.Document(bg, d.ID)
			if err != nil {
				t.Error(err)
				return
			}
			reads = append(reads, state{int64(got.Metadata["n"].Num()), got.UpdatedAt})
		}
	}()
	for i := int64(1); i <= writes; i++ {
		got, err := a.SetMetadata(bg, d.ID, map[string]docex.Value{"n": docex.Number(float64(i))})
		must(t, err)
		valid[state{i, got.UpdatedAt}] = true
	}
	close(stop)
	<-done
	for _, r := range reads {
		if !valid[r] {
			t.Fatalf("read metadata n=%d with the row of updated_at %s: the two come from different commits", r.n, r.at.Format(time.RFC3339Nano))
		}
	}
	t.Logf("%d reads during %d writes", len(reads), writes)
}

// testDeleteBasketRace: a document added while its basket is deleted
// either lands first, and then a delete without force refuses (the basket
// is not empty) or a forced delete removes it and releases its content, or
// the add finds the basket gone. A delete without force never removes a
// document that was added, and a forced one never leaves its content
// behind.
func (f *fixture) testDeleteBasketRace(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	// Above the pack threshold (64 KiB): each content is a file of its
	// own, which the sweep would find if it were left behind.
	pad := strings.Repeat("x", 65<<10)
	const rounds = 80
	counts := map[string]int{}
	for i := range rounds {
		force := i%2 == 1
		b := e.basket(s, fmt.Sprintf("r%d", i))
		start := make(chan struct{})
		var wg sync.WaitGroup
		var added engine.Added
		var addErr, delErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			added, addErr = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "d", Content: strings.NewReader(fmt.Sprintf("round %d %s", i, pad))})
		}()
		go func() {
			defer wg.Done()
			<-start
			// The add stages its content before its transaction begins:
			// delays spread the delete over the add's transaction.
			time.Sleep(time.Duration(i%10) * 250 * time.Microsecond)
			delErr = s.DeleteBasket(bg, b.ID, force)
		}()
		close(start)
		wg.Wait()
		switch {
		case addErr != nil:
			if !errors.Is(addErr, docex.ErrNotFound) {
				t.Fatalf("round %d: add: %v, want the basket not found", i, addErr)
			}
			must(t, delErr)
			counts["add failed"]++
		case delErr != nil:
			if force || !errors.Is(delErr, docex.ErrBasketNotEmpty) {
				t.Fatalf("round %d: delete (force %v) after an add: %v", i, force, delErr)
			}
			c, err := s.ReadContent(bg, added.Document.ID)
			must(t, err)
			if string(c) != fmt.Sprintf("round %d %s", i, pad) {
				t.Fatalf("round %d: the document's content changed", i)
			}
			counts["delete refused"]++
		default:
			if !force {
				t.Fatalf("round %d: a delete without force removed basket %s with the document %s added to it", i, b.ID, added.Document.ID)
			}
			if _, err := s.Document(bg, added.Document.ID); !errors.Is(err, docex.ErrNotFound) {
				t.Fatalf("round %d: a forced delete left the document %s: %v", i, added.Document.ID, err)
			}
			counts["both"]++
		}
	}
	rep, err := e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{DryRun: true})
	must(t, err)
	if rep.ContentFiles != 0 || rep.Packs != 0 {
		t.Fatalf("deleted baskets left %d content files and %d packs behind", rep.ContentFiles, rep.Packs)
	}
	t.Logf("outcomes: %v", counts)
}

// testConcurrentUpdates: new contents given to one document at once each
// replace the one before them: the document ends with one of them, and
// none of the others is left stored with no document referring to it; a
// delete among them releases whichever content the document has then. On
// PostgreSQL two updates could both read the first content as the one
// they replaced, and a delete the content before an update's: the content
// the update wrote was then never released (with content in the
// database, never found by a sweep either).
func (f *fixture) testConcurrentUpdates(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	admin := e.as("acme", "admin")
	// Above the pack threshold (64 KiB): each content is a file of its
	// own, which the sweep would find if it were left behind.
	pad := strings.Repeat("x", 65<<10)
	const writers, rounds = 3, 6
	written := map[string]bool{} // checksums of every content given
	var kept []docex.Document
	for round := range rounds {
		b := e.basket(s, fmt.Sprintf("in%d", round))
		orig := fmt.Sprintf("round %d original %s", round, pad)
		d := e.add(s, b.ID, fmt.Sprintf("d%d.txt", round), orig, nil)
		written[sum(orig)] = true
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			c := fmt.Sprintf("round %d writer %d %s", round, w, pad)
			written[sum(c)] = true
			wg.Go(func() { _, errs[w] = s.UpdateContent(bg, d.ID, strings.NewReader(c), "") })
		}
		// In some rounds the document, or its basket, is deleted
		// meanwhile: its content then, whichever it is, must go too.
		deleted := round%3 != 0
		var delErr error
		switch round % 3 {
		case 1:
			wg.Go(func() { delErr = s.DeleteDocument(bg, d.ID) })
		case 2:
			wg.Go(func() { delErr = admin.DeleteBasket(bg, b.ID, true) })
		}
		wg.Wait()
		must(t, delErr)
		if !deleted {
			got, err := s.Document(bg, d.ID)
			must(t, err)
			kept = append(kept, got)
		}
		for w, err := range errs {
			if err != nil && !(deleted && errors.Is(err, docex.ErrNotFound)) {
				t.Fatalf("round %d, writer %d: %v", round, w, err)
			}
		}
	}
	// Content in the database is not swept (it commits and rolls back
	// with its references): look for each replaced one.
	for _, d := range kept {
		delete(written, d.Checksum)
	}
	if f.storage == engine.ContentDatabase {
		st, err := e.be.OpenTenant(bg, "acme")
		must(t, err)
		defer st.Close()
		for c := range written {
			if rc, err := st.OpenContent(bg, c); err == nil {
				rc.Close()
				t.Fatalf("replaced content %s is still stored, and no document refers to it", c)
			} else if !errors.Is(err, docex.ErrNotFound) {
				t.Fatal(err)
			}
		}
	}
	rep, err := e.eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{DryRun: true})
	must(t, err)
	if rep.ContentFiles != 0 || rep.Packs != 0 {
		t.Fatalf("replaced contents left behind: %d content files and %d packs no document refers to", rep.ContentFiles, rep.Packs)
	}
}

// testConcurrentSameContent: the same content added to one basket by
// several callers at once is stored once: one add adds the document, the
// others return it as a duplicate (Added.Duplicate), none fails. Batch adds
// (AddDocuments) race the same way.
func (f *fixture) testConcurrentSameContent(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	const writers, rounds = 4, 10
	for round := range rounds {
		b := e.basket(s, fmt.Sprintf("b%d", round))
		content := fmt.Sprintf("the same content, round %d", round)
		added := make([]engine.Added, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				nd := engine.NewDocument{Name: fmt.Sprintf("w%d.txt", w), Content: strings.NewReader(content)}
				if w%2 == 0 {
					added[w], errs[w] = s.AddDocument(bg, b.ID, nd)
					return
				}
				var as []engine.Added
				if as, errs[w] = s.AddDocuments(bg, b.ID, []engine.NewDocument{nd}); errs[w] == nil {
					added[w] = as[0]
				}
			})
		}
		wg.Wait()
		fresh := 0
		for w := range writers {
			if errs[w] != nil {
				t.Fatalf("round %d, writer %d: %v", round, w, errs[w])
			}
			if !added[w].Duplicate {
				fresh++
			}
			if added[w].Document.ID != added[0].Document.ID {
				t.Fatalf("round %d: writers got documents %s and %s for one content", round, added[0].Document.ID, added[w].Document.ID)
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d adds say they added the document, want 1", round, fresh)
		}
	}
}

// testLockSeesContentUpdates: a shared lock on documents
// (driver.Tx.LockDocuments) returns the checksum of each that exists, as
// a content update in flight leaves it (it waits for the update), and a
// content update waits for the lock. A step's or a run's commit relies on
// this to write nothing made from content its input no longer holds
// (engine keepInputs, Session.RunPlugin).
func (f *fixture) testLockSeesContentUpdates(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "writer")
	b := e.basket(s, "in")
	d := e.add(s, b.ID, "a.txt", "old content", nil)
	gone := e.add(s, b.ID, "b.txt", "gone", nil)
	must(t, s.DeleteDocument(bg, gone.ID))
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()

	// The lock returns the existing documents' checksums only.
	must(t, st.Write(bg, func(tx driver.Tx) error {
		sums, err := tx.LockDocuments(bg, []string{d.ID, gone.ID, d.ID}, false)
		if err == nil && (len(sums) != 1 || sums[d.ID] != d.Checksum) {
			err = fmt.Errorf("LockDocuments = %v, want only %s: %s", sums, d.ID, d.Checksum)
		}
		return err
	}))

	// An update in flight: the lock waits for it and returns the new
	// checksum.
	newSum := strings.Repeat("ab", 32)
	release, updated := holdWrite(t, st, func(tx driver.Tx) error {
		if _, err := tx.LockDocuments(bg, []string{d.ID}, true); err != nil {
			return err
		}
		return tx.UpdateContent(bg, d.ID, 11, newSum, "text/plain", time.Now().UTC())
	})
	read := make(chan error, 1)
	go func() {
		read <- st.Write(bg, func(tx driver.Tx) error {
			sums, err := tx.LockDocuments(bg, []string{d.ID}, false)
			if err == nil && sums[d.ID] != newSum {
				err = fmt.Errorf("a lock taken while an update was in flight returned checksum %q, want the update's %q", sums[d.ID], newSum)
			}
			return err
		})
	}()
	time.Sleep(20 * time.Millisecond) // the lock is requested meanwhile, or after the commit: either must see the update
	close(release)
	must(t, <-updated)
	must(t, <-read)
	// Back to the content the document has (newSum has none).
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.UpdateContent(bg, d.ID, d.Size, d.Checksum, d.ContentType, time.Now().UTC())
	}))

	// A lock held: an update waits for the lock's transaction to end.
	release, held := holdWrite(t, st, func(tx driver.Tx) error {
		_, err := tx.LockDocuments(bg, []string{d.ID}, false)
		return err
	})
	var done atomic.Bool
	upd := make(chan error, 1)
	go func() {
		_, err := s.UpdateContent(bg, d.ID, strings.NewReader("newest content"), "")
		done.Store(true)
		upd <- err
	}()
	time.Sleep(50 * time.Millisecond) // a slow machine may not have started the update: that passes, never fails wrongly
	if done.Load() {
		close(release)
		<-held
		t.Fatalf("a content update committed while a shared lock on its document was held (%v)", <-upd)
	}
	close(release)
	must(t, <-held)
	must(t, <-upd)
}

// holdWrite runs fn in a write transaction of st and returns once fn has
// returned nil, the transaction still open: it commits when release is
// closed, and its error comes on result. A failing fn fails the test.
func holdWrite(t *testing.T, st driver.TenantStore, fn func(tx driver.Tx) error) (release chan struct{}, result chan error) {
	t.Helper()
	done, release, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once // a write may run fn again
	go func() {
		result <- st.Write(bg, func(tx driver.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			once.Do(func() { close(done) })
			<-release
			return nil
		})
	}()
	select {
	case <-done:
	case err := <-result:
		t.Fatalf("the held transaction failed: %v", err)
	}
	return release, result
}

// testDocumentIDs: the tenant store is a driver.DocumentIDsReader (the
// engine's plugin lookups use it not to read the listed documents'
// metadata), and its lists are the ids of FindDocuments's and
// DocumentsByName's pages: same documents, same order, same errors.
func (f *fixture) testDocumentIDs(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	other := e.basket(s, "other")
	for i := range 7 {
		name := "same.txt"
		if i%3 == 0 {
			name = fmt.Sprintf("n%d.txt", i)
		}
		e.add(s, b.ID, name, fmt.Sprintf("doc %d", i), map[string]docex.Value{"parity": docex.Number(float64(i % 2)), "big": docex.String(strings.Repeat("x", 1000)), "i": docex.Number(float64(i))})
	}
	e.add(s, other.ID, "same.txt", "elsewhere", map[string]docex.Value{"parity": docex.Number(0)})
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	r, ok := st.(driver.DocumentIDsReader)
	if !ok {
		t.Fatal("the tenant store is not a driver.DocumentIDsReader (both of docex's are)")
	}
	idsOf := func(docs []docex.Document) []string {
		ids := []string{}
		for _, d := range docs {
			ids = append(ids, d.ID)
		}
		return ids
	}
	filters := [][]docex.MetaFilter{
		{{Key: "parity", Value: docex.Number(0)}},
		{{Key: "parity", Value: docex.Number(1)}, {Key: "i", Value: docex.Number(3)}},
		{{Key: "parity", Value: docex.Number(0)}, {Key: "parity", Value: docex.Number(1)}},
		{{Key: "absent", Value: docex.Bool(true)}},
	}
	pages := []docex.Page{{Limit: 2}, {Limit: 2, Offset: 2}, {Limit: 100}, {Limit: 3, Order: docex.OrderCreatedDesc}, {Limit: 3, Offset: 1, Order: docex.OrderName}}
	for i, fs := range filters {
		for _, p := range pages {
			docs, _, err := st.FindDocuments(bg, b.ID, fs, p)
			must(t, err)
			ids, err := r.FindDocumentIDs(bg, b.ID, fs, p)
			must(t, err)
			if want := idsOf(docs); !slices.Equal(ids, want) {
				t.Fatalf("filters %d page %+v: FindDocumentIDs %v, FindDocuments %v", i, p, ids, want)
			}
		}
	}
	for _, name := range []string{"same.txt", "n3.txt", "none.txt"} {
		for _, p := range pages[:3] {
			docs, err := st.DocumentsByName(bg, b.ID, name, p)
			must(t, err)
			ids, err := r.DocumentIDsByName(bg, b.ID, name, p)
			must(t, err)
			if want := idsOf(docs); !slices.Equal(ids, want) {
				t.Fatalf("name %s page %+v: DocumentIDsByName %v, DocumentsByName %v", name, p, ids, want)
			}
		}
	}
	_, err = r.FindDocumentIDs(bg, b.ID, nil, docex.Page{Limit: 10})
	wantErr(t, err, docex.ErrInvalid)
	_, err = r.DocumentIDsByName(bg, b.ID, "same.txt", docex.Page{Limit: -1})
	wantErr(t, err, docex.ErrInvalid)

	// driver.KeyedIDsReader (pipeline run --basket's originals), on the
	// store and in a transaction: Documents's pages as ids, each with
	// whether the document has the key.
	check := func(name string, kr driver.KeyedIDsReader) {
		t.Helper()
		for _, key := range []string{"parity", "i", "big", "absent"} {
			for _, p := range pages {
				docs, err := st.Documents(bg, b.ID, p)
				must(t, err)
				got, err := kr.DocumentIDsWithKey(bg, b.ID, p, key)
				must(t, err)
				want := []driver.KeyedID{}
				for _, d := range docs {
					_, has := d.Metadata[key]
					want = append(want, driver.KeyedID{ID: d.ID, HasKey: has})
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s key %s page %+v: DocumentIDsWithKey %v, Documents %v", name, key, p, got, want)
				}
			}
		}
		_, err := kr.DocumentIDsWithKey(bg, b.ID, docex.Page{Limit: -1}, "i")
		wantErr(t, err, docex.ErrInvalid)
	}
	// The first document loses key i, so that it tells documents apart.
	must(t, s.DeleteMetadata(bg, idsOf(mustDocs(t, st, b.ID))[0], "i"))
	kr, ok := st.(driver.KeyedIDsReader)
	if !ok {
		t.Fatal("the tenant store is not a driver.KeyedIDsReader (both of docex's are)")
	}
	check("store", kr)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		kr, ok := tx.(driver.KeyedIDsReader)
		if !ok {
			t.Fatal("the tenant store's transaction is not a driver.KeyedIDsReader (both of docex's are)")
		}
		check("tx", kr)
		return nil
	}))
}

func mustDocs(t *testing.T, st driver.TenantStore, basketID string) []docex.Document {
	t.Helper()
	docs, err := st.Documents(bg, basketID, docex.Page{Limit: 100})
	must(t, err)
	return docs
}
