package mcpserver

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// postTimed is postMCP with a bound on the whole exchange (a hang fails
// the test instead of holding it).
func postTimed(t *testing.T, url, version, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if version != "" {
		req.Header.Set("Mcp-Protocol-Version", version)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", body, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", body, err)
	}
	return resp.StatusCode, string(data), resp.Header
}

// TestHTTPBatchInitialize: over streamable HTTP, a batch without an
// Mcp-Session-Id header that holds initialize and other requests is
// handled whole: each request gets its reply (a call before initialize
// in the batch the -32600 of a call before initialize, as over stdio);
// and a batch without a session at protocol 2025-06-18 or later (by its
// Mcp-Protocol-Version header) is refused with HTTP 400, as the SDK
// refuses one in a session. Before, the server's look for initialize in
// the batch overwrote the body with its first message's bytes: [initialize,
// call] answered initialize only (the call never ran), [call, initialize]
// the call only, and the header 2025-06-18 was not looked at (P16).
func TestHTTPBatchInitialize(t *testing.T) {
	e := newEnv(t)
	_, ts := httpServer(t, e, user("will", "writer"), Config{}, 0)
	ini := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	call := toolCall(1, "list_baskets", map[string]any{})
	for _, tc := range []struct{ body, want string }{
		{"[" + ini + "," + call + "]", "0:ok 1:ok"},
		{"[" + call + "," + ini + "]", "1:-32600 0:ok"},
		{"[" + ini + "," + initialized + "," + ping(5) + "]", "0:ok 5:ok"},
	} {
		code, got, hdr := postTimed(t, ts.URL, "2025-03-26", tc.body)
		var replies []string
		for _, d := range sseData(got) {
			s, _ := summary(t, d)
			replies = append(replies, s)
		}
		slices.Sort(replies)
		want := strings.Fields(tc.want)
		slices.Sort(want)
		if code != http.StatusOK || hdr.Get("Mcp-Session-Id") == "" || !slices.Equal(replies, want) {
			t.Fatalf("%s: HTTP %d, session %q, replies %q; want 200, a session, replies %s\n%s", tc.body, code, hdr.Get("Mcp-Session-Id"), replies, tc.want, got)
		}
	}
	code, got, hdr := postTimed(t, ts.URL, "2025-06-18", "["+ini+"]")
	if code != http.StatusBadRequest || hdr.Get("Mcp-Session-Id") != "" || !strings.Contains(got, "JSON-RPC batching is not supported in 2025-06-18 and later (request version: 2025-06-18)") {
		t.Fatalf("a batch of initialize at 2025-06-18: HTTP %d %s, want 400", code, got)
	}
}
