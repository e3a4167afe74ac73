//go:build unix || windows

package fdlimit

import (
	"errors"
	"syscall"
)

// The Windows error codes that say the process ran out of handles or
// sockets, as Go on Windows returns them (syscall.Errno, whose syscall
// package does not name them). On other systems the same numbers are
// other errors (4 is EINTR on Linux): there isWindowsExhaustion is only
// compiled and tested, never used.
const (
	errorTooManyOpenFiles syscall.Errno = 4     // ERROR_TOO_MANY_OPEN_FILES
	wsaEMFILE             syscall.Errno = 10024 // WSAEMFILE
)

// isWindowsExhaustion reports whether err's chain holds
// ERROR_TOO_MANY_OPEN_FILES or WSAEMFILE: IsExhaustion on Windows.
func isWindowsExhaustion(err error) bool {
	return errors.Is(err, errorTooManyOpenFiles) || errors.Is(err, wsaEMFILE)
}
