//go:build unix || windows

package fdlimit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
)

// TestWindowsExhaustion: Windows's ERROR_TOO_MANY_OPEN_FILES (as Go
// returns it from an open: in a *PathError) and WSAEMFILE (from a socket:
// in a *net.OpError and *os.SyscallError), also wrapped, are exhaustion
// for the Windows classifier; other Windows errors are not. The values
// are constructed, so this runs on every system; on Windows IsExhaustion
// and Wrap agree with it, elsewhere the same numbers mean other errors
// (4 is EINTR on Linux) and IsExhaustion does not take them.
func TestWindowsExhaustion(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.Errno(4), true},
		{&os.PathError{Op: "open", Path: `C:\data\t0.db`, Err: syscall.Errno(4)}, true},
		{fmt.Errorf("open tenant: %w", &os.PathError{Op: "open", Path: "x", Err: syscall.Errno(4)}), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.Errno(10024))}, true},
		{syscall.Errno(2), false},  // ERROR_FILE_NOT_FOUND
		{syscall.Errno(5), false},  // ERROR_ACCESS_DENIED
		{syscall.Errno(24), false}, // ERROR_BAD_LENGTH (EMFILE's number on Unix)
		{errors.New("too many open files"), false},
	} {
		if got := isWindowsExhaustion(tc.err); got != tc.want {
			t.Errorf("isWindowsExhaustion(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if runtime.GOOS != "windows" {
			continue
		}
		if got := IsExhaustion(tc.err); got != tc.want {
			t.Errorf("IsExhaustion(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if got := errors.Is(Wrap(tc.err), docex.ErrTooManyOpenFiles); got != tc.want {
			t.Errorf("Wrap(%v) matches ErrTooManyOpenFiles: %v, want %v", tc.err, got, tc.want)
		}
	}
}
