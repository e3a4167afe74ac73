package sandbox

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// metaHost serves one document, "victim.txt", whose metadata is keys
// values of valueLen bytes, loaded anew at every Open (as the engine's
// store does); it counts the opens.
type metaHost struct {
	keys, valueLen int

	mu    sync.Mutex
	opens int
}

func (h *metaHost) Lookup(_ context.Context, q pluginapi.LookupQuery) ([]pluginapi.DocumentRef, error) {
	if q.Name != "victim.txt" {
		return []pluginapi.DocumentRef{}, nil
	}
	return []pluginapi.DocumentRef{{TenantID: "a", ID: "victim"}}, nil
}

func (h *metaHost) Open(_ context.Context, ref pluginapi.DocumentRef) (*pluginapi.Document, error) {
	h.mu.Lock()
	h.opens++
	h.mu.Unlock()
	meta := make(map[string]any, h.keys)
	for i := range h.keys {
		meta[string(rune('A'+i/26))+string(rune('A'+i%26))] = strings.Repeat("v", h.valueLen)
	}
	return &pluginapi.Document{Name: "victim.txt", ContentType: "text/plain", Size: 1, Content: strings.NewReader("v"), Metadata: meta}, nil
}

// TestLookupMetadataBudget: the metalook plugin (64 KiB memory limit,
// 4 KiB output, 1 KiB log: a host-memory budget of 70,656 bytes) takes
// 1,023 handles to one document and calls doc_size on each. Every handle
// used to open the document again and hold its metadata, uncounted (16
// MiB of metadata made 1,023 handles hold 17 GB). Now the handles share
// one copy, opened once, whose keys and values count against the budget:
// metadata that fits is held once; metadata past the budget gets ELIMIT
// on every handle and is not opened again. Held bytes (PeakHostBytes)
// stay within the budget.
func TestLookupMetadataBudget(t *testing.T) {
	const budget = 4096 + 1024 + 65536
	for _, c := range []struct {
		name             string
		keys, valueLen   int
		sized, limited   int
		minHeld, maxHeld int64
	}{
		{"fits", 8, 4 << 10, 1023, 0, 8 * (2 + 4<<10), budget},
		{"over the budget", 16, 64 << 10, 0, 1023, 0, budget},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &metaHost{keys: c.keys, valueLen: c.valueLen}
			in := textDoc("in.txt", "x")
			in.Metadata = nil
			res, err := plugin(t, "metalook").Run(context.Background(), pluginapi.Call{TenantID: "a", Input: in, Host: h})
			if err != nil {
				t.Fatal(err)
			}
			num := func(k string) int { f, _ := res.Metadata[k].(float64); return int(f) }
			if num("handles") != 1023 || num("sized") != c.sized || num("limited") != c.limited {
				t.Errorf("handles=%d sized=%d limited=%d, want 1023, %d, %d", num("handles"), num("sized"), num("limited"), c.sized, c.limited)
			}
			if h.opens != 1 {
				t.Errorf("the document was opened %d times for 1,023 handles, want once", h.opens)
			}
			if p := res.Report.PeakHostBytes; p < c.minHeld || p > c.maxHeld {
				t.Errorf("PeakHostBytes = %d, want %d to %d", p, c.minHeld, c.maxHeld)
			}
		})
	}
}
