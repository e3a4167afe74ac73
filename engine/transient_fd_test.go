//go:build unix

package engine

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
)

// TestTransientOutOfFiles: a job failing because the process ran out of
// file descriptors is retried, whatever error it made on the way (an
// input's content store read, a step's error, one of a kind), and is
// recorded as too_many_open_files.
func TestTransientOutOfFiles(t *testing.T) {
	emfile := &os.PathError{Op: "openat", Path: "x.pack", Err: syscall.EMFILE}
	for _, err := range []error{
		docex.ErrTooManyOpenFiles,
		fmt.Errorf("%w: %w", docex.ErrCorrupt, emfile),
		fmt.Errorf("%w: %w", docex.ErrInvalid, emfile),
		&contentError{docID: "d", err: fmt.Errorf("content store: %w", syscall.ENFILE)},
	} {
		if !transient(err, false) {
			t.Errorf("transient(%v) = false, want true", err)
		}
	}
	if code := docex.Code(fdlimit.Wrap(fmt.Errorf("%w: %w", docex.ErrCorrupt, emfile))); code != "too_many_open_files" {
		t.Errorf("recorded code %q, want too_many_open_files", code)
	}
	if transient(fmt.Errorf("%w: %w", docex.ErrCorrupt, errors.New("bad bytes")), false) {
		t.Error("a corrupt read is transient")
	}
}
