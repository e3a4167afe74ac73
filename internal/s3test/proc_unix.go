//go:build unix && !linux

package s3test

import "syscall"

// procAttr starts the gateway in a process group of its own (killGroup);
// only Linux can have it killed with the test process.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
