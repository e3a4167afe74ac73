//go:build !unix

package proccpu

import "time"

// Self returns 0: this system's process CPU time is not read, and the
// benchmarks leave out the CPU ratios they would compute from it.
func Self() time.Duration { return 0 }
