//go:build linux

package sandbox

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Copy-on-write state reset (docs/sandbox.md, "Fresh state").
//
// A plugin's snapshot (its memory right after initialisation) is written
// once to a sealed memfd. Each instance's linear memory is a private
// mapping of that file: pages the guest never writes stay the file's
// (shared, not copied); a page it writes becomes a private copy. After a
// call, /proc/self/pagemap tells which pages are private, and only those
// are copied back from the snapshot, so a reset costs what the call wrote
// (16 pages of 768 for a Go wordcount), not the whole memory. When the
// kernel does not behave as the probe at New expects (no pagemap, another
// OS, a sandboxed kernel), instances reserve anonymous memory
// (reserve_unix.go) and a reset copies the whole snapshot.

// pageBytes is the host page size the pagemap speaks of.
var pageBytes = os.Getpagesize()

// mapNoReserve: reservations (reserve_unix.go) are not charged to the
// commit limit before their pages are touched.
const mapNoReserve = unix.MAP_NORESERVE

// pagemap reads /proc/self/pagemap; nil when copy-on-write reset is off.
type pagemap struct{ f *os.File }

// Bits of a pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
	pmFile    = 1 << 61 // file page or shared anonymous: not a private copy
)

// openPagemap opens the pagemap and checks that it reports exactly the
// page written in a private mapping of a memfd; it returns nil if not.
func openPagemap() *pagemap {
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil
	}
	pm := &pagemap{f: f}
	img, err := newImage(make([]byte, 4*pageBytes), []uint64{0}, 4*pageBytes, nil)
	if err != nil {
		f.Close()
		return nil
	}
	defer img.close()
	m, err := img.mapping(uint64(4 * pageBytes))
	if err != nil {
		f.Close()
		return nil
	}
	defer unix.Munmap(m)
	_ = m[0]             // read: still the file's page
	m[2*pageBytes+7] = 1 // write: a private copy
	buf := make([]byte, 4*8)
	dirty, err := pm.dirty(m, buf, nil)
	if err != nil || len(dirty) != 1 || dirty[0] != 2 {
		f.Close()
		return nil
	}
	return pm
}

func (pm *pagemap) close() {
	if pm != nil {
		pm.f.Close()
	}
}

// dirty appends to out the indexes of the pages of mem (page-aligned)
// that are private copies, that is written since they were mapped or last
// dropped. buf holds 8 bytes per page.
func (pm *pagemap) dirty(mem []byte, buf []byte, out []int) ([]int, error) {
	n := len(mem) / pageBytes
	if len(buf) < n*8 {
		return nil, fmt.Errorf("pagemap buffer of %d bytes for %d pages", len(buf), n)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	if _, err := pm.f.ReadAt(buf[:n*8], int64(base/uintptr(pageBytes))*8); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		e := binary.LittleEndian.Uint64(buf[i*8:])
		if e&pmSwapped != 0 || e&pmPresent != 0 && e&pmFile == 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// image is a snapshot's memory in a sealed memfd: only its non-zero pages
// are written (the holes read as zero and cost nothing), and the file ends
// at the last non-zero page (past it, mappings are anonymous zeroed
// memory). view is a read-only shared mapping of the file from which a
// reset copies pages back. mu keeps close from releasing the descriptor
// (whose number the process may reuse for another file) while mapping
// uses it.
type image struct {
	mu    sync.RWMutex
	fd    int
	size  int // bytes of the file: up to the last non-zero page
	view  []byte
	files *fileBudget // released when the descriptor is closed
}

// newImage writes the pages of mem that nz marks (a bit per host page) to
// a sealed memfd of size bytes (a multiple of pageBytes, at most len(mem)).
// files, when not nil, is the budget the caller took the descriptor's
// place from: closing the image (or failing) gives it back.
func newImage(mem []byte, nz []uint64, size int, files *fileBudget) (*image, error) {
	fd, err := unix.MemfdCreate("docex-snapshot", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		files.release()
		return nil, err
	}
	img := &image{fd: fd, size: size, files: files}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		img.close()
		return nil, err
	}
	for i := 0; i < size/pageBytes; {
		if !pageSet(nz, i) {
			i++
			continue
		}
		j := i + 1
		for j < size/pageBytes && pageSet(nz, j) {
			j++
		}
		for off, end := i*pageBytes, j*pageBytes; off < end; {
			n, err := unix.Pwrite(fd, mem[off:end], int64(off))
			if err != nil {
				img.close()
				return nil, err
			}
			off += n
		}
		i = j
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		img.close()
		return nil, err
	}
	if size > 0 {
		v, err := unix.Mmap(fd, 0, size, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			img.close()
			return nil, err
		}
		img.view = v
	}
	return img, nil
}

// resident returns the bytes of the file's pages in memory (tmpfs blocks):
// the non-zero pages written, and holes that mappings have read since.
func (img *image) resident() int64 {
	img.mu.RLock()
	defer img.mu.RUnlock()
	var st unix.Stat_t
	if img.fd < 0 || unix.Fstat(img.fd, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

// mapping maps the image privately, reserving limit bytes: past the
// image the mapping is anonymous zeroed memory for the memory to grow into.
func (img *image) mapping(limit uint64) ([]byte, error) {
	img.mu.RLock()
	defer img.mu.RUnlock()
	if img.fd < 0 {
		return nil, os.ErrClosed
	}
	limit = max(limit, uint64(img.size))
	m, err := reserve(limit)
	if err != nil {
		return nil, err
	}
	if img.size > 0 {
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
		_, _, errno := unix.Syscall6(unix.SYS_MMAP, addr, uintptr(img.size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_FIXED, uintptr(img.fd), 0)
		if errno != 0 {
			unix.Munmap(m)
			return nil, errno
		}
	}
	return m, nil
}

func (img *image) close() {
	if img == nil {
		return
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.fd >= 0 {
		unix.Close(img.fd)
		img.fd = -1
		img.files.release()
		img.files = nil
	}
	if img.view != nil {
		_ = unix.Munmap(img.view)
		img.view = nil
	}
}

// openFileLimit returns the process's open-file limit (RLIMIT_NOFILE's
// soft limit, which Go raises to the hard limit at start), 0 if unknown.
func openFileLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Cur, 1<<31-1))
}

// dropPages discards the private copies of mem's pages: they read as the
// mapped file again.
func dropPages(mem []byte) error { return unix.Madvise(mem, unix.MADV_DONTNEED) }
