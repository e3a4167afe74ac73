//go:build !unix

package blobstore

import "os"

// readFlags opens a file or directory of the store for reading (on Unix
// without waiting: open_unix.go).
const readFlags = os.O_RDONLY
