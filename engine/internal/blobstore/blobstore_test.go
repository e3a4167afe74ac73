package blobstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/contenttest"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/google/uuid"
)

var bg = context.Background()

func fsPath(root string, tn docex.Tenant, sum string) string {
	ns, err := contentkey.Tenant(tn)
	if err != nil {
		panic(err)
	}
	return filepath.Join(root, filepath.FromSlash(ns), sum[:2], sum)
}

// contentDir returns a new content directory, as docex init (Claim)
// creates it: the store never creates its root at run time.
func contentDir(t testing.TB) string {
	root := filepath.Join(t.TempDir(), "content")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestFSConformance(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(map[bool]string{false: "fsync", true: "nosync"}[noSync], func(t *testing.T) {
			contenttest.Run(t, contenttest.Harness{
				New: func(t *testing.T) driver.ContentStore {
					return blobstore.NewFS(contentDir(t), noSync)
				},
				Corrupt: func(t *testing.T, s driver.ContentStore, tn docex.Tenant, _ driver.Tx, sum string, data []byte) {
					p := fsPath(s.(*blobstore.FS).Root(), tn, sum)
					if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
						t.Fatal(err)
					}
					os.Remove(p)
					if err := os.WriteFile(p, data, 0o600); err != nil {
						t.Fatal(err)
					}
				},
			})
		})
	}
}

// TestFSPackedConformance: the pack layout (NewFSPacked) passes the same
// suite; Corrupt plants a pack of its own and points the checksum's
// locator at it, as a hostile writer of the data directory and the
// database could.
func TestFSPackedConformance(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(map[bool]string{false: "fsync", true: "nosync"}[noSync], func(t *testing.T) {
			contenttest.Run(t, contenttest.Harness{
				New: func(t *testing.T) driver.ContentStore {
					return blobstore.NewFSPacked(contentDir(t), noSync, blobstore.DefaultPackMax)
				},
				Corrupt: func(t *testing.T, s driver.ContentStore, tn docex.Tenant, tx driver.Tx, sum string, data []byte) {
					plantPack(t, s.(*blobstore.FS).Root(), tn, tx, sum, data)
				},
			})
		})
	}
}

// plantPack writes data into a new pack file and points sum's locator at
// it.
func plantPack(t *testing.T, root string, tn docex.Tenant, tx driver.Tx, sum string, data []byte) string {
	t.Helper()
	ns, err := contentkey.Tenant(tn)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, filepath.FromSlash(ns), "packs")
	must(t, os.MkdirAll(dir, 0o700))
	name := uuid.NewString() + ".pack"
	must(t, os.WriteFile(filepath.Join(dir, name), append([]byte("padding"), data...), 0o600))
	must(t, tx.DeleteContent(bg, sum))
	must(t, tx.PutContent(bg, sum, []byte(fmt.Sprintf("docex-pack/1 %s 7 %d", name, len(data)))))
	return filepath.Join(dir, name)
}

