package mcpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// limitedServer serves e (with the pipeline shout) as will, a writer,
// over streamable HTTP with HTTPHandlerWith(o) on a test server.
func limitedServer(t *testing.T, e *env, o HTTPOptions) (*Server, *httptest.Server) {
	t.Helper()
	if _, err := e.admin.CreatePipeline(context.Background(), []byte(shout)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.HTTPHandlerWith(o))
	t.Cleanup(ts.Close)
	return srv, ts
}

// holdCall POSTs body (a run_pipeline of shout waiting for a job no
// worker runs) in session at version, and returns once the call runs
// (its job exists, jobsBefore were there before); cancel cuts the POST
// off (its call is then cancelled), and done gets the POST's end.
func holdCall(t *testing.T, e *env, ts *httptest.Server, version, session, body string, jobsBefore int) (cancel func(), done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", version)
	done = make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	for {
		if jobCount(t, e) > jobsBefore {
			return cancel, done
		}
		select {
		case err := <-done:
			t.Fatalf("the held call's POST ended before its job existed: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func jobCount(t *testing.T, e *env) int {
	t.Helper()
	jobs, err := e.admin.Jobs(context.Background(), engine.JobFilter{DocumentID: e.doc.ID}, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(jobs)
}

// TestHTTPInflightBytes: over streamable HTTP, the bodies of the POSTs
// being handled at once are bounded (HTTPOptions.MaxInflightBytes, docex
// mcp --max-inflight-bytes): a POST whose body does not fit waits,
// unread and unhandled, until a POST ends, and is then handled. Here the
// bound fits one of the two POSTs: list_baskets waits while run_pipeline
// runs, and is answered once run_pipeline's client goes away. Before,
// every POST was read and handled at once: 24 POSTs of a 16 MiB
// add_document took RSS from 360 MB to 2,473 MB.
func TestHTTPInflightBytes(t *testing.T) {
	e := newEnv(t)
	const version = "2025-11-25"
	hold := toolCall(4, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60})
	list := toolCall(5, "list_baskets", map[string]any{})
	srv, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxInflightBytes: int64(len(hold) + len(list) - 1)})
	session := httpSession(t, ts.URL, version)
	cancel, held := holdCall(t, e, ts, version, session, hold, 0)
	type reply struct {
		code int
		body string
	}
	listed := make(chan reply, 1)
	go func() {
		code, body, _ := postMCP(t, ts.URL, "", version, session, list)
		listed <- reply{code, body}
	}()
	for waiting := 0; waiting == 0; {
		select {
		case r := <-listed:
			t.Fatalf("list_baskets answered while run_pipeline's body filled the bound: %d %s", r.code, r.body)
		case <-time.After(10 * time.Millisecond):
		}
		_, waiting = srv.inflightBytes.state()
	}
	cancel()
	if err := <-held; err == nil {
		t.Fatal("run_pipeline's POST was answered: want it cut off by its client")
	}
	r := <-listed
	if r.code != http.StatusOK || !strings.Contains(r.body, `"id":5,"result"`) || !strings.Contains(r.body, `\"in\"`) {
		t.Fatalf("list_baskets once run_pipeline ended: %d %s", r.code, r.body)
	}
	if used, waiting := srv.inflightBytes.state(); used != 0 || waiting != 0 {
		t.Fatalf("after the POSTs: %d bytes counted, %d POSTs waiting; want none", used, waiting)
	}
}

// rawPost writes a POST of a streamable HTTP client to ts on a
// connection of its own with the given Content-Length and the first
// bytes of its body, and returns the connection.
func rawPost(t *testing.T, ts *httptest.Server, contentLength int, body string) net.Conn {
	t.Helper()
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s", u.Host, contentLength, body)
	// Only a guard against a hang: the server answers at once, or once
	// its body timeout is over.
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	return conn
}

// TestHTTPSlowBody: over streamable HTTP, a POST whose body does not come
// within the body timeout (HTTPOptions.BodyTimeout; 60 s in docex mcp) is
// answered HTTP 400 and its connection closed, and its body no longer
// counts; a POST whose Content-Length is past the body bound is refused
// with HTTP 413 before any of its body is read. Before, a client that sent
// headers and a Content-Length, then nothing, held its connection (and
// a buffer of that length) until it went away, and the server waited for
// the body of an oversized POST before refusing it.
func TestHTTPSlowBody(t *testing.T) {
	e := newEnv(t)
	srv, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20, BodyTimeout: 50 * time.Millisecond})
	conn := rawPost(t, ts, 100000, `{"jsonrpc":`)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a POST whose body stalls: %v, want HTTP 400", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "reading the request body") {
		t.Fatalf("a POST whose body stalls: %d %s, want 400", resp.StatusCode, body)
	}
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the connection of a POST whose body stalled: %v, want it closed", err)
	}
	if used, waiting := srv.inflightBytes.state(); used != 0 || waiting != 0 {
		t.Fatalf("after the stalled POST: %d bytes counted, %d POSTs waiting; want none", used, waiting)
	}
	conn = rawPost(t, ts, 1<<20+1, "")
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a POST with a Content-Length past the bound, no body sent: %v, want HTTP 413", err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "request body exceeds 1048576 bytes") {
		t.Fatalf("a POST with a Content-Length past the bound: %d %s, want 413", resp.StatusCode, body)
	}
}

