package mcpserver

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestGetDocumentReadsBounded: get_document of a document with 16 MiB of
// metadata (256 values of 64 KiB) reads from the store only the values
// its record can give (1 MiB), not all 16 MiB; the record is the one
// recordOf makes of the whole document. Before, the whole metadata was
// read into memory (and each value marshalled to be measured): the call
// allocated 118 MB, client and server in one process, 62 MB since.
func TestGetDocumentReadsBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations under the race detector are not the program's")
	}
	e := newEnv(t)
	ctx := context.Background()
	meta := map[string]docex.Value{}
	for i := range engine.MaxMetaKeys {
		meta[fmt.Sprintf("k%03d", i)] = docex.String(strings.Repeat("v", engine.MaxMetaValueLen))
	}
	d, err := e.admin.SetMetadata(ctx, e.doc.ID, meta)
	if err != nil {
		t.Fatal(err)
	}
	want := recordOf(d, nil)
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	type rec struct {
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}
	call[rec](t, cs, "get_document", map[string]any{"id": e.doc.ID}) // warm
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got := call[rec](t, cs, "get_document", map[string]any{"id": e.doc.ID})
	runtime.ReadMemStats(&after)
	if len(got.Metadata) != len(want.Metadata) || fmt.Sprint(got.Omitted) != fmt.Sprint(want.MetadataOmitted) || len(got.Omitted) == 0 {
		t.Fatalf("get_document: %d values, omitted %v; want %d, omitted %v", len(got.Metadata), got.Omitted, len(want.Metadata), want.MetadataOmitted)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v.Canonical() {
			t.Fatalf("get_document: %s differs", k)
		}
	}
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("get_document of a document with 16 MiB of metadata allocated %d bytes", n)
	// The record's 1 MiB of values, read, marshalled and sent twice
	// (content and structuredContent) over the in-memory transport, and
	// decoded by the client (and by call): about 62 MB. Reading the whole
	// metadata, and marshalling each value to measure it, added about 56
	// MB more.
	if n > 90<<20 {
		t.Fatalf("get_document allocated %d bytes: it read the whole metadata", n)
	}
}

// TestGetDocumentKeysReadsBounded: get_document with keys, of a document
// with 16 MiB of metadata (256 values of 64 KiB), reads from the store
// only the values of those keys that its record can give: one key reads
// one value, not 16 MiB; every key gives the record recordOf makes of the
// whole document with those keys (1 MiB of them). Before, the keys path
// read the whole metadata (Document) and picked the keys afterwards.
func TestGetDocumentKeysReadsBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations under the race detector are not the program's")
	}
	e := newEnv(t)
	ctx := context.Background()
	meta := map[string]docex.Value{}
	var all []string
	for i := range engine.MaxMetaKeys {
		k := fmt.Sprintf("k%03d", i)
		meta[k] = docex.String(strings.Repeat("v", engine.MaxMetaValueLen))
		all = append(all, k)
	}
	d, err := e.admin.SetMetadata(ctx, e.doc.ID, meta)
	if err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	type rec struct {
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}
	for _, c := range []struct {
		name  string
		keys  []string
		limit uint64 // bytes the call may allocate
	}{
		// A 64 KiB value, sent twice and decoded: 4.2 MB (2026-12-07);
		// reading the whole metadata allocated 21.9 MB.
		{"one key", []string{"k007", "nokey"}, 10 << 20},
		// As get_document without keys (TestGetDocumentReadsBounded).
		{"every key", all, 90 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := recordOf(d, c.keys)
			args := map[string]any{"id": e.doc.ID, "keys": c.keys}
			call[rec](t, cs, "get_document", args) // warm
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			got := call[rec](t, cs, "get_document", args)
			runtime.ReadMemStats(&after)
			if len(got.Metadata) != len(want.Metadata) || fmt.Sprint(got.Omitted) != fmt.Sprint(want.MetadataOmitted) {
				t.Fatalf("get_document: %d values, omitted %v; want %d, omitted %v", len(got.Metadata), got.Omitted, len(want.Metadata), want.MetadataOmitted)
			}
			for k, v := range want.Metadata {
				if got.Metadata[k] != v.Canonical() {
					t.Fatalf("get_document: %s differs", k)
				}
			}
			n := after.TotalAlloc - before.TotalAlloc
			t.Logf("get_document with %d keys of a document with 16 MiB of metadata allocated %d bytes", len(c.keys), n)
			if n > c.limit {
				t.Fatalf("get_document with keys allocated %d bytes, more than %d: it read the whole metadata", n, c.limit)
			}
		})
	}
}
