//go:build !unix

package mcpserver

import "os"

// linkCount returns false: the number of hard links is not read on this
// system, and a hard link to a file inside docex's directories is not
// detected there (docs/agents.md).
func linkCount(os.FileInfo) (uint64, bool) { return 0, false }
