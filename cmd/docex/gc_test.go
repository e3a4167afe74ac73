package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestGCDryRun: docex gc --dry-run reports what docex gc then removes, in
// the same form (text saying "would remove", JSON with dry_run true), and
// removes nothing; the system audit log records it as a dry run.
func TestGCDryRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "alice", "admin"
	sys := decode[struct {
		DataDir    string `json:"data_dir"`
		ContentDir string `json:"content_dir"`
	}](t, h.ok("init", "--json").stdout)
	if sys.DataDir == "" || sys.ContentDir == "" {
		t.Fatalf("init: data_dir %q, content_dir %q", sys.DataDir, sys.ContentDir)
	}
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"] = "acme"
	h.ok("basket", "create", "b")
	h.ok("doc", "add", "b", h.file("keep.txt", "keep me"))

	// Leftovers of crashes: an unregistered tenant file, the content of an
	// old incarnation, a staging file.
	old := time.Now().Add(-48 * time.Hour)
	leave := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("left by a crash"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tenantFile := leave(filepath.Join(sys.DataDir, "tenants", "acme", uuid.NewString()+".db"))
	deadDir := filepath.Join(sys.ContentDir, "tenants", "acme", uuid.NewString())
	leave(filepath.Join(deadDir, "ab", "abcd"))
	if err := os.Chtimes(deadDir, old, old); err != nil {
		t.Fatal(err)
	}
	incs, err := filepath.Glob(filepath.Join(sys.ContentDir, "tenants", "acme", "*", "packs"))
	if err != nil || len(incs) != 1 {
		t.Fatalf("acme's content directory: %v, %v", incs, err)
	}
	staged := leave(filepath.Join(filepath.Dir(incs[0]), "tmp", "stage-crashed"))
	leftovers := []string{tenantFile, deadDir, staged}

	type report struct {
		DryRun       *bool    `json:"dry_run"`
		Storage      []string `json:"storage"`
		ContentDirs  []string `json:"content_dirs"`
		ContentFiles int      `json:"content_files"`
		Packs        int      `json:"packs"`
	}
	want := report{Storage: []string{tenantFile}, ContentDirs: []string{deadDir}, ContentFiles: 1}
	same := func(got report, dry bool) bool {
		return got.DryRun != nil && *got.DryRun == dry && slices.Equal(got.Storage, want.Storage) &&
			slices.Equal(got.ContentDirs, want.ContentDirs) && got.ContentFiles == want.ContentFiles && got.Packs == want.Packs
	}
	for _, c := range []struct {
		args  []string
		check func(t *testing.T, out string)
	}{
		{[]string{"gc", "--dry-run", "--grace", "0s"}, func(t *testing.T, out string) {
			first := "would remove 1 unregistered tenant files, 1 stale content directories, 1 unreferenced content files, 0 pack files\n"
			if !strings.HasPrefix(out, first) || !strings.Contains(out, tenantFile) || !strings.Contains(out, deadDir) {
				t.Fatalf("gc --dry-run printed %q; want %q and the paths", out, first)
			}
		}},
		{[]string{"gc", "--dry-run", "--grace", "0s", "--json"}, func(t *testing.T, out string) {
			if got := decode[report](t, out); !same(got, true) {
				t.Fatalf("gc --dry-run --json: %s", out)
			}
		}},
		// With the default grace of an hour the leftovers (two days old)
		// are reported too.
		{[]string{"gc", "--dry-run", "--json"}, func(t *testing.T, out string) {
			if got := decode[report](t, out); !same(got, true) {
				t.Fatalf("gc --dry-run --json: %s", out)
			}
		}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			c.check(t, h.ok(c.args...).stdout)
			for _, p := range leftovers {
				if _, err := os.Stat(p); err != nil {
					t.Fatalf("%s after a dry run: %v", p, err)
				}
			}
		})
	}
	audit := h.ok("audit", "list", "--system", "--json").stdout
	if !strings.Contains(audit, `"system.sweep.dry_run"`) || strings.Contains(audit, `"system.sweep"`) {
		t.Fatalf("system audit after dry runs: %s", audit)
	}

	// The real run removes what the dry run reported, and reports it the same.
	if got := decode[report](t, h.ok("gc", "--grace", "0s", "--json").stdout); !same(got, false) {
		t.Fatalf("gc --json after the dry run reported %+v, want %+v", got, want)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s after gc: %v", p, err)
		}
	}
	if out := h.ok("gc", "--grace", "0s").stdout; out != "removed 0 unregistered tenant files, 0 stale content directories, 0 unreferenced content files, 0 pack files\n" {
		t.Fatalf("gc after gc printed %q", out)
	}
	if out := h.ok("doc", "list", "b").stdout; !strings.Contains(out, "keep.txt") {
		t.Fatalf("doc list after gc: %s", out)
	}
}

