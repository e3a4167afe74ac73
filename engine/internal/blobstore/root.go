package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
)

// Every file of a namespace is opened, created, linked, renamed and
// removed through an os.Root anchored at the namespace's directory
// (tenants/<id>/<incarnation>, or local), so that no path resolves
// outside it, whatever links are planted in it or swapped in while it is
// in use: os.Root resolves each element beneath the directory it holds
// open, and refuses a symbolic link that leads out of it. The directory
// itself is opened element by element from the store's root without
// following a link (openDirNoFollow): a link at tenants, tenants/<id> or
// tenants/<id>/<incarnation> is docex.ErrCorrupt, so that one tenant's
// namespace can never be another's (whose gc would then delete the other
// tenant's content as unreferenced). The store's root itself
// (storage.documents.path) is the administrator's and may be a link.

// maxOpenNamespaces bounds the namespace directories a store holds open
// (rootCache.max): a worker or docex gc going through 10,000 tenants
// keeps at most this many directory descriptors, plus those of
// operations in flight.
const maxOpenNamespaces = 256

// MaxOpenNamespaces returns the bound of a store created in a process
// that may hold limit files open (0: unknown): an eighth of the limit, at
// least 1 and at most maxOpenNamespaces (128 for a limit of 1,024, as in
// many containers; 256 from 2,048 on, and when the limit is unknown).
// The SQLite backend's tenant databases take at most half of the limit
// by default (sqlite.DefaultMaxOpenTenants).
func MaxOpenNamespaces(limit int) int { return fdlimit.Share(limit, 8, 1, maxOpenNamespaces) }

// nsHandle is a namespace's directory, open, and what it was when opened.
type nsHandle struct {
	r     *os.Root
	info  fs.FileInfo
	owner *fsTenant
	ready atomic.Bool // its tmp directory exists
	// refs counts the handle's users, plus one while the store's cache
	// holds it (as its tenant's current handle): the directory is closed
	// when it drops to zero, and a handle at zero is never used again.
	refs atomic.Int64
	used atomic.Bool // used since the cache's sweep last passed it
	slot int         // its index in the cache's held, -1 when not there (rootCache.mu)
}

