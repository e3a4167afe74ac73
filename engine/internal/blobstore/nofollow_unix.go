//go:build unix

package blobstore

import (
	"os"
	"syscall"
)

// openFileNoFollow opens p read-only with O_NOFOLLOW: the kernel refuses a
// symbolic link as p's last element (ELOOP on Linux and macOS, EMLINK on
// FreeBSD; openNoFollow reads either as docex.ErrCorrupt). openNoFollow
// has checked that p's directory is no link.
func openFileNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
