//go:build !unix

package mcpserver

import "errors"

// mkfifo returns errors.ErrUnsupported: this system has no named pipes in
// its file system.
func mkfifo(string) error { return errors.ErrUnsupported }
