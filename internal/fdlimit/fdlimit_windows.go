//go:build windows

package fdlimit

// Limit returns 0: Windows has no per-process open-file limit to read (its
// handles are bounded by memory), and the callers keep their default
// bounds.
func Limit() int { return 0 }

// Exhausted returns false: Windows's handles are not probed, so an open
// that failed without saying why (SQLite's "unable to open database file
// (14)") is not told to be exhaustion here.
func Exhausted(n int) bool { return false }

// IsExhaustion reports whether err is Windows's ERROR_TOO_MANY_OPEN_FILES
// (4, which Go returns from CreateFile in a *PathError) or WSAEMFILE
// (10024, too many sockets, from socket in a *net.OpError), anywhere in
// its chain (isWindowsExhaustion).
func IsExhaustion(err error) bool { return isWindowsExhaustion(err) }
