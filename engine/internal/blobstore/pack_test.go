package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/google/uuid"
)

// packRig is a tenant of a SQLite backend (holding the references and
// the locators) and its namespace in a packing filesystem store.
type packRig struct {
	t      testing.TB
	root   string
	ns     string
	st     driver.TenantStore
	tc     driver.TenantContent
	basket string
}

func newPackRig(t testing.TB, packMax int64) *packRig {
	t.Helper()
	be, err := sqlite.Open(bg, sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if _, err := be.Bootstrap(bg, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	tn := docex.Tenant{ID: "acme", DisplayName: "acme", Status: docex.TenantActive, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Incarnation: uuid.NewString()}
	audit := docex.AuditEntry{ID: uuid.NewString(), Time: tn.CreatedAt, UserID: "test", Roles: []string{"operator"}, Operation: "tenant.create", Target: "acme", Outcome: docex.OutcomeOK}
	must(t, be.CreateTenant(bg, tn, audit))
	st, err := be.OpenTenant(bg, "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root := contentDir(t)
	tc, err := blobstore.NewFSPacked(root, false, packMax).Tenant(st.Tenant())
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := contentkey.Tenant(st.Tenant())
	r := &packRig{t: t, root: root, ns: filepath.Join(root, filepath.FromSlash(ns)), st: st, tc: tc, basket: uuid.NewString()}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.InsertBasket(bg, docex.Basket{ID: r.basket, Name: "b", CreatedAt: time.Now().UTC()})
	}))
	return r
}

