//go:build unix

package fdlimit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
)

// TestIsExhaustion: EMFILE and ENFILE, also wrapped, are exhaustion;
// another errno is not.
func TestIsExhaustion(t *testing.T) {
	for err, want := range map[error]bool{
		syscall.EMFILE: true, syscall.ENFILE: true, &os.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}: true,
		fmt.Errorf("w: %w", syscall.ENFILE): true, syscall.ENOENT: false, syscall.EACCES: false,
	} {
		if got := IsExhaustion(err); got != want {
			t.Errorf("IsExhaustion(%v) = %v, want %v", err, got, want)
		}
	}
}

// TestWrap: EMFILE or ENFILE anywhere in the chain, even under another
// docex error, is ErrTooManyOpenFiles first (its code) naming the limit;
// other errors and one already wrapped are returned as they are.
func TestWrap(t *testing.T) {
	emfile := &os.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}
	under := fmt.Errorf("%w: %w", docex.ErrStorageUnavailable, emfile)
	for _, err := range []error{emfile, under, fmt.Errorf("w: %w", syscall.ENFILE)} {
		got := Wrap(err)
		if !errors.Is(got, docex.ErrTooManyOpenFiles) || docex.Code(got) != "too_many_open_files" || !errors.Is(got, err) ||
			!strings.Contains(got.Error(), fmt.Sprintf("open-file limit %d", Limit())) {
			t.Errorf("Wrap(%v) = %v (code %s)", err, got, docex.Code(got))
		}
		if again := Wrap(got); again != got {
			t.Errorf("Wrap of a wrapped error wrapped it again: %v", again)
		}
	}
	other := &os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}
	if Wrap(other) != error(other) || Wrap(nil) != nil {
		t.Error("Wrap changed an error that is not exhaustion, or nil")
	}
}
