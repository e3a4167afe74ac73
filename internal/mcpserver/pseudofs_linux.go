package mcpserver

import (
	"os"
	"syscall"
)

// pseudoFS returns the name of the kernel filesystem the open file f is
// on when that filesystem describes the running system rather than holds
// files (proc, sysfs and the like: /proc/self/environ is docex's own
// environment, with its database DSN), and true; false for any other
// filesystem or when the system does not say.
func pseudoFS(f *os.File) (string, bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", false
	}
	var (
		st   syscall.Statfs_t
		serr error
	)
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstatfs(int(fd), &st) }); err != nil || serr != nil {
		return "", false
	}
	// Magic numbers of linux/magic.h.
	switch uint64(st.Type) {
	case 0x9fa0:
		return "proc filesystem", true
	case 0x62656572:
		return "sysfs", true
	case 0x64626720:
		return "debugfs", true
	case 0x74726163:
		return "tracefs", true
	case 0x73636673:
		return "securityfs", true
	case 0x27e0eb, 0x63677270:
		return "cgroup filesystem", true
	case 0xcafe4a11:
		return "bpf filesystem", true
	case 0x6e736673:
		return "namespace filesystem", true
	case 0x1cd1:
		return "devpts filesystem", true
	case 0x50495045:
		return "pipe filesystem", true
	case 0x534f434b:
		return "socket filesystem", true
	}
	return "", false
}