// add stages, syncs and puts contents, inserting one document each, the
// way the engine does; it returns the document ids.
func (r *packRig) add(contents ...[]byte) []string {
	r.t.Helper()
	var staged []driver.Staged
	for _, c := range contents {
		s, err := r.tc.Stage(bg, bytes.NewReader(c), 1<<30)
		if err != nil {
			r.t.Fatal(err)
		}
		defer s.Discard()
		staged = append(staged, s)
	}
	must(r.t, r.tc.Sync(bg, staged))
	ids := make([]string, len(staged))
	must(r.t, r.st.Write(bg, func(tx driver.Tx) error {
		for i, s := range staged {
			ids[i] = uuid.NewString()
			now := time.Now().UTC()
			if err := tx.InsertDocument(bg, docex.Document{ID: ids[i], BasketID: r.basket, Name: "d", ContentType: "application/octet-stream", Size: s.Size(), Checksum: s.Checksum(), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return r.tc.Put(bg, tx, staged)
	}))
	return ids
}

// remove deletes the documents ids and their contents (one each, in
// order) in one transaction, the way the engine deletes documents.
func (r *packRig) remove(ids []string, contents [][]byte) {
	r.t.Helper()
	must(r.t, r.st.WriteIsolated(bg, func(tx driver.Tx) error {
		for i, id := range ids {
			if err := tx.DeleteDocument(bg, id); err != nil {
				return err
			}
			if err := r.tc.Delete(bg, tx, contentkey.Sum(contents[i])); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (r *packRig) read(sum string, size int64) ([]byte, error) {
	rc, err := r.tc.Open(bg, r.st, sum, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (r *packRig) packs() []string {
	ents, _ := os.ReadDir(filepath.Join(r.ns, "packs"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestPackLayout: a batch of small contents is one pack file (no staging
// file, no file per content); larger content is a file of its own; both
// read back verified.
func TestPackLayout(t *testing.T) {
	r := newPackRig(t, 1024)
	var contents [][]byte
	for i := range 50 {
		contents = append(contents, []byte(fmt.Sprintf("small content %d", i)))
	}
	big := bytes.Repeat([]byte("L"), 4096)
	contents = append(contents, big)
	r.add(contents...)
	if p := r.packs(); len(p) != 1 || !strings.HasSuffix(p[0], ".pack") {
		t.Fatalf("packs: %v", p)
	}
	if n := countFiles(filepath.Join(r.ns, "tmp")); n != 0 {
		t.Fatalf("%d staging files left", n)
	}
	loose := countFiles(r.ns) - 1 // minus the pack
	if loose != 1 {
		t.Fatalf("%d loose content files, want 1 (the large one)", loose)
	}
	for _, c := range contents {
		got, err := r.read(contentkey.Sum(c), int64(len(c)))
		if err != nil || !bytes.Equal(got, c) {
			t.Fatalf("read %q: %q, %v", c[:min(10, len(c))], got, err)
		}
	}
	info, err := os.Stat(filepath.Join(r.ns, "packs", r.packs()[0]))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("pack mode: %v %v", info.Mode(), err)
	}
}

// TestPackDamage: a damaged range, a truncated or missing pack, a pack
// replaced by a symbolic link, a damaged locator are errors, never wrong
// bytes.
func TestPackDamage(t *testing.T) {
	for _, c := range []struct {
		name string
		harm func(t *testing.T, pack string, r *packRig, sum string)
		want error
	}{
		{"flipped byte", func(t *testing.T, pack string, _ *packRig, _ string) {
			b, _ := os.ReadFile(pack)
			b[3] ^= 1
			must(t, os.WriteFile(pack, b, 0o600))
		}, docex.ErrCorrupt},
		{"truncated", func(t *testing.T, pack string, _ *packRig, _ string) { must(t, os.Truncate(pack, 2)) }, docex.ErrCorrupt},
		{"missing", func(t *testing.T, pack string, _ *packRig, _ string) { must(t, os.Remove(pack)) }, docex.ErrNotFound},
		{"symlink", func(t *testing.T, pack string, _ *packRig, _ string) {
			other := filepath.Join(t.TempDir(), "x")
			b, _ := os.ReadFile(pack)
			must(t, os.WriteFile(other, b, 0o600))
			must(t, os.Remove(pack))
			must(t, os.Symlink(other, pack))
		}, docex.ErrCorrupt},
		{"locator", func(t *testing.T, _ string, r *packRig, sum string) {
			must(t, r.st.Write(bg, func(tx driver.Tx) error {
				if err := tx.DeleteContent(bg, sum); err != nil {
					return err
				}
				return tx.PutContent(bg, sum, []byte("docex-pack/1 ../../etc/passwd 0 9"))
			}))
		}, docex.ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newPackRig(t, 1024)
			data := []byte("packed content")
			r.add(data)
			sum := contentkey.Sum(data)
			c.harm(t, filepath.Join(r.ns, "packs", r.packs()[0]), r, sum)
			got, err := r.read(sum, int64(len(data)))
			if !errors.Is(err, c.want) {
				t.Fatalf("read %q, err %v, want %v", got, err, c.want)
			}
		})
	}
}

// TestSweepPacks: the sweep removes packs nothing refers to (a crash
// between Sync and commit) and rewrites packs mostly dead, moving the
// live ranges; it never touches a file that is not its own, nor a pack
// younger than the cutoff.
func TestSweepPacks(t *testing.T) {
	r := newPackRig(t, 1024)
	ps, ok := r.tc.(blobstore.PackSweeper)
	if !ok {
		t.Fatal("packing store is not a PackSweeper")
	}
	// An orphan pack: synced, never committed.
	orphan, err := r.tc.Stage(bg, strings.NewReader("never committed"), 100)
	must(t, err)
	must(t, r.tc.Sync(bg, []driver.Staged{orphan}))
	orphan.Discard()
	// A pack of 10 contents, 9 of them deleted.
	var contents [][]byte
	for i := range 10 {
		contents = append(contents, []byte(fmt.Sprintf("content number %d", i)))
	}
	ids := r.add(contents...)
	r.remove(ids[1:], contents[1:])
	// Files that are not the store's.
	foreign := []string{"notes.txt", "123.pack", uuid.NewString() + ".pack.bak"}
	for _, f := range foreign {
		must(t, os.WriteFile(filepath.Join(r.ns, "packs", f), []byte("x"), 0o600))
	}
	before := r.packs()
	if n, err := ps.SweepPacks(bg, r.st, time.Now().Add(-time.Hour), false); err != nil || n != 0 {
		t.Fatalf("young packs swept: %d, %v", n, err)
	}
	n, err := ps.SweepPacks(bg, r.st, time.Now().Add(time.Second), false)
	if err != nil || n != 2 {
		t.Fatalf("swept %d packs, want 2 (the orphan and the mostly dead one): %v", n, err)
	}
	after := r.packs()
	if len(after) != len(before)-1 {
		t.Fatalf("packs before %v after %v: want one new pack for the live content", before, after)
	}
	for _, f := range foreign {
		if _, err := os.Stat(filepath.Join(r.ns, "packs", f)); err != nil {
			t.Fatalf("sweep touched %s: %v", f, err)
		}
	}
	got, err := r.read(contentkey.Sum(contents[0]), int64(len(contents[0])))
	if err != nil || !bytes.Equal(got, contents[0]) {
		t.Fatalf("live content after compaction: %q, %v", got, err)
	}
	// The new pack is fully live: a second sweep keeps it.
	if n, err := ps.SweepPacks(bg, r.st, time.Now().Add(time.Second), false); err != nil || n != 0 {
		t.Fatalf("second sweep removed %d: %v", n, err)
	}
}

// packBytes returns the content of every file in the packs directory, by
// name.
func (r *packRig) packBytes() map[string]string {
	r.t.Helper()
	out := map[string]string{}
	for _, name := range r.packs() {
		b, err := os.ReadFile(filepath.Join(r.ns, "packs", name))
		if err != nil {
			r.t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

// TestSweepPacksDryRun: for each kind of pack the sweep removes, and for
// packs it keeps, a dry run counts what the sweep then removes and
// changes nothing: no pack removed, written or rewritten, no locator
// moved. A damaged pack, which the rewrite keeps for docex verify to
// report, is not counted either.
func TestSweepPacksDryRun(t *testing.T) {
	numbered := func(n int) [][]byte {
		var contents [][]byte
		for i := range n {
			contents = append(contents, []byte(fmt.Sprintf("content number %d", i)))
		}
		return contents
	}
	for _, c := range []struct {
		name string
		// make creates the packs and returns the contents still referenced.
		make func(r *packRig) [][]byte
		want int // packs the sweep removes
	}{
		{"orphan pack", func(r *packRig) [][]byte {
			orphan, err := r.tc.Stage(bg, strings.NewReader("never committed"), 100)
			must(t, err)
			must(t, r.tc.Sync(bg, []driver.Staged{orphan}))
			orphan.Discard()
			return nil
		}, 1},
		{"mostly dead pack", func(r *packRig) [][]byte {
			contents := numbered(10)
			ids := r.add(contents...)
			r.remove(ids[1:], contents[1:])
			return contents[:1]
		}, 1},
		{"damaged mostly dead pack", func(r *packRig) [][]byte {
			contents := numbered(10)
			ids := r.add(contents...)
			r.remove(ids[1:], contents[1:])
			for name, b := range r.packBytes() {
				p := filepath.Join(r.ns, "packs", name)
				must(t, os.WriteFile(p, bytes.Repeat([]byte("x"), len(b)), 0o600))
			}
			return nil
		}, 0},
		{"live pack", func(r *packRig) [][]byte {
			contents := numbered(3)
			r.add(contents...)
			return contents
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newPackRig(t, 1024)
			ps := r.tc.(blobstore.PackSweeper)
			live := c.make(r)
			before := r.packBytes()
			cutoff := time.Now().Add(time.Second)
			n, err := ps.SweepPacks(bg, r.st, cutoff, true)
			if err != nil || n != c.want {
				t.Fatalf("dry run counted %d packs, %v; want %d", n, err, c.want)
			}
			if after := r.packBytes(); !maps.Equal(after, before) {
				t.Fatalf("the dry run changed the packs: %d files before, %d after", len(before), len(after))
			}
			for _, data := range live {
				got, err := r.read(contentkey.Sum(data), int64(len(data)))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("after the dry run: %q, %v", got, err)
				}
			}
			n, err = ps.SweepPacks(bg, r.st, cutoff, false)
			if err != nil || n != c.want {
				t.Fatalf("the sweep removed %d packs, %v; the dry run said %d", n, err, c.want)
			}
			after := r.packBytes()
			gone := 0
			for name := range before {
				if _, ok := after[name]; !ok {
					gone++
				}
			}
			if gone != c.want {
				t.Fatalf("%d packs gone, the sweep said %d", gone, c.want)
			}
			for _, data := range live {
				got, err := r.read(contentkey.Sum(data), int64(len(data)))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("after the sweep: %q, %v", got, err)
				}
			}
		})
	}
}

// staleReader answers the first OpenContent with a locator read before
// the sweep moved the content, as a reader that looked it up just before
// docex gc rewrote its pack would see; later calls go to the store.
type staleReader struct {
	driver.TenantStore
	stale []byte
	used  bool
}

func (s *staleReader) OpenContent(ctx context.Context, sum string) (io.ReadCloser, error) {
	if !s.used {
		s.used = true
		return io.NopCloser(bytes.NewReader(s.stale)), nil
	}
	return s.TenantStore.OpenContent(ctx, sum)
}

// TestReadDuringCompaction: a read that looked up a locator just before
// the sweep moved its content into a new pack (and removed the old one)
// finds the content through the new locator instead of failing.
func TestReadDuringCompaction(t *testing.T) {
	r := newPackRig(t, 1024)
	ps := r.tc.(blobstore.PackSweeper)
	var contents [][]byte
	for i := range 4 {
		contents = append(contents, []byte(fmt.Sprintf("content number %d", i)))
	}
	ids := r.add(contents...)
	r.remove(ids[1:], contents[1:])
	sum, size := contentkey.Sum(contents[0]), int64(len(contents[0]))
	lrc, err := r.st.OpenContent(bg, sum)
	must(t, err)
	old, err := io.ReadAll(lrc)
	lrc.Close()
	must(t, err)
	if n, err := ps.SweepPacks(bg, r.st, time.Now().Add(time.Second), false); err != nil || n != 1 {
		t.Fatalf("swept %d packs, want the mostly dead one: %v", n, err)
	}
	rc, err := r.tc.Open(bg, &staleReader{TenantStore: r.st, stale: old}, sum, size)
	if err != nil {
		t.Fatalf("read with a locator from before the compaction: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, contents[0]) {
		t.Fatalf("read %q, %v; want %q", got, err, contents[0])
	}
	// A locator that keeps naming a removed pack is not found, after a
	// second look; so is one whose reference went away meanwhile.
	for name, rd := range map[string]driver.Reader{
		"same stale locator": &fixedReader{TenantStore: r.st, b: old},
		"reference gone":     &staleReader{TenantStore: &fixedReader{TenantStore: r.st}, stale: old},
	} {
		if _, err := r.tc.Open(bg, rd, sum, size); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

// fixedReader answers every OpenContent with b, or not found when b is
// nil.
type fixedReader struct {
	driver.TenantStore
	b []byte
}

func (f *fixedReader) OpenContent(ctx context.Context, sum string) (io.ReadCloser, error) {
	if f.b == nil {
		return nil, docex.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(f.b)), nil
}

// TestSpillThenPut: content Spill moved out of memory (into a pack; for
// the database store into a spool file) holds no memory any more (Held)
// and is put and read back as content staged in memory is, in a batch
// larger than what the database store reads back for one statement.
func TestSpillThenPut(t *testing.T) {
	type spiller interface {
		Held(driver.Staged) int64
		Spill(ctx context.Context, staged []driver.Staged) error
	}
	for _, store := range []string{"filesystem", "database"} {
		t.Run(store, func(t *testing.T) {
			r := newPackRig(t, 8<<20)
			if store == "database" {
				tc, err := blobstore.DB{}.Tenant(r.st.Tenant())
				must(t, err)
				r.tc = tc
			}
			sp := r.tc.(spiller)
			var contents [][]byte
			for i := range 4 {
				contents = append(contents, bytes.Repeat([]byte{byte('a' + i)}, 7<<20)) // 28 MiB
			}
			contents = append(contents, []byte("small"), []byte("held"))
			var staged []driver.Staged
			for _, c := range contents {
				s, err := r.tc.Stage(bg, bytes.NewReader(c), 1<<30)
				must(t, err)
				defer s.Discard()
				if sp.Held(s) < int64(len(c)) {
					t.Fatalf("%d bytes staged in memory, Held says %d", len(c), sp.Held(s))
				}
				staged = append(staged, s)
			}
			spilled := staged[:len(staged)-1]
			must(t, sp.Spill(bg, spilled))
			for _, s := range spilled {
				if n := sp.Held(s); n != 0 {
					t.Fatalf("Held after Spill: %d", n)
				}
			}
			must(t, r.tc.Sync(bg, staged))
			must(t, r.st.Write(bg, func(tx driver.Tx) error {
				for _, s := range staged {
					now := time.Now().UTC()
					if err := tx.InsertDocument(bg, docex.Document{ID: uuid.NewString(), BasketID: r.basket, Name: "d", ContentType: "application/octet-stream", Size: s.Size(), Checksum: s.Checksum(), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now}); err != nil {
						return err
					}
				}
				return r.tc.Put(bg, tx, staged)
			}))
			for _, c := range contents {
				got, err := r.read(contentkey.Sum(c), int64(len(c)))
				if err != nil || !bytes.Equal(got, c) {
					t.Fatalf("read back %d of %d bytes: %v", len(got), len(c), err)
				}
			}
			if store == "filesystem" {
				if ps := r.packs(); len(ps) != 2 {
					t.Fatalf("%d packs, want 2 (the spill's and Sync's)", len(ps))
				}
			}
		})
	}
}
