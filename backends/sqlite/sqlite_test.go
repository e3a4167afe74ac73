package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
)

var bgctx = context.Background()

// rig is a backend and an engine over one data directory.
type rig struct {
	t   testing.TB
	dir string
	be  *sqlite.Backend
	eng *engine.Engine
	cfg engine.Config
}

// openRig opens (and with bootstrap, bootstraps) a backend and an engine.
// The caller may close them early with close; cleanup closes them anyway.
func openRig(t testing.TB, scfg sqlite.Config, ecfg engine.Config, bootstrap bool) *rig {
	t.Helper()
	be, err := sqlite.Open(bgctx, scfg)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	if ecfg.BootstrapTenantID == "" {
		ecfg.BootstrapTenantID = "system"
	}
	if ecfg.ContentStorage == "" {
		ecfg.ContentStorage = engine.ContentDatabase
	}
	if ecfg.ContentStorage == engine.ContentFilesystem && ecfg.ContentDir == "" {
		ecfg.ContentDir = filepath.Join(scfg.Dir, "content")
	}
	if bootstrap {
		if _, err := engine.Bootstrap(bgctx, be, ecfg); err != nil {
			be.Close()
			t.Fatalf("Bootstrap: %v", err)
		}
	}
	eng, err := engine.New(bgctx, be, ecfg)
	if err != nil {
		be.Close()
		t.Fatalf("engine.New: %v", err)
	}
	r := &rig{t: t, dir: scfg.Dir, be: be, eng: eng, cfg: ecfg}
	t.Cleanup(r.close)
	return r
}

func (r *rig) close() {
	r.eng.Close()
	if err := r.be.Close(); err != nil {
		r.t.Errorf("Backend.Close: %v", err)
	}
}

func (r *rig) tenant(id string) docex.Tenant {
	r.t.Helper()
	tn, err := r.eng.Provisioner("test").Create(bgctx, id, "")
	if err != nil {
		r.t.Fatalf("create tenant %s: %v", id, err)
	}
	return tn
}

func (r *rig) as(tenant string) *engine.Session {
	return r.eng.As(docex.UserContext{UserID: "u", TenantID: tenant, Roles: []string{"admin"}})
}

func (r *rig) tenantFile(id string) string {
	r.t.Helper()
	tn, err := r.be.Tenant(bgctx, id)
	if err != nil {
		r.t.Fatalf("Tenant(%s): %v", id, err)
	}
	return filepath.Join(r.be.Dir(), "tenants", id, tn.Incarnation+".db")
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// seed adds a basket with one document to a session and returns the
// document.
func seed(t testing.TB, s *engine.Session, basket, content string) docex.Document {
	t.Helper()
	b, err := s.CreateBasket(bgctx, basket)
	if err != nil {
		t.Fatalf("CreateBasket: %v", err)
	}
	a, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{
		Name: "doc.txt", Content: strings.NewReader(content),
		Metadata: map[string]docex.Value{"owner": docex.String(basket)},
	})
	if err != nil {
		t.Fatalf("AddDocument: %v", err)
	}
	return a.Document
}

func readAll(t testing.TB, s *engine.Session, id string) []byte {
	t.Helper()
	b, err := s.ReadContent(bgctx, id)
	if err != nil {
		t.Fatalf("ReadContent(%s): %v", id, err)
	}
	return b
}

func filesUnder(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func removeDBFiles(path string) {
	for _, s := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + s)
	}
}

