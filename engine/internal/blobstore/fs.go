package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	pathpkg "path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/tenancy"
)

// FS is a content store on the filesystem: one directory per tenant
// incarnation under root (tenants/<id>/<incarnation>, or local with
// multi-tenancy disabled).
type FS struct {
	root    string
	noSync  bool
	packMax int64      // content of at most this many bytes is packed (NewFSPacked)
	cache   *rootCache // the namespace directories held open
	// dirSynced, when set (tests), is called with each directory of a
	// namespace, or above one, before it is fsynced.
	dirSynced func(dir string)
}

// NewFS returns a filesystem store rooted at root; it creates the
// directories under root (0700) only when content is first staged, and
// never root itself, which Claim (docex init) creates: without it, reads
// and writes fail with docex.ErrStorageUnavailable. With noSync, files and
// directories are not fsynced: content then survives a process crash
// (kill -9) but not a power loss.
func NewFS(root string, noSync bool) *FS { return NewFSPacked(root, noSync, 0) }

// Root returns the store's root directory.
func (s *FS) Root() string { return s.root }

// Tenant returns the namespace of a tenant incarnation. Errors as
// driver.ContentStore.Tenant.
func (s *FS) Tenant(t docex.Tenant) (driver.TenantContent, error) {
	ns, err := contentkey.Tenant(t)
	if err != nil {
		return nil, err
	}
	return &fsTenant{root: s.root, ns: ns, dir: filepath.Join(s.root, filepath.FromSlash(ns)), noSync: s.noSync, packMax: s.packMax, cache: s.cache, dirSynced: s.dirSynced}, nil
}

// TenantLive is Tenant whose namespace directory, when missing, is made
// only while live returns nil: live says whether the tenant incarnation
// is still registered (an error matching docex.ErrTenantUnknown when it
// was deleted). It is asked before the directory is made, so that a
// write of a deleted tenant (a step of it finishing) fails creating
// nothing, and once more after: a deletion between the two (which
// unregisters the tenant before it removes its content) is found, and
// what was made removed.
func (s *FS) TenantLive(t docex.Tenant, live func(context.Context) error) (driver.TenantContent, error) {
	tc, err := s.Tenant(t)
	if err != nil {
		return nil, err
	}
	tc.(*fsTenant).live = live
	return tc, nil
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

// outOfFiles replaces *err with one matching docex.ErrTooManyOpenFiles
// (fdlimit.Wrap) when it says the process ran out of file descriptors:
// an open of a content file, a pack, a directory or a temporary file
// that failed so is neither damaged storage nor a missing content
// directory. Every method of the store that opens a file returns
// through it.
func outOfFiles(err *error) { *err = fdlimit.Wrap(*err) }

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

// mkdir creates the directory rel (one element: tmp, packs, a
// two-hex-digit directory) in the namespace r unless it exists, and
// reports whether it did. A symbolic link at rel (on Windows a junction
// too), or anything else but a directory, is docex.ErrCorrupt: the store
// never writes through a link planted there (and os.Root never beneath
// the namespace).
func (t *fsTenant) mkdir(r *os.Root, rel string) (created bool, err error) {
	for range 2 {
		info, err := r.Lstat(rel)
		if err == nil {
			if realDir(info) {
				return false, nil
			}
			return false, docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory (mode %v)", filepath.Join(t.dir, rel), info.Mode())
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, t.ioErr(refused(r, fmt.Errorf("content store: %w", err), rel))
		}
		err = r.Mkdir(rel, 0o700)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return false, t.ioErr(refused(r, fmt.Errorf("content store: %w", err), rel))
		}
		// Made meanwhile (a concurrent Put): look again.
	}
	return false, docex.Errorf(docex.ErrCorrupt, "content store: %s keeps changing", filepath.Join(t.dir, rel))
}

