package blobstore_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/google/uuid"
)

// openFDs returns how many files the process has open, or -1 where the
// system does not tell (/proc/self/fd: Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		return -1
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// readBack opens the content of data in tc and checks it reads back.
func readBack(tc driver.TenantContent, data string) error {
	rc, err := tc.Open(bg, nil, contentkey.Sum([]byte(data)), int64(len(data)))
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if string(b) != data {
		return fmt.Errorf("read %q, want %q", b, data)
	}
	return nil
}

// TestFSBoundsOpenNamespaces: the store holds at most its bound of
// namespace directories open, however many tenants it served (before,
// one per tenant ever touched: 10,000 tenants met the open-file limit,
// and then every content operation and every database open failed with
// EMFILE), and a namespace whose directory was replaced has its old
// directory closed once no operation uses it (before, only when the
// garbage collector happened to run). Content of a tenant whose directory
// was let go of is read through it opened again, and content staged
// before is put through it.
func TestFSBoundsOpenNamespaces(t *testing.T) {
	const max = 8
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s *blobstore.FS, root string)
	}{
		{"many tenants", func(t *testing.T, s *blobstore.FS, root string) {
			var tcs []driver.TenantContent // kept: the engine caches each
			for i := range 5 * max {
				tc, err := s.Tenant(docex.Tenant{ID: fmt.Sprintf("t%d", i), Incarnation: uuid.NewString()})
				must(t, err)
				tcs = append(tcs, tc)
				must(t, writeAll(tc, fmt.Sprintf("content of %d", i)))
				must(t, readBack(tc, fmt.Sprintf("content of %d", i)))
			}
			for i, tc := range tcs {
				must(t, readBack(tc, fmt.Sprintf("content of %d", i)))
			}
		}},
		{"staged across eviction", func(t *testing.T, s *blobstore.FS, root string) {
			// Content staged holds its namespace's directory while the
			// store lets go of it (other tenants used meanwhile; with a
			// bound of one, a directory in use is let go of too): it is
			// synced and put through it (still open), into the directory
			// opened again (the same one).
			blobstore.SetMaxOpen(s, 1)
			tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			tc, err := s.Tenant(tn)
			must(t, err)
			st := stage(t, tc, "staged early")
			for i := range 2 * max {
				other, err := s.Tenant(docex.Tenant{ID: fmt.Sprintf("t%d", i), Incarnation: uuid.NewString()})
				must(t, err)
				must(t, writeAll(other, "other"))
			}
			must(t, tc.Sync(bg, []driver.Staged{st}))
			must(t, tc.Put(bg, nil, []driver.Staged{st}))
			st.Discard()
			must(t, readBack(tc, "staged early"))
			ns, _ := contentkey.Tenant(tn)
			if n := countFiles(filepath.Join(root, filepath.FromSlash(ns), "tmp")); n != 0 {
				t.Errorf("%d staging files left after Discard", n)
			}
		}},
		{"directory replaced", func(t *testing.T, s *blobstore.FS, root string) {
			tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			tc, err := s.Tenant(tn)
			must(t, err)
			ns, _ := contentkey.Tenant(tn)
			dir := filepath.Join(root, filepath.FromSlash(ns))
			for i := range 5 * max {
				data := fmt.Sprintf("round %d", i)
				must(t, writeAll(tc, data))
				must(t, readBack(tc, data))
				must(t, os.Rename(dir, filepath.Join(root, fmt.Sprintf("away%d", i))))
				must(t, os.Mkdir(dir, 0o700))
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := contentDir(t)
			s := blobstore.NewFS(root, false) // fsync: staging files are opened again
			blobstore.SetMaxOpen(s, max)
			before := openFDs(t)
			c.run(t, s, root)
			if n := blobstore.OpenNamespaces(s); n > max {
				t.Errorf("%d namespaces held open, bound %d", n, max)
			}
			if before >= 0 {
				// The store's own, and a few the runtime may open.
				if grown := openFDs(t) - before; grown > max+4 {
					t.Errorf("%d more files open, bound %d namespaces", grown, max)
				}
			}
		})
	}
}

