//go:build !linux

package mcpserver

import "os"

// pseudoFS reports false: only Linux is known to have kernel
// filesystems such as /proc that a path can reach and a read would
// expose (see pseudofs_linux.go).
func pseudoFS(*os.File) (string, bool) { return "", false }