// acquire takes a reference to h; false when h is closed or closing.
func (h *nsHandle) acquire() bool {
	for {
		n := h.refs.Load()
		if n == 0 {
			return false
		}
		if h.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference to h, closing its directory with the last.
func (h *nsHandle) release() {
	if h.refs.Add(-1) == 0 {
		h.r.Close()
	}
}

// rootCache holds the namespace directories of a store open, at most max
// of them: a tenant's handle (fsTenant.h) is its current one while the
// cache holds it. When full, the cache lets go of the handle a clock
// sweep finds unused since it last passed (and, while there is one, not
// in use: a handle in use is closed only when its last user releases it);
// its tenant opens its directory again on its next operation. A handle
// replaced (its directory moved or replaced) is let go of the same way.
// The hot path (fsTenant.handle) takes no lock: an atomic load, a
// reference taken, a flag set.
type rootCache struct {
	mu   sync.Mutex
	max  int
	held []*nsHandle
	hand int
}

// install makes h (its references the cache's and the caller's) its
// owner's current handle in place of old (the handle its owner held, or
// nil), and lets go of old, or of another tenant's handle when the cache
// is full.
func (c *rootCache) install(old, h *nsHandle) {
	c.mu.Lock()
	var out *nsHandle
	switch {
	case old != nil && old.slot >= 0:
		out = old
	case len(c.held) < c.max:
		h.slot = len(c.held)
		c.held = append(c.held, h)
	default:
		out = c.victim()
	}
	if out != nil {
		h.slot, out.slot = out.slot, -1
		c.held[h.slot] = h
		out.owner.h.CompareAndSwap(out, nil)
	}
	h.owner.h.Store(h)
	c.mu.Unlock()
	if out != nil {
		out.release()
	}
}

// victim returns the held handle to let go of: the first the sweep finds
// neither used since it last passed nor in use, or after two turns the
// next one.
func (c *rootCache) victim() *nsHandle {
	for i := 0; ; i++ {
		h := c.held[c.hand]
		c.hand = (c.hand + 1) % len(c.held)
		if i < 2*len(c.held) && (h.used.Swap(false) || h.refs.Load() > 1) {
			continue
		}
		return h
	}
}

// size returns how many handles the cache holds.
func (c *rootCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// handle returns the namespace's open directory, with a reference the
// caller releases (nsHandle.release) once done with it, opening it (and
// with create making it and the directories above it, 0700, never the
// store's root) when it is not open yet or when the directory at its path
// is no longer the one held open (deleted, renamed, replaced: one lstat
// of the path per call). It returns docex.ErrStorageUnavailable when the
// content directory is missing, docex.ErrCorrupt when an element of the
// path is a link or not a directory, and an error wrapping fs.ErrNotExist
// when the namespace does not exist (and create is false).
//
// A handle replaced, or let go of by the store's cache (rootCache), is
// closed when the last operation using it releases it.
func (t *fsTenant) handle(create bool) (*nsHandle, error) {
	return t.open(context.Background(), create)
}

// open is handle; ctx is for the liveness check (fsTenant.live) of a
// namespace it makes.
func (t *fsTenant) open(ctx context.Context, create bool) (*nsHandle, error) {
	if h := t.h.Load(); h != nil && h.acquire() {
		if t.current(h) {
			return h, nil
		}
		h.release()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.h.Load()
	if old != nil && old.acquire() {
		if t.current(old) {
			return old, nil
		}
		old.release()
	}
	if err := missingRoot(t.root); err != nil {
		return nil, err
	}
	r, info, made, err := t.openLive(ctx, create)
	if err != nil {
		return nil, t.ioErr(err)
	}
	h := &nsHandle{r: r, info: info, owner: t, slot: -1}
	h.refs.Store(2)
	h.used.Store(true)
	if made && !t.noSync {
		// The namespace (or a directory above it) is new: its entry must
		// survive a power loss, as the content put in it will.
		if err := t.syncAbove(); err != nil {
			r.Close()
			return nil, err
		}
	}
	t.cache.install(old, h)
	return h, nil
}

// openLive is openBeneath of the namespace, asking t.live (when set)
// before it makes the namespace and again after: a tenant deleted before
// the first question gets nothing made, one deleted between the two gets
// what was made removed (as the deletion, which removes the content after
// it unregisters the tenant, may have run before it was made).
func (t *fsTenant) openLive(ctx context.Context, create bool) (*os.Root, fs.FileInfo, bool, error) {
	if !create || t.live == nil {
		return openBeneath(t.root, t.ns, create)
	}
	r, info, _, err := openBeneath(t.root, t.ns, false)
	if !errors.Is(err, fs.ErrNotExist) {
		return r, info, false, err
	}
	if err := t.live(ctx); err != nil {
		return nil, nil, false, err
	}
	r, info, made, err := openBeneath(t.root, t.ns, true)
	if err != nil || !made {
		return r, info, made, err
	}
	if err := t.live(ctx); err != nil {
		r.Close()
		t.unmake()
		return nil, nil, false, err
	}
	return r, info, made, nil
}

// unmake removes the namespace's directory, and its tenant id's when
// that leaves it empty (FS.DeleteTenant).
func (t *fsTenant) unmake() {
	parent, inc := path.Split(t.ns)
	idDir, _, _, err := openBeneath(t.root, strings.TrimSuffix(parent, "/"), false)
	if err != nil {
		return
	}
	idDir.RemoveAll(inc)
	idDir.Close()
	if tenants, _, _, err := openBeneath(t.root, path.Dir(strings.TrimSuffix(parent, "/")), false); err == nil {
		tenants.Remove(path.Base(strings.TrimSuffix(parent, "/")))
		tenants.Close()
	}
}

// current reports whether h (referenced) is still the directory at the
// namespace's path, and marks it used.
func (t *fsTenant) current(h *nsHandle) bool {
	info, err := os.Lstat(t.dir)
	if err != nil || !os.SameFile(info, h.info) {
		return false
	}
	if !h.used.Load() {
		h.used.Store(true)
	}
	return true
}

// syncAbove fsyncs the directories above the namespace, up to the
// store's root, so that a namespace's entry (and those above it) made
// anew survives a power loss.
func (t *fsTenant) syncAbove() error {
	root, err := os.OpenRoot(t.root)
	if err != nil {
		return t.ioErr(fmt.Errorf("content store: %w", err))
	}
	defer root.Close()
	for d := path.Dir(t.ns); ; d = path.Dir(d) {
		if err := t.syncDir(root, filepath.FromSlash(d)); err != nil {
			return t.ioErr(err)
		}
		if d == "." {
			return nil
		}
	}
}

// syncDir fsyncs the directory rel of r ("." for r itself).
func (t *fsTenant) syncDir(r *os.Root, rel string) error {
	if t.dirSynced != nil {
		t.dirSynced(filepath.Join(r.Name(), rel))
	}
	return syncDir(r, rel)
}

// openBeneath opens the directory rel (slash-separated) under the
// directory root, element by element without following a link, and with
// create makes the elements missing (0700). It returns the directory,
// what it is, and whether it made an element; docex.ErrCorrupt when an
// element is a link or not a directory, an error wrapping fs.ErrNotExist
// when one is missing.
func openBeneath(root, rel string, create bool) (r *os.Root, info fs.FileInfo, made bool, err error) {
	cur, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, false, fmt.Errorf("content store: %w", err)
	}
	info, err = cur.Stat(".")
	if err != nil {
		cur.Close()
		return nil, nil, false, fmt.Errorf("content store: %w", err)
	}
	for _, name := range strings.Split(rel, "/") {
		if create {
			err := cur.Mkdir(name, 0o700)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				cur.Close()
				return nil, nil, false, fmt.Errorf("content store: %w", err)
			}
			made = made || err == nil
		}
		next, ninfo, err := openDirNoFollow(cur, name)
		cur.Close()
		if err != nil {
			return nil, nil, false, err
		}
		cur, info = next, ninfo
	}
	return cur, info, made, nil
}

// realDir reports whether info is a directory and no link (nor, on
// Windows, a junction or another reparse point).
func realDir(info fs.FileInfo) bool {
	return info.IsDir() && info.Mode()&(fs.ModeSymlink|fs.ModeIrregular) == 0
}

// openDirNoFollow opens the directory name of parent without following a
// link: it must be a directory when looked at (lstat) and the directory
// opened must be that one (a link swapped in between is refused). It
// returns what it opened; docex.ErrCorrupt when name is a link or not a
// directory, an error wrapping fs.ErrNotExist when it is missing.
func openDirNoFollow(parent *os.Root, name string) (*os.Root, fs.FileInfo, error) {
	info, err := parent.Lstat(name)
	if err != nil {
		return nil, nil, fmt.Errorf("content store: %w", err)
	}
	where := filepath.Join(parent.Name(), name)
	if !realDir(info) {
		return nil, nil, docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory (mode %v)", where, info.Mode())
	}
	r, err := parent.OpenRoot(name)
	if err != nil {
		return nil, nil, refused(parent, fmt.Errorf("content store: %w", err), name)
	}
	opened, err := r.Stat(".")
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("content store: %w", err)
	}
	if !os.SameFile(info, opened) {
		r.Close()
		return nil, nil, docex.Errorf(docex.ErrCorrupt, "content store: %s was replaced (by a link?) while it was opened", where)
	}
	return r, opened, nil
}

// refused returns the error err of an operation on rels (OS paths
// relative to r) as the store reports it: docex.ErrCorrupt when an
// element of one is a symbolic link (os.Root refuses one that leads out
// of r) or an element above the last is not a directory; otherwise err.
func refused(r *os.Root, err error, rels ...string) error {
	var de *docex.Error
	if errors.As(err, &de) || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, rel := range rels {
		parts := strings.Split(filepath.ToSlash(rel), "/")
		for i := range parts {
			p := filepath.Join(parts[:i+1]...)
			info, lerr := r.Lstat(p)
			if lerr != nil {
				break
			}
			if info.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
				return docex.Errorf(docex.ErrCorrupt, "content store: %s is a symbolic link (%v)", filepath.Join(r.Name(), p), err)
			}
			if i < len(parts)-1 && !info.IsDir() {
				return docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory (mode %v)", filepath.Join(r.Name(), p), info.Mode())
			}
		}
	}
	return err
}

