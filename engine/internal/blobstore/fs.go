package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/tenancy"
)

// FS is a content store on the filesystem: one directory per tenant
// incarnation under root (tenants/<id>/<incarnation>, or local with
// multi-tenancy disabled).
type FS struct {
	root    string
	noSync  bool
	packMax int64 // content of at most this many bytes is packed (NewFSPacked)
}

// NewFS returns a filesystem store rooted at root; it creates the
// directories under root (0700) only when content is first staged, and
// never root itself, which Claim (docex init) creates: without it, reads
// and writes fail with docex.ErrStorageUnavailable. With noSync, files and
// directories are not fsynced: content then survives a process crash
// (kill -9) but not a power loss.
func NewFS(root string, noSync bool) *FS { return &FS{root: root, noSync: noSync} }

// Root returns the store's root directory.
func (s *FS) Root() string { return s.root }

// Tenant returns the namespace of a tenant incarnation. Errors as
// driver.ContentStore.Tenant.
func (s *FS) Tenant(t docex.Tenant) (driver.TenantContent, error) {
	ns, err := contentkey.Tenant(t)
	if err != nil {
		return nil, err
	}
	return &fsTenant{root: s.root, dir: filepath.Join(s.root, filepath.FromSlash(ns)), noSync: s.noSync, packMax: s.packMax}, nil
}

// InTransaction is false: files are not part of the database transaction.
func (s *FS) InTransaction() bool { return false }

// Probe returns docex.ErrStorageUnavailable when the content directory is
// missing (driver.ContentProber), so that a delete is refused before it
// changes anything rather than leaving content behind in a directory that
// may come back (a volume not mounted).
func (s *FS) Probe(ctx context.Context) error { return missingRoot(s.root) }

// missingRoot returns docex.ErrStorageUnavailable naming the content
// directory root when it does not exist or is not a directory, else nil.
// docex init creates the directory (with its claim marker); content is
// never read from or written to one created again at run time, so that a
// directory deleted, or on a volume not mounted, fails reads and writes
// alike instead of filling a new, empty one.
func missingRoot(root string) error {
	info, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return docex.Errorf(docex.ErrStorageUnavailable, "content store: the content directory %s is missing (deleted, or its volume not mounted?)", root)
	case errors.Is(err, syscall.ENOTDIR) || err == nil && !info.IsDir():
		return docex.Errorf(docex.ErrStorageUnavailable, "content store: the content directory %s is not a directory", root)
	}
	return nil
}

// ioErr returns err, or docex.ErrStorageUnavailable when err says a path
// is missing because the content directory is (missingRoot).
func (t *fsTenant) ioErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		if m := missingRoot(t.root); m != nil {
			return m
		}
	}
	return err
}

// mkdir creates dir (and the directories above it up to the content
// directory) unless it exists; never the content directory itself. A
// symbolic link at dir (on Windows a junction too), or anything else but
// a directory, is docex.ErrCorrupt: the store never follows a link planted
// there to write outside the content directory.
func (t *fsTenant) mkdir(dir string) error {
	if info, err := os.Lstat(dir); err == nil {
		if info.IsDir() {
			return nil
		}
		return docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory (mode %v)", dir, info.Mode())
	}
	if err := missingRoot(t.root); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return t.ioErr(fmt.Errorf("content store: %w", err))
	}
	return nil
}

