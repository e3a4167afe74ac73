package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
		!strings.HasPrefix(e.Error.Hint, "restore the content directory, or mount the volume that holds it, then run the command again; if storage.documents.path in docex.yaml changed, change it back") {
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
