package blobstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
)

var checksumRule = regexp.MustCompile(`^[0-9a-f]{64}$`)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "store"), false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidChecksum(t *testing.T) {
	good := sum([]byte("x"))
	cases := map[string]bool{
		good:                           true,
		strings.Repeat("0", 64):        true,
		strings.Repeat("f", 64):        true,
		"":                             false,
		good[:63]:                      false,
		good + "0":                     false,
		strings.ToUpper(good):          false,
		strings.Repeat("g", 64):        false,
		"../" + good[3:]:               false,
		good[:62] + "/x":               false,
		good[:63] + "\x00":             false,
		strings.Repeat("é", 32):        false,
		good[:60] + ".db" + good[:1]:   false,
		" " + good[1:]:                 false,
		strings.Repeat("0", 62) + "..": false,
	}
	for in, want := range cases {
		if got := ValidChecksum(in); got != want {
			t.Errorf("ValidChecksum(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzChecksumPath(f *testing.F) {
	f.Add(sum([]byte("x")))
	f.Add("../../etc/passwd")
	f.Add(strings.Repeat("a", 64))
	f.Add(strings.Repeat("A", 64))
	f.Add(strings.Repeat("a", 62) + "/.")
	root := filepath.Join(os.TempDir(), "blobstore-fuzz-root")
	s := &Store{root: root}
	f.Fuzz(func(t *testing.T, in string) {
		ok := ValidChecksum(in)
		if ok != checksumRule.MatchString(in) {
			t.Fatalf("ValidChecksum(%q) = %v, rule says %v", in, ok, !ok)
		}
		p, err := s.path(in)
		if !ok {
			if err == nil || !errors.Is(err, docex.ErrInvalid) {
				t.Fatalf("path(%q) = %q, %v; want ErrInvalid", in, p, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("path(%q): %v", in, err)
		}
		want := filepath.Join(root, in[:2], in)
		if p != want {
			t.Fatalf("path(%q) = %q, want %q", in, p, want)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) || rel != filepath.Join(in[:2], in) {
			t.Fatalf("path(%q) = %q escapes the root (rel %q, %v)", in, p, rel, err)
		}
	})
}

func TestInvalidChecksumRejectedEverywhere(t *testing.T) {
	s := newStore(t)
	// A file outside the store that a traversal would reach.
	victim := filepath.Join(filepath.Dir(s.Root()), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../victim", "../../victim", "..", strings.Repeat("A", 64), sum(nil)[:63]} {
		if f, err := s.Open(bad); !errors.Is(err, docex.ErrInvalid) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalid", bad, err)
		}
		if err := s.Remove(bad); !errors.Is(err, docex.ErrInvalid) {
			t.Errorf("Remove(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Fatalf("victim: %q, %v", b, err)
	}
	if _, err := s.Open(sum([]byte("absent"))); !errors.Is(err, docex.ErrNotFound) {
		t.Errorf("Open(absent) = %v, want ErrNotFound", err)
	}
	if err := s.Remove(sum([]byte("absent"))); err != nil {
		t.Errorf("Remove(absent) = %v, want nil", err)
	}
}

func TestStageCommitOpen(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 100)
	st, err := s.Stage(ctx, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Discard()
	if st.Checksum != sum(data) || st.Size != int64(len(data)) || !bytes.Equal(st.Head, data[:512]) {
		t.Fatalf("staged %s %d head %d", st.Checksum, st.Size, len(st.Head))
	}
	if _, err := s.Open(st.Checksum); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("staged content visible before Commit: %v", err)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	st.Discard()
	f, err := s.Open(st.Checksum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if p := filepath.Join(s.Root(), st.Checksum[:2], st.Checksum); !fileExists(p) {
		t.Fatalf("content not at %s", p)
	}
	// The same content staged again commits as a no-op.
	st2, err := s.Stage(ctx, bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := st2.Commit(); err != nil {
		t.Fatal(err)
	}
	st2.Discard()
	if n := countFiles(t, filepath.Join(s.Root(), "tmp")); n != 0 {
		t.Errorf("%d temporary files left", n)
	}
	if err := s.Remove(st.Checksum); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(st.Checksum); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("Open after Remove: %v", err)
	}
}

func TestStageEmptyAndSmall(t *testing.T) {
	s := newStore(t)
	for _, data := range [][]byte{nil, []byte("a")} {
		st, err := s.Stage(context.Background(), bytes.NewReader(data), 10)
		if err != nil {
			t.Fatal(err)
		}
		if st.Checksum != sum(data) || st.Size != int64(len(data)) || !bytes.Equal(st.Head, data) {
			t.Errorf("%q: %s %d %q", data, st.Checksum, st.Size, st.Head)
		}
		st.Discard()
	}
}

func TestStageTooLargeLeavesNothing(t *testing.T) {
	s := newStore(t)
	for _, max := range []int64{0, 1, 99} {
		_, err := s.Stage(context.Background(), bytes.NewReader(make([]byte, 100)), max)
		if !errors.Is(err, docex.ErrTooLarge) {
			t.Fatalf("max %d: %v, want ErrTooLarge", max, err)
		}
	}
	if n := countFiles(t, s.Root()); n != 0 {
		t.Fatalf("%d files left after refused stages", n)
	}
	// Exactly max bytes is accepted.
	st, err := s.Stage(context.Background(), bytes.NewReader(make([]byte, 100)), 100)
	if err != nil {
		t.Fatal(err)
	}
	st.Discard()
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("boom")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestStageReadErrorAndCancel(t *testing.T) {
	s := newStore(t)
	if _, err := s.Stage(context.Background(), &failingReader{n: 5000}, 1<<20); err == nil {
		t.Fatal("read error not reported")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Stage(ctx, bytes.NewReader(make([]byte, 10)), 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled stage: %v", err)
	}
	if n := countFiles(t, s.Root()); n != 0 {
		t.Fatalf("%d files left", n)
	}
}

func TestSweep(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	keep, drop := []byte("keep"), []byte("drop")
	for _, d := range [][]byte{keep, drop} {
		st, err := s.Stage(ctx, bytes.NewReader(d), 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(); err != nil {
			t.Fatal(err)
		}
		st.Discard()
	}
	leftover, err := s.Stage(ctx, strings.NewReader("stale"), 100) // a crashed add
	if err != nil {
		t.Fatal(err)
	}
	// A foreign file with a non-checksum name is never touched.
	foreign := filepath.Join(s.Root(), "README")
	os.WriteFile(foreign, []byte("x"), 0o600)
	// release removes what is not referenced, as the engine's does.
	var offered []string
	release := func(c string) (bool, error) {
		offered = append(offered, c)
		if c == sum(keep) {
			return false, nil
		}
		return true, s.Remove(c)
	}

	// Within the grace period nothing is removed.
	if n, err := s.Sweep(ctx, time.Hour, release); err != nil || n != 0 || len(offered) != 0 {
		t.Fatalf("Sweep(grace 1h) = %d, %v; offered %v", n, err, offered)
	}
	old := time.Now().Add(-2 * time.Hour)
	filepath.WalkDir(s.Root(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	n, err := s.Sweep(ctx, time.Hour, release)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2 (unreferenced content and stale temp file)", n, err)
	}
	if len(offered) != 2 {
		t.Errorf("offered %v, want exactly the two content files", offered)
	}
	if _, err := s.Open(sum(keep)); err != nil {
		t.Errorf("referenced content removed: %v", err)
	}
	if _, err := s.Open(sum(drop)); !errors.Is(err, docex.ErrNotFound) {
		t.Errorf("unreferenced content kept: %v", err)
	}
	if fileExists(leftover.tmp) {
		t.Error("stale temp file kept")
	}
	if !fileExists(foreign) {
		t.Error("foreign file removed")
	}
	// A failing release stops the sweep and removes nothing.
	boom := errors.New("db down")
	os.Chtimes(filepath.Join(s.Root(), sum(keep)[:2], sum(keep)), old, old)
	if _, err := s.Sweep(ctx, time.Hour, func(string) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("Sweep with failing check: %v", err)
	}
	if _, err := s.Open(sum(keep)); err != nil {
		t.Errorf("content removed although the check failed: %v", err)
	}
}

func TestNoSyncStoreWorks(t *testing.T) {
	s, err := New(filepath.Join(t.TempDir(), "nosync"), true)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("no sync")
	st, err := s.Stage(context.Background(), bytes.NewReader(data), 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Discard()
	f, err := s.Open(sum(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("got %q", got)
	}
}

// Committing content that exists refreshes its time, so a sweep's grace
// period covers the new reference.
func TestCommitExistingRefreshesTime(t *testing.T) {
	s := newStore(t)
	data := []byte("shared")
	st, _ := s.Stage(context.Background(), bytes.NewReader(data), 100)
	st.Commit()
	st.Discard()
	p := filepath.Join(s.Root(), sum(data)[:2], sum(data))
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(p, old, old)
	st2, _ := s.Stage(context.Background(), bytes.NewReader(data), 100)
	if err := st2.Commit(); err != nil {
		t.Fatal(err)
	}
	st2.Discard()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(info.ModTime()) > time.Minute {
		t.Errorf("modification time not refreshed: %v", info.ModTime())
	}
	n, err := s.Sweep(context.Background(), time.Hour, func(string) (bool, error) {
		t.Error("content offered for release within the grace period")
		return false, nil
	})
	if err != nil || n != 0 {
		t.Errorf("Sweep = %d, %v", n, err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}
