//go:build unix

package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// walIndexVersion is the iVersion of the wal-index header SQLite writes
// (WALINDEX_MAX_VERSION, unchanged since 3.7.0).
const walIndexVersion = 3007000

// openShm maps the start of the system database's -shm file for reading
// (shared: what SQLite's connections write there is seen at once). The
// generation connection, open before, keeps SQLite from truncating or
// removing the file while it is mapped.
func (v *sysVersion) openShm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // the mapping stays
	m, err := unix.Mmap(int(f.Fd()), 0, 2*walHdrSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map %s: %w", path, err)
	}
	v.shm = m
	return nil
}

func (v *sysVersion) unmapShm() {
	if v.shm != nil {
		unix.Munmap(v.shm) //nolint:errcheck // nothing to do about it
		v.shm = nil
	}
}

// readGen reads the wal-index header from the mapped -shm file (two
// copies of 48 bytes; SQLite's commits write the second, then the first).
// Every commit changes it: its change counter and frame count (or, when
// the WAL restarts, its salts). No system call, no lock, no transaction.
// It returns errGenUnsettled when the copies differ (a commit is writing
// them) or the header is not initialised, and an error when it is not a
// header this code knows or the mapping cannot be read (a fault is
// recovered). The caller holds v.mu for reading.
func (v *sysVersion) readGen(context.Context) (sysGen, error) {
	g := sysGen{epoch: v.epoch}
	var buf [2 * walHdrSize]byte
	if !copyMapped(buf[:], v.shm) {
		return g, errors.New("read wal-index header: memory fault")
	}
	if ver := binary.NativeEndian.Uint32(buf[:4]); ver != walIndexVersion {
		return g, fmt.Errorf("%w: version %d, want %d", errGenFormat, ver, walIndexVersion)
	}
	if !bytes.Equal(buf[:walHdrSize], buf[walHdrSize:]) || buf[12] == 0 { // isInit
		return g, errGenUnsettled
	}
	copy(g.state[:], buf[:walHdrSize])
	return g, nil
}

// copyMapped copies src, mapped memory, to dst; false when reading it
// faulted (the file shrank under the mapping: SIGBUS).
func copyMapped(dst, src []byte) (ok bool) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if recover() != nil {
			ok = false
		}
	}()
	copy(dst, src)
	return true
}
