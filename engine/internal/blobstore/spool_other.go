//go:build !windows

package blobstore

// deleteOnClose is 0: createSpool removes the file once it is open.
const deleteOnClose = 0
