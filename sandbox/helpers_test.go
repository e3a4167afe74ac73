package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// The test binary shares one on-disk compilation cache (so each Go guest is
// compiled by wazero at most once per test binary) and one Sandbox for the
// tests that need no special ceilings.
var shared struct {
	cacheDir string
	sb       *Sandbox
	mu       sync.Mutex
	plugins  map[string]*Plugin
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandbox-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared.cacheDir = dir
	code := m.Run()
	if shared.sb != nil {
		shared.sb.Close(context.Background())
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func sharedSandbox(tb testing.TB) *Sandbox {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.sb == nil {
		sb, err := New(context.Background(), Config{CacheDir: shared.cacheDir})
		if err != nil {
			tb.Fatal(err)
		}
		shared.sb = sb
		shared.plugins = map[string]*Plugin{}
	}
	return shared.sb
}

// newSandbox creates a private Sandbox on the shared cache.
func newSandbox(tb testing.TB, cfg Config) *Sandbox {
	tb.Helper()
	cfg.CacheDir = shared.cacheDir
	sb, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sb.Close(context.Background()) })
	return sb
}

func readPlugin(tb testing.TB, name string) (*pluginapi.Manifest, []byte) {
	tb.Helper()
	fsys, err := testplugins.Dir(name)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := fs.ReadFile(fsys, pluginapi.ManifestFile)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(raw)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	mod, err := fs.ReadFile(fsys, m.Module)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.VerifyModule(mod); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return m, mod
}

// plugin loads a test plugin into the shared sandbox once.
func plugin(tb testing.TB, name string) *Plugin {
	tb.Helper()
	sb := sharedSandbox(tb)
	shared.mu.Lock()
	p := shared.plugins[name]
	shared.mu.Unlock()
	if p != nil {
		return p
	}
	m, mod := readPlugin(tb, name)
	p, err := sb.Load(context.Background(), m, mod)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if q := shared.plugins[name]; q != nil {
		p.Close(context.Background())
		return q
	}
	shared.plugins[name] = p
	return p
}

func textDoc(name, text string) pluginapi.Document {
	return pluginapi.Document{Name: name, ContentType: "text/plain", Size: int64(len(text)), Content: strings.NewReader(text),
		Metadata: map[string]any{"author": "ann", "pages": 3.0, "draft": true}}
}

// fakeHost serves one tenant's documents from a shared store. With leak set
// it also returns other tenants' refs, as a buggy engine might.
type fakeHost struct {
	tenant string
	store  map[string]map[string]string // tenant -> name -> content
	leak   bool

	mu     sync.Mutex
	opened []pluginapi.DocumentRef
}

func (h *fakeHost) Lookup(_ context.Context, q pluginapi.LookupQuery) ([]pluginapi.DocumentRef, error) {
	var refs []pluginapi.DocumentRef
	for tenant, docs := range h.store {
		if tenant != h.tenant && !h.leak {
			continue
		}
		for name := range docs {
			if q.Name == name || (q.MetadataKey == "author" && q.MetadataValue == "ann") {
				refs = append(refs, pluginapi.DocumentRef{TenantID: tenant, ID: tenant + "/" + name})
			}
		}
	}
	if len(refs) > q.Limit {
		refs = refs[:q.Limit]
	}
	return refs, nil
}

func (h *fakeHost) Open(_ context.Context, ref pluginapi.DocumentRef) (*pluginapi.Document, error) {
	h.mu.Lock()
	h.opened = append(h.opened, ref)
	h.mu.Unlock()
	if ref.TenantID != h.tenant {
		return nil, fmt.Errorf("cross-tenant open of %s", ref.ID)
	}
	name := strings.TrimPrefix(ref.ID, ref.TenantID+"/")
	text, ok := h.store[ref.TenantID][name]
	if !ok {
		return nil, fmt.Errorf("no document %s", ref.ID)
	}
	d := textDoc(name, text)
	return &d, nil
}

func (h *fakeHost) openedForeign() []pluginapi.DocumentRef {
	h.mu.Lock()
	defer h.mu.Unlock()
	var bad []pluginapi.DocumentRef
	for _, r := range h.opened {
		if r.TenantID != h.tenant {
			bad = append(bad, r)
		}
	}
	return bad
}

func words(n int) string {
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("word")
	}
	return b.String()
}