// Incarnations lists the directories tenants/<id>/<incarnation> whose
// names are a valid tenant id and a UUID; anything else is not the store's
// and is never reported.
func (s *FS) Incarnations(ctx context.Context, fn func(driver.StoredIncarnation) error) error {
	root := filepath.Join(s.root, contentkey.Tenants)
	ids, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, idEnt := range ids {
		id := idEnt.Name()
		if !idEnt.IsDir() || tenancy.ValidateSyntax(id) != nil {
			continue
		}
		incs, err := os.ReadDir(filepath.Join(root, id))
		if err != nil {
			continue
		}
		for _, inc := range incs {
			if !inc.IsDir() || !contentkey.ValidIncarnation(inc.Name()) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			info, err := inc.Info()
			if err != nil {
				continue
			}
			si := driver.StoredIncarnation{TenantID: id, Incarnation: inc.Name(), Location: filepath.Join(root, id, inc.Name()), ModTime: info.ModTime()}
			if err := fn(si); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteTenant removes the directory of one tenant incarnation, and the
// tenant id's directory when that leaves it empty.
func (s *FS) DeleteTenant(ctx context.Context, tenantID, incarnation string) error {
	ns, err := contentkey.Tenant(docex.Tenant{ID: tenantID, Incarnation: incarnation})
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, filepath.FromSlash(ns))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	os.Remove(filepath.Dir(dir)) // only if empty
	return nil
}

type fsTenant struct {
	root    string
	dir     string
	noSync  bool
	packMax int64
	ready   atomic.Bool // tmp directory exists
}

func (t *fsTenant) tmpDir() (string, error) {
	tmp := filepath.Join(t.dir, "tmp")
	if !t.ready.Load() {
		if err := t.mkdir(tmp); err != nil {
			return "", err
		}
		t.ready.Store(true)
	}
	return tmp, nil
}

func (t *fsTenant) path(sum string) (string, error) {
	obj, err := contentkey.Object(sum)
	if err != nil {
		return "", err
	}
	return filepath.Join(t.dir, filepath.FromSlash(obj)), nil
}

type fsStaged struct {
	owner *fsTenant
	tmp   string // a staging file, or "" for content packed from memory
	data  []byte // packed content, until Discard
	loc   *locator
	// durable is the background flush of loc's pack (nil: flushed).
	durable *packSync
	// synced: Sync flushed the staging file (Put flushes one it did not).
	synced bool
	contentkey.Hashed
}

func (st *fsStaged) Checksum() string { return st.Hashed.Checksum }
func (st *fsStaged) Size() int64      { return st.Hashed.Size }
func (st *fsStaged) Head() []byte     { return st.Hashed.Head }
func (st *fsStaged) Discard() {
	if st.tmp != "" {
		os.Remove(st.tmp)
	}
	st.data = nil
}

// packed reports whether the content goes into a pack.
func (st *fsStaged) packed() bool { return st.tmp == "" }

// Stage streams r into a temporary file (not yet synced: see Sync); a
// packing store keeps content of at most packMax bytes in memory instead.
func (t *fsTenant) Stage(ctx context.Context, r io.Reader, max int64) (driver.Staged, error) {
	if t.packMax > 0 {
		return t.stageSpill(ctx, r, max)
	}
	tmp, err := t.tmpDir()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmp, "stage-*")
	if err != nil {
		return nil, t.ioErr(fmt.Errorf("content store: create temp: %w", err))
	}
	st := &fsStaged{owner: t, tmp: f.Name()}
	h, err := contentkey.Copy(ctx, f, r, max)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("content store: close: %w", cerr)
	}
	if err != nil {
		os.Remove(st.tmp)
		if errors.Is(err, docex.ErrTooLarge) || errors.Is(err, docex.ErrStorageUnavailable) || errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, fmt.Errorf("content store: write: %w", err)
	}
	st.Hashed = h
	return st, nil
}

// Sync writes the batch's packed content into one pack file and starts
// its flush (file and directory) in the background, so that it overlaps
// the start of the transaction: Put waits for it before it writes a
// locator, so packed content is durable before Put returns. Staged files
// are fsynced concurrently (at most 8 at a time), so the filesystem can
// fold their flushes into few journal commits.
func (t *fsTenant) Sync(ctx context.Context, staged []driver.Staged) error {
	if len(staged) == 0 {
		return nil
	}
	all, err := t.own(staged)
	if err != nil {
		return err
	}
	var packs, sts []*fsStaged
	for _, st := range all {
		switch {
		case !st.packed():
			sts = append(sts, st)
		case st.loc == nil && st.data != nil:
			packs = append(packs, st)
		}
	}
	if len(packs) > 0 {
		if err := t.writePack(ctx, packs, true); err != nil {
			return err
		}
	}
	if t.noSync || len(sts) == 0 {
		return nil
	}
	return t.ioErr(syncFiles(sts))
}

