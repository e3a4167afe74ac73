//go:build !linux

package sandbox

import "errors"

// Without Linux's pagemap and memfd, a snapshot is a Go copy and a reset
// copies the whole snapshot (see cow_linux.go); instances still reserve
// their memory (reserve_*.go).

var pageBytes = 4096

type pagemap struct{}

func openPagemap() *pagemap { return nil }

func (pm *pagemap) close() {}

func (pm *pagemap) dirty(mem, buf []byte, out []int) ([]int, error) {
	return nil, errors.ErrUnsupported
}

type image struct {
	size int
	view []byte
}

func newImage(_ []byte, _ []uint64, _ int, files *fileBudget) (*image, error) {
	files.release()
	return nil, errors.ErrUnsupported
}

// openFileLimit returns 0: no memfd, no descriptors to budget.
func openFileLimit() int { return 0 }

func (img *image) resident() int64 { return 0 }

func (img *image) mapping(uint64) ([]byte, error) { return nil, errors.ErrUnsupported }

func (img *image) close() {}

func dropPages([]byte) error { return errors.ErrUnsupported }
