//go:build !unix

package fdlimit

// Limit returns 0: this system's open-file limit is not read, and the
// callers keep their default bounds.
func Limit() int { return 0 }

// Exhausted returns false: this system's descriptors are not probed.
func Exhausted(n int) bool { return false }

// IsExhaustion returns false: EMFILE and ENFILE are not told apart here.
func IsExhaustion(error) bool { return false }
