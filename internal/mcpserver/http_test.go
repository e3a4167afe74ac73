package mcpserver

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
)

// httpServer serves a Server acting as uc on e's engine, configured by
// cfg, over streamable HTTP (HTTPHandler with a 1 MiB body bound and
// sessions closed after idle, 0: never) on a test server; both are
// closed when t ends.
func httpServer(t *testing.T, e *env, uc docex.UserContext, cfg Config, idle time.Duration) (*Server, *httptest.Server) {
	t.Helper()
	srv, err := New(e.eng, uc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.HTTPHandler(1<<20, idle))
	t.Cleanup(ts.Close)
	return srv, ts
}

// TestHTTPRequiresSession: over streamable HTTP, a POST without an
// Mcp-Session-Id header that is not an initialize request is refused with
// HTTP 400 and a JSON-RPC error (-32600, with the call's id; -32700 for a
// body that is not JSON-RPC), and the server connects no session for it:
// however many come, none is ever connected, and none is kept. An
// initialize without a session still connects one. Before, the SDK
// connected a session for each such POST, answered it (200, with an error
// for a call, with a result for ping and logging/setLevel) and closed the
// session again.
func TestHTTPRequiresSession(t *testing.T) {
	e := newEnv(t)
	log := &recordLog{}
	srv, ts := httpServer(t, e, user("rita", "reader"), Config{Logger: slog.New(log)}, 0)
	postWith := func(t *testing.T, host, version, session, body string) (int, string, http.Header) {
		t.Helper()
		return postMCP(t, ts.URL, host, version, session, body)
	}
	post := func(t *testing.T, session, body string) (int, string, http.Header) {
		t.Helper()
		return postWith(t, "", "", session, body)
	}
	connected := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, r := range log.recs {
			if r.Message == "server session connected" {
				n++
			}
		}
		return n
	}
	sessions := func() int {
		n := 0
		for range srv.MCP().Sessions() {
			n++
		}
		return n
	}
	const refusal = `"error":{"code":-32600,"message":"Bad Request: no Mcp-Session-Id header: a POST without one must be an initialize request; send initialize first, then the Mcp-Session-Id its response gives with every request"}}`
	cases := []struct {
		name, body, want string
	}{
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":1,` + refusal},
		{"tools/call", `{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"list_baskets","arguments":{}}}`, `{"jsonrpc":"2.0","id":"c",` + refusal},
		{"ping", `{"jsonrpc":"2.0","id":3,"method":"ping"}`, `{"jsonrpc":"2.0","id":3,` + refusal},
		{"logging/setLevel", `{"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"debug"}}`, `{"jsonrpc":"2.0","id":4,` + refusal},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, `{"jsonrpc":"2.0","id":null,` + refusal},
		{"response", `{"jsonrpc":"2.0","id":6,"result":{}}`, `{"jsonrpc":"2.0","id":null,` + refusal},
		{"batch", `[{"jsonrpc":"2.0","id":7,"method":"ping"},{"jsonrpc":"2.0","id":8,"method":"tools/list"}]`, `{"jsonrpc":"2.0","id":null,` + refusal},
		{"not JSON", `{"jsonrpc":`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Bad Request: no Mcp-Session-Id header, and the body is not a JSON-RPC message: `},
		{"not JSON-RPC", `{"id":9}`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Bad Request: no Mcp-Session-Id header, and the body is not a JSON-RPC message: `},
	}
	for round := range 3 {
		for _, c := range cases {
			code, body, hdr := post(t, "", c.body)
			if code != http.StatusBadRequest || !strings.HasPrefix(body, c.want) || hdr.Get("Content-Type") != "application/json" || hdr.Get("Mcp-Session-Id") != "" {
				t.Errorf("round %d, %s: %d %s %q\n%s, want 400 %s", round, c.name, code, hdr.Get("Content-Type"), hdr.Get("Mcp-Session-Id"), body, c.want)
			}
		}
	}
	if n, m := connected(), sessions(); n != 0 || m != 0 {
		t.Fatalf("after POSTs without a session: %d sessions connected, %d kept; want none", n, m)
	}
	// The SDK's own answers come first: a DNS rebinding is refused (403),
	// and the requests of clients of protocol 2026-07-28 (sessionless)
	// are answered as the SDK answers them on a server with sessions.
	if code, body, _ := postWith(t, "evil.example", "", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); code != http.StatusForbidden || !strings.Contains(body, `invalid Host header "evil.example"`) {
		t.Errorf("a DNS rebinding without a session: %d %s, want 403", code, body)
	}
	if code, body, _ := postWith(t, "", "2026-07-28", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); code == http.StatusBadRequest && strings.Contains(body, "no Mcp-Session-Id header") {
		t.Errorf("a call of protocol 2026-07-28: %d %s, want the SDK's answer", code, body)
	}
	if code, body, _ := postWith(t, "", "2026-07-28", "", `{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{}}`); code == http.StatusBadRequest && strings.Contains(body, "no Mcp-Session-Id header") {
		t.Errorf("server/discover of protocol 2026-07-28: %d %s, want the SDK's answer", code, body)
	}
	if code, body, _ := post(t, "", `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`); code == http.StatusBadRequest && strings.Contains(body, "no Mcp-Session-Id header") {
		t.Errorf("a call with a _meta protocol version: %d %s, want the SDK's answer", code, body)
	}
	log.mu.Lock()
	log.recs = nil // those connected sessions of their own, which the SDK closes
	log.mu.Unlock()
	// Initialize connects the one session, which then serves.
	code, body, hdr := post(t, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" || !strings.Contains(body, `"protocolVersion":"2025-11-25"`) {
		t.Fatalf("initialize: %d %q %s", code, session, body)
	}
	if code, body, _ := post(t, session, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); code != http.StatusOK || !strings.Contains(body, `"list_baskets"`) {
		t.Fatalf("tools/list in the session: %d %s", code, body)
	}
	if n, m := connected(), sessions(); n != 1 || m != 1 {
		t.Fatalf("after initialize: %d sessions connected, %d kept; want 1", n, m)
	}
	// An initialize that fails is answered with its code, and keeps no
	// session.
	code, body, _ = post(t, "", `{"jsonrpc":"2.0","id":"bad","method":"initialize","params":3}`)
	if want := `data: {"jsonrpc":"2.0","id":"bad","error":{"code":-32602,"message":"handling 'initialize': invalid params: unmarshaling`; code != http.StatusOK || !strings.Contains(body, want) {
		t.Fatalf("initialize with bad params: %d %s, want %s", code, body, want)
	}
	// A body too large is refused before it is read whole.
	if code, _, _ := post(t, "", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"x":"`+strings.Repeat("x", 1<<20)+`"}}}`); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("an oversized POST without a session: %d, want 413", code)
	}
}

// TestHTTPSessionIdle: a session that receives no request for the idle
// time is closed; its id then gets HTTP 404. Before, HTTPHandler set no
// timeout and every initialize kept a session until the server stopped.
func TestHTTPSessionIdle(t *testing.T) {
	e := newEnv(t)
	srv, ts := httpServer(t, e, user("rita", "reader"), Config{}, 100*time.Millisecond)
	post := func(session, body string) (int, http.Header) {
		t.Helper()
		code, _, hdr := postMCP(t, ts.URL, "", "", session, body)
		return code, hdr
	}
	code, hdr := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d %q", code, session)
	}
	// No timing bound: wait as long as a loaded machine needs.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for range srv.MCP().Sessions() {
			n++
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d session(s) still open after 2 minutes idle, with a 100 ms idle timeout", n)
		}
	}
	if code, _ := post(session, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); code != http.StatusNotFound {
		t.Fatalf("a request in the closed session: HTTP %d, want 404", code)
	}
}

// postMCP POSTs body to url as a streamable HTTP client does, with the
// Host, Mcp-Protocol-Version and Mcp-Session-Id headers when not empty,
// and returns the status, the body and the headers of the response.
func postMCP(t *testing.T, url, host, version, session, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if version != "" {
		req.Header.Set("Mcp-Protocol-Version", version)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data), resp.Header
}

// TestHTTPIDs: over streamable HTTP, as over stdio (TestStdioIDs), a POST
// holding a message whose id the SDK would not answer with exactly (a
// fraction, an exponent, an integer past 2^53-1, -0) or whose id is null,
// alone or in a batch, is refused with HTTP 400 and one JSON-RPC error
// (-32600, id null, stdio's reason) and none of it is run; a string id
// and an integer up to 2^53-1 are answered with that same id, and a
// notification (no id member) is taken. Before, the SDK answered id 1.5
// as 1, 2^53+1 as 2^53 and 2^70 as -2^63, a batch's 1.5 as 1, and id null
// with a plain-text "invalid request: missing id"; an initialize with id
// 1.5 made a session, answered as id 1.
func TestHTTPIDs(t *testing.T) {
	e := newEnv(t)
	srv, ts := httpServer(t, e, user("rita", "reader"), Config{}, 0)
	refusal := func(id string) string {
		return `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: id ` + id + `: an id is a string or an integer from -9007199254740991 to 9007199254740991, written without fraction or exponent (else it could not be answered with the same id)"}}` + "\n"
	}
	const refusedNull = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: id null: a request's id is a string or an integer (a notification has no id member)"}}` + "\n"
	sessions := func() int {
		n := 0
		for range srv.MCP().Sessions() {
			n++
		}
		return n
	}
	// Without a session, an initialize with an inexact id makes none.
	const version = "2025-03-26" // batches are taken before 2025-06-18
	code, body, hdr := postMCP(t, ts.URL, "", "", "", `{"jsonrpc":"2.0","id":1.5,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if code != http.StatusBadRequest || body != refusal("1.5") || hdr.Get("Content-Type") != "application/json" || hdr.Get("Mcp-Session-Id") != "" || sessions() != 0 {
		t.Fatalf("initialize with id 1.5: %d %q %q %d sessions\n%s\nwant 400 and no session\n%s", code, hdr.Get("Content-Type"), hdr.Get("Mcp-Session-Id"), sessions(), body, refusal("1.5"))
	}
	code, body, hdr = postMCP(t, ts.URL, "", "", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" || !strings.Contains(body, `"protocolVersion":"`+version+`"`) {
		t.Fatalf("initialize: %d %q %s", code, session, body)
	}
	ping := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"method":"ping"}` }
	cases := []struct {
		name, body string
		code       int
		want       string // the whole body of a 400; a part of any other
	}{
		{"1.5", ping("1.5"), 400, refusal("1.5")},
		{"3.0", ping("3.0"), 400, refusal("3.0")},
		{"1e3", ping("1e3"), 400, refusal("1e3")},
		{"-0", ping("-0"), 400, refusal("-0")},
		{"2^53", ping("9007199254740992"), 400, refusal("9007199254740992")},
		{"2^53+1", ping("9007199254740993"), 400, refusal("9007199254740993")},
		{"2^70", ping("1180591620717411303424"), 400, refusal("1180591620717411303424")},
		{"null", ping("null"), 400, refusedNull},
		{"two ids, the second bad", `{"jsonrpc":"2.0","id":2,"method":"ping","id":2.5}`, 400, refusal("2.5")},
		{"batch with one bad", `[` + ping("8") + `,` + ping("1.5") + `]`, 400, refusal("1.5")},
		{"batch with null", `[` + ping("8") + `, ` + ping("null") + `]`, 400, refusedNull},
		{"string", ping(`"s"`), 200, `"id":"s","result":{}`},
		{"7", ping("7"), 200, `"id":7,"result":{}`},
		{"-(2^53-1)", ping("-9007199254740991"), 200, `"id":-9007199254740991,"result":{}`},
		{"2^53-1", ping("9007199254740991"), 200, `"id":9007199254740991,"result":{}`},
		{"batch", `[` + ping("8") + `,` + ping(`"nine"`) + `]`, 200, `"id":"nine","result":{}`},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 202, ""},
	}
	for _, c := range cases {
		code, body, hdr := postMCP(t, ts.URL, "", version, session, c.body)
		switch {
		case code != c.code:
			t.Errorf("%s: HTTP %d, want %d\n%s", c.name, code, c.code, body)
		case code == http.StatusBadRequest && (body != c.want || hdr.Get("Content-Type") != "application/json"):
			t.Errorf("%s: %q\n%s\nwant application/json\n%s", c.name, hdr.Get("Content-Type"), body, c.want)
		case !strings.Contains(body, c.want):
			t.Errorf("%s: %s\nwant it to hold %s", c.name, body, c.want)
		}
	}
	// The session still serves.
	if code, body, _ := postMCP(t, ts.URL, "", version, session, ping("8")); code != http.StatusOK || !strings.Contains(body, `"id":8,"result":{}`) {
		t.Fatalf("ping 8 after the refusals: %d %s", code, body)
	}
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}
