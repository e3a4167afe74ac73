//go:build windows

package sandbox

import (
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// reserve reserves limit bytes of address space (MEM_RESERVE, no access)
// for an instance's linear memory; commit makes the pages a memory.grow
// reaches readable and writable (MEM_COMMIT: zeroed on first touch), so
// that a grow neither allocates Go memory, zeroes nor copies
// (docs/sandbox.md, "Pools and instances").
func reserve(limit uint64) ([]byte, error) {
	if limit == 0 || limit > math.MaxInt {
		return nil, os.ErrInvalid
	}
	addr, err := windows.VirtualAlloc(0, uintptr(limit), windows.MEM_RESERVE, windows.PAGE_NOACCESS)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), int(limit)), nil
}

func commit(m []byte, from, to uint64) error {
	if to <= from {
		return nil
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	_, err := windows.VirtualAlloc(base+uintptr(from), uintptr(to-from), windows.MEM_COMMIT, windows.PAGE_READWRITE)
	return err
}

func unmap(m []byte) {
	_ = windows.VirtualFree(uintptr(unsafe.Pointer(unsafe.SliceData(m))), 0, windows.MEM_RELEASE)
}
