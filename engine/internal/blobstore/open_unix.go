//go:build unix

package blobstore

import (
	"os"
	"syscall"
)

// readFlags opens a file or directory of the store for reading without
// waiting: a FIFO (or a device) planted at its name would block an open
// for reading until a writer came; opened this way it is found not to be
// a regular file (or directory) and refused. Reads of a regular file or a
// directory ignore the flag.
const readFlags = os.O_RDONLY | syscall.O_NONBLOCK
