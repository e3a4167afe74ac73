package blobstore

import "github.com/docex-dev/docex/driver"

// Synced reports whether a staged file of the filesystem store was
// flushed (by Sync, or by Put for one Sync left out).
func Synced(st driver.Staged) bool { return st.(*fsStaged).synced }

// SetMaxOpen sets how many namespace directories s holds open.
func SetMaxOpen(s *FS, n int) { s.cache.max = n }

// OpenNamespaces returns how many namespace directories s's cache holds.
func OpenNamespaces(s *FS) int { return s.cache.size() }

// OnDirSync calls fn with each directory a namespace of s made afterwards
// fsyncs (or one above it), before it does.
func OnDirSync(s *FS, fn func(dir string)) { s.dirSynced = fn }

// MaxOpen returns how many namespace directories s holds open at most.
func MaxOpen(s *FS) int { return s.cache.max }

// SpoolError is the error of a spool file not made or written in dir.
var SpoolError = spoolError
