//go:build windows

package blobstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/docex-dev/docex"
)

// openFileNoFollow is O_NOFOLLOW's equivalent on Windows, which has no such
// flag (os.Open follows symbolic links and junctions). The directory of p
// is opened first with FILE_FLAG_OPEN_REPARSE_POINT, which opens a reparse
// point (a symbolic link, a junction) itself instead of its target; the
// handle must be a directory and no reparse point, and it is held, without
// FILE_SHARE_DELETE, until p is open, so that the directory cannot be
// renamed or replaced (by a link) in between. p is then opened the same
// way and must be no reparse point either. A link at p or at its directory
// is docex.ErrCorrupt; a missing one an error wrapping fs.ErrNotExist.
func openFileNoFollow(p string) (*os.File, error) {
	dir, err := openReparse(filepath.Dir(p), syscall.FILE_SHARE_READ|syscall.FILE_SHARE_WRITE)
	if err != nil {
		return nil, err
	}
	defer syscall.CloseHandle(dir)
	if err := noReparse(dir, filepath.Dir(p), true); err != nil {
		return nil, err
	}
	h, err := openReparse(p, syscall.FILE_SHARE_READ|syscall.FILE_SHARE_WRITE|syscall.FILE_SHARE_DELETE)
	if err != nil {
		return nil, err
	}
	if err := noReparse(h, p, false); err != nil {
		syscall.CloseHandle(h)
		return nil, err
	}
	return os.NewFile(uintptr(h), p), nil
}

// openReparse opens p for reading without following a reparse point at
// its last element (FILE_FLAG_BACKUP_SEMANTICS lets it open a directory).
func openReparse(p string, share uint32) (syscall.Handle, error) {
	name, err := syscall.UTF16PtrFromString(p)
	if err != nil {
		return syscall.InvalidHandle, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	h, err := syscall.CreateFile(name, syscall.GENERIC_READ, share, nil, syscall.OPEN_EXISTING,
		syscall.FILE_FLAG_OPEN_REPARSE_POINT|syscall.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return syscall.InvalidHandle, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return h, nil
}

// noReparse returns docex.ErrCorrupt when the file open as h is a reparse
// point, or (wantDir) not a directory.
func noReparse(h syscall.Handle, p string, wantDir bool) error {
	var d syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(h, &d); err != nil {
		return &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if d.FileAttributes&syscall.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return docex.Errorf(docex.ErrCorrupt, "content store: %s is a symbolic link or junction (a reparse point)", p)
	}
	if wantDir && d.FileAttributes&syscall.FILE_ATTRIBUTE_DIRECTORY == 0 {
		return docex.Errorf(docex.ErrCorrupt, "content store: %s is not a directory", p)
	}
	return nil
}
