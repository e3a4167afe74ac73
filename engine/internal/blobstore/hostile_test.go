package blobstore_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/google/uuid"
)

// snapshot returns every file under dir with its content, and every
// directory, so that a test can tell that nothing there changed.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	}))
	return out
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range after {
		if w, ok := before[k]; !ok || w != v {
			t.Errorf("%s: %s written (%q)", what, k, v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("%s: %s removed", what, k)
		}
	}
}

// writeAll stages, syncs and puts data in tc the way the engine does (a
// packing store's Put needs no transaction to fail on the way there).
func writeAll(tc driver.TenantContent, data string) error {
	st, err := tc.Stage(bg, strings.NewReader(data), 1<<20)
	if err != nil {
		return err
	}
	defer st.Discard()
	if err := tc.Sync(bg, []driver.Staged{st}); err != nil {
		return err
	}
	return tc.Put(bg, nil, []driver.Staged{st})
}

// TestFSRefusesSymlinkedNamespace: a symbolic link at an element of a
// tenant's namespace (tenants/<id>/<incarnation>, tenants/<id>,
// tenants), pointing at another tenant's directory or outside the store,
// is docex.ErrCorrupt for reads, writes, the sweep's listing and the
// staging cleanup, and nothing is read or written through it. Before,
// the store followed it: tenant evil read acme's content, wrote into
// acme's directory, and its gc listed acme's files as its own
// (unreferenced, so deleted).
func TestFSRefusesSymlinkedNamespace(t *testing.T) {
	for _, c := range []struct {
		name string
		// plant makes evil's namespace reach victim (acme's, or a
		// directory outside the store); it returns the link's path.
		plant func(t *testing.T, root, acmeNS, evilNS string) (victim string)
	}{
		{"incarnation to another tenant's", func(t *testing.T, root, acmeNS, evilNS string) string {
			must(t, os.MkdirAll(filepath.Dir(evilNS), 0o700))
			must(t, os.Symlink(acmeNS, evilNS))
			return acmeNS
		}},
		{"relative incarnation to another tenant's", func(t *testing.T, root, acmeNS, evilNS string) string {
			must(t, os.MkdirAll(filepath.Dir(evilNS), 0o700))
			rel, err := filepath.Rel(filepath.Dir(evilNS), acmeNS)
			must(t, err)
			must(t, os.Symlink(rel, evilNS))
			return acmeNS
		}},
		{"tenant id to another tenant's", func(t *testing.T, root, acmeNS, evilNS string) string {
			// acme's incarnation directory under evil's name.
			must(t, os.Mkdir(filepath.Join(filepath.Dir(acmeNS), filepath.Base(evilNS)), 0o700))
			must(t, os.Symlink(filepath.Dir(acmeNS), filepath.Dir(evilNS)))
			return filepath.Dir(acmeNS)
		}},
		{"tenants outside", func(t *testing.T, root, acmeNS, evilNS string) string {
			outside := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(outside, "evil", filepath.Base(evilNS)), 0o700))
			must(t, os.Rename(filepath.Join(root, "tenants"), filepath.Join(root, "kept")))
			must(t, os.Symlink(outside, filepath.Join(root, "tenants")))
			return outside
		}},
	} {
		for _, packed := range []bool{false, true} {
			name := c.name
			if packed {
				name += "/packed"
			}
			t.Run(name, func(t *testing.T) {
				root := contentDir(t)
				store := blobstore.NewFS(root, false)
				if packed {
					store = blobstore.NewFSPacked(root, false, blobstore.DefaultPackMax)
				}
				acme := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
				evil := docex.Tenant{ID: "evil", Incarnation: uuid.NewString()}
				acmeTC, _ := blobstore.NewFS(root, false).Tenant(acme)
				secret := stage(t, acmeTC, "acme's secret")
				must(t, acmeTC.Put(bg, nil, []driver.Staged{secret}))
				secret.Discard()
				acmeNS := filepath.Dir(filepath.Dir(fsPath(root, acme, secret.Checksum())))
				evilNS := filepath.Dir(filepath.Dir(fsPath(root, evil, secret.Checksum())))
				victim := c.plant(t, root, acmeNS, evilNS)
				before := snapshot(t, victim)

				evilTC, _ := store.Tenant(evil)
				rc, err := evilTC.Open(bg, nil, secret.Checksum(), secret.Size())
				if err == nil {
					b, _ := io.ReadAll(rc)
					rc.Close()
					t.Fatalf("read through the link: %q", b)
				}
				if !errors.Is(err, docex.ErrCorrupt) {
					t.Errorf("Open: %v, want ErrCorrupt", err)
				}
				if err := writeAll(evilTC, "evil's content"); !errors.Is(err, docex.ErrCorrupt) {
					t.Errorf("write: %v, want ErrCorrupt", err)
				}
				var listed []string
				err = evilTC.List(bg, time.Now().Add(time.Hour), func(sum string) error { listed = append(listed, sum); return nil })
				if len(listed) != 0 || !errors.Is(err, docex.ErrCorrupt) {
					t.Errorf("List: %v, %v; want nothing, ErrCorrupt", listed, err)
				}
				if names, err := evilTC.Clean(bg, time.Now().Add(time.Hour), false); len(names) != 0 || !errors.Is(err, docex.ErrCorrupt) {
					t.Errorf("Clean: %v, %v; want nothing, ErrCorrupt", names, err)
				}
				if err := evilTC.Delete(bg, nil, secret.Checksum()); !errors.Is(err, docex.ErrCorrupt) {
					t.Errorf("Delete: %v, want ErrCorrupt", err)
				}
				sameSnapshot(t, "victim", before, snapshot(t, victim))
			})
		}
	}
}

