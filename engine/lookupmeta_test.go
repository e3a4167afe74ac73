package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// lookupMetaBasket returns a session of tenant alpha and a basket holding
// 100 documents named same.txt that carry 256 KiB of metadata each.
func lookupMetaBasket(t testing.TB) (*engine.Session, string) {
	ctx := context.Background()
	be, dir := engine.OpenTestSQLite(t)
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem, ContentDir: filepath.Join(dir, "content"), NoContentSync: true}
	eng := startEngine(t, be, cfg, "alpha")
	s := eng.As(docex.UserContext{UserID: "ann", TenantID: "alpha", Roles: []string{"admin"}})
	basket, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]docex.Value{}
	for _, k := range []string{"a", "b", "c", "d"} {
		meta[k] = docex.String(strings.Repeat(k, engine.MaxMetaValueLen))
	}
	for i := range 100 {
		if _, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "same.txt", Content: strings.NewReader(fmt.Sprint(i)), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	return s, basket.ID
}

// TestLookupDoesNotLoadMetadata: a plugin lookup listing 100 documents
// with 256 KiB of metadata each allocates far less than their 25 MiB of
// metadata (a guest gets ids only). Before, the lookup read every listed
// document's metadata and dropped it: 26 MB allocated a lookup.
func TestLookupDoesNotLoadMetadata(t *testing.T) {
	ctx := context.Background()
	s, basket := lookupMetaBasket(t)
	if _, err := s.LookupForTest(ctx, basket, "same.txt"); err != nil { // warm
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ids, err := s.LookupForTest(ctx, basket, "same.txt")
	runtime.ReadMemStats(&after)
	if err != nil || len(ids) != 100 {
		t.Fatalf("lookup: %d ids, %v", len(ids), err)
	}
	// 100 x 256 KiB of metadata is 25 MiB; ids and the query take tens
	// of KiB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Fatalf("one lookup allocated %d bytes: it read the documents' metadata", n)
	}
}

// BenchmarkLookupMetadata: one plugin lookup (by name) listing 100
// documents that carry 256 KiB of metadata each (4 values of 64 KiB).
// A lookup returns ids only; allocations per lookup show whether it reads
// the documents' metadata (it did: 25 MiB a lookup, dropped at once).
func BenchmarkLookupMetadata(b *testing.B) {
	ctx := context.Background()
	s, basket := lookupMetaBasket(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ids, err := s.LookupForTest(ctx, basket, "same.txt")
		if err != nil || len(ids) != 100 {
			b.Fatalf("lookup: %d ids, %v", len(ids), err)
		}
	}
}

// TestDocumentMetaLimitsHoldOneCall: what one call may set (MaxMetaKeys
// keys of MaxMetaKeyLen bytes with values of MaxMetaValueLen bytes) is
// within a document's limits in total, so a new document, whose metadata
// one call sets (an add, a batch add, a derived document), never needs
// the total check, and no call valid on a document without metadata is
// refused.
func TestDocumentMetaLimitsHoldOneCall(t *testing.T) {
	if engine.MaxMetaKeys > engine.MaxDocumentMetaKeys || engine.MaxMetaKeys*(engine.MaxMetaKeyLen+engine.MaxMetaValueLen) > engine.MaxDocumentMetaBytes {
		t.Fatalf("one call may set %d keys and %d bytes; a document holds at most %d keys and %d bytes",
			engine.MaxMetaKeys, engine.MaxMetaKeys*(engine.MaxMetaKeyLen+engine.MaxMetaValueLen), engine.MaxDocumentMetaKeys, engine.MaxDocumentMetaBytes)
	}
}