// execSQL runs statements on a database file directly, outside docex.
func execSQL(t testing.TB, path string, stmts ...string) {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=rw"}
	d, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range stmts {
		if _, err := d.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func multi(t testing.TB) (sqlite.Config, engine.Config) {
	return sqlite.Config{Dir: t.TempDir()}, engine.Config{MultiTenancy: true}
}

// A registered tenant whose database file disappeared is an error on every
// access; the file is never created again.
func TestMissingTenantFileFailsClosed(t *testing.T) {
	scfg, ecfg := multi(t)
	r := openRig(t, scfg, ecfg, true)
	r.tenant("acme")
	seed(t, r.as("acme"), "b", "hello")
	path := r.tenantFile("acme")
	r.close()
	removeDBFiles(path)

	r = openRig(t, scfg, ecfg, false)
	for i := 0; i < 2; i++ {
		st, err := r.be.OpenTenant(bgctx, "acme")
		if err == nil {
			st.Close()
			t.Fatal("OpenTenant of a tenant without its file succeeded")
		}
		if _, err := r.as("acme").Baskets(bgctx, docex.Page{}); err == nil {
			t.Fatal("Baskets of a tenant without its file succeeded")
		}
		if _, err := r.as("acme").CreateBasket(bgctx, "new"); err == nil {
			t.Fatal("CreateBasket of a tenant without its file succeeded")
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tenant file was created again: %v", err)
	}
	if got := filesUnder(t, filepath.Join(r.dir, "tenants")); len(got) != 0 {
		t.Fatalf("files created under tenants/: %v", got)
	}
	// The id stays registered: provisioning it again is refused, not a
	// silent re-creation.
	if _, err := r.eng.Provisioner("test").Create(bgctx, "acme", ""); !errors.Is(err, docex.ErrTenantExists) {
		t.Fatalf("Create(acme) = %v, want ErrTenantExists", err)
	}
	// Deleting the broken tenant works and frees the id.
	if err := r.eng.Provisioner("test").Delete(bgctx, "acme"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	r.tenant("acme")
	if bs, err := r.as("acme").Baskets(bgctx, docex.Page{}); err != nil || len(bs) != 0 {
		t.Fatalf("re-provisioned tenant: %v, %v", bs, err)
	}
}

// An unregistered id never creates anything.
func TestUnknownTenantCreatesNothing(t *testing.T) {
	scfg, ecfg := multi(t)
	r := openRig(t, scfg, ecfg, true)
	before := filesUnder(t, r.dir)
	for _, id := range []string{"ghost", "acme"} {
		if _, err := r.be.OpenTenant(bgctx, id); !errors.Is(err, docex.ErrTenantNotFound) {
			t.Fatalf("OpenTenant(%s) = %v, want ErrTenantNotFound", id, err)
		}
		if _, err := r.as(id).CreateBasket(bgctx, "x"); !errors.Is(err, docex.ErrTenantUnknown) {
			t.Fatalf("CreateBasket as %s = %v, want ErrTenantUnknown", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(r.dir, "tenants", "ghost")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tenants/ghost exists: %v", err)
	}
	after := filesUnder(t, r.dir)
	for _, f := range after {
		if !slices.Contains(before, f) && !strings.HasSuffix(f, "-wal") && !strings.HasSuffix(f, "-shm") {
			t.Errorf("new file %s", f)
		}
	}
}

// Opening a directory that was never initialised creates nothing.
func TestUninitialisedDirCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	be, err := sqlite.Open(bgctx, sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if _, err := engine.New(bgctx, be, engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}); !errors.Is(err, docex.ErrNotInitialized) {
		t.Fatalf("New = %v, want ErrNotInitialized", err)
	}
	if _, err := be.OpenTenant(bgctx, "acme"); !errors.Is(err, docex.ErrNotInitialized) {
		t.Fatalf("OpenTenant = %v, want ErrNotInitialized", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data directory created: %v", err)
	}
}

// A tenant file replaced by another tenant's file is refused as corrupt.
func TestSwappedTenantFileIsCorrupt(t *testing.T) {
	scfg, ecfg := multi(t)
	r := openRig(t, scfg, ecfg, true)
	r.tenant("acme")
	r.tenant("beta")
	seed(t, r.as("acme"), "acme-basket", "acme secret")
	betaDoc := seed(t, r.as("beta"), "beta-basket", "beta secret")
	acmePath, betaPath := r.tenantFile("acme"), r.tenantFile("beta")
	r.close()

	data, err := os.ReadFile(betaPath)
	if err != nil {
		t.Fatal(err)
	}
	removeDBFiles(acmePath)
	if err := os.WriteFile(acmePath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	r = openRig(t, scfg, ecfg, false)
	if _, err := r.be.OpenTenant(bgctx, "acme"); !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("OpenTenant(acme) = %v, want ErrCorrupt", err)
	}
	if _, err := r.as("acme").Document(bgctx, betaDoc.ID); !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("Document as acme = %v, want ErrCorrupt", err)
	}
	if _, err := r.as("acme").BasketByName(bgctx, "beta-basket"); err == nil {
		t.Fatal("acme sees beta's basket")
	}
	// beta is unaffected.
	if got := readAll(t, r.as("beta"), betaDoc.ID); string(got) != "beta secret" {
		t.Fatalf("beta content %q", got)
	}
}

func TestTenantSchemaVersionMismatch(t *testing.T) {
	scfg, ecfg := multi(t)
	r := openRig(t, scfg, ecfg, true)
	r.tenant("acme")
	r.tenant("beta")
	path := r.tenantFile("acme")
	r.close()
	execSQL(t, path, `UPDATE tenant_meta SET value = '999' WHERE key = 'schema_version'`)

	r = openRig(t, scfg, ecfg, false)
	if _, err := r.be.OpenTenant(bgctx, "acme"); !errors.Is(err, docex.ErrSchemaVersion) {
		t.Fatalf("OpenTenant = %v, want ErrSchemaVersion", err)
	}
	if _, err := r.as("acme").CreateBasket(bgctx, "x"); !errors.Is(err, docex.ErrSchemaVersion) {
		t.Fatalf("CreateBasket = %v, want ErrSchemaVersion", err)
	}
	if _, err := r.as("beta").CreateBasket(bgctx, "x"); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
	// A missing version is a mismatch too.
	r.close()
	execSQL(t, path, `DELETE FROM tenant_meta WHERE key = 'schema_version'`)
	r = openRig(t, scfg, ecfg, false)
	if _, err := r.be.OpenTenant(bgctx, "acme"); !errors.Is(err, docex.ErrSchemaVersion) && !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("OpenTenant without a version = %v, want ErrSchemaVersion", err)
	}
}

func TestSystemSchemaVersionMismatch(t *testing.T) {
	for _, mt := range []bool{true, false} {
		t.Run(fmt.Sprintf("multi=%v", mt), func(t *testing.T) {
			scfg := sqlite.Config{Dir: t.TempDir()}
			ecfg := engine.Config{MultiTenancy: mt, ContentStorage: engine.ContentDatabase}
			r := openRig(t, scfg, ecfg, true)
			sys := r.be.SystemPath()
			r.close()
			execSQL(t, sys, `UPDATE docex_meta SET value = '999' WHERE key = 'schema_version'`)

			be, err := sqlite.Open(bgctx, scfg)
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			if _, err := engine.New(bgctx, be, ecfg); !errors.Is(err, docex.ErrSchemaVersion) {
				t.Fatalf("New = %v, want ErrSchemaVersion", err)
			}
			if created, err := engine.Bootstrap(bgctx, be, ecfg); !errors.Is(err, docex.ErrSchemaVersion) || created {
				t.Fatalf("Bootstrap = %v, %v; want ErrSchemaVersion", created, err)
			}
			be.Close()
			// Bootstrap did not rewrite the version.
			d, err := sql.Open("sqlite", "file:"+sys+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var v string
			if err := d.QueryRow(`SELECT value FROM docex_meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != "999" {
				t.Fatalf("schema_version = %q, %v", v, err)
			}
		})
	}
}

// LRU: many tenants, a small bound, concurrent round-robin access.
func TestLRUBoundAndIsolation(t *testing.T) {
	// Sized for -race, where a cold open costs ~10 ms: 8x more tenants
	// than the bound keeps the LRU churning on every access.
	const (
		tenants = 48
		bound   = 6
		workers = 4
		rounds  = 1
	)
	dir := t.TempDir()
	scfg := sqlite.Config{Dir: dir, MaxOpenTenants: bound, ReadConns: 2, Synchronous: "normal"}
	r := openRig(t, scfg, engine.Config{MultiTenancy: true}, true)
	ids := make([]string, tenants)
	docs := make([]string, tenants)
	start := time.Now()
	// Provision concurrently: file builds run in parallel, registration is
	// serialised by the backend.
	var wg sync.WaitGroup
	errs := make(chan error, tenants)
	sem := make(chan struct{}, 4)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%03d", i)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := r.eng.Provisioner("test").Create(bgctx, ids[i], ""); err != nil {
				errs <- err
				return
			}
			s := r.as(ids[i])
			b, err := s.CreateBasket(bgctx, "basket-"+ids[i])
			if err != nil {
				errs <- err
				return
			}
			a, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{Name: "d", Content: strings.NewReader("content of " + ids[i])})
			if err != nil {
				errs <- err
				return
			}
			docs[i] = a.Document.ID
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("provisioned %d tenants in %v", tenants, time.Since(start))
	if n := r.be.OpenTenants(); n > bound {
		t.Fatalf("%d tenants open after provisioning, bound %d", n, bound)
	}

	var maxOpen sync.Map
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for round := 0; round < rounds; round++ {
				off := rng.IntN(tenants)
				for k := 0; k < tenants; k++ {
					i := (off + k*(w+1)) % tenants
					if w%2 == 1 {
						i = (off + tenants - k) % tenants
					}
					s := r.as(ids[i])
					var err error
					switch k % 3 {
					case 0:
						var b docex.Basket
						b, err = s.BasketByName(bgctx, "basket-"+ids[i])
						if err == nil && (b.DocumentCount != 1 || b.Name != "basket-"+ids[i]) {
							err = fmt.Errorf("tenant %s: basket %+v", ids[i], b)
						}
					case 1:
						var got []byte
						got, err = s.ReadContent(bgctx, docs[i])
						if err == nil && string(got) != "content of "+ids[i] {
							err = fmt.Errorf("tenant %s reads %q", ids[i], got)
						}
					case 2:
						// Another tenant's document is not found.
						j := (i + 1) % tenants
						_, err = s.Document(bgctx, docs[j])
						if errors.Is(err, docex.ErrNotFound) {
							err = nil
						} else {
							err = fmt.Errorf("tenant %s reading %s's document: %v", ids[i], ids[j], err)
						}
					}
					if err != nil {
						errc <- err
						return
					}
					n := r.be.OpenTenants()
					if n > bound+workers {
						errc <- fmt.Errorf("%d tenant databases open, bound %d + %d in use", n, bound, workers)
						return
					}
					maxOpen.Store(w, max(n, loadInt(&maxOpen, w)))
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := r.be.OpenTenants(); n > bound {
		t.Fatalf("%d tenant databases open when idle, bound %d", n, bound)
	}
}

func loadInt(m *sync.Map, k any) int {
	v, ok := m.Load(k)
	if !ok {
		return 0
	}
	return v.(int)
}

// Local single-file mode: with multi-tenancy disabled and database content
// storage, one file holds everything and can be moved alone.
func TestLocalSingleFileIsSelfContained(t *testing.T) {
	src := t.TempDir()
	scfg := sqlite.Config{Dir: src, SystemFile: "docex.db"}
	ecfg := engine.Config{MultiTenancy: false, ContentStorage: engine.ContentDatabase}
	r := openRig(t, scfg, ecfg, true)
	s := r.eng.As(docex.UserContext{UserID: "me", Roles: []string{"admin"}})
	b, err := s.CreateBasket(bgctx, "invoices")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		data := make([]byte, 1000+rng.IntN(20000))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		a, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{
			Name: fmt.Sprintf("f%02d.bin", i), Content: bytes.NewReader(data),
			Metadata: map[string]docex.Value{"i": docex.Number(float64(i)), "even": docex.Bool(i%2 == 0)},
		})
		if err != nil {
			t.Fatal(err)
		}
		want[a.Document.ID] = data
	}
	r.close()
	if got := filesUnder(t, src); !slices.Equal(got, []string{"docex.db"}) {
		t.Fatalf("after close the data directory holds %v, want only docex.db", got)
	}

	dst := filepath.Join(t.TempDir(), "moved")
	os.MkdirAll(dst, 0o700)
	data, err := os.ReadFile(filepath.Join(src, "docex.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "docex.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(src) // the original is gone: nothing may refer to it

	r = openRig(t, sqlite.Config{Dir: dst, SystemFile: "docex.db"}, ecfg, false)
	s = r.eng.As(docex.UserContext{UserID: "me", Roles: []string{"admin"}})
	b2, err := s.BasketByName(bgctx, "invoices")
	if err != nil || b2.ID != b.ID || b2.DocumentCount != 20 {
		t.Fatalf("basket %+v, %v", b2, err)
	}
	for id, data := range want {
		if got := readAll(t, s, id); !bytes.Equal(got, data) {
			t.Fatalf("document %s differs after the move", id)
		}
	}
	found, total, err := s.FindDocuments(bgctx, b.ID, []docex.MetaFilter{{Key: "even", Value: docex.Bool(true)}}, docex.Page{})
	if err != nil || total != 10 || len(found) != 10 {
		t.Fatalf("find: %d %d %v", total, len(found), err)
	}
	// And it keeps working in its new place.
	if _, err := s.AddDocument(bgctx, b.ID, engine.NewDocument{Name: "new", Content: strings.NewReader("new")}); err != nil {
		t.Fatal(err)
	}
}

// A data directory whose path has characters that are special in URLs and
// DSNs works, and nothing is created anywhere else.
func TestDataDirWithSpecialCharacters(t *testing.T) {
	parent := t.TempDir()
	for i, name := range []string{"my data ?mode=ro&x=1#frag %41%2F 100%", "a#b?c", "%", "sp ace"} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir := filepath.Join(parent, name)
			for _, storage := range []string{engine.ContentFilesystem, engine.ContentDatabase} {
				scfg := sqlite.Config{Dir: dir}
				ecfg := engine.Config{MultiTenancy: true, ContentStorage: storage, ContentDir: filepath.Join(dir, "content "+storage+" ?#%")}
				r := openRig(t, scfg, ecfg, true)
				tenant := "acme-" + storage[:2]
				r.tenant(tenant)
				d := seed(t, r.as(tenant), "b?#% "+storage, "payload "+storage)
				r.close()
				r = openRig(t, scfg, ecfg, false)
				if got := readAll(t, r.as(tenant), d.ID); string(got) != "payload "+storage {
					t.Fatalf("content %q", got)
				}
				if _, err := os.Stat(filepath.Join(dir, "system.db")); err != nil {
					t.Fatalf("system.db not in the data directory: %v", err)
				}
				r.close()
			}
		})
	}
	entries, _ := os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	want := []string{"%", "a#b?c", "my data ?mode=ro&x=1#frag %41%2F 100%", "sp ace"}
	if !slices.Equal(names, want) {
		t.Fatalf("parent directory holds %q, want %q", names, want)
	}
}

// Two engines over two directories in one process are independent.
func TestTwoEnginesTwoDirectories(t *testing.T) {
	a := openRig(t, sqlite.Config{Dir: t.TempDir(), MaxOpenTenants: 2}, engine.Config{MultiTenancy: true}, true)
	b := openRig(t, sqlite.Config{Dir: t.TempDir(), MaxOpenTenants: 2}, engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem}, true)
	a.tenant("acme")
	b.tenant("acme")
	a.tenant("only-a")
	da := seed(t, a.as("acme"), "shared-name", "in a")
	db := seed(t, b.as("acme"), "shared-name", "in b")

	if got := readAll(t, a.as("acme"), da.ID); string(got) != "in a" {
		t.Fatalf("a reads %q", got)
	}
	if got := readAll(t, b.as("acme"), db.ID); string(got) != "in b" {
		t.Fatalf("b reads %q", got)
	}
	if _, err := a.as("acme").Document(bgctx, db.ID); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("a finds b's document: %v", err)
	}
	if _, err := b.as("acme").Document(bgctx, da.ID); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("b finds a's document: %v", err)
	}
	if _, err := b.as("only-a").Baskets(bgctx, docex.Page{}); !errors.Is(err, docex.ErrTenantUnknown) {
		t.Fatalf("b knows a's tenant: %v", err)
	}
	ta, _ := a.be.Tenant(bgctx, "acme")
	tb, _ := b.be.Tenant(bgctx, "acme")
	if ta.Incarnation == tb.Incarnation {
		t.Fatal("same incarnation in two systems")
	}
	// Closing one leaves the other working.
	a.close()
	if _, err := a.as("acme").Baskets(bgctx, docex.Page{}); err == nil {
		t.Fatal("closed engine still serves")
	}
	if bs, err := b.as("acme").Baskets(bgctx, docex.Page{}); err != nil || len(bs) != 1 {
		t.Fatalf("b after closing a: %v, %v", bs, err)
	}
	if err := b.eng.Provisioner("test").Delete(bgctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.as("acme").Baskets(bgctx, docex.Page{}); !errors.Is(err, docex.ErrTenantUnknown) {
		t.Fatalf("deleted tenant: %v", err)
	}
}

// TestSweepWithContentInTheDataDirectory: issue 8's docex gc deleting live
// tenant databases. With the content root equal to the SQLite data
// directory (a configuration docex.yaml now refuses, but an embedding
// application can still build), a sweep removes neither a tenant database
// nor anything else it did not create.
func TestSweepWithContentInTheDataDirectory(t *testing.T) {
	dir := t.TempDir()
	r := openRig(t, sqlite.Config{Dir: dir}, engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem, ContentDir: dir}, true)
	r.tenant("acme")
	d := seed(t, r.as("acme"), "b", "hello")
	old := time.Now().Add(-2 * time.Hour)
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error { return os.Chtimes(p, old, old) })
	rep, err := r.eng.Provisioner("ops").Sweep(bgctx, engine.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Storage)+len(rep.ContentDirs)+rep.ContentFiles != 0 {
		t.Fatalf("sweep removed %+v", rep)
	}
	if _, err := os.Stat(r.tenantFile("acme")); err != nil {
		t.Fatalf("tenant database: %v", err)
	}
	r.close()
	r = openRig(t, sqlite.Config{Dir: dir}, r.cfg, false)
	got, err := r.as("acme").ReadContent(bgctx, d.ID)
	if err != nil || string(got) != "hello" {
		t.Fatalf("after sweep and reopen: %q %v", got, err)
	}
}

// TestSweepDryRunTenantFiles: for each kind of tenant file the sweep
// removes (docex gc), a dry run names it in the report as the sweep then
// does and leaves it as it was; the sweep removes it. The dry run's
// audit entry is system.sweep.dry_run, never system.sweep.
func TestSweepDryRunTenantFiles(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	for _, c := range []struct {
		name string
		// leave makes the leftover files in the data directory of r
		// (tenant acme exists) and returns them.
		leave func(r *rig) []string
	}{
		{"unregistered tenant file", func(r *rig) []string {
			p := filepath.Join(filepath.Dir(r.tenantFile("acme")), uuid.NewString()+".db")
			return []string{p, p + "-wal"}
		}},
		{"file of a deleted tenant", func(r *rig) []string {
			return []string{filepath.Join(r.dir, "tenants", "gone", uuid.NewString()+".db")}
		}},
		{"staging file of a crashed create", func(r *rig) []string {
			p := filepath.Join(r.dir, "tenants", ".staging", "template-"+uuid.NewString()+".db")
			return []string{p, p + "-journal"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := openRig(t, sqlite.Config{Dir: t.TempDir()}, engine.Config{MultiTenancy: true}, true)
			r.tenant("acme")
			keep := seed(t, r.as("acme"), "b", "keep me")
			files := c.leave(r)
			before := map[string]string{}
			for _, p := range files {
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("left by a crash"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
				info, _ := os.Stat(p)
				before[p] = fmt.Sprint(info.Size(), info.ModTime())
			}
			p := r.eng.Provisioner("ops")
			dry, err := p.Sweep(bgctx, engine.SweepOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(dry.Storage)
			if !dry.DryRun || !slices.Equal(dry.Storage, slices.Sorted(maps.Keys(before))) {
				t.Fatalf("dry run reported %+v, want the files %v", dry, slices.Sorted(maps.Keys(before)))
			}
			for p, was := range before {
				info, err := os.Stat(p)
				if err != nil || fmt.Sprint(info.Size(), info.ModTime()) != was {
					t.Fatalf("%s after the dry run: %v (%v)", p, info, err)
				}
			}
			if _, err := os.Stat(filepath.Dir(files[0])); err != nil {
				t.Fatalf("the dry run removed the directory: %v", err)
			}
			audit, err := r.be.SystemAudit(bgctx, docex.Page{Limit: 5})
			if err != nil || len(audit) == 0 || audit[0].Operation != "system.sweep.dry_run" {
				t.Fatalf("audit after the dry run: %+v, %v", audit, err)
			}

			real, err := p.Sweep(bgctx, engine.SweepOptions{})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(real.Storage)
			if real.DryRun || !slices.Equal(real.Storage, dry.Storage) || real.ContentFiles != dry.ContentFiles || len(real.ContentDirs) != len(dry.ContentDirs) {
				t.Fatalf("the sweep reported %+v, the dry run %+v", real, dry)
			}
			for p := range before {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s after the sweep: %v", p, err)
				}
			}
			if got := readAll(t, r.as("acme"), keep.ID); string(got) != "keep me" {
				t.Fatalf("acme reads %q after the sweep", got)
			}
			audit, err = r.be.SystemAudit(bgctx, docex.Page{Limit: 5})
			if err != nil || len(audit) == 0 || audit[0].Operation != "system.sweep" || audit[0].Target != "storage="+fmt.Sprint(len(before))+" dirs=0 files=0 packs=0" {
				t.Fatalf("audit after the sweep: %+v, %v", audit, err)
			}
		})
	}
}

// TestAuditWriteFailureFailsTheOperation: an operation whose audit entry
// cannot be written fails and changes nothing; a denial whose entry cannot
// be written says so (issue 8: audit errors were discarded). The failure is
// real: a trigger makes SQLite refuse the audit insert.
func TestAuditWriteFailureFailsTheOperation(t *testing.T) {
	dir := t.TempDir()
	r := openRig(t, sqlite.Config{Dir: dir}, engine.Config{MultiTenancy: true}, true)
	r.tenant("acme")
	r.tenant("beta")
	breakAudit := func(path, table string) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?mode=rw")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TRIGGER fail_audit BEFORE INSERT ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END`); err != nil {
			t.Fatal(err)
		}
	}
	breakAudit(filepath.Join(dir, "system.db"), "docex_system_audit")
	p := r.eng.Provisioner("ops")

	if _, err := p.Create(bgctx, "gamma", ""); err == nil || !strings.Contains(err.Error(), "audit log unavailable") {
		t.Fatalf("create with a broken system audit: %v", err)
	}
	if _, err := p.Get(bgctx, "gamma"); !errors.Is(err, docex.ErrTenantNotFound) {
		t.Fatalf("tenant created without its audit entry: %v", err)
	}
	if err := p.Suspend(bgctx, "beta"); err == nil {
		t.Fatal("suspend with a broken system audit succeeded")
	}
	if tn, _ := p.Get(bgctx, "beta"); tn.Status != docex.TenantActive {
		t.Fatalf("status changed without its audit entry: %s", tn.Status)
	}
	if err := p.Delete(bgctx, "beta"); err == nil {
		t.Fatal("delete with a broken system audit succeeded")
	}
	if _, err := p.Get(bgctx, "beta"); err != nil {
		t.Fatalf("tenant deleted without its audit entry: %v", err)
	}
	_, err := r.eng.As(docex.UserContext{UserID: "u", TenantID: "nope", Roles: []string{"admin"}}).Baskets(bgctx, docex.Page{})
	if !errors.Is(err, docex.ErrTenantUnknown) || !strings.Contains(err.Error(), "audit log unavailable") {
		t.Fatalf("denial with a broken system audit: %v", err)
	}
	if _, err := p.Sweep(bgctx, engine.SweepOptions{Grace: time.Hour}); err == nil {
		t.Fatal("sweep with a broken system audit succeeded")
	}

	// The tenant's own log.
	s := r.as("acme")
	b, err := s.CreateBasket(bgctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	breakAudit(r.tenantFile("acme"), "audit")
	r.close() // reopen: the handle caches prepared statements
	r = openRig(t, sqlite.Config{Dir: dir}, r.cfg, false)
	s = r.as("acme")
	if _, err := s.CreateBasket(bgctx, "lost"); err == nil {
		t.Fatal("create basket with a broken audit succeeded")
	}
	if _, err := s.BasketByName(bgctx, "lost"); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("basket created without its audit entry: %v", err)
	}
	if err := s.DeleteBasket(bgctx, b.ID, true); err == nil {
		t.Fatal("delete basket with a broken audit succeeded")
	}
	reader := r.eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"reader"}})
	if _, err := reader.CreateBasket(bgctx, "x"); !errors.Is(err, docex.ErrForbidden) || !strings.Contains(err.Error(), "audit log unavailable") {
		t.Fatalf("forbidden with a broken audit: %v", err)
	}
}
