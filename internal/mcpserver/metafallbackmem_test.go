package mcpserver

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// metaDoc adds a document holding meta to basket (e's "in" when ""), its
// metadata set in calls of engine.MaxMetaKeys keys, and returns its id.
func metaDoc(t testing.TB, e *env, basket, name string, meta map[string]docex.Value) string {
	t.Helper()
	ctx := context.Background()
	if basket == "" {
		basket = e.basket.ID
	}
	a, err := e.admin.AddDocument(ctx, basket, engine.NewDocument{Name: name, Content: strings.NewReader(name)})
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(meta))
	for len(keys) > 0 {
		n := min(len(keys), engine.MaxMetaKeys)
		kv := map[string]docex.Value{}
		for _, k := range keys[:n] {
			kv[k] = meta[k]
		}
		if _, err := e.admin.SetMetadata(ctx, a.Document.ID, kv); err != nil {
			t.Fatal(err)
		}
		keys = keys[n:]
	}
	return a.Document.ID
}

// escaping values: each byte of them is 1 (x), 2 (", \n) or 6 (<, &:
// \u003c) bytes of JSON.
func repeatValue(s string, n int) docex.Value { return docex.String(strings.Repeat(s, n)) }

// TestMetaFallbackReadsBounded: a get_document, and a list_documents, of
// a document of about 16 MiB of metadata whose first values escape (<
// is \u003c), so that a value the store read is left out and values it
// did not read come after it, read only what may still fit, not the
// whole metadata: the call allocates about what the same call allocates
// on a document holding only the values its record gives (the same
// record), but for the values the store's bounded read reads. Before,
// the metadata was read in full: each call allocated about 56 MB more.
func TestMetaFallbackReadsBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations under the race detector are not the program's")
	}
	e := newEnv(t)
	ctx := context.Background()
	rec := map[string]docex.Value{}
	list := map[string]docex.Value{}
	for i := range 256 {
		k := fmt.Sprintf("k%03d", i)
		rec[k] = repeatValue("v", engine.MaxMetaValueLen)
		list[k] = repeatValue("v", engine.MaxMetaValueLen)
		if i < 3 {
			rec[k] = repeatValue("<", 60<<10) // two fit in 1 MiB of JSON, not three
		}
	}
	list["k000"] = repeatValue("<", 20<<10) // 120 KiB of JSON
	type record struct {
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}
	type page struct {
		Documents []record `json:"documents"`
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	for _, c := range []struct {
		tool  string
		meta  map[string]docex.Value
		limit int
	}{
		{"get_document", rec, recordMetaBytes},
		{"list_documents", list, listMetaBytes},
	} {
		t.Run(c.tool, func(t *testing.T) {
			wantMeta, wantOmitted := boundMeta(c.meta, c.limit)
			// The same record of a document holding only its values.
			var ids []string
			for _, m := range []map[string]docex.Value{c.meta, wantMeta} {
				b, err := e.admin.CreateBasket(ctx, fmt.Sprintf("%s-%d", c.tool, len(ids)))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, metaDoc(t, e, b.ID, "d.txt", m))
			}
			allocs := make([]uint64, 2)
			for i, id := range ids {
				get := func() record {
					if c.tool == "get_document" {
						return call[record](t, cs, c.tool, map[string]any{"id": id})
					}
					p := call[page](t, cs, c.tool, map[string]any{"basket": fmt.Sprintf("%s-%d", c.tool, i)})
					if len(p.Documents) != 1 {
						t.Fatalf("%d documents", len(p.Documents))
					}
					return p.Documents[0]
				}
				get() // warm
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				got := get()
				runtime.ReadMemStats(&after)
				omitted := wantOmitted
				if i == 1 {
					omitted = nil
				}
				if len(got.Metadata) != len(wantMeta) || !slices.Equal(got.Omitted, omitted) {
					t.Fatalf("%d values, omitted %v; want %d, omitted %v", len(got.Metadata), got.Omitted, len(wantMeta), omitted)
				}
				for k, v := range wantMeta {
					if got.Metadata[k] != v.Canonical() {
						t.Fatalf("%s differs", k)
					}
				}
				allocs[i] = after.TotalAlloc - before.TotalAlloc
			}
			t.Logf("%s of a document of 16 MiB of metadata whose first values escape allocated %d bytes; of a document holding only the values given, %d",
				c.tool, allocs[0], allocs[1])
			// On 2026-12-08: get_document 12 MB more (the store's bounded
			// read reads 15 values, which fit at their least length, where
			// the other reads 7, and each is marshalled to be measured: no
			// round reads anything), 57 MB more before; list_documents 1 MB
			// more, 56 MB before.
			if allocs[0] > allocs[1]+24<<20 {
				t.Fatalf("%s allocated %d bytes, %d more than on a document holding only the values given: it read the whole metadata", c.tool, allocs[0], allocs[0]-allocs[1])
			}
		})
	}
}
