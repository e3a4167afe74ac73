//go:build unix

package mcpserver

import (
	"os"
	"syscall"
)

// linkCount returns the number of hard links of the file fi describes and
// true, or false when the system does not say.
func linkCount(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}
