package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestContentDirectoryMissing: with the filesystem content directory
// missing at run time (deleted after docex init, or its volume not
// mounted), reading, adding and deleting documents fail with
// storage_unavailable (exit 1) naming the directory and saying what to
// do, and docex does not create the directory again; once it is back,
// everything is there. Before, a read failed as corrupt data ("content
// ... is missing"), and an add succeeded into a new, empty content
// directory without the system's marker. One content file missing from a
// directory that is there is still reported as corrupt data (docex verify
// lists it).
func TestContentDirectoryMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "alice", "admin"
	sys := decode[struct {
		ContentDir string `json:"content_dir"`
	}](t, h.ok("init", "--json").stdout)
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"] = "acme"
	h.ok("basket", "create", "b")
	big := strings.Repeat("a large file, stored as a file of its own\n", 4000) // not packed
	docs := documents(decode[[]added](t, h.ok("doc", "add", "b", h.file("small.txt", "small, packed"), h.file("big.txt", big), "--json").stdout))
	moved := sys.ContentDir + ".moved"
	if err := os.Rename(sys.ContentDir, moved); err != nil {
		t.Fatal(err)
	}

	unavailable := func(args ...string) {
		t.Helper()
		r := h.want(exitInternal, append(args, "--json")...)
		var e struct {
			Error struct{ Code, Kind, Message, Hint string }
		}
		if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || e.Error.Code != "storage_unavailable" || e.Error.Kind != "internal" ||
			!strings.Contains(e.Error.Message, "the content directory "+sys.ContentDir+" is missing") || !strings.Contains(e.Error.Hint, "restore the content directory") {
			t.Errorf("docex %s: %s, want storage_unavailable naming %s", strings.Join(args, " "), r.stderr, sys.ContentDir)
		}
		if _, err := os.Stat(sys.ContentDir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("docex %s created the content directory again (%v)", strings.Join(args, " "), err)
		}
	}
	for _, d := range docs {
		unavailable("doc", "cat", d.ID)
	}
	unavailable("doc", "add", "b", h.file("new.txt", "new"))
	unavailable("doc", "add", "b", h.file("new-big.txt", big+"new"))
	unavailable("doc", "update", docs[0].ID, h.file("update.txt", "updated"))
	unavailable("doc", "delete", docs[0].ID)
	// As README.md and docex help init say: every command that reads,
	// writes or removes content fails so, the others go on working.
	h.ok("basket", "create", "empty")
	unavailable("basket", "delete", "empty")
	h.ok("tenant", "create", "globex")
	unavailable("tenant", "delete", "globex", "--yes")
	for _, args := range [][]string{
		{"basket", "list"}, {"basket", "show", "b"}, {"doc", "get", docs[0].ID},
		{"doc", "meta", "set", docs[0].ID, "k=v"}, {"doc", "meta", "get", docs[0].ID}, {"doc", "meta", "delete", docs[0].ID, "k"},
		{"doc", "find", "b", "--meta", "k=v"}, {"tenant", "list"}, {"tenant", "show", "acme"},
		{"pipeline", "list"}, {"job", "list"}, {"audit", "list"},
	} {
		h.ok(args...)
	}
	// Nothing was added or deleted.
	if n := len(decode[[]doc](t, h.ok("doc", "list", "b", "--json").stdout)); n != 2 {
		t.Fatalf("%d documents, want 2", n)
	}

	if err := os.Rename(moved, sys.ContentDir); err != nil {
		t.Fatal(err)
	}
	if r := h.ok("doc", "cat", docs[1].ID); r.stdout != big {
		t.Fatalf("big.txt after restore: %d bytes", len(r.stdout))
	}
	h.ok("doc", "cat", docs[0].ID)

	// One content file missing, the directory there: corrupt data.
	var file string
	filepath.WalkDir(sys.ContentDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == docs[1].Checksum {
			file = p
		}
		return nil
	})
	if file == "" {
		t.Fatal("big.txt's content file not found")
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	r := h.want(exitInternal, "doc", "cat", docs[1].ID, "--json")
	if !strings.Contains(r.stderr, `"code":"corrupt"`) || !strings.Contains(r.stderr, "is missing") {
		t.Fatalf("one file missing: %s", r.stderr)
	}
}

