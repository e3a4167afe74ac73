//go:build unix

package sandbox

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// reserve reserves limit bytes of anonymous zeroed memory for an
// instance's linear memory (docs/sandbox.md, "Pools and instances"): the
// whole limit at once, so that a memory.grow only lengthens the slice
// (commit is a no-op here: the kernel gives a page when it is first
// touched). Unlike Go memory, a grow then neither allocates, zeroes nor
// copies, the mapping goes back to the system when the instance closes,
// and pages never touched cost nothing.
func reserve(limit uint64) ([]byte, error) {
	if limit == 0 || limit > math.MaxInt {
		return nil, os.ErrInvalid
	}
	return unix.Mmap(-1, 0, int(limit), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|mapNoReserve)
}

// commit makes m[from:to] of a reservation usable: nothing to do where the
// kernel commits pages on first touch.
func commit(m []byte, from, to uint64) error { return nil }

func unmap(m []byte) { _ = unix.Munmap(m) }
