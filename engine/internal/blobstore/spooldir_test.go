package blobstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
)

type spiller interface {
	Spill(ctx context.Context, staged []driver.Staged) error
}

// openSpools returns the spool files of the database store this process
// holds open in dir, and whether the platform lets the test see them:
// on Linux by the links in /proc/self/fd (the files have no name once
// created: "... (deleted)"), on Windows by listing dir (deleted on close).
func openSpools(t *testing.T, dir string) (n int, seen bool) {
	t.Helper()
	switch runtime.GOOS {
	case "linux":
		fds, err := os.ReadDir("/proc/self/fd")
		must(t, err)
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil &&
				filepath.Dir(l) == dir && strings.HasPrefix(filepath.Base(l), "docex-db-spool-") {
				n++
			}
		}
		return n, true
	case "windows":
		ms, err := filepath.Glob(filepath.Join(dir, "docex-db-spool-*"))
		must(t, err)
		return len(ms), true
	}
	return 0, false
}

// TestDBSpoolDir: the database store spills into DB.SpoolDir (engine
// Config.SpoolDir, storage.documents.spool_dir), not $TMPDIR; a spool
// directory missing is docex.ErrStorageUnavailable naming the directory
// and the key, and creates nothing.
func TestDBSpoolDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the store spooled before (Unix)
	dir := t.TempDir()
	tc, err := blobstore.DB{SpoolDir: dir}.Tenant(docex.Tenant{})
	must(t, err)
	st := []driver.Staged{stage(t, tc, "first"), stage(t, tc, "second")}
	must(t, tc.(spiller).Spill(bg, st))
	if n, seen := openSpools(t, dir); seen && n != 1 {
		t.Errorf("%d spool files open in the spool directory %s, want 1", n, dir)
	}
	if n, seen := openSpools(t, tmp); seen && n != 0 {
		t.Errorf("%d spool files open in $TMPDIR %s, want 0", n, tmp)
	}
	for _, s := range st {
		s.Discard()
	}
	if n, seen := openSpools(t, dir); seen && n != 0 {
		t.Errorf("%d spool files open in %s after Discard, want 0", n, dir)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("the spool directory holds %d entries (%v), want none: the spool file has no name", len(ents), err)
	}

	missing := filepath.Join(dir, "missing")
	tc, err = blobstore.DB{SpoolDir: missing}.Tenant(docex.Tenant{})
	must(t, err)
	st = []driver.Staged{stage(t, tc, "kept")}
	err = tc.(spiller).Spill(bg, st)
	if !errors.Is(err, docex.ErrStorageUnavailable) || !errors.Is(err, driver.ErrSpool) || !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "storage.documents.spool_dir") {
		t.Fatalf("Spill into a missing directory: %v; want ErrStorageUnavailable naming %s and storage.documents.spool_dir", err, missing)
	}
	if docex.Code(err) != "storage_unavailable" {
		t.Errorf("code %q, want storage_unavailable", docex.Code(err))
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing spool directory was created: %v", err)
	}
	st[0].Discard()
}
