// Package contentkey holds what every content store shares: the one rule
// that turns a tenant incarnation and a checksum into a storage name, the
// hashing copy that stages content, and the reader that verifies content
// on its way out. Names are derived from validated tenant ids, incarnation
// UUIDs and lowercase hex SHA-256 checksums only, never from user-supplied
// names, so no name can escape its tenant's namespace.
package contentkey