// storageUnavailable fails unless r is the --json error of a missing
// content directory dir, with the runtime's message (after what the
// command was doing: "document ID: ") and hint, and dir was not created.
func storageUnavailable(t *testing.T, r result, dir string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Kind, Message, Hint string }
	}
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || r.code != exitInternal || e.Error.Code != "storage_unavailable" || e.Error.Kind != "internal" ||
		!strings.HasSuffix(e.Error.Message, "content store: the content directory "+dir+" is missing (deleted, or its volume not mounted?)") ||
		e.Error.Hint != "restore the content directory, or mount the volume that holds it, then run the command again; if storage.documents.path in docex.yaml changed, change it back" {
		t.Fatalf("exit %d, stderr %s\nwant storage_unavailable naming %s", r.code, r.stderr, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the content directory %s was created (%v)", dir, err)
	}
}

// TestGCVerifyContentDirMissing: docex gc (with --dry-run too) and docex
// verify with the content directory missing report it as every other
// command does, storage_unavailable (exit 1), removing and creating
// nothing; before, they said the store had no .docex-system marker (exit
// 2, "not this system's"). A marker naming another system, or none in a
// directory that is there, names storage.documents.path and its line.
func TestGCVerifyContentDirMissing(t *testing.T) {
	t.Parallel()
	s := newClaimSystem(t, "kept while the directory is away")
	moved := s.contentDir + ".moved"
	must(t, os.Rename(s.contentDir, moved))
	for _, args := range [][]string{{"gc", "--grace", "0s"}, {"gc", "--dry-run"}, {"verify"}, {"verify", "acme"}} {
		storageUnavailable(t, s.h.run(append(args, "--json")...), s.contentDir)
	}
	// The runtime's error, word for word.
	storageUnavailable(t, s.h.run("doc", "cat", s.docID, "--json"), s.contentDir)
	must(t, os.Rename(moved, s.contentDir))
	s.intact(t, "kept while the directory is away")

	// Claim errors name the key saying where the content is.
	cfg := filepath.Join(s.h.dir, "docex.yaml")
	other := filepath.Join(t.TempDir(), "other")
	must(t, os.Mkdir(other, 0o700))
	useContentDir(t, s.h, other) // written on line 28 of the generated file
	line := 1 + strings.Count(strings.Split(mustRead(t, cfg), "    path: ")[0], "\n")
	want := "docex: " + cfg + ": config key storage.documents.path (line " + strconv.Itoa(line) + "): the content store at " + other + " is not this system's: it has no .docex-system marker"
	for _, args := range [][]string{{"gc"}, {"verify"}} {
		if r := s.h.want(exitInvalid, args...); !strings.HasPrefix(r.stderr, want) {
			t.Fatalf("%v: %s\nwant %s...", args, r.stderr, want)
		}
		r := s.h.want(exitInvalid, append(args, "--json")...)
		if !strings.Contains(r.stderr, `"code":"not_initialized"`) {
			t.Fatalf("%v --json: %s: the code of an unclaimed store changed", args, r.stderr)
		}
	}
	must(t, os.WriteFile(filepath.Join(other, ".docex-system"), []byte("another-system\n"), 0o600))
	want = "docex: " + cfg + ": config key storage.documents.path (line " + strconv.Itoa(line) + "): the content store at " + other + " is not this system's: its marker .docex-system names docex system \"another-system\""
	for _, args := range [][]string{{"gc"}, {"verify"}, {"init"}} {
		if r := s.h.want(exitInvalid, args...); !strings.HasPrefix(r.stderr, want) {
			t.Fatalf("%v: %s\nwant %s...", args, r.stderr, want)
		}
	}
}

