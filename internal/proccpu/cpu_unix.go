//go:build unix

package proccpu

import (
	"syscall"
	"time"
)

// Self returns the process's user and system CPU time so far, or 0 when
// the system cannot tell (getrusage failed).
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
