package sandbox

import (
	"bytes"
	"context"
	"math/bits"
	"slices"
	"sync"
)

// snapshot is a guest's state right after initialisation: every
// invocation starts from it (docs/sandbox.md, "Fresh state"). Its memory
// is held once, and only its non-zero pages: in a sealed memfd (img, with
// nz marking the non-zero host pages) that instances map privately, so
// that a reset copies back only the pages a call wrote (cow_linux.go); or,
// where that is not available, in data: the memory up to its last non-zero
// page (the rest is zero). Snapshots are charged to the idle cache
// (Config.MaxIdleBytes) and evicted from it like idle instances.
type snapshot struct {
	size    int // bytes of linear memory
	globals []uint64
	clock   guestClock // the clocks and random stream (in and running unset)
	img     *image
	nz      []uint64 // with img: a bit per host page, set when not zero
	data    []byte   // without img

	owner *Plugin
	entry *idleEntry // in the idle cache; guarded by the cache's mu
	gone  bool       // dropped from the cache (or never to enter it); guarded by the cache's mu

	mu     sync.RWMutex // restores read the memory under RLock; close takes Lock
	closed bool
}

func pageSet(nz []uint64, i int) bool { return nz[i/64]&(1<<(i%64)) != 0 }

var zeros = make([]byte, 64<<10)

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// zeroPages clears b page by page, leaving alone the pages that already
// read zero (a page never written is not made resident).
func zeroPages(b []byte) {
	for len(b) > 0 {
		n := min(len(b), pageBytes)
		if !isZero(b[:n]) {
			clear(b[:n])
		}
		b = b[n:]
	}
}

// capture takes in's snapshot; files, when not nil, is the budget a memfd
// image's descriptor was taken from (the memory is then held there only,
// else in Go memory); a failed image gives its place back.
func (in *instance) capture(files *fileBudget) *snapshot {
	buf := in.mem.buf
	s := &snapshot{size: len(buf), globals: make([]uint64, len(in.globals)),
		clock: guestClock{elapsed: in.clock.elapsed, rng: in.clock.rng}}
	for i, g := range in.globals {
		s.globals[i] = g.Get()
	}
	n := len(buf) / pageBytes
	nz := make([]uint64, (n+63)/64)
	end := 0
	for i := 0; i < n; i++ {
		if !isZero(buf[i*pageBytes : (i+1)*pageBytes]) {
			nz[i/64] |= 1 << (i % 64)
			end = (i + 1) * pageBytes
		}
	}
	if files != nil {
		if img, err := newImage(buf, nz, end, files); err == nil {
			s.img, s.nz = img, nz
			return s
		}
	}
	s.data = slices.Clone(buf[:end])
	return s
}

// fileBudget bounds the snapshot memfds of a Sandbox
// (Config.MaxSnapshotFiles): each image holds a descriptor until it is
// closed.
type fileBudget struct {
	mu  sync.Mutex
	n   int
	max int
}

// take reserves a descriptor's place; false when all are taken.
func (b *fileBudget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.max {
		return false
	}
	b.n++
	return true
}

// release gives a place back; a nil budget has nothing to give.
func (b *fileBudget) release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.n--
	b.mu.Unlock()
}

// held returns the descriptors held.
func (b *fileBudget) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// snapshotFiles returns the budget for a new snapshot's memfd, or nil
// when it gets none: no copy-on-write reset, or every place taken even
// after evicting the least recently used snapshot that holds one (the
// snapshot is then a Go copy, and resets copy the whole memory).
func (sb *Sandbox) snapshotFiles(ctx context.Context) *fileBudget {
	if sb.pm == nil || sb.copyReset {
		return nil
	}
	if sb.files.take() {
		return &sb.files
	}
	if sb.idle.evictImage(ctx) && sb.files.take() {
		return &sb.files
	}
	return nil
}

// nonZeroPages counts the host pages the snapshot holds.
func (s *snapshot) nonZeroPages() int {
	if s.img == nil {
		return (len(s.data) + pageBytes - 1) / pageBytes
	}
	n := 0
	for _, w := range s.nz {
		n += bits.OnesCount64(w)
	}
	return n
}

// bytes is what the snapshot holds in memory, as charged against
// Config.MaxIdleBytes: the image's resident pages (its non-zero pages and
// any hole an instance has read since) and its page bitmap, or the Go
// copy.
func (s *snapshot) bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.img != nil {
		return s.img.resident() + int64(len(s.nz))*8
	}
	return int64(cap(s.data))
}

// page sets dst, the memory's host page at off, to the snapshot's.
func (s *snapshot) page(dst []byte, off int) {
	if s.img != nil {
		if off < s.img.size && pageSet(s.nz, off/pageBytes) {
			copy(dst, s.img.view[off:])
			return
		}
		zeroPages(dst)
		return
	}
	n := 0
	if off < len(s.data) {
		n = copy(dst, s.data[off:])
	}
	zeroPages(dst[n:])
}

// copyTo sets mem (s.size bytes) to the snapshot's memory.
func (s *snapshot) copyTo(mem []byte) {
	if s.img == nil {
		n := copy(mem, s.data)
		zeroPages(mem[n:])
		return
	}
	for off := 0; off < len(mem); off += pageBytes {
		s.page(mem[off:min(off+pageBytes, len(mem))], off)
	}
}

// close releases the snapshot's memory once no restore reads it.
func (s *snapshot) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.img.close() // instances keep their mappings
	s.data = nil
}

func (s *snapshot) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// forget drops s as p's snapshot (evicted from the idle cache): the next
// instance initialises anew and takes another.
func (p *Plugin) forget(s *snapshot) {
	p.mu.Lock()
	if p.snap == s {
		p.snap = nil
	}
	p.mu.Unlock()
	s.close()
}
