package mcpserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/netutil"
)

// streamServer serves e as will over streamable HTTP with
// HTTPHandlerWith(o) on a server of its own that, as docex mcp --http
// does, accepts at most maxConns connections at once; it returns the
// server and its address.
func streamServer(t *testing.T, e *env, o HTTPOptions, maxConns int) (*Server, string) {
	t.Helper()
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.HTTPHandlerWith(o)}
	go hs.Serve(netutil.LimitListener(ln, maxConns))
	t.Cleanup(func() { hs.Close() })
	return srv, ln.Addr().String()
}

// streamVersion is the protocol version of the sessions of the GET
// stream tests.
const streamVersion = "2025-11-25"

// closingPost POSTs body to addr on a connection of its own, closed once
// answered (so that it holds none of the server's connections after),
// in session when not empty; it returns the status and the session id
// of the response. It fails the test when no answer comes within 2
// minutes: only a guard against a hang.
func closingPost(t *testing.T, addr, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", streamVersion)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", body, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id")
}

// streamSession initializes a session at addr (closingPost) and returns
// its id.
func streamSession(t *testing.T, addr string) string {
	t.Helper()
	code, session := closingPost(t, addr, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+streamVersion+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if code != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d %q", code, session)
	}
	if code, _ := closingPost(t, addr, session, initialized); code != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d", code)
	}
	return session
}

// openGet sends the GET of a streamable HTTP client's stream in session
// to addr on a connection of its own, and returns the connection, its
// reader and the response (its header: a stream's body lasts).
func openGet(t *testing.T, addr, session string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(2 * time.Minute)) // only a guard against a hang
	fmt.Fprintf(conn, "GET /mcp HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: %s\r\n\r\n", addr, session, streamVersion)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET in session %s: %v", session, err)
	}
	return conn, br, resp
}

// isStream reports whether resp is that of an open GET stream.
func isStream(resp *http.Response) bool {
	return resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == "text/event-stream"
}