// TestGCCompiledModules: gc removes from the plugin compilation cache the
// modules no tenant has installed any more (here a deleted tenant's), and
// keeps one another tenant still has.
func TestGCCompiledModules(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "alice", "admin"
	sys := decode[struct {
		DataDir string `json:"data_dir"`
	}](t, h.ok("init", "--json").stdout)
	for _, c := range []struct{ tenant, plugin string }{{"acme", "upper"}, {"acme", "echo"}, {"beta", "upper"}} {
		if h.run("tenant", "show", c.tenant).code != 0 {
			h.ok("tenant", "create", c.tenant)
		}
		h.ok("--tenant", c.tenant, "plugin", "install", "../../testplugins/"+c.plugin)
	}
	entry := func(plugin string) string {
		mod, err := os.ReadFile(filepath.Join("../../testplugins", plugin, plugin+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(mod)
		// The entry's name goes on with the versions it was made under.
		m, _ := filepath.Glob(filepath.Join(sys.DataDir, "wasm-cache", "metered", hex.EncodeToString(sum[:])+"-v*.wasm"))
		if len(m) == 1 {
			return m[0]
		}
		return filepath.Join(sys.DataDir, "wasm-cache", "metered", hex.EncodeToString(sum[:])+" (no entry)")
	}
	for _, p := range []string{"upper", "echo"} {
		if _, err := os.Stat(entry(p)); err != nil {
			t.Fatalf("%s is not in the cache: %v", p, err)
		}
	}
	type report struct {
		CompiledModules *int `json:"compiled_modules"`
	}
	count := func(args ...string) int {
		t.Helper()
		got := decode[report](t, h.ok(append([]string{"gc", "--grace", "0s", "--json"}, args...)...).stdout)
		if got.CompiledModules == nil {
			t.Fatal("gc --json has no compiled_modules")
		}
		return *got.CompiledModules
	}
	if n := count(); n != 0 {
		t.Fatalf("gc with every module installed removed %d compiled modules", n)
	}
	h.ok("tenant", "delete", "acme", "--yes")
	if n := count("--dry-run"); n != 1 {
		t.Fatalf("gc --dry-run after deleting acme: %d compiled modules, want 1 (echo)", n)
	}
	if _, err := os.Stat(entry("echo")); err != nil {
		t.Fatalf("a dry run removed echo: %v", err)
	}
	if out := h.ok("gc", "--grace", "0s").stdout; !strings.Contains(out, "removed 1 compiled plugin modules no installed plugin needs (sandbox.cache_dir)\n") {
		t.Fatalf("gc printed %q", out)
	}
	if _, err := os.Stat(entry("echo")); !os.IsNotExist(err) {
		t.Fatalf("echo after gc: %v", err)
	}
	if _, err := os.Stat(entry("upper")); err != nil {
		t.Fatalf("upper, still installed by beta, after gc: %v", err)
	}
	h.ok("--tenant", "beta", "basket", "create", "b")
	id := strings.TrimSpace(h.ok("--tenant", "beta", "doc", "add", "b", h.file("x.txt", "hello"), "--quiet").stdout)
	if out := h.ok("--tenant", "beta", "run", "upper", id).stdout; !strings.Contains(out, "status: ok") {
		t.Fatalf("upper after gc: %s", out)
	}
	if n := count(); n != 0 {
		t.Fatalf("a second gc removed %d compiled modules", n)
	}
}
