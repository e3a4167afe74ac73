//go:build unix

package s3test

import (
	"os"
	"syscall"
)

// killGroup kills p's process group (procAttr made p its leader), then p.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.Kill()
}