// TestFSRefusesDirectorySwappedBetweenOperations: a directory of the
// namespace replaced by a symbolic link while the store uses it (between
// Stage and Put, between two reads) is refused, docex.ErrCorrupt, and
// nothing is read or written through the link. Before, Put linked the
// staging file through a tmp directory swapped for a link to outside (a
// file an attacker could change meanwhile became the tenant's content),
// and a namespace swapped for a link to another tenant's served that
// tenant's content.
func TestFSRefusesDirectorySwappedBetweenOperations(t *testing.T) {
	t.Run("tmp between Stage and Put", func(t *testing.T) {
		root, outside := contentDir(t), t.TempDir()
		tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
		tc, _ := blobstore.NewFS(root, false).Tenant(tn)
		st := stage(t, tc, "real content")
		defer st.Discard()
		must(t, tc.Sync(bg, []driver.Staged{st}))
		p := fsPath(root, tn, st.Checksum())
		tmp := filepath.Join(filepath.Dir(filepath.Dir(p)), "tmp")
		// The staging directory moves out, a link takes its place, and
		// the staged file is changed where it now is.
		moved := filepath.Join(outside, "tmp")
		must(t, os.Rename(tmp, moved))
		must(t, os.Symlink(moved, tmp))
		ents, _ := os.ReadDir(moved)
		for _, e := range ents {
			must(t, os.WriteFile(filepath.Join(moved, e.Name()), []byte("evil content"), 0o600))
		}
		before := snapshot(t, outside)
		if err := tc.Put(bg, nil, []driver.Staged{st}); !errors.Is(err, docex.ErrCorrupt) {
			t.Errorf("Put: %v, want ErrCorrupt", err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("content linked in from outside (%v)", err)
		}
		sameSnapshot(t, "outside", before, snapshot(t, outside))
	})
	t.Run("namespace between reads", func(t *testing.T) {
		root := contentDir(t)
		acme := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
		evil := docex.Tenant{ID: "evil", Incarnation: uuid.NewString()}
		acmeTC, _ := blobstore.NewFS(root, false).Tenant(acme)
		secret := stage(t, acmeTC, "acme's secret")
		must(t, acmeTC.Put(bg, nil, []driver.Staged{secret}))
		secret.Discard()
		evilTC, _ := blobstore.NewFS(root, false).Tenant(evil)
		own := stage(t, evilTC, "evil's own")
		must(t, evilTC.Put(bg, nil, []driver.Staged{own}))
		own.Discard()
		rc, err := evilTC.Open(bg, nil, own.Checksum(), own.Size())
		must(t, err)
		rc.Close()
		// evil's namespace, in use, is replaced by a link to acme's.
		acmeNS := filepath.Dir(filepath.Dir(fsPath(root, acme, secret.Checksum())))
		evilNS := filepath.Dir(filepath.Dir(fsPath(root, evil, own.Checksum())))
		must(t, os.Rename(evilNS, evilNS+".old"))
		must(t, os.Symlink(acmeNS, evilNS))
		before := snapshot(t, acmeNS)
		rc, err = evilTC.Open(bg, nil, secret.Checksum(), secret.Size())
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Fatalf("read another tenant's content: %q", b)
		}
		if !errors.Is(err, docex.ErrCorrupt) {
			t.Errorf("Open: %v, want ErrCorrupt", err)
		}
		if err := writeAll(evilTC, "evil's content"); !errors.Is(err, docex.ErrCorrupt) {
			t.Errorf("write: %v, want ErrCorrupt", err)
		}
		sameSnapshot(t, "acme", before, snapshot(t, acmeNS))
	})
}

