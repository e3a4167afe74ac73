// Package blobstore stores document content on the filesystem, addressed by
// its sha256 checksum, under one directory per tenant incarnation.
//
// Writes are atomic: content is streamed to a temporary file in the store's
// tmp directory while it is hashed, fsynced, then linked to its final name
// and the directory fsynced. Names are derived from checksums only, never
// from user-supplied names, so nothing can escape the root.
package blobstore
