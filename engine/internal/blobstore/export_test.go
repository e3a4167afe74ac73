package blobstore

import "github.com/docex-dev/docex/driver"

// Synced reports whether a staged file of the filesystem store was
// flushed (by Sync, or by Put for one Sync left out).
func Synced(st driver.Staged) bool { return st.(*fsStaged).synced }