// TestFSNamespaceCacheConcurrent (run with -race): operations on many
// tenants run concurrently while the store lets go of their namespace
// directories (a bound of 3 for 24 tenants); none fails, and none uses a
// directory closed under it (an os.Root closed fails every call).
func TestFSNamespaceCacheConcurrent(t *testing.T) {
	for _, c := range []struct {
		name string
		new  func(root string) *blobstore.FS
	}{
		{"loose", func(root string) *blobstore.FS { return blobstore.NewFS(root, true) }},
		// Content over packMax spills to a staging file: the same path
		// as loose content, through the packing store's Stage.
		{"spilled", func(root string) *blobstore.FS { return blobstore.NewFSPacked(root, true, 4) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.new(contentDir(t))
			blobstore.SetMaxOpen(s, 3)
			const tenants, workers, rounds = 24, 8, 40
			tcs := make([]driver.TenantContent, tenants)
			for i := range tcs {
				tc, err := s.Tenant(docex.Tenant{ID: fmt.Sprintf("t%d", i), Incarnation: uuid.NewString()})
				must(t, err)
				tcs[i] = tc
			}
			errc := make(chan error, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for r := range rounds {
						i := (w*7 + r*5) % tenants
						data := fmt.Sprintf("worker %d round %d tenant %d", w, r, i)
						if err := writeAll(tcs[i], data); err != nil {
							errc <- fmt.Errorf("tenant %d: write: %w", i, err)
							return
						}
						if err := readBack(tcs[i], data); err != nil {
							errc <- fmt.Errorf("tenant %d: read: %w", i, err)
							return
						}
						if err := tcs[i].List(bg, time.Now().Add(time.Hour), func(string) error { return nil }); err != nil {
							errc <- fmt.Errorf("tenant %d: list: %w", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			if n := blobstore.OpenNamespaces(s); n > 3 {
				t.Errorf("%d namespaces held open, bound 3", n)
			}
		})
	}
}

// TestFSPutSyncsNewDirectories: a Put that makes a two-hex-digit
// directory fsyncs the namespace's directory (its entry), and a namespace
// made anew has the directories above it fsynced (their entries); a Put
// into a two-hex-digit directory that exists fsyncs that directory only.
// Before, neither entry was fsynced: a power loss could lose the
// directory, and with it content acknowledged.
func TestFSPutSyncsNewDirectories(t *testing.T) {
	root := contentDir(t)
	s := blobstore.NewFS(root, false)
	var mu sync.Mutex
	var synced []string
	blobstore.OnDirSync(s, func(dir string) {
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, filepath.Clean(dir))
	})
	take := func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		m := map[string]bool{}
		for _, d := range synced {
			m[d] = true
		}
		synced = nil
		return m
	}
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, err := s.Tenant(tn)
	must(t, err)
	ns := filepath.Join(root, "tenants", "acme", tn.Incarnation)
	first := "first"
	sum := contentkey.Sum([]byte(first))
	// Content in the first's two-hex-digit directory, and in another.
	var same, other string
	for i := 0; same == "" || other == ""; i++ {
		d := fmt.Sprintf("content %d", i)
		switch s := contentkey.Sum([]byte(d)); {
		case s[:2] == sum[:2] && same == "":
			same = d
		case s[:2] != sum[:2] && other == "":
			other = d
		}
	}
	for _, c := range []struct {
		data      string
		want, not []string
	}{
		{first, []string{ns, filepath.Join(ns, sum[:2]), filepath.Join(root, "tenants", "acme"), filepath.Join(root, "tenants"), root}, nil},
		{other, []string{ns, filepath.Join(ns, contentkey.Sum([]byte(other))[:2])}, []string{root}},
		{same, []string{filepath.Join(ns, sum[:2])}, []string{ns, root}},
	} {
		must(t, writeAll(tc, c.data))
		got := take()
		for _, d := range c.want {
			if !got[d] {
				t.Errorf("put %q: %s not fsynced (fsynced %v)", c.data, d, got)
			}
		}
		for _, d := range c.not {
			if got[d] {
				t.Errorf("put %q: %s fsynced, its entries did not change", c.data, d)
			}
		}
	}
}