// openNoFollow opens the regular file rel (dir/name, relative to r) for
// reading without following a symbolic link at rel or at its directory:
// the directory must be one (lstat), and the file opened must be the one
// at its name when looked at after the open (lstat), which a link is not.
// It returns the file and what it is. A link (or, on Windows, a junction
// or another reparse point), or one swapped in while the file was opened,
// is docex.ErrCorrupt: the store never makes one; os.Root keeps the open
// beneath r whatever happens meanwhile. Anything but a regular file (a
// directory, a FIFO, a device) is docex.ErrCorrupt too, and is opened
// without waiting (readFlags): a FIFO never blocks the open. It returns
// an error wrapping fs.ErrNotExist when rel or its directory does not
// exist.
func openNoFollow(r *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	dir, name := filepath.Split(rel)
	dir = filepath.Clean(dir)
	if info, err := r.Lstat(dir); err != nil {
		return nil, nil, refused(r, fmt.Errorf("content store: %w", err), dir)
	} else if !realDir(info) {
		return nil, nil, docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory (mode %v)", filepath.Join(r.Name(), dir), info.Mode())
	}
	// The directory opened once: the file's open and lstat are then one
	// call each.
	d, err := r.OpenRoot(dir)
	if err != nil {
		return nil, nil, refused(r, fmt.Errorf("content store: %w", err), dir)
	}
	defer d.Close()
	f, err := d.OpenFile(name, readFlags, 0)
	if err != nil {
		return nil, nil, refused(d, fmt.Errorf("content store: %w", err), name)
	}
	opened, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("content store: %w", err)
	}
	if !opened.Mode().IsRegular() {
		f.Close()
		return nil, nil, docex.Errorf(docex.ErrCorrupt, "content store: %s is not a regular file (mode %v)", filepath.Join(r.Name(), rel), opened.Mode())
	}
	info, err := d.Lstat(name)
	if err != nil || !os.SameFile(info, opened) || info.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		f.Close()
		return nil, nil, docex.Errorf(docex.ErrCorrupt, "content store: %s is a symbolic link, or was replaced while it was opened", filepath.Join(r.Name(), rel))
	}
	return f, opened, nil
}

// syncDir fsyncs the directory rel of r ("." for r itself).
func syncDir(r *os.Root, rel string) error {
	d, err := r.OpenFile(rel, readFlags, 0)
	if err != nil {
		return refused(r, fmt.Errorf("content store: %w", err), rel)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("content store: fsync dir: %w", err)
	}
	return nil
}

// readDir lists the directory rel of r; an error wrapping fs.ErrNotExist
// when it is missing.
func readDir(r *os.Root, rel string) ([]fs.DirEntry, error) {
	d, err := r.OpenFile(rel, readFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, refused(r, fmt.Errorf("content store: %w", err), rel)
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	return ents, nil
}
