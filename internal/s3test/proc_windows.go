package s3test

import (
	"os"
	"syscall"
)

// procAttr: Windows has no process groups to start the gateway in.
func procAttr() *syscall.SysProcAttr { return nil }

// killGroup kills p (its children, if any, are left).
func killGroup(p *os.Process) { p.Kill() }
