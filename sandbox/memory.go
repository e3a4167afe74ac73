package sandbox

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs one instance's wasm memory and enforces the plugin's
// page limit per instance (the runtime-wide WithMemoryLimitPages only knows
// the operator ceiling). A refused growth is remembered so that the trap
// that usually follows is reported as ErrPluginMemory.
type linearMemory struct {
	buf    []byte
	limit  uint64
	denied bool
	// mapped, when set, reserves the whole limit: a private mapping of the
	// plugin's snapshot image when cow is set (cow_linux.go), else an
	// anonymous reservation (reserve_*.go); buf is a prefix, and a grow
	// only commits the pages it adds (no allocation, zeroing or copy).
	// Without it (a system with neither mmap nor VirtualAlloc), buf is Go
	// memory that a grow reallocates and copies.
	mapped []byte
	cow    bool
	// freeMu serialises Free: wazero's module close calls it and so does
	// instance.close, and Sandbox.Close closes every module from another
	// goroutine while a Run that found the sandbox closed closes its own
	// instance. Unserialised, both could unmap the same mapping, the
	// second after the range was reused.
	freeMu sync.Mutex
	// onFree, when set (tests only: Sandbox.onFree), sees mapped as Free
	// unmaps it.
	onFree func(mapped []byte)
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit && size > uint64(len(m.buf)) {
		if m.buf != nil { // the initial allocation is checked at Load
			m.denied = true
			return nil
		}
	}
	if m.mapped != nil {
		if size > uint64(len(m.mapped)) {
			m.denied = true
			return nil
		}
		if err := commit(m.mapped, uint64(len(m.buf)), size); err != nil {
			m.denied = true
			return nil
		}
		m.buf = m.mapped[:size:size] // idle accounting counts cap(buf)
		return m.buf
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size] // never shrinks, so bytes past len are still zero
		return m.buf
	}
	// Grow geometrically (Go guests grow a few pages at a time) but never
	// reserve more than the limit.
	c := max(size, min(2*uint64(cap(m.buf)), m.limit))
	nb := make([]byte, size, c)
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

func (m *linearMemory) Free() {
	m.freeMu.Lock()
	defer m.freeMu.Unlock()
	m.buf = nil
	if m.mapped != nil {
		if m.onFree != nil {
			m.onFree(m.mapped)
		}
		unmap(m.mapped)
		m.mapped = nil
	}
}

func (m *linearMemory) size() int64 { return int64(len(m.buf)) }
