package sqlite

import (
	"context"
	"testing"
)

// BenchmarkReadCheck: what store.checkRead adds to a read. cached: the
// system database unchanged since the last check (one PRAGMA
// data_version on the system database's generation connection);
// registry: the registry read it makes when the system database changed
// (Backend.checkRegistered, what every write runs).
func BenchmarkReadCheck(b *testing.B) {
	ctx := context.Background()
	be, ts := benchTenant(b)
	s := ts.(*store)
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if err := s.checkRead(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("registry", func(b *testing.B) {
		for b.Loop() {
			if err := be.checkRegistered(ctx, s.tenant); err != nil {
				b.Fatal(err)
			}
		}
	})
}
