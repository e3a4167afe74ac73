package s3test

import "syscall"

// procAttr starts the gateway in a process group of its own (killGroup)
// that the kernel kills with the test process.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
