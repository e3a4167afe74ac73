// Package s3store keeps document content in an S3 bucket (AWS S3 or an
// S3-compatible server): an implementation of driver.ContentStore that the
// engine takes as engine.Config.ContentStore.
//
// Objects are named PREFIX/tenants/<tenant id>/<incarnation>/<sha256[:2]>/<sha256>
// (PREFIX/local/... with multi-tenancy disabled), from validated tenant ids,
// incarnation UUIDs and checksums only, never from user-supplied names: a
// deleted and re-created tenant never sees its predecessor's objects, and a
// tenant is exported or wiped by prefix. PREFIX/.docex-system is the claim
// marker (driver.Claimer): the id of the one system the prefix belongs to,
// written by engine.Bootstrap (docex init) and read by the sweep and
// verify, which refuse a prefix without it or claimed by another system.
//
// Content is staged locally while it is hashed (in memory up to 1 MiB
// within a memory budget, else in a spool file), so that each new content
// costs one PUT, sent with its SHA-256 (x-amz-checksum-sha256, and as the
// signed payload hash) for the server to reject a corrupted upload. Content
// larger than the part size goes up in a multipart upload, each part with
// its own SHA-256, read from the spool file: memory stays bounded whatever
// the document's size. Reads verify the whole content against its checksum
// (engine-side, through internal/contentkey).
//
// Errors: a refused request (bad credentials, missing permission) matches
// docex.ErrStorageDenied; a server that cannot be reached or does not answer
// within the request timeout matches docex.ErrStorageUnavailable; a missing
// bucket is docex.ErrInvalidConfig and ErrNoSuchBucket.
package s3store