// contentSystem is an initialised system with filesystem content on
// SQLite or PostgreSQL (a schema of its own, dropped at the end), in
// multi-tenant mode (tenant acme) or single-file mode (no tenants).
type contentSystem struct {
	h          *harness
	contentDir string
	multi      bool
}

func newContentSystem(t *testing.T, backend string, multi bool) contentSystem {
	t.Helper()
	h := newHarness(t)
	y := "config_version: 1\n"
	if !multi {
		y += "multi_tenancy:\n  enabled: false\n"
	}
	if backend == "postgres" {
		dsn := testPostgresDSN(t)
		n := time.Now().UnixNano() % 1_000_000_000
		schema, prefix := fmt.Sprintf("docex_cd_%d", n), fmt.Sprintf("cd%d_", n%100000)
		h.env["PGTEST_DSN"] = dsn
		if multi {
			y += "multi_tenancy:\n"
		}
		y += fmt.Sprintf("  bootstrap_tenant:\n    schema: %s\ndatabase:\n  type: postgres\n  postgres:\n    dsn_env: PGTEST_DSN\n    tenant_schema_prefix: %s\n", schema, prefix)
		t.Cleanup(func() { dropSchemas(t, dsn, schema, schema+"_local", schema+"_jobs", prefix+"acme") })
	}
	h.file("docex.yaml", y+"storage:\n  documents:\n    type: filesystem\n")
	res := decode[struct {
		ContentDir string `json:"content_dir"`
	}](t, h.ok("init", "--json").stdout)
	if _, err := os.Stat(filepath.Join(res.ContentDir, ".docex-system")); err != nil {
		t.Fatalf("a first init did not create the content directory: %v", err)
	}
	h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "alice", "admin"
	if multi {
		h.ok("tenant", "create", "acme")
		h.env["DOCEX_TENANT"] = "acme"
	}
	return contentSystem{h: h, contentDir: res.ContentDir, multi: multi}
}

// addDocument adds a document and returns its id.
func (s contentSystem) addDocument(t *testing.T, content string) string {
	t.Helper()
	s.h.ok("basket", "create", "b")
	return documents(decode[[]added](t, s.h.ok("doc", "add", "b", s.h.file("a.txt", content), "--json").stdout))[0].ID
}

