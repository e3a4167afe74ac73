// Package fdlimit reads the process's open-file limit, from which the
// SQLite backend and the filesystem content store size what they keep
// open, tells whether a failed open was the process running out of file
// descriptors, and wraps such an error in docex.ErrTooManyOpenFiles.
package fdlimit

// Share returns how many items holding up to per descriptors each fit in
// 1/div of limit (the process's open-file limit): ⌊limit / div / per⌋, at
// least 1 and at most ceiling; ceiling when limit is 0 (unknown).
func Share(limit, div, per, ceiling int) int {
	if limit <= 0 || div <= 0 || per <= 0 {
		return ceiling
	}
	return min(ceiling, max(1, limit/div/per))
}