func TestDBConformance(t *testing.T) {
	contenttest.Run(t, contenttest.Harness{
		New: func(t *testing.T) driver.ContentStore { return blobstore.DB{} },
		Corrupt: func(t *testing.T, _ driver.ContentStore, _ docex.Tenant, tx driver.Tx, sum string, data []byte) {
			if err := tx.DeleteContent(bg, sum); err != nil {
				t.Fatal(err)
			}
			if err := tx.PutContent(bg, sum, data); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func stage(t *testing.T, tc driver.TenantContent, data string) driver.Staged {
	t.Helper()
	s, err := tc.Stage(bg, strings.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func countFiles(root string) int {
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// The filesystem layout is part of the operator's contract (backups,
// docs/isolation.md): <root>/tenants/<id>/<incarnation>/<sum[:2]>/<sum>,
// staging in <namespace>/tmp, and <root>/local without multi-tenancy.
func TestFSLayoutAndStaging(t *testing.T) {
	root := contentDir(t)
	s := blobstore.NewFS(root, false)
	if countFiles(root) != 0 {
		t.Fatal("NewFS created files")
	}
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, err := s.Tenant(tn)
	if err != nil {
		t.Fatal(err)
	}
	st := stage(t, tc, "layout")
	ns := filepath.Join(root, "tenants", "acme", tn.Incarnation)
	if n := countFiles(filepath.Join(ns, "tmp")); n != 1 {
		t.Fatalf("%d staging files, want 1", n)
	}
	if err := tc.Put(bg, nil, []driver.Staged{st}); err != nil {
		t.Fatal(err)
	}
	st.Discard()
	if n := countFiles(filepath.Join(ns, "tmp")); n != 0 {
		t.Fatalf("%d staging files left after Discard", n)
	}
	if _, err := os.Stat(filepath.Join(ns, st.Checksum()[:2], st.Checksum())); err != nil {
		t.Fatalf("content not at its path: %v", err)
	}
	local, err := s.Tenant(docex.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	ls := stage(t, local, "local")
	defer ls.Discard()
	if n := countFiles(filepath.Join(root, "local", "tmp")); n != 1 {
		t.Fatalf("local staging files %d, want 1", n)
	}
}

// Put of content that exists refreshes its time, so the sweep's grace
// period covers the new reference.
func TestFSPutExistingRefreshesTime(t *testing.T) {
	root := t.TempDir()
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, _ := blobstore.NewFS(root, false).Tenant(tn)
	st := stage(t, tc, "shared")
	defer st.Discard()
	if err := tc.Put(bg, nil, []driver.Staged{st}); err != nil {
		t.Fatal(err)
	}
	p := fsPath(root, tn, st.Checksum())
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(p, old, old)
	if err := tc.Put(bg, nil, []driver.Staged{st}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(info.ModTime()) > time.Minute {
		t.Errorf("modification time not refreshed: %v", info.ModTime())
	}
	err = tc.List(bg, time.Now().Add(-time.Hour), func(string) error {
		t.Error("content listed within the grace period")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Put flushes a staging file Sync left out (the engine leaves content the
// tenant held at Sync time out of it; the holder may be gone by Put) before
// linking it, so no content reference commits ahead of its bytes; one Sync
// flushed is not flushed again (a store without sync flushes neither).
func TestFSPutFlushesWhatSyncLeftOut(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("noSync=%v", noSync), func(t *testing.T) {
			root := t.TempDir()
			tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			tc, _ := blobstore.NewFS(root, noSync).Tenant(tn)
			left, synced := stage(t, tc, "left out of Sync"), stage(t, tc, "synced")
			defer left.Discard()
			defer synced.Discard()
			if err := tc.Sync(bg, []driver.Staged{synced}); err != nil {
				t.Fatal(err)
			}
			if blobstore.Synced(left) || blobstore.Synced(synced) == noSync {
				t.Fatalf("after Sync of one: left out %v, synced %v", blobstore.Synced(left), blobstore.Synced(synced))
			}
			if err := tc.Put(bg, nil, []driver.Staged{left, synced}); err != nil {
				t.Fatal(err)
			}
			if blobstore.Synced(left) == noSync {
				t.Errorf("Put linked a staging file Sync left out with synced=%v (noSync %v)", blobstore.Synced(left), noSync)
			}
			for _, st := range []driver.Staged{left, synced} {
				if _, err := os.Stat(fsPath(root, tn, st.Checksum())); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// A symlink planted at a content path is replaced by Put, never followed.
func TestFSPutReplacesPlantedSymlink(t *testing.T) {
	root := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, _ := blobstore.NewFS(root, false).Tenant(tn)
	st := stage(t, tc, "real content")
	defer st.Discard()
	p := fsPath(root, tn, st.Checksum())
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.Symlink(victim, p); err != nil {
		t.Fatal(err)
	}
	if err := tc.Put(bg, nil, []driver.Staged{st}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(p); err != nil || !info.Mode().IsRegular() {
		t.Fatalf("content path after Put: %v, %v", info, err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("victim changed: %q", b)
	}
}

// A symlink planted in place of a directory the store writes into (a
// two-hex-digit directory, tmp, packs) is refused, never followed: nothing
// is written outside the content directory (Put linked the content into
// the link's target, Stage and Sync created their files there).
func TestFSRefusesSymlinkedDirectory(t *testing.T) {
	b := sha256.Sum256([]byte("real content"))
	sum := hex.EncodeToString(b[:])
	for _, tt := range []struct {
		dir    string // in the tenant's namespace
		packed bool
	}{
		{dir: sum[:2]},
		{dir: "tmp"},
		{dir: "packs", packed: true},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			link := filepath.Join(filepath.Dir(filepath.Dir(fsPath(root, tn, sum))), tt.dir)
			must(t, os.MkdirAll(filepath.Dir(link), 0o700))
			must(t, os.Symlink(outside, link))
			store := blobstore.NewFS(root, false)
			if tt.packed {
				store = blobstore.NewFSPacked(root, false, blobstore.DefaultPackMax)
			}
			tc, _ := store.Tenant(tn)
			st, err := tc.Stage(bg, strings.NewReader("real content"), 1<<20)
			if err == nil {
				defer st.Discard()
				if err = tc.Sync(bg, []driver.Staged{st}); err == nil && !tt.packed {
					err = tc.Put(bg, nil, []driver.Staged{st})
				}
			}
			if !errors.Is(err, docex.ErrCorrupt) {
				t.Fatalf("writing through a symlinked %s: %v, want ErrCorrupt", tt.dir, err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("written outside the content directory: %v", ents)
			}
		})
	}
}

// The sweep sees only the store's own names: foreign files and
// directories under the root are never listed, cleaned or deleted.
func TestFSSweepTouchesOnlyItsOwnNames(t *testing.T) {
	root := t.TempDir()
	s := blobstore.NewFS(root, false)
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, _ := s.Tenant(tn)
	st := stage(t, tc, "mine")
	tc.Put(bg, nil, []driver.Staged{st})
	st.Discard()
	ns := filepath.Join(root, "tenants", "acme", tn.Incarnation)
	foreign := []string{
		filepath.Join(ns, "README"),
		filepath.Join(ns, "tmp", "notes.txt"),
		filepath.Join(ns, "zz", strings.Repeat("a", 64)), // a checksum in the wrong directory
		filepath.Join(root, "tenants", "acme", "not-a-uuid", "x"),
		filepath.Join(root, "tenants", "Bad..Id", uuid.NewString(), "x"),
		filepath.Join(root, "tenants", "acme", tn.Incarnation+".db"),
	}
	for _, p := range foreign {
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("x"), 0o600)
	}
	future := time.Now().Add(time.Hour)
	var listed []string
	if err := tc.List(bg, future, func(sum string) error { listed = append(listed, sum); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != st.Checksum() {
		t.Fatalf("listed %v", listed)
	}
	for _, dry := range []bool{true, false} {
		if names, err := tc.Clean(bg, future, dry); err != nil || len(names) != 0 {
			t.Fatalf("Clean(dryRun %v) = %q, %v", dry, names, err)
		}
	}
	var incs []driver.StoredIncarnation
	s.Incarnations(bg, func(si driver.StoredIncarnation) error { incs = append(incs, si); return nil })
	if len(incs) != 1 || incs[0].Incarnation != tn.Incarnation {
		t.Fatalf("incarnations %+v", incs)
	}
	for _, p := range foreign {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("foreign %s: %v", p, err)
		}
	}
}

func TestDBStageKeepsBytes(t *testing.T) {
	tc, err := blobstore.DB{}.Tenant(docex.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	st := stage(t, tc, "in memory")
	if st.Size() != 9 || !bytes.Equal(st.Head(), []byte("in memory")) {
		t.Fatalf("staged %d %q", st.Size(), st.Head())
	}
	if err := tc.Put(bg, nil, []driver.Staged{st}); err == nil {
		t.Fatal("Put without a transaction accepted")
	}
}

// TestFSOpenRefusesPlantedContent: Open never follows a symbolic link (at
// the content's name or its directory) and refuses a file of another size
// before serving a byte (issue 8: a planted link made doc cat print a
// system file).
func TestFSOpenRefusesPlantedContent(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("root:x:0:0"), 0o600)
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, p string)
	}{
		{"symlink to a file", func(t *testing.T, p string) { must(t, os.Symlink(secret, p)) }},
		{"symlinked directory", func(t *testing.T, p string) {
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte("0123456789"), 0o600))
			must(t, os.Remove(filepath.Dir(p)))
			must(t, os.Symlink(dir, filepath.Dir(p)))
		}},
		{"longer file", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("0123456789 and more"), 0o600)) }},
		{"a directory", func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o700)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			tc, _ := blobstore.NewFS(root, true).Tenant(tn)
			sum := "c775e7b757ede630cd0aa1113bd102661ab38829ca52a6422ab782862f268646" // sha256("1234567890")
			p := fsPath(root, tn, sum)
			must(t, os.MkdirAll(filepath.Dir(p), 0o700))
			c.plant(t, p)
			rc, err := tc.Open(bg, nil, sum, 10)
			if err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				t.Fatalf("opened planted content, read %q", b)
			}
			if !errors.Is(err, docex.ErrCorrupt) {
				t.Fatalf("err %v, want ErrCorrupt", err)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// probe is s's driver.ContentProber.Probe, an error when it has none.
func probe(s driver.ContentStore) error {
	p, ok := s.(driver.ContentProber)
	if !ok {
		return errors.New("the store has no Probe")
	}
	return p.Probe(bg)
}

// TestFSMissingDirectory: with the content directory missing (deleted
// after docex init, or on a volume not mounted), reading, staging,
// putting and probing fail with docex.ErrStorageUnavailable naming the
// directory, and the directory is not created again. Before, a read was
// "content ... is missing" (docex.ErrNotFound, which the engine reports as
// corrupt data) and a write created a new, empty content directory
// without the system's claim marker. Content missing from a directory
// that is there is still docex.ErrNotFound.
func TestFSMissingDirectory(t *testing.T) {
	root := contentDir(t)
	s := blobstore.NewFS(root, false)
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, _ := s.Tenant(tn)
	kept, pending := stage(t, tc, "kept"), stage(t, tc, "pending")
	defer kept.Discard()
	defer pending.Discard()
	must(t, tc.Put(bg, nil, []driver.Staged{kept}))
	moved := root + ".moved"
	must(t, os.Rename(root, moved))

	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), "content directory "+root+" is missing") {
			t.Errorf("%s: %v, want ErrStorageUnavailable naming %s", what, err, root)
		}
		if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s created the content directory again (%v)", what, err)
		}
	}
	_, err := tc.Open(bg, nil, kept.Checksum(), kept.Size())
	unavailable("Open", err)
	_, err = tc.Stage(bg, strings.NewReader("new"), 1<<20)
	unavailable("Stage", err)
	tc2, _ := s.Tenant(docex.Tenant{ID: "other", Incarnation: uuid.NewString()})
	_, err = tc2.Stage(bg, strings.NewReader("new"), 1<<20)
	unavailable("Stage of another tenant", err)
	unavailable("Put", tc.Put(bg, nil, []driver.Staged{pending}))
	unavailable("Probe", probe(s))
	// The marker is not known to be missing: the directory is (docex gc
	// and verify said "no .docex-system marker", exit 2).
	unavailable("CheckClaim", s.CheckClaim(bg, "sys"))
	if !s.RootMissing() {
		t.Fatal("RootMissing is false with the directory gone")
	}

	// Back in place, everything is there.
	must(t, os.Rename(moved, root))
	must(t, probe(s))
	rc, err := tc.Open(bg, nil, kept.Checksum(), kept.Size())
	must(t, err)
	if b, err := io.ReadAll(rc); err != nil || string(b) != "kept" {
		t.Fatalf("after restore: %q %v", b, err)
	}
	rc.Close()

	// One content file missing: not found, the directory is there.
	must(t, os.Remove(fsPath(root, tn, kept.Checksum())))
	if _, err := tc.Open(bg, nil, kept.Checksum(), kept.Size()); !errors.Is(err, docex.ErrNotFound) || errors.Is(err, docex.ErrStorageUnavailable) {
		t.Fatalf("one file missing: %v, want ErrNotFound", err)
	}

	// A file where the directory should be.
	must(t, os.RemoveAll(root))
	must(t, os.WriteFile(root, nil, 0o600))
	if err := probe(s); !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("a file: %v", err)
	}
	if _, err := tc.Stage(bg, strings.NewReader("new"), 1<<20); !errors.Is(err, docex.ErrStorageUnavailable) {
		t.Fatalf("Stage with a file: %v", err)
	}
	if err := s.CheckClaim(bg, "sys"); !errors.Is(err, docex.ErrStorageUnavailable) || errors.Is(err, docex.ErrNotInitialized) {
		t.Fatalf("CheckClaim with a file: %v", err)
	}
	if err := s.Claim(bg, "sys"); err == nil {
		t.Fatal("Claim with a file succeeded")
	}

	// Claim (docex init) is what creates the directory.
	must(t, os.Remove(root))
	must(t, s.Claim(bg, "sys"))
	must(t, s.CheckClaim(bg, "sys"))
	if s.RootMissing() {
		t.Fatal("RootMissing after Claim")
	}
}

// sizedReader tells its size (as the CLI's file arguments do) but not its
// Len.
type sizedReader struct {
	r    io.Reader
	size int64
}

func (s sizedReader) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s sizedReader) Size() int64                { return s.size }

// TestDBStageSizedBuffer: content of a size its reader tells (Len, Size,
// a regular file from its offset) is staged in a buffer of that size, not
// one grown by doubling (a 200 MB document held 3.1 to 4.7 times its size
// in doc add before); one that tells nothing, or tells a wrong size,
// is staged whole all the same.
func TestDBStageSizedBuffer(t *testing.T) {
	tc, err := blobstore.DB{}.Tenant(docex.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3<<20 + 1
	data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	file := func(off int64) io.Reader {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, c := range []struct {
		name  string
		r     io.Reader
		want  []byte
		tight bool // the buffer is about the content's size
	}{
		{"bytes.Reader", bytes.NewReader(data), data, true},
		{"Size", sizedReader{bytes.NewBuffer(data), n}, data, true},
		{"file", file(0), data, true},
		{"file at an offset", file(1 << 20), data[1<<20:], true},
		{"a size too small", sizedReader{bytes.NewBuffer(data), 10}, data, false},
		{"a size too large", sizedReader{strings.NewReader("short"), n}, []byte("short"), false},
		{"no size", io.MultiReader(bytes.NewBuffer(data)), data, false},
	} {
		st, err := tc.Stage(bg, c.r, 64<<20)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if st.Size() != int64(len(c.want)) || st.Checksum() != contentkey.Sum(c.want) {
			t.Errorf("%s: staged %d bytes, checksum %s; want %d", c.name, st.Size(), st.Checksum(), len(c.want))
		}
		if held := tc.(interface{ Held(driver.Staged) int64 }).Held(st); c.tight && held > int64(len(c.want))*17/16 { // allocations round up to pages
			t.Errorf("%s: %d bytes held for %d of content", c.name, held, len(c.want))
		}
		st.Discard()
	}
}
