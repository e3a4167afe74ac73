package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docex-dev/docex"
)

// Store is a content-addressed directory.
type Store struct {
	root   string
	noSync bool
}

// New returns a store rooted at dir, creating it (0700) if needed. With
// noSync, files and directories are not fsynced: content then survives a
// process crash (kill -9) but not a power loss.
func New(dir string, noSync bool) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	return &Store{root: dir, noSync: noSync}, nil
}

// Root returns the directory of the store.
func (s *Store) Root() string { return s.root }

// ValidChecksum reports whether sum is a lowercase hex sha256.
func ValidChecksum(sum string) bool {
	if len(sum) != 64 {
		return false
	}
	for i := 0; i < len(sum); i++ {
		c := sum[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(sum string) (string, error) {
	if !ValidChecksum(sum) {
		return "", docex.Errorf(docex.ErrInvalid, "invalid checksum %q", sum)
	}
	return filepath.Join(s.root, sum[:2], sum), nil
}

// Staged is content written to a temporary file, hashed and fsynced but
// not yet visible under its checksum.
type Staged struct {
	store    *Store
	tmp      string
	Checksum string
	Size     int64
	Head     []byte // the first up to 512 bytes, for content sniffing
}

// Stage streams r into a temporary file, computing its checksum, and makes
// it durable. It returns docex.ErrTooLarge (and leaves nothing behind) when
// r has more than max bytes.
func (s *Store) Stage(ctx context.Context, r io.Reader, max int64) (*Staged, error) {
	st, err := s.StageDeferred(ctx, r, max)
	if err != nil {
		return nil, err
	}
	if err := st.Sync(); err != nil {
		st.Discard()
		return nil, err
	}
	return st, nil
}

// Sync makes staged content durable (a no-op for a store without sync).
// Syncing many staged files from several goroutines lets the filesystem
// fold their flushes into few journal commits.
func (st *Staged) Sync() error {
	if st.store.noSync {
		return nil
	}
	f, err := os.OpenFile(st.tmp, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("content store: fsync: %w", err)
	}
	return nil
}

// StageDeferred is Stage without making the content durable: call Sync
// (or SyncAll) before Link.
func (s *Store) StageDeferred(ctx context.Context, r io.Reader, max int64) (*Staged, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "stage-*")
	if err != nil {
		return nil, fmt.Errorf("content store: create temp: %w", err)
	}
	st := &Staged{store: s, tmp: f.Name()}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(st.tmp)
		}
	}()
	h := sha256.New()
	hw := &headWriter{h: h, limit: 512}
	n, err := io.Copy(f, io.TeeReader(&ctxReader{ctx: ctx, r: io.LimitReader(r, max+1)}, hw))
	if err != nil {
		return nil, fmt.Errorf("content store: write: %w", err)
	}
	if n > max {
		return nil, docex.Errorf(docex.ErrTooLarge, "document is larger than the limit of %d bytes", max)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("content store: close: %w", err)
	}
	st.Checksum = hex.EncodeToString(h.Sum(nil))
	st.Size = n
	st.Head = hw.head
	ok = true
	return st, nil
}

// Commit makes the staged (and synced) content visible under its checksum
// (a no-op when that content exists already) and makes the name durable. It
// may be called more than once.
func (st *Staged) Commit() error {
	dir, err := st.Link()
	if err != nil {
		return err
	}
	return st.store.SyncDirs(dir)
}

// SyncDirs makes the names linked into dirs durable, each directory once.
func (s *Store) SyncDirs(dirs ...string) error {
	if s.noSync {
		return nil
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Link makes the staged content visible under its checksum without making
// the name durable, and returns the directory to pass to SyncDirs.
func (st *Staged) Link() (string, error) {
	final, err := st.store.path(st.Checksum)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("content store: %w", err)
	}
	if err := os.Link(st.tmp, final); errors.Is(err, fs.ErrExist) {
		// Existing content gains a reference: refresh its time so that a
		// sweep's grace period covers this new reference too.
		now := time.Now()
		_ = os.Chtimes(final, now, now)
	} else if err != nil {
		return "", fmt.Errorf("content store: link: %w", err)
	}
	return dir, nil
}

// SyncAll syncs staged files concurrently (at most 8 at a time) and
// returns the first error.
func SyncAll(staged []*Staged) error {
	if len(staged) == 1 {
		return staged[0].Sync()
	}
	sem := make(chan struct{}, 8)
	errc := make(chan error, len(staged))
	for _, st := range staged {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errc <- st.Sync()
		}()
	}
	var first error
	for range staged {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Discard removes the temporary file. Call it after Commit too.
func (st *Staged) Discard() { os.Remove(st.tmp) }

// Open opens the content with the checksum, or docex.ErrNotFound.
func (s *Store) Open(sum string) (*os.File, error) {
	p, err := s.path(sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, docex.Errorf(docex.ErrNotFound, "content %s is missing", sum)
	}
	return f, err
}

// Remove deletes the content with the checksum; absent is not an error.
func (s *Store) Remove(sum string) error {
	p, err := s.path(sum)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content store: remove: %w", err)
	}
	return nil
}

// Sweep offers every content file older than grace to release, which
// removes it (with Remove) if nothing refers to it and reports whether it
// did, and removes temporary files older than grace. It returns the number
// of files removed. It touches only what the store creates: regular files
// named stage-* in tmp/, and regular files named by a checksum in the
// directory named by its first two characters; anything else found in the
// root is left alone.
func (s *Store) Sweep(ctx context.Context, grace time.Duration, release func(sum string) (bool, error)) (int, error) {
	cutoff := time.Now().Add(-grace)
	old := func(e fs.DirEntry) bool {
		info, err := e.Info()
		return err == nil && e.Type().IsRegular() && !info.ModTime().After(cutoff)
	}
	removed := 0
	tmp, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	for _, e := range tmp {
		if strings.HasPrefix(e.Name(), "stage-") && old(e) && os.Remove(filepath.Join(s.root, "tmp", e.Name())) == nil {
			removed++
		}
	}
	dirs, err := os.ReadDir(s.root)
	if err != nil {
		return removed, fmt.Errorf("content store: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 || !ValidChecksum(d.Name()+strings.Repeat("0", 62)) {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(s.root, d.Name()))
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			name := f.Name()
			if !ValidChecksum(name) || name[:2] != d.Name() || !old(f) {
				continue
			}
			ok, err := release(name)
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
		}
	}
	return removed, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("content store: fsync dir: %w", err)
	}
	return nil
}

type headWriter struct {
	h     hash.Hash
	head  []byte
	limit int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.limit - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	return w.h.Write(p)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
