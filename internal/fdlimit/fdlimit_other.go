//go:build !unix && !windows

package fdlimit

// Limit returns 0: this system's open-file limit is not read, and the
// callers keep their default bounds.
func Limit() int { return 0 }

// Exhausted returns false: this system's descriptors are not probed.
func Exhausted(n int) bool { return false }

// IsExhaustion returns false: no error of this system is recognised as
// running out of file descriptors.
func IsExhaustion(error) bool { return false }