// TestHTTPGetStreams: over streamable HTTP, the GET streams (each
// session's stream of the server's messages) are bounded: at most
// HTTPOptions.MaxStreams open at once, all sessions together (docex mcp
// passes half of --max-connections), and one a session. Here, with 2
// connections and at most 1 stream: a GET of a second session is refused
// with HTTP 503, Retry-After and a JSON-RPC error (-32000), and its
// connection closed, so that an initialize still gets the other
// connection; a second GET of the first session ends the first's stream
// (its connection closed) and takes its place; once that stream's client
// goes away, the second session's GET opens. A GET of an unknown session
// still gets the SDK's 404. Before, every GET held its connection: with
// --max-connections 6, six sessions' GETs left an initialize waiting 44 s
// and more (P4), and a second GET of a session got the SDK's 409
// Conflict, which the MCP specification does not have for it.
func TestHTTPGetStreams(t *testing.T) {
	e := newEnv(t)
	srv, addr := streamServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxStreams: 1}, 2)
	s1 := streamSession(t, addr)
	s2 := streamSession(t, addr)
	g1, g1r, resp := openGet(t, addr, s1)
	if !isStream(resp) {
		t.Fatalf("GET of s1: %d %q, want a stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_, g2r, resp := openGet(t, addr, s2)
	body, _ := io.ReadAll(resp.Body)
	const busy = `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Server busy: 1 GET streams open, the most there may be (half of docex mcp --max-connections), so that POSTs always have connections: open the stream again once one ends, or read each reply on its POST's response"}}` + "\n"
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != busy || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET of s2 with 1 stream open: %d %q %q\n%s\nwant 503\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body, busy)
	}
	if _, err := g2r.ReadByte(); err != io.EOF {
		t.Fatalf("the connection of the refused GET: %v, want it closed", err)
	}
	// The second connection is free: an initialize is answered (a hang
	// here is the old behaviour; closingPost gives up after 2 minutes).
	streamSession(t, addr)
	// A GET of an unknown session is no stream: the SDK answers it.
	c404, _, resp := openGet(t, addr, "no-such-session")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of an unknown session with the streams full: %d, want 404", resp.StatusCode)
	}
	c404.Close() // kept alive by the server: it would hold the second connection
	// A second GET of s1 replaces the first.
	_, _, resp = openGet(t, addr, s1)
	if !isStream(resp) {
		t.Fatalf("a second GET of s1: %d %q, want a stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	io.Copy(io.Discard, g1r) // the first stream's end (however it ends: its last write may fail)
	if _, err := g1r.ReadByte(); err != io.EOF {
		t.Fatalf("the connection of the replaced GET: %v, want it closed", err)
	}
	g1.Close()
	if open, replaced := srv.streams.streams(); open != 1 || replaced != 1 {
		t.Fatalf("after the replacement: %d streams counted, %d replaced; want 1 and 1", open, replaced)
	}
}

// TestHTTPGetStreamsFreed: over streamable HTTP, a GET stream whose
// client goes away frees its place, and a stream's connection is closed
// when its session is (here by a DELETE): the next GET opens.
func TestHTTPGetStreamsFreed(t *testing.T) {
	e := newEnv(t)
	srv, addr := streamServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxStreams: 1}, 4)
	s1 := streamSession(t, addr)
	s2 := streamSession(t, addr)
	g1, _, resp := openGet(t, addr, s1)
	if !isStream(resp) {
		t.Fatalf("GET of s1: %d", resp.StatusCode)
	}
	g1.Close()
	for open, _ := srv.streams.streams(); open > 0; open, _ = srv.streams.streams() {
		time.Sleep(10 * time.Millisecond) // until the server notices; a hang fails by the test's timeout
	}
	_, g2r, g2 := openGet(t, addr, s2)
	if !isStream(g2) {
		t.Fatalf("GET of s2 once s1's stream ended: %d, want a stream", g2.StatusCode)
	}
	req, err := http.NewRequest(http.MethodDelete, "http://"+addr+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Mcp-Session-Id", s2)
	req.Header.Set("Mcp-Protocol-Version", streamVersion)
	dresp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if _, err := io.Copy(io.Discard, g2.Body); err != nil {
		t.Fatalf("the stream of a deleted session: %v, want its end", err)
	}
	if _, err := g2r.ReadByte(); err != io.EOF {
		t.Fatalf("the connection of the stream of a deleted session: %v, want it closed", err)
	}
	for open, _ := srv.streams.streams(); open > 0; open, _ = srv.streams.streams() {
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPNoGetStreams: with HTTPOptions.MaxStreams negative (docex mcp
// --max-connections 1), a GET that would open a stream is refused with
// HTTP 405 Method Not Allowed, Allow: POST, DELETE, as the MCP
// specification has a server that offers no stream answer, and its
// connection is closed: the one connection stays for POSTs. Before, the
// GET held the only connection.
func TestHTTPNoGetStreams(t *testing.T) {
	e := newEnv(t)
	_, addr := streamServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxStreams: -1}, 1)
	s1 := streamSession(t, addr)
	_, br, resp := openGet(t, addr, s1)
	body, _ := io.ReadAll(resp.Body)
	const want = `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Method not allowed: this server opens no GET streams (docex mcp --max-connections 1 leaves them no connection): POST requests, and read each reply on its POST's response"}}` + "\n"
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST, DELETE" || string(body) != want {
		t.Fatalf("GET with no streams allowed: %d %q\n%s\nwant 405\n%s", resp.StatusCode, resp.Header.Get("Allow"), body, want)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection of the refused GET: %v, want it closed", err)
	}
	if code, _ := closingPost(t, addr, s1, `{"jsonrpc":"2.0","id":2,"method":"ping"}`); code != http.StatusOK {
		t.Fatalf("ping after the refused GET: %d", code)
	}
}

// TestHTTPBodyStall: over streamable HTTP, a POST's body may not stall
// (HTTPOptions.BodyStall; 10 s in docex mcp, as long as headers may
// take) even while its body timeout (here an hour) runs: a client that
// sends the first bytes of a body and stops is answered HTTP 400 and its
// connection is closed. Before, only the body timeout (60 s in docex
// mcp) bounded it: headers and one byte of body held a connection 60 s
// (P4).
func TestHTTPBodyStall(t *testing.T) {
	e := newEnv(t)
	srv, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20, BodyTimeout: time.Hour, BodyStall: 50 * time.Millisecond})
	conn := rawPost(t, ts, 100000, `{`)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a POST whose body stalls: %v, want HTTP 400", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "reading the request body") || !strings.Contains(string(body), "i/o timeout") {
		t.Fatalf("a POST whose body stalls: %d %s, want 400", resp.StatusCode, body)
	}
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the connection of a POST whose body stalled: %v, want it closed", err)
	}
	if used, waiting := srv.inflightBytes.state(); used != 0 || waiting != 0 {
		t.Fatalf("after the stalled POST: %d bytes counted, %d POSTs waiting; want none", used, waiting)
	}
}
