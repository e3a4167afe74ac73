// Package blobstore holds the engine's built-in content stores, the two
// implementations of driver.ContentStore that need no configuration beyond
// the engine's own: FS keeps content in a directory per tenant incarnation,
// DB keeps it in the tenant's database.
//
// FS writes are atomic: content is streamed to a temporary file in the
// namespace's tmp directory while it is hashed, fsynced, then linked to its
// final name (sha256[:2]/sha256) and the directory fsynced, inside the
// transaction that refers to it. With packing (NewFSPacked, what the
// engine uses), content of at most packMax bytes is instead held in
// memory, written with the rest of its batch into one pack file
// (packs/<uuid>.pack; a batch past the engine's bound on staged memory
// writes one per bound's worth, Spill) fsynced with its directory before
// the transaction,
// and located by a row of the tenant database's content table written in
// the transaction (pack.go). Names are derived from checksums and
// validated tenant incarnations only (package internal/contentkey), never
// from user-supplied names, so nothing can escape the root; and no
// symbolic link planted under it is followed out of a namespace, on any
// system: every file is reached through an os.Root held open on the
// namespace's directory, which is itself opened without following a link
// (root.go). One in place of a directory the store writes into is
// docex.ErrCorrupt (mkdir), one at a content file's name is replaced
// (linkVerified), and reads refuse a file that is a link (openNoFollow).
package blobstore
