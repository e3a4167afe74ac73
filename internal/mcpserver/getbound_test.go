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
