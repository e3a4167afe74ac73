package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// claimSystem is a system initialised by a harness with one document of
// tenant acme.
type claimSystem struct {
	h          *harness
	contentDir string
	docID      string
}

func newClaimSystem(t *testing.T, content string) claimSystem {
	t.Helper()
	h := newHarness(t)
	sys := decode[struct {
		ContentDir string `json:"content_dir"`
	}](t, h.ok("init", "--json").stdout)
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"], h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "acme", "alice", "admin"
	h.ok("basket", "create", "b")
	docs := documents(decode[[]added](t, h.ok("doc", "add", "b", h.file("a.txt", content), "--json").stdout))
	return claimSystem{h: h, contentDir: sys.ContentDir, docID: docs[0].ID}
}

// intact fails unless the system's document still reads back and verify
// finds nothing damaged.
func (s claimSystem) intact(t *testing.T, content string) {
	t.Helper()
	if r := s.h.ok("doc", "cat", s.docID); r.stdout != content {
		t.Fatalf("doc cat: %q", r.stdout)
	}
	s.h.ok("verify")
}

// useContentDir points the harness's docex.yaml at another content
// directory (storage.documents.path), as an operator editing it would.
func useContentDir(t *testing.T, h *harness, dir string) {
	t.Helper()
	p := filepath.Join(h.dir, "docex.yaml")
	y, err := os.ReadFile(p)
	must(t, err)
	s := string(y)
	if i := strings.Index(s, "\n    path: "); i >= 0 {
		s = s[:i] + s[i+len("\n    path: ")+strings.IndexByte(s[i+len("\n    path: "):], '\n'):]
	}
	if !strings.Contains(s, "\n    type: filesystem\n") {
		t.Fatalf("docex.yaml has no filesystem storage:\n%s", s)
	}
	s = strings.Replace(s, "\n    type: filesystem\n", "\n    type: filesystem\n    path: "+dir+"\n", 1)
	must(t, os.WriteFile(p, []byte(s), 0o600))
}

// TestSharedContentDir: two systems (two data directories) configured with
// one content directory. The second init is refused (exit 2) before it
// creates its database; a system pointed at another's directory after its
// own init neither sweeps (gc, gc --dry-run) nor verifies; the first
// system's content is intact throughout.
func TestSharedContentDir(t *testing.T) {
	t.Parallel()
	a := newClaimSystem(t, "system A's content")
	marker, err := os.ReadFile(filepath.Join(a.contentDir, ".docex-system"))
	must(t, err)

	b := newHarness(t)
	b.ok("init", "--no-builtin-steps") // writes docex.yaml, its own content directory
	b.ok("tenant", "create", "other")
	fresh := newHarness(t)
	fresh.file("docex.yaml", mustRead(t, filepath.Join(b.dir, "docex.yaml")))
	useContentDir(t, fresh, a.contentDir)
	r := fresh.want(exitInvalid, "init")
	for _, want := range []string{"is not this system's", a.contentDir, strings.TrimSpace(string(marker)), "give each system its own bucket/prefix or content directory"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("second init: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(fresh.dir, "docex-data", "system.db")); !os.IsNotExist(err) {
		t.Fatalf("the refused init created its system database: %v", err)
	}

	// The review's repro: B's docex.yaml names A's content directory.
	useContentDir(t, b, a.contentDir)
	for _, args := range [][]string{{"gc", "--dry-run", "--grace", "0s"}, {"gc", "--grace", "0s"}, {"verify"}} {
		r := b.want(exitInvalid, args...)
		if !strings.Contains(r.stderr, "is not this system's") || !strings.Contains(r.stderr, "storage.documents") {
			t.Fatalf("%v: %s", args, r.stderr)
		}
		if strings.Contains(r.stdout, "stale content directories") {
			t.Fatalf("%v reported a sweep: %s", args, r.stdout)
		}
	}
	a.intact(t, "system A's content")
	a.h.ok("gc", "--grace", "0s")
	a.intact(t, "system A's content")
}

// TestContentDirChanged: storage.documents changed to another directory
// after init: verify says the store is not this system's instead of
// listing every document as missing, and gc removes nothing. A directory
// that is not there is missing, as for every command (storage_unavailable,
// exit 1), and is not created.
func TestContentDirChanged(t *testing.T) {
	t.Parallel()
	a := newClaimSystem(t, "kept")
	fresh := filepath.Join(t.TempDir(), "content")
	useContentDir(t, a.h, fresh)
	for _, args := range [][]string{{"verify"}, {"gc", "--grace", "0s"}} {
		if r := a.h.want(exitInternal, args...); !strings.Contains(r.stderr, "the content directory "+fresh+" is missing") {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("gc or verify created %s: %v", fresh, err)
	}
	must(t, os.Mkdir(fresh, 0o700))
	r := a.h.want(exitInvalid, "verify")
	if !strings.Contains(r.stderr, "config key storage.documents.path (line ") || !strings.Contains(r.stderr, "the content store at "+fresh+" is not this system's") || !strings.Contains(r.stderr, "storage.documents changed after docex init") {
		t.Fatalf("verify: %s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "missing") {
		t.Fatalf("verify listed missing documents: %s%s", r.stdout, r.stderr)
	}
	a.h.want(exitInvalid, "gc", "--grace", "0s")
	if ents, err := os.ReadDir(fresh); err != nil || len(ents) != 0 {
		t.Fatalf("gc or verify wrote into %s: %v %v", fresh, ents, err)
	}
	useContentDir(t, a.h, a.contentDir)
	a.intact(t, "kept")
}

// TestInitClaimsOldSystem: a system initialised before system ids (no
// system_id row, no marker) refuses gc until docex init, which adds the
// id and claims the content directory and changes nothing else.
func TestInitClaimsOldSystem(t *testing.T) {
	t.Parallel()
	a := newClaimSystem(t, "old content")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.h.dir, "docex-data", "system.db")+"?mode=rw")
	must(t, err)
	_, err = db.ExecContext(context.Background(), `DELETE FROM docex_meta WHERE key = 'system_id'`)
	must(t, err)
	must(t, db.Close())
	marker := filepath.Join(a.contentDir, ".docex-system")
	must(t, os.Remove(marker))

	for _, args := range [][]string{{"gc", "--grace", "0s"}, {"gc", "--dry-run"}, {"verify"}} {
		if r := a.h.want(exitInvalid, args...); !strings.Contains(r.stderr, "run docex init") {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	a.h.ok("doc", "cat", a.docID) // normal commands need no marker
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a command other than init wrote the marker: %v", err)
	}
	if r := a.h.ok("init"); !strings.Contains(r.stdout, "already initialised") {
		t.Fatalf("init: %s", r.stdout)
	}
	db, err = sql.Open("sqlite", "file:"+filepath.Join(a.h.dir, "docex-data", "system.db")+"?mode=ro")
	must(t, err)
	defer db.Close()
	var id string
	must(t, db.QueryRowContext(context.Background(), `SELECT value FROM docex_meta WHERE key = 'system_id'`).Scan(&id))
	if got := mustRead(t, marker); got != id+"\n" {
		t.Fatalf("marker %q, system id %q", got, id)
	}
	a.h.ok("gc", "--grace", "0s")
	a.intact(t, "old content")
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}