// syncFiles fsyncs the staging files of sts, at most 8 at a time, and
// marks them synced.
func syncFiles(sts []*fsStaged) error {
	if len(sts) == 1 {
		if err := syncFile(sts[0].tmp); err != nil {
			return err
		}
		sts[0].synced = true
		return nil
	}
	sem := make(chan struct{}, 8)
	errc := make(chan error, len(sts))
	for _, st := range sts {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errc <- syncFile(st.tmp)
		}()
	}
	var first error
	for range sts {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		for _, st := range sts {
			st.synced = true
		}
	}
	return first
}

func (t *fsTenant) own(staged []driver.Staged) ([]*fsStaged, error) {
	out := make([]*fsStaged, len(staged))
	for i, s := range staged {
		st, ok := s.(*fsStaged)
		if !ok || st.owner.dir != t.dir {
			return nil, docex.Errorf(docex.ErrInvalid, "content store: staged content of another store")
		}
		out[i] = st
	}
	return out, nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("content store: fsync: %w", err)
	}
	return nil
}

// Put links each staged file to its final name and fsyncs each directory
// it linked into once. A file already there is kept only when it is a
// regular file with the staged size and checksum; anything else is
// replaced.
func (t *fsTenant) Put(ctx context.Context, tx driver.Tx, staged []driver.Staged) error {
	all, err := t.own(staged)
	if err != nil {
		return err
	}
	var packs, sts []*fsStaged
	for _, st := range all {
		if st.packed() {
			packs = append(packs, st)
		} else {
			sts = append(sts, st)
		}
	}
	if err := t.putLocators(ctx, tx, packs); err != nil {
		return err
	}
	// Staging files Sync left out (content the tenant held then) are
	// flushed before they are linked.
	if !t.noSync {
		var unsynced []*fsStaged
		for _, st := range sts {
			if !st.synced {
				unsynced = append(unsynced, st)
			}
		}
		if len(unsynced) > 0 {
			if err := syncFiles(unsynced); err != nil {
				return t.ioErr(err)
			}
		}
	}
	seen := map[string]bool{}
	var dirs []string
	for _, st := range sts {
		final, err := t.path(st.Checksum())
		if err != nil {
			return err
		}
		dir := filepath.Dir(final)
		if err := t.mkdir(dir); err != nil {
			return err
		}
		if err := linkVerified(st.tmp, final, st.Checksum(), st.Size()); err != nil {
			return t.ioErr(err)
		}
		if !seen[dir] {
			seen[dir] = true
			dirs = append(dirs, dir)
		}
	}
	if t.noSync {
		return nil
	}
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return t.ioErr(err)
		}
	}
	return nil
}

// linkVerified links tmp to final. When final exists it is adopted (its
// time refreshed, so a sweep's grace period covers the new reference) only
// if it holds the expected bytes; otherwise it is replaced.
func linkVerified(tmp, final, sum string, size int64) error {
	err := os.Link(tmp, final)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("content store: link: %w", err)
	}
	if matches(final, sum, size) {
		now := time.Now()
		_ = os.Chtimes(final, now, now)
		return nil
	}
	if err := os.Remove(final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content store: replace damaged content: %w", err)
	}
	if err := os.Link(tmp, final); err != nil {
		return fmt.Errorf("content store: link: %w", err)
	}
	return nil
}

// matches reports whether p is a regular file (not a symlink) with size
// bytes hashing to sum.
func matches(p, sum string, size int64) bool {
	info, err := os.Lstat(p)
	if err != nil || !info.Mode().IsRegular() || info.Size() != size {
		return false
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, contentkey.Verify(f, sum, size, p))
	return err == nil
}

