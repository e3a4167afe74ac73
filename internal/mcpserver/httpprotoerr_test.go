package mcpserver

import (
	"net/http"
	"strings"
	"testing"
)

// TestHTTPProtocolErrors: over streamable HTTP, a POST (in a session) of
// one message with a protocol mistake the SDK refuses before handling it
// is answered as stdio answers the message: a JSON-RPC error with its id
// (-32601 for a method the server does not have, -32600 for a
// notification's method with an id, a missing params, a "jsonrpc" other
// than "2.0"), HTTP 200; a notification (unknown, or a call's method
// without an id) HTTP 202 and nothing, as stdio ignores it. Before, each
// got HTTP 400 and a line of text from the SDK (P16).
func TestHTTPProtocolErrors(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cases := []struct{ msg, stdio string }{
		{`{"jsonrpc":"2.0","id":1,"method":"foo/bar"}`, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found: \"foo/bar\""}}`},
		{`{"jsonrpc":"2.0","id":2,"method":"notifications/initialized"}`, `{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"invalid request: unexpected id for \"notifications/initialized\""}}`},
		{`{"jsonrpc":"1.0","id":5,"method":"ping"}`, `{"jsonrpc":"2.0","id":5,"error":{"code":-32600,"message":"Invalid request: invalid message version tag \"1.0\"; expected \"2.0\""}}`},
		{`{"jsonrpc":"2.0","id":7,"method":"tools/call"}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"invalid request: missing required \"params\""}}`},
		{`{"jsonrpc":"2.0","method":"tools/list"}`, ``},
		{`{"jsonrpc":"2.0","method":"notifications/foo"}`, ``},
	}
	// Over stdio, as the test states them.
	lines := []string{initLine("2025-11-25"), initialized}
	for _, c := range cases {
		lines = append(lines, c.msg)
	}
	got := map[string]bool{}
	for _, l := range serveLines(t, srv, append(lines, ping(9))...) {
		got[l] = true
	}
	for _, c := range cases {
		if c.stdio != "" && !got[c.stdio] {
			t.Fatalf("over stdio, %s: no reply %s among %v", c.msg, c.stdio, got)
		}
	}
	if len(got) != 6 { // initialize, the 4 errors, the ping
		t.Fatalf("over stdio: %d replies, want 6: %v", len(got), got)
	}
	_, ts := httpServer(t, e, user("will", "writer"), Config{}, 0)
	const version = "2025-11-25"
	session := httpSession(t, ts.URL, version)
	for _, c := range cases {
		code, body, hdr := postMCP(t, ts.URL, "", version, session, c.msg)
		if c.stdio == "" {
			if code != http.StatusAccepted || body != "" {
				t.Fatalf("over HTTP, %s: %d %q, want 202 and no body", c.msg, code, body)
			}
			continue
		}
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" || strings.TrimSpace(body) != c.stdio {
			t.Fatalf("over HTTP, %s: %d %q %q, want 200 %s", c.msg, code, hdr.Get("Content-Type"), body, c.stdio)
		}
	}
	// The session goes on.
	if code, body, _ := postMCP(t, ts.URL, "", version, session, ping(10)); code != http.StatusOK || !strings.Contains(body, `"id":10,"result":{}`) {
		t.Fatalf("ping after: %d %s", code, body)
	}
}
