//go:build unix

package fdlimit

import (
	"errors"
	"math"
	"os"
	"syscall"
)

// Limit returns the process's open-file limit: RLIMIT_NOFILE's soft limit,
// which the Go runtime raises to the hard limit when the process starts
// (so `ulimit -Hn` decides it); 0 when it cannot be read.
func Limit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if uint64(rl.Cur) > math.MaxInt32 { // RLIM_INFINITY or near it
		return math.MaxInt32
	}
	return int(rl.Cur)
}

// Exhausted reports whether the process cannot open n more files because
// it holds as many as its limit allows (EMFILE) or the system holds as
// many as it allows (ENFILE): it opens /dev/null up to n times and closes
// what it opened. It tells an open that failed for want of descriptors
// (SQLite says only "unable to open database file") from one that failed
// for another reason. An open that needed n files and failed at the last
// may have closed the others by the time it returns, so the caller asks
// for as many as the failed open needed; other goroutines may free
// descriptors meanwhile, so false does not prove another cause.
func Exhausted(n int) bool {
	var fds []int
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	for range n {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return IsExhaustion(err)
		}
		fds = append(fds, fd)
	}
	return false
}

// IsExhaustion reports whether err is EMFILE or ENFILE (too many open
// files in the process or in the system).
func IsExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// TakeAll opens /dev/null until the process has no file descriptor left
// and returns the descriptors it took, for tests that run out of
// descriptors on purpose (in a child process with a low limit). It first
// opens and closes one file, so that the Go runtime's network poller,
// which later opens need, exists. Release gives them back.
func TakeAll() []int {
	if f, err := os.Open(os.DevNull); err == nil {
		f.Close()
	}
	var held []int
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return held
		}
		held = append(held, fd)
	}
}

// Release closes fds, descriptors TakeAll took.
func Release(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
