package driver

import "context"

// Compacted is what a Compactor's Compact measured: the size of the
// tenant's database before and after, in bytes.
type Compacted struct {
	Before, After int64
}

// Compactor is a TenantStore that can give the space its deletions freed
// back to the file system (docex compact).
type Compactor interface {
	// Compact rewrites the store's database without its free space. It
	// blocks the tenant's writes while it runs (on PostgreSQL its reads
	// too), changes no row, and returns the sizes it measured, or the
	// database's error (docex.ErrInterrupted-wrapped ctx errors included);
	// interrupted, the database is as before.
	Compact(ctx context.Context) (Compacted, error)
}
