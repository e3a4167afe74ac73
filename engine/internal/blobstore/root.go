package blobstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/docex-dev/docex"
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

// nsHandle is a namespace's directory, open, and what it was when opened.
type nsHandle struct {
	r     *os.Root
	info  fs.FileInfo
	ready atomic.Bool // its tmp directory exists
}

// handle returns the namespace's open directory, opening it (and with
// create making it and the directories above it, 0700, never the store's
// root) when it is not open yet or when the directory at its path is no
// longer the one held open (deleted, renamed, replaced: one lstat of the
// path per call). It returns docex.ErrStorageUnavailable when the content
// directory is missing, docex.ErrCorrupt when an element of the path is a
// link or not a directory, and an error wrapping fs.ErrNotExist when the
// namespace does not exist (and create is false).
//
// A handle replaced is not closed, as operations in flight may still use
// it: the garbage collector closes it (os.Root's finalizer), as it closes
// the handle of a namespace the engine forgets (deleted tenants).
func (t *fsTenant) handle(create bool) (*os.Root, error) {
	h, err := t.current(create)
	if err != nil {
		return nil, err
	}
	return h.r, nil
}

// current is handle's, with the namespace's state.
func (t *fsTenant) current(create bool) (*nsHandle, error) {
	if h := t.h.Load(); h != nil {
		if info, err := os.Lstat(t.dir); err == nil && os.SameFile(info, h.info) {
			return h, nil
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.h.Load(); h != nil {
		if info, err := os.Lstat(t.dir); err == nil && os.SameFile(info, h.info) {
			return h, nil
		}
	}
	if err := missingRoot(t.root); err != nil {
		return nil, err
	}
	r, info, err := openBeneath(t.root, t.ns, create)
	if err != nil {
		return nil, t.ioErr(err)
	}
	h := &nsHandle{r: r, info: info}
	t.h.Store(h)
	return h, nil
}

// openBeneath opens the directory rel (slash-separated) under the
// directory root, element by element without following a link, and with
// create makes the elements missing (0700). It returns the directory and
// what it is; docex.ErrCorrupt when an element is a link or not a
// directory, an error wrapping fs.ErrNotExist when one is missing.
func openBeneath(root, rel string, create bool) (*os.Root, fs.FileInfo, error) {
	cur, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, fmt.Errorf("content store: %w", err)
	}
	info, err := cur.Stat(".")
	if err != nil {
		cur.Close()
		return nil, nil, fmt.Errorf("content store: %w", err)
	}
	for _, name := range strings.Split(rel, "/") {
		if create {
			if err := cur.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				cur.Close()
				return nil, nil, fmt.Errorf("content store: %w", err)
			}
		}
		next, ninfo, err := openDirNoFollow(cur, name)
		cur.Close()
		if err != nil {
			return nil, nil, err
		}
		cur, info = next, ninfo
	}
	return cur, info, nil
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