// Open opens the content, verifying it as it is read. It never follows a
// symbolic link (neither the file nor its directory may be one) and
// checks the file's size against size before returning, so a planted
// link or a file of another length is refused before a byte is served
// (docex.ErrCorrupt); the checksum is verified as the content is read.
func (t *fsTenant) Open(ctx context.Context, r driver.Reader, sum string, size int64) (io.ReadCloser, error) {
	p, err := t.path(sum)
	if err != nil {
		return nil, err
	}
	if rc, ok, err := t.openPacked(ctx, r, sum, size); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return contentkey.Verify(rc, sum, size, "content "+sum), nil
	}
	f, err := openNoFollow(p)
	if errors.Is(err, fs.ErrNotExist) {
		if err := missingRoot(t.root); err != nil {
			return nil, err
		}
		return nil, docex.Errorf(docex.ErrNotFound, "content %s is missing", sum)
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content store: %w", err)
	}
	if !info.Mode().IsRegular() || info.Size() != size {
		f.Close()
		return nil, docex.Errorf(docex.ErrCorrupt, "content %s: stored file has %d bytes (mode %v), its recorded size is %d", sum, info.Size(), info.Mode(), size)
	}
	return contentkey.Verify(f, sum, size, "content "+sum), nil
}

// openNoFollow opens p for reading without following a symbolic link at p
// or at its directory. A link (or, on Windows, any reparse point: a
// symbolic link or a junction) is docex.ErrCorrupt: the store never makes
// one. How each system keeps the guarantee is openFileNoFollow's (one file
// per system: nofollow_unix.go, nofollow_windows.go). It returns an error
// wrapping fs.ErrNotExist when p or its directory does not exist.
func openNoFollow(p string) (*os.File, error) {
	if dir, err := os.Lstat(filepath.Dir(p)); err == nil && !dir.IsDir() {
		return nil, docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory (mode %v)", filepath.Dir(p), dir.Mode())
	}
	f, err := openFileNoFollow(p)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, docex.ErrCorrupt) {
		return f, err
	}
	// Systems name a refused link differently (ELOOP on Linux and macOS,
	// EMLINK on FreeBSD): what is at p says.
	if info, lerr := os.Lstat(p); lerr == nil && info.Mode()&fs.ModeSymlink != 0 {
		return nil, docex.Errorf(docex.ErrCorrupt, "content store: %s is a symbolic link", p)
	}
	return nil, fmt.Errorf("content store: %w", err)
}

// Delete removes the content file, and the locator of packed content
// (its bytes stay in the pack until the sweep).
func (t *fsTenant) Delete(ctx context.Context, tx driver.Tx, sum string) error {
	p, err := t.path(sum)
	if err != nil {
		return err
	}
	if tx != nil {
		loc, packed, err := readLocator(ctx, tx, sum)
		if err != nil {
			return err
		}
		if err := tx.DeleteContent(ctx, sum); err != nil {
			return err
		}
		if packed {
			t.removeSolePack(loc)
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content store: remove: %w", err)
	}
	return nil
}

// List walks the two-hex-digit directories for files named by their
// checksum; other names are never reported.
func (t *fsTenant) List(ctx context.Context, cutoff time.Time, fn func(sum string) error) error {
	subs, err := os.ReadDir(t.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(t.dir, sub.Name()))
		if err != nil {
			return fmt.Errorf("content store: %w", err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := f.Name()
			if !f.Type().IsRegular() || !contentkey.ValidChecksum(name) || name[:2] != sub.Name() {
				continue
			}
			if info, err := f.Info(); err != nil || !info.ModTime().Before(cutoff) {
				continue
			}
			if err := fn(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Clean removes staging files older than cutoff and returns their paths;
// with dryRun it removes nothing and returns the paths it would remove.
func (t *fsTenant) Clean(ctx context.Context, cutoff time.Time, dryRun bool) ([]string, error) {
	tmp := filepath.Join(t.dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "stage-") || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		p := filepath.Join(tmp, e.Name())
		if dryRun || os.Remove(p) == nil {
			removed = append(removed, p)
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