// TestInitContentDirMissing: docex init on an initialised system whose
// content directory is missing (deleted, or its volume not mounted) fails
// as every command that uses content does, storage_unavailable (exit 1) with the
// runtime's message and hint, creating nothing, when the system has
// documents or records that directory as its own (every init records the
// one it created or claimed); in single-file and multi-tenant mode, on
// SQLite and PostgreSQL. Once the directory is back, init says "already
// initialised" and the documents read back. Before, init created a new,
// empty directory and claimed it: the documents then read as corrupt. A
// system that never had the directory (no documents, another directory or
// none recorded) gets it created, as a first init does.
func TestInitContentDirMissing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		backend string
		multi   bool
		docs    bool
	}{
		{"sqlite", true, true}, {"sqlite", false, true}, {"postgres", true, true}, {"postgres", false, true},
		{"sqlite", true, false}, {"sqlite", false, false}, {"postgres", true, false},
	} {
		name := fmt.Sprintf("%s multi-tenant=%t documents=%t", c.backend, c.multi, c.docs)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newContentSystem(t, c.backend, c.multi)
			id := ""
			if c.docs {
				id = s.addDocument(t, "kept")
			}
			moved := s.contentDir + ".moved"
			must(t, os.Rename(s.contentDir, moved))
			storageUnavailable(t, s.h.run("init", "--json"), s.contentDir)
			if id != "" {
				storageUnavailable(t, s.h.run("doc", "cat", id, "--json"), s.contentDir) // the runtime's words
			}
			r := s.h.want(exitInternal, "init")
			if !strings.Contains(r.stderr, "\nhint: restore the content directory") {
				t.Fatalf("init: %s", r.stderr)
			}
			must(t, os.Rename(moved, s.contentDir))
			if r := s.h.ok("init"); !strings.Contains(r.stdout, "already initialised") {
				t.Fatalf("init after the restore: %s", r.stdout)
			}
			if id != "" {
				if r := s.h.ok("doc", "cat", id); r.stdout != "kept" {
					t.Fatalf("doc cat: %q", r.stdout)
				}
			}
			s.h.ok("verify")
		})
	}

	// A system initialised before init recorded its content directory.
	forget := func(t *testing.T, s contentSystem) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(s.h.dir, "docex-data", "system.db")+"?mode=rw")
		must(t, err)
		defer db.Close()
		_, err = db.ExecContext(context.Background(), `DELETE FROM docex_meta WHERE key = 'content_dir'`)
		must(t, err)
	}
	t.Run("none recorded, no documents: created", func(t *testing.T) {
		t.Parallel()
		s := newContentSystem(t, "sqlite", true)
		forget(t, s)
		must(t, os.RemoveAll(s.contentDir))
		if r := s.h.ok("init"); !strings.Contains(r.stdout, "already initialised") {
			t.Fatalf("init: %s", r.stdout)
		}
		if _, err := os.Stat(filepath.Join(s.contentDir, ".docex-system")); err != nil {
			t.Fatal(err)
		}
		// Recorded now: gone again, it is refused.
		must(t, os.RemoveAll(s.contentDir))
		storageUnavailable(t, s.h.run("init", "--json"), s.contentDir)
	})
	t.Run("none recorded, documents: refused", func(t *testing.T) {
		t.Parallel()
		s := newContentSystem(t, "sqlite", true)
		s.addDocument(t, "kept")
		forget(t, s)
		must(t, os.Rename(s.contentDir, s.contentDir+".moved"))
		storageUnavailable(t, s.h.run("init", "--json"), s.contentDir)
	})
	// storage.documents.path changed to a directory that is not there.
	t.Run("changed path, no documents: created", func(t *testing.T) {
		t.Parallel()
		s := newContentSystem(t, "sqlite", true)
		fresh := filepath.Join(t.TempDir(), "content")
		useContentDir(t, s.h, fresh)
		s.h.ok("init")
		if _, err := os.Stat(filepath.Join(fresh, ".docex-system")); err != nil {
			t.Fatal(err)
		}
		s.h.ok("gc")
	})
	t.Run("changed path, documents: refused", func(t *testing.T) {
		t.Parallel()
		s := newContentSystem(t, "sqlite", true)
		s.addDocument(t, "kept")
		fresh := filepath.Join(t.TempDir(), "content")
		useContentDir(t, s.h, fresh)
		storageUnavailable(t, s.h.run("init", "--json"), fresh)
	})
}

// TestInitFailureKeepsRecordedContentDir: a first init that fails after
// the system database was created and its content directory recorded (the
// plugin cache cannot be made), with the system database in a directory
// that was there before, leaves that content directory: the next init,
// the cause fixed, finds the system and works. (Removing it would make
// that init refuse, as for a directory deleted by mistake.)
func TestInitFailureKeepsRecordedContentDir(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	delete(h.env, noBuiltinEnv) // the built-in steps need the sandbox
	mine := filepath.Join(h.dir, "mine")
	must(t, os.Mkdir(mine, 0o700))
	must(t, os.WriteFile(filepath.Join(mine, "wasm-cache"), []byte("in the way"), 0o600))
	if r := h.run("init", "--data-dir", mine); r.code == 0 {
		t.Fatalf("init succeeded: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "docex.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed init left docex.yaml: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mine, "system.db")); err != nil {
		t.Fatalf("no system database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mine, "content", ".docex-system")); err != nil {
		t.Fatalf("the failed init removed the content directory its system recorded: %v", err)
	}
	must(t, os.Remove(filepath.Join(mine, "wasm-cache")))
	h.env[noBuiltinEnv] = "1"
	h.ok("init", "--data-dir", mine)
}
