package mcpserver

import (
	"net/http"
	"testing"
)

// TestSetLevelInvalid: logging/setLevel with a level MCP does not have
// is refused with invalid params (-32602) over stdio and over HTTP, as
// the MCP specification has it; a valid level gets {}. Before, any level
// got {} (P16).
func TestSetLevelInvalid(t *testing.T) {
	const bad = `{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"nope"}}`
	const good = `{"jsonrpc":"2.0","id":7,"method":"logging/setLevel","params":{"level":"warning"}}`
	e := newEnv(t)
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	lines := serveLines(t, srv, initLine("2025-11-25"), initialized, bad, good)
	var got []string
	for _, l := range lines[1:] {
		s, _ := summary(t, l)
		got = append(got, s)
	}
	if len(got) != 2 || got[0] != "6:-32602" || got[1] != "7:ok" {
		t.Fatalf("over stdio: %q, want 6:-32602 7:ok\n%q", got, lines)
	}
	_, ts := httpServer(t, e, user("will", "writer"), Config{}, 0)
	const version = "2025-11-25"
	session := httpSession(t, ts.URL, version)
	for body, want := range map[string]string{bad: "6:-32602", good: "7:ok"} {
		code, resp, _ := postMCP(t, ts.URL, "", version, session, body)
		data := sseData(resp)
		if code != http.StatusOK || len(data) != 1 {
			t.Fatalf("over HTTP, %s: %d %s", body, code, resp)
		}
		if s, _ := summary(t, data[0]); s != want {
			t.Fatalf("over HTTP, %s: %s, want %s", body, s, want)
		}
	}
}
