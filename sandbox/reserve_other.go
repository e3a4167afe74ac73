//go:build !unix && !windows

package sandbox

import "errors"

// Neither mmap nor VirtualAlloc: instances use Go memory (memory.go), and
// a grow allocates and copies it.

func reserve(uint64) ([]byte, error) { return nil, errors.ErrUnsupported }

func commit([]byte, uint64, uint64) error { return nil }

func unmap([]byte) {}