// TestFSDeleteTenantThroughLink: DeleteTenant removes nothing through a
// symbolic link at tenants/<id> (before, os.RemoveAll followed it into
// the directory it names).
func TestFSDeleteTenantThroughLink(t *testing.T) {
	root, outside := contentDir(t), t.TempDir()
	inc := uuid.NewString()
	must(t, os.MkdirAll(filepath.Join(outside, inc), 0o700))
	must(t, os.WriteFile(filepath.Join(outside, inc, "keep"), []byte("keep"), 0o600))
	must(t, os.MkdirAll(filepath.Join(root, "tenants"), 0o700))
	must(t, os.Symlink(outside, filepath.Join(root, "tenants", "evil")))
	err := blobstore.NewFS(root, false).DeleteTenant(bg, "evil", inc)
	if !errors.Is(err, docex.ErrCorrupt) {
		t.Errorf("DeleteTenant: %v, want ErrCorrupt", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, inc, "keep")); err != nil || string(b) != "keep" {
		t.Fatalf("removed through the link: %q, %v", b, err)
	}
}

// TestFSSystemLevelThroughLink: the store's own names at its root are
// reached beneath it. A tenants directory that is a link (to outside) is
// not listed for docex gc, which would delete what it finds there as the
// directories of deleted tenants (before, Incarnations listed them and
// DeleteTenant removed them), and a claim marker that is a link leading
// out of the root is not read (before, another directory's marker
// claimed this one).
func TestFSSystemLevelThroughLink(t *testing.T) {
	root, outside := contentDir(t), t.TempDir()
	s := blobstore.NewFS(root, false)
	inc := uuid.NewString()
	must(t, os.MkdirAll(filepath.Join(outside, "acme", inc), 0o700))
	must(t, os.WriteFile(filepath.Join(outside, "acme", inc, "keep"), []byte("keep"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(root, "tenants")))
	var listed []driver.StoredIncarnation
	err := s.Incarnations(bg, func(si driver.StoredIncarnation) error { listed = append(listed, si); return nil })
	if len(listed) != 0 || !errors.Is(err, docex.ErrCorrupt) {
		t.Errorf("Incarnations: %+v, %v; want nothing, ErrCorrupt", listed, err)
	}
	if err := s.DeleteTenant(bg, "acme", inc); !errors.Is(err, docex.ErrCorrupt) {
		t.Errorf("DeleteTenant: %v, want ErrCorrupt", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "acme", inc, "keep")); err != nil || string(b) != "keep" {
		t.Fatalf("removed through the link: %q, %v", b, err)
	}

	other := blobstore.NewFS(t.TempDir(), false)
	must(t, other.Claim(bg, "sys"))
	must(t, os.Symlink(filepath.Join(other.Root(), ".docex-system"), filepath.Join(root, ".docex-system")))
	if err := s.CheckClaim(bg, "sys"); err == nil {
		t.Error("CheckClaim read a marker outside the root")
	}
	before := snapshot(t, other.Root())
	if err := s.Claim(bg, "sys"); err == nil {
		t.Error("Claim accepted a marker outside the root")
	}
	sameSnapshot(t, "the other root", before, snapshot(t, other.Root()))
}
