package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