// Incarnations lists the directories tenants/<id>/<incarnation> whose
// names are a valid tenant id and a UUID; anything else is not the store's
// and is never reported, nor is anything reached through a symbolic link.
func (s *FS) Incarnations(ctx context.Context, fn func(driver.StoredIncarnation) error) (err error) {
	defer outOfFiles(&err)
	if missingRoot(s.root) != nil {
		return nil
	}
	tenants, _, _, err := openBeneath(s.root, contentkey.Tenants, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer tenants.Close()
	ids, err := readDir(tenants, ".")
	if err != nil {
		return err
	}
	root := filepath.Join(s.root, contentkey.Tenants)
	for _, idEnt := range ids {
		id := idEnt.Name()
		if !idEnt.IsDir() || tenancy.ValidateSyntax(id) != nil {
			continue
		}
		if err := s.incarnations(ctx, tenants, root, id, fn); err != nil {
			return err
		}
	}
	return nil
}

// incarnations reports the incarnations of tenant id (Incarnations).
func (s *FS) incarnations(ctx context.Context, tenants *os.Root, root, id string, fn func(driver.StoredIncarnation) error) error {
	idDir, _, err := openDirNoFollow(tenants, id)
	if err != nil {
		return nil
	}
	defer idDir.Close()
	incs, err := readDir(idDir, ".")
	if err != nil {
		return nil
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
	return nil
}

// DeleteTenant removes the directory of one tenant incarnation, and the
// tenant id's directory when that leaves it empty. It removes nothing
// through a symbolic link: one at tenants or tenants/<id> is
// docex.ErrCorrupt, one at the incarnation's name is removed itself.
func (s *FS) DeleteTenant(ctx context.Context, tenantID, incarnation string) (err error) {
	defer outOfFiles(&err)
	ns, err := contentkey.Tenant(docex.Tenant{ID: tenantID, Incarnation: incarnation})
	if err != nil {
		return err
	}
	parent, inc := pathpkg.Split(ns)
	idDir, _, _, err := openBeneath(s.root, strings.TrimSuffix(parent, "/"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer idDir.Close()
	if err := idDir.RemoveAll(inc); err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	if tenants, _, _, err := openBeneath(s.root, contentkey.Tenants, false); err == nil {
		tenants.Remove(tenantID) // only if empty
		tenants.Close()
	}
	return nil
}

type fsTenant struct {
	root      string // the store's root
	ns        string // the namespace, relative to root (slash-separated)
	dir       string // the namespace's directory (root/ns): for messages
	noSync    bool
	packMax   int64
	cache     *rootCache
	dirSynced func(dir string) // FS.dirSynced
	// live, when set (TenantLive), says whether the tenant incarnation is
	// still registered; the namespace's directory is made only while it
	// returns nil.
	live func(context.Context) error
	mu   sync.Mutex // opening h
	h    atomic.Pointer[nsHandle]
}

// tmpDir returns the namespace, open, with its tmp directory made, and a
// reference the caller releases.
func (t *fsTenant) tmpDir(ctx context.Context) (*nsHandle, error) {
	h, err := t.open(ctx, true)
	if err != nil {
		return nil, err
	}
	if !h.ready.Load() {
		if _, err := t.mkdir(h.r, "tmp"); err != nil {
			h.release()
			return nil, err
		}
		h.ready.Store(true)
	}
	return h, nil
}

// createTemp creates a new staging file in the tmp directory of r; its
// name relative to r is f's name less r's.
func (t *fsTenant) createTemp(r *os.Root) (f *os.File, rel string, err error) {
	for range 100 {
		rel = filepath.Join("tmp", "stage-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err = r.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, "", t.ioErr(refused(r, fmt.Errorf("content store: create temp: %w", err), rel))
	}
	return f, rel, nil
}

// path returns the name of the loose file of sum, relative to the
// namespace.
func (t *fsTenant) path(sum string) (string, error) {
	obj, err := contentkey.Object(sum)
	if err != nil {
		return "", err
	}
	return filepath.FromSlash(obj), nil
}

type fsStaged struct {
	owner *fsTenant
	h     *nsHandle // the namespace tmp is in, referenced until Discard
	tmp   string    // a staging file relative to h, or "" for content packed from memory
	data  []byte    // packed content, until Discard
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
	if st.h != nil {
		st.h.r.Remove(st.tmp)
		st.h.release()
		st.h = nil
	}
	st.data = nil
}

// packed reports whether the content goes into a pack.
func (st *fsStaged) packed() bool { return st.tmp == "" }

// Stage streams r into a temporary file (not yet synced: see Sync); a
// packing store keeps content of at most packMax bytes in memory instead.
func (t *fsTenant) Stage(ctx context.Context, r io.Reader, max int64) (_ driver.Staged, err error) {
	defer outOfFiles(&err)
	if t.packMax > 0 {
		return t.stageSpill(ctx, r, max)
	}
	ns, err := t.tmpDir(ctx)
	if err != nil {
		return nil, err
	}
	f, rel, err := t.createTemp(ns.r)
	if err != nil {
		ns.release()
		return nil, err
	}
	st := &fsStaged{owner: t, h: ns, tmp: rel}
	h, err := contentkey.Copy(ctx, f, r, max)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("content store: close: %w", cerr)
	}
	if err != nil {
		st.Discard()
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
func (t *fsTenant) Sync(ctx context.Context, staged []driver.Staged) (err error) {
	defer outOfFiles(&err)
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
			if st.h == nil {
				return docex.Errorf(docex.ErrInvalid, "content store: staged content synced after Discard")
			}
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
		if err := syncFile(sts[0]); err != nil {
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
			errc <- syncFile(st)
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

// syncFile fsyncs the staging file of st.
func syncFile(st *fsStaged) error {
	f, err := st.h.r.OpenFile(st.tmp, os.O_RDWR, 0)
	if err != nil {
		return refused(st.h.r, fmt.Errorf("content store: %w", err), st.tmp)
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
func (t *fsTenant) Put(ctx context.Context, tx driver.Tx, staged []driver.Staged) (err error) {
	defer outOfFiles(&err)
	all, err := t.own(staged)
	if err != nil {
		return err
	}
	var packs, sts []*fsStaged
	for _, st := range all {
		switch {
		case st.packed():
			packs = append(packs, st)
		case st.h == nil:
			return docex.Errorf(docex.ErrInvalid, "content store: staged content put after Discard")
		default:
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
	if len(sts) == 0 {
		return nil
	}
	// Staged files are linked in the directory they were staged in
	// only while it is still the namespace's (not moved, nor replaced).
	// The directory a staged file holds open cannot be freed, so none
	// made since can be the same file.
	h, err := t.handle(false)
	if err != nil {
		return err
	}
	defer h.release()
	for _, st := range sts {
		if st.h != h && !os.SameFile(st.h.info, h.info) {
			return docex.Errorf(docex.ErrStorageUnavailable, "content store: the directory %s was moved or replaced since content was staged in it", t.dir)
		}
	}
	ns := h.r
	seen := map[string]bool{}
	var dirs []string
	made := false
	for _, st := range sts {
		final, err := t.path(st.Checksum())
		if err != nil {
			return err
		}
		dir := filepath.Dir(final)
		created, err := t.mkdir(ns, dir)
		if err != nil {
			return err
		}
		made = made || created
		if err := linkVerified(ns, st.tmp, final, st.Checksum(), st.Size()); err != nil {
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
		if err := t.syncDir(ns, d); err != nil {
			return t.ioErr(err)
		}
	}
	if made {
		// A two-hex-digit directory is new: its entry must survive a
		// power loss as well as the files linked into it.
		if err := t.syncDir(ns, "."); err != nil {
			return t.ioErr(err)
		}
	}
	return nil
}

// linkVerified links tmp to final, both relative to r. When final exists
// it is adopted (its time refreshed, so a sweep's grace period covers the
// new reference) only if it holds the expected bytes; otherwise it is
// replaced.
func linkVerified(r *os.Root, tmp, final, sum string, size int64) error {
	err := r.Link(tmp, final)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return refused(r, fmt.Errorf("content store: link: %w", err), tmp, final)
	}
	if matches(r, final, sum, size) {
		now := time.Now()
		_ = r.Chtimes(final, now, now)
		return nil
	}
	if err := r.Remove(final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return refused(r, fmt.Errorf("content store: replace damaged content: %w", err), final)
	}
	if err := r.Link(tmp, final); err != nil {
		return refused(r, fmt.Errorf("content store: link: %w", err), tmp, final)
	}
	return nil
}

// matches reports whether p (relative to r) is a regular file (not a
// symlink) with size bytes hashing to sum.
func matches(r *os.Root, p, sum string, size int64) bool {
	f, info, err := openNoFollow(r, p)
	if err != nil {
		return false
	}
	defer f.Close()
	if !info.Mode().IsRegular() || info.Size() != size {
		return false
	}
	_, err = io.Copy(io.Discard, contentkey.Verify(f, sum, size, p))
	return err == nil
}

// Open opens the content, verifying it as it is read. It never follows a
// symbolic link (neither the file nor its directory may be one) and
// checks the file's size against size before returning, so a planted
// link or a file of another length is refused before a byte is served
// (docex.ErrCorrupt); the checksum is verified as the content is read.
func (t *fsTenant) Open(ctx context.Context, r driver.Reader, sum string, size int64) (_ io.ReadCloser, err error) {
	defer outOfFiles(&err)
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
	ns, err := t.handle(false)
	var (
		f    *os.File
		info fs.FileInfo
	)
	if err == nil {
		f, info, err = openNoFollow(ns.r, p)
		ns.release()
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := missingRoot(t.root); err != nil {
			return nil, err
		}
		return nil, docex.Errorf(docex.ErrNotFound, "content %s is missing", sum)
	}
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() || info.Size() != size {
		f.Close()
		return nil, docex.Errorf(docex.ErrCorrupt, "content %s: stored file has %d bytes (mode %v), its recorded size is %d", sum, info.Size(), info.Mode(), size)
	}
	return contentkey.Verify(f, sum, size, "content "+sum), nil
}

// Delete removes the content file, and the locator of packed content
// (its bytes stay in the pack until the sweep).
func (t *fsTenant) Delete(ctx context.Context, tx driver.Tx, sum string) (err error) {
	defer outOfFiles(&err)
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
	h, err := t.handle(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.release()
	if err := h.r.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return refused(h.r, fmt.Errorf("content store: remove: %w", err), p)
	}
	return nil
}

// List walks the two-hex-digit directories for files named by their
// checksum; other names are never reported.
func (t *fsTenant) List(ctx context.Context, cutoff time.Time, fn func(sum string) error) (err error) {
	defer outOfFiles(&err)
	h, err := t.handle(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.release()
	ns := h.r
	subs, err := readDir(ns, ".")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		files, err := readDir(ns, sub.Name())
		if err != nil {
			return err
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
func (t *fsTenant) Clean(ctx context.Context, cutoff time.Time, dryRun bool) (_ []string, err error) {
	defer outOfFiles(&err)
	h, err := t.handle(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer h.release()
	ns := h.r
	ents, err := readDir(ns, "tmp")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "stage-") || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		rel := filepath.Join("tmp", e.Name())
		if dryRun || ns.Remove(rel) == nil {
			removed = append(removed, filepath.Join(t.dir, rel))
		}
	}
	return removed, nil
}
