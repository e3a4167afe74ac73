//go:build linux

package sqlite

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// writeLockHolders returns the other processes holding the write lock of
// the SQLite database at path (WAL mode: the -shm file's WAL write lock
// byte; or a write lock on the database file), from /proc/locks, which
// lists every POSIX (fcntl) lock with its process and its file's device
// and inode; unseen reports a holder not visible in this process's PID
// namespace (listed with pid 0).
func writeLockHolders(path string) (pids []int, unseen bool, err error) {
	db, err := statID(path)
	if err != nil {
		return nil, false, err
	}
	shm, err := statID(path + "-shm")
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	pids, unseen, err = lockHoldersIn(f, os.Getpid(), shm, db)
	if err != nil {
		return nil, false, fmt.Errorf("read /proc/locks: %w", err)
	}
	return pids, unseen, nil
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("stat %s: no device and inode", path)
	}
	// Dev is a uint32 on some architectures (mips), Ino too on 32-bit ones.
	dev := uint64(st.Dev) //nolint:unconvert // see above
	major, minor := unix.Major(dev), unix.Minor(dev)
	return fileID{major: uint64(major), minor: uint64(minor), ino: uint64(st.Ino)}, nil //nolint:unconvert // see above
}