// TestHTTPSessionCap: over streamable HTTP, the live sessions are bounded
// (HTTPOptions.MaxSessions, docex mcp --max-sessions): an initialize when
// as many live closes the least recently used session with no POST being
// handled (its id then gets HTTP 404), and when every live session has a
// POST being handled, the initialize is refused with HTTP 503, Retry-After
// and a JSON-RPC error (-32000), and connects nothing. Before, every
// initialize kept a session until --session-idle: 20,000 of them took
// RSS from 32 MB to 359 MB.
func TestHTTPSessionCap(t *testing.T) {
	e := newEnv(t)
	const version = "2025-11-25"
	srv, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxSessions: 2})
	live := func() map[string]bool {
		ids := map[string]bool{}
		for ss := range srv.MCP().Sessions() {
			ids[ss.ID()] = true
		}
		return ids
	}
	ping := `{"jsonrpc":"2.0","id":9,"method":"ping"}`
	s1 := httpSession(t, ts.URL, version)
	s2 := httpSession(t, ts.URL, version)
	s3 := httpSession(t, ts.URL, version)
	if ids := live(); len(ids) != 2 || ids[s1] || !ids[s2] || !ids[s3] {
		t.Fatalf("after 3 initialize with at most 2 sessions: live %v, want the last two (%s %s)", ids, s2, s3)
	}
	if code, body, _ := postMCP(t, ts.URL, "", version, s1, ping); code != http.StatusNotFound {
		t.Fatalf("ping in the closed session: %d %s, want 404", code, body)
	}
	// s2 is used after s3: s3 is the least recently used.
	if code, body, _ := postMCP(t, ts.URL, "", version, s2, ping); code != http.StatusOK {
		t.Fatalf("ping in s2: %d %s", code, body)
	}
	s4 := httpSession(t, ts.URL, version)
	if ids := live(); len(ids) != 2 || !ids[s2] || !ids[s4] {
		t.Fatalf("after a 4th initialize: live %v, want s2 %s and s4 %s", ids, s2, s4)
	}
	// A session with a POST being handled is not closed: with both busy,
	// initialize is refused.
	cancel2, done2 := holdCall(t, e, ts, version, s2, toolCall(4, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60}), 0)
	cancel4, done4 := holdCall(t, e, ts, version, s4, toolCall(4, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60}), 1)
	code, body, hdr := postMCP(t, ts.URL, "", "", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	const want = `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Server busy: 2 sessions live (docex mcp --max-sessions), each with a POST being handled, so none can be closed to make room: initialize again once one ends"}}` + "\n"
	if code != http.StatusServiceUnavailable || body != want || hdr.Get("Retry-After") != "1" || hdr.Get("Content-Type") != "application/json" || hdr.Get("Mcp-Session-Id") != "" {
		t.Fatalf("initialize with every session busy: %d %q %q %q\n%s\nwant 503\n%s", code, hdr.Get("Retry-After"), hdr.Get("Content-Type"), hdr.Get("Mcp-Session-Id"), body, want)
	}
	if ids := live(); len(ids) != 2 || !ids[s2] || !ids[s4] {
		t.Fatalf("after the refused initialize: live %v, want s2 and s4", ids)
	}
	cancel2()
	cancel4()
	<-done2
	<-done4
	// Once their POSTs end (the server notices its clients went away),
	// initialize closes the least recently used.
	for srv.sessions.busy() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	s5 := httpSession(t, ts.URL, version)
	if ids := live(); len(ids) != 2 || !ids[s5] {
		t.Fatalf("after the POSTs ended: live %v, want s5 %s and one other", ids, s5)
	}
}

// TestHTTPDuplicateIDs: over streamable HTTP, a batch holding two calls
// with one id is refused whole with HTTP 400 and one JSON-RPC error
// (-32600, id null), saying so as stdio does of the second: none of it is
// handled. Calls whose ids differ only in type (5 and "5") are two ids,
// and a notification or response beside them has none. Before, the SDK
// handled the first call and dropped the second without a reply.
func TestHTTPDuplicateIDs(t *testing.T) {
	e := newEnv(t)
	_, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20})
	session := httpSession(t, ts.URL, batchVersion)
	ping := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"method":"ping"}` }
	refusal := func(id string) string {
		return `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: id ` + id + ` is the id of a call not answered yet: give each call an id of its own"}}` + "\n"
	}
	for _, c := range []struct{ name, body, want string }{
		{"5 and 5", "[" + ping("5") + "," + ping("5") + "]", refusal("5")},
		{"create and ping", "[" + toolCall("x", "create_basket", map[string]any{"name": "dup"}) + "," + ping(`"x"`) + "]", refusal(`\"x\"`)},
	} {
		code, body, hdr := postMCP(t, ts.URL, "", batchVersion, session, c.body)
		if code != http.StatusBadRequest || body != c.want || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q\n%s\nwant 400\n%s", c.name, code, hdr.Get("Content-Type"), body, c.want)
		}
	}
	code, body, _ := postMCP(t, ts.URL, "", batchVersion, session, "["+ping("5")+","+ping(`"5"`)+","+cancelled(5)+`,{"jsonrpc":"2.0","id":5,"result":{}}]`)
	if data := sseData(body); code != http.StatusOK || len(data) != 2 {
		t.Fatalf("ping 5 and ping \"5\": %d, %d replies, want 200 and 2\n%s", code, len(data), body)
	}
	code, body, _ = postMCP(t, ts.URL, "", batchVersion, session, toolCall(6, "list_baskets", map[string]any{}))
	if code != http.StatusOK || strings.Contains(body, `\"dup\"`) {
		t.Fatalf("list_baskets after the refused batch: %d %s, want no basket dup", code, body)
	}
}
