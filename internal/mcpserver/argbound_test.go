package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestArgumentsBounded: a call's raw arguments are checked before the SDK
// validates them: an argument (its name and value as JSON) over argBytes,
// a metadata entry over it, or arguments over twice --max-inline-bytes
// plus 1 MiB, are too_large, the argument named as errors quote it
// (`"64 bytes"... (N bytes)`); add_document's text and base64, and
// metadata as a whole, are not bounded by argBytes. Before, each was
// validated by the SDK, whose error for a bad argument of 15 MiB made a
// peak of 280 MB (TestArgumentsBoundedMemory), and a large enough name
// reached the engine.
func TestArgumentsBounded(t *testing.T) {
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{MaxInlineBytes: 2 << 20})
	big := strings.Repeat("x", argBytes)
	long := strings.Repeat("é", argBytes/2) // 1 MiB of bytes
	for _, c := range []struct {
		name, tool string
		args       any
		want       string // "": the call succeeds
	}{
		{"basket as a name", "list_documents", map[string]any{"basket": big}, `too_large: argument "basket" is 1048587 bytes of JSON with its value, more than the 1048576 an argument may have. Send less`},
		{"limit a string", "list_documents", map[string]any{"basket": "in", "limit": big}, `too_large: argument "limit" is 1048586 bytes of JSON with its value, more than the 1048576 an argument may have`},
		{"keys an array", "get_document", map[string]any{"id": e.doc.ID, "keys": []string{big[:argBytes/2], big[:argBytes/2]}}, `too_large: argument "keys" is 1048590 bytes of JSON`},
		{"unknown argument", "list_documents", map[string]any{"basket": "in", big: 1}, `too_large: argument "` + big[:64] + `"... (1048576 bytes) is 1048580 bytes of JSON`},
		{"metadata value an array", "set_metadata", map[string]any{"id": e.doc.ID, "metadata": map[string]any{"k": []string{big}}}, `too_large: metadata key "k" is 1048584 bytes of JSON with its value, more than the 1048576 a metadata entry may have`},
		{"text not a string", "add_document", map[string]any{"basket": "in", "name": "t.txt", "text": []string{big}}, `too_large: argument "text" is 1048587 bytes of JSON`},
		{"over the call's bound", "add_document", map[string]any{"basket": "in", "name": "t.txt", "text": strings.Repeat("\x01", 1<<20)}, `too_large: the arguments are 6291496 bytes of JSON, more than the 5242880 a call may have`},
		// Allowed: text and base64 as strings past argBytes (within the
		// inline bound); metadata past it as a whole, each entry within.
		{"text", "add_document", map[string]any{"basket": "in", "name": "t.txt", "text": long}, ""},
		{"base64", "add_document", map[string]any{"basket": "in", "name": "b.bin", "base64": strings.Repeat("QUJD", argBytes/4+1)}, ""},
		{"metadata", "set_metadata", map[string]any{"id": e.doc.ID, "metadata": func() map[string]any {
			m := map[string]any{}
			for i := range 20 {
				m[fmt.Sprint("k", i)] = strings.Repeat("v", 60_000)
			}
			return m
		}()}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.want == "" {
				call[json.RawMessage](t, cs, c.tool, c.args)
				return
			}
			if msg := callErr(t, cs, c.tool, c.args); !strings.HasPrefix(msg, c.want) {
				t.Fatalf("message %.300q, want prefix %.300q", msg, c.want)
			}
		})
	}
}

// TestArgumentsBoundedMemory: a call whose bad argument is 15 MiB
// allocates a small multiple of it (the client's and the server's copies
// of the message), not the SDK's validation error holding it many times
// over. Before, 280 MB.
func TestArgumentsBoundedMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations under the race detector are not the program's")
	}
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{})
	big := strings.Repeat("x", 15<<20)
	args := map[string]any{"basket": "in", "limit": big}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_documents", Arguments: args})
	runtime.ReadMemStats(&after)
	if err != nil || !res.IsError {
		t.Fatalf("call: %v %v", res, err)
	}
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("a call with a 15 MiB bad argument allocated %d bytes (%.1f times the argument)", n, float64(n)/float64(len(big)))
	if n > 25*uint64(len(big)) {
		t.Fatalf("a call with a 15 MiB bad argument allocated %d bytes", n)
	}
}
