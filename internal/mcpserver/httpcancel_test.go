package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// httpSession initializes a session of protocol version at url and sends
// notifications/initialized; it returns the session's id.
func httpSession(t *testing.T, url, version string) string {
	t.Helper()
	code, body, hdr := postMCP(t, url, "", "", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d %q %s", code, session, body)
	}
	if code, body, _ := postMCP(t, url, "", version, session, initialized); code != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", code, body)
	}
	return session
}

// sseData returns the data of the events of an event stream.
func sseData(stream string) []string {
	var data []string
	for _, line := range strings.Split(stream, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "" {
			data = append(data, d)
		}
	}
	return data
}

// batchVersion is a protocol version batches are taken in (before
// 2025-06-18).
const batchVersion = "2025-03-26"

// shoutSession serves e (newEnv, with the pipeline shout) as writer will
// over streamable HTTP, and initializes a session there at batchVersion;
// it returns e, the test server and the session's id.
func shoutSession(t *testing.T) (*env, *httptest.Server, string) {
	t.Helper()
	e := newEnv(t)
	if _, err := e.admin.CreatePipeline(context.Background(), []byte(shout)); err != nil {
		t.Fatal(err)
	}
	_, ts := httpServer(t, e, user("will", "writer"), Config{}, 0)
	return e, ts, httpSession(t, ts.URL, batchVersion)
}

// TestHTTPCancelInexactID: over streamable HTTP, as over stdio
// (TestStdioCancelInexactID), a notifications/cancelled whose requestId
// is no id a call may have (4.5, 4e0, 4.0, 9007199254740996 for a call
// 4, -0 for a call 0) cancels nothing: the call runs its course
// (run_pipeline waits its 2 seconds for a job no worker runs, and says
// it is not done). The call and the cancel come in one batch, so that the
// call is in flight when the cancel is read. A requestId of the call's
// own id (4, 0) cancels it (the test's control: it fails, with an error
// saying so); null cancels nothing (as before). Before, the SDK read 4.5,
// 4e0 and 4.0 as 4 and -0 as 0, and cancelled the call.
func TestHTTPCancelInexactID(t *testing.T) {
	e, ts, session := shoutSession(t)
	const version = batchVersion
	cancel := func(id string) string {
		return `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":` + id + `,"reason":"test"}}`
	}
	cases := []struct {
		call      int
		requestID string
		cancels   bool
	}{
		{4, "4", true},
		{4, "4.5", false},
		{4, "4e0", false},
		{4, "4.0", false},
		{4, "9007199254740996", false}, // read as 2^53+4
		{4, "null", false},             // the SDK takes it for none, before too
		{0, "0", true},
		{0, "-0", false},
	}
	for _, c := range cases {
		t.Run(c.requestID, func(t *testing.T) {
			run := toolCall(c.call, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 2})
			code, body, _ := postMCP(t, ts.URL, "", version, session, "["+run+","+cancel(c.requestID)+"]")
			data := sseData(body)
			if code != http.StatusOK || len(data) != 1 {
				t.Fatalf("HTTP %d, %d replies, want 200 and 1\n%s", code, len(data), body)
			}
			r := parseReply(t, data[0])
			if id, ok := r.ID.(float64); !ok || id != float64(c.call) {
				t.Fatalf("reply id %v, want %d\n%s", r.ID, c.call, data[0])
			}
			f := r.failure()
			switch cancelled := strings.Contains(f, "cancel"); {
			case c.cancels && !cancelled:
				t.Fatalf("requestId %s did not cancel call %d: %s", c.requestID, c.call, data[0])
			case !c.cancels && f != "":
				t.Fatalf("requestId %s: call %d failed (want it to run its course): %s", c.requestID, c.call, f)
			}
		})
	}
}

// TestNullInexactCancels: what the SDK is handed of a POST's body: the
// requestId of a notifications/cancelled that names no call there can
// be is made null, alone or in a batch, every such member of each params
// of the message (whatever the space around it); any other body is handed
// on as it came (the same bytes).
func TestNullInexactCancels(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4.5,"reason":"r"}}`,
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null,"reason":"r"}}`},
		{` [ {"jsonrpc":"2.0","id":1,"method":"ping"} , {"method" : "notifications/cancelled","jsonrpc":"2.0","params":{ "reason":"r", "requestId" : -0 }} ] `,
			` [ {"jsonrpc":"2.0","id":1,"method":"ping"} , {"method" : "notifications/cancelled","jsonrpc":"2.0","params":{ "reason":"r", "requestId" : null }} ] `},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4,"requestId":1e3}}`,
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null,"requestId":null}}`},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4.5},"params":{"requestId":3}}`,
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null},"params":{"requestId":3}}`},
		{`{"jsonrpc":"2.0","method":"notifications/\u0063ancelled","params":{"requestId":true}}`,
			`{"jsonrpc":"2.0","method":"notifications/\u0063ancelled","params":{"requestId":null}}`},
		{`[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9007199254740992}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"4.5"}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":[1]}}]`,
			`[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"4.5"}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null}}]`},
	}
	for _, c := range cases {
		b := []byte(c.in)
		if got := string(nullCancels(b)); got != c.want {
			t.Errorf("%s\ngave %s\nwant %s", c.in, got, c.want)
		}
	}
	for _, in := range []string{
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4,"reason":"r"}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":null}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled"}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"requestId":4.5}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"requestId":4.5}}}`,
		`[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"x":{"requestId":4.5}}}]`,
		`not json {"requestId":4.5}`,
	} {
		b := []byte(in)
		if got := nullCancels(b); &got[0] != &b[0] || len(got) != len(b) {
			t.Errorf("%s\ngave %s, want the same bytes", in, got)
		}
	}
}

// TestBodyBytes: a POST's body is read into one buffer of its
// Content-Length (not grown as it comes: io.ReadAll allocated about 2.3
// times a 4 MiB body), a wrapper after the first takes the same bytes
// without reading them again, and the body handed on lets its bytes go
// once read to the end, so that the SDK's copy is not held beside it.
func TestBodyBytes(t *testing.T) {
	const size = 4 << 20
	data := bytes.Repeat([]byte("x"), size)
	r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(data))
	w := httptest.NewRecorder()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	body, ok := bodyBytes(w, r, size)
	runtime.ReadMemStats(&m1)
	if !ok || !bytes.Equal(body, data) {
		t.Fatalf("bodyBytes: %v, %d bytes, want the body's %d", ok, len(body), size)
	}
	// Under the race detector bytes.Buffer.Grow allocates the buffer
	// twice (make, then append's copy); io.ReadAll's growth allocated
	// 2.3 times the body without it.
	limit := uint64(size + size/4)
	if raceEnabled {
		limit += size
	}
	if n := m1.TotalAlloc - m0.TotalAlloc; n > limit {
		t.Errorf("reading a body of %d bytes allocated %d bytes, want at most %d", size, n, limit)
	}
	rb := &readBody{b: body}
	r.Body = rb
	again, ok := bodyBytes(w, r, size)
	if !ok || len(again) != size || &again[0] != &body[0] {
		t.Fatalf("a second bodyBytes: %v, %d bytes, want the same %d bytes", ok, len(again), size)
	}
	read, err := io.ReadAll(rb)
	if err != nil || !bytes.Equal(read, data) || rb.b != nil {
		t.Fatalf("reading the body handed on: %v, %d bytes, %d held after its end; want %d bytes, none held", err, len(read), len(rb.b), size)
	}
	// Once read, it is read: a later wrapper reads it (and finds its end).
	if again, ok := bodyBytes(w, r, size); !ok || len(again) != 0 {
		t.Fatalf("bodyBytes after the body was read: %v, %d bytes, want 0", ok, len(again))
	}
	// Larger than the bound: 413, Content-Length or not.
	for _, cl := range []int64{size + 1, -1} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(append(data, 'x')))
		r.ContentLength = cl
		w := httptest.NewRecorder()
		if _, ok := bodyBytes(w, r, size); ok || w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a body of %d bytes (Content-Length %d) over a bound of %d: %v, HTTP %d, want 413", size+1, cl, size, ok, w.Code)
		}
	}
}

// nullCancels is nullInexactCancels of b, a POST's body.
func nullCancels(b []byte) []byte {
	msgs := batchOK(jsonMessages(b))
	return nullInexactCancels(b, msgs, messageMethods(msgs))
}

func batchOK(msgs [][]byte, ok bool) [][]byte {
	if !ok {
		panic("a batch too large")
	}
	return msgs
}

// TestHTTPBatchLimit: over streamable HTTP, as over stdio
// (TestStdioBatchLimit), a batch of more than maxBatchMessages (1,024)
// messages is refused whole with HTTP 400 and one JSON-RPC error (-32600,
// id null, naming the limit): none of its calls runs (create_basket of
// "over" did not), in a session or not (no session is made); a batch of
// 1,024 is taken, each call answered. Before, the SDK took a batch of any
// size (5,000 pings: 5,000 replies) and ran all its calls at once.
func TestHTTPBatchLimit(t *testing.T) {
	e := newEnv(t)
	srv, ts := httpServer(t, e, user("will", "writer"), Config{}, 0)
	const version = "2025-03-26" // batches are taken before 2025-06-18
	session := httpSession(t, ts.URL, version)
	batch := func(n int, first string) string {
		msgs := []string{first}
		for i := 1; i < n; i++ {
			msgs = append(msgs, `{"jsonrpc":"2.0","id":`+strconv.Itoa(i+10)+`,"method":"ping"}`)
		}
		return "[" + strings.Join(msgs, ",") + "]"
	}
	const refusal = `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request: a batch of more than 1024 messages (none of it is handled): send at most 1024 in one batch, or one message per POST"}}` + "\n"
	over := batch(maxBatchMessages+1, toolCall(2, "create_basket", map[string]any{"name": "over"}))
	for _, s := range []string{session, ""} {
		code, body, hdr := postMCP(t, ts.URL, "", version, s, over)
		if code != http.StatusBadRequest || body != refusal || hdr.Get("Content-Type") != "application/json" || hdr.Get("Mcp-Session-Id") != "" {
			t.Fatalf("a batch of %d (session %q): HTTP %d %q %q\n%s\nwant 400\n%s", maxBatchMessages+1, s, code, hdr.Get("Content-Type"), hdr.Get("Mcp-Session-Id"), body, refusal)
		}
	}
	code, body, _ := postMCP(t, ts.URL, "", version, session, batch(maxBatchMessages, toolCall(3, "list_baskets", map[string]any{})))
	if data := sseData(body); code != http.StatusOK || len(data) != maxBatchMessages {
		t.Fatalf("a batch of %d: HTTP %d, %d replies, want 200 and %d", maxBatchMessages, code, len(data), maxBatchMessages)
	}
	if strings.Contains(body, `\"over\"`) || !strings.Contains(body, `\"in\"`) {
		t.Fatalf("list_baskets after the refused batch: want basket in and no basket over\n%.2000s", body)
	}
	n := 0
	for range srv.MCP().Sessions() {
		n++
	}
	if n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// TestHTTPCancelled: over streamable HTTP, a tools/call the client
// cancels (notifications/cancelled) gets the reply it gets over stdio: a
// tool error ending "The call was cancelled.", whether the cancel came
// while its handler ran or before it started (the call and the cancel in
// one batch, as often as not read before the handler starts). Before, a
// call cancelled before its handler started got the SDK's own -32603
// "context canceled" (in most of these batches).
func TestHTTPCancelled(t *testing.T) {
	e, ts, session := shoutSession(t)
	const version = batchVersion
	for i := range 8 {
		run := toolCall(4, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 30})
		code, body, _ := postMCP(t, ts.URL, "", version, session, "["+run+","+cancelled(4)+"]")
		data := sseData(body)
		if code != http.StatusOK || len(data) != 1 {
			t.Fatalf("batch %d: HTTP %d, %d replies, want 200 and 1\n%s", i, code, len(data), body)
		}
		if !cancelledTool(t, data[0], 4) {
			t.Fatalf("batch %d: %s\nwant call 4's tool error: interrupted: ... context canceled. The call was cancelled.", i, data[0])
		}
	}
}

// cancelledTool reports whether reply is call id's reply as a tools/call
// cancelled while it runs gets it: a tool error, one text, "interrupted:
// ... context canceled. The call was cancelled." (what the engine was
// doing when cancelled may be named between: "read tenant registry: ").
func cancelledTool(t *testing.T, reply string, id float64) bool {
	t.Helper()
	r := parseReply(t, reply)
	if got, ok := r.ID.(float64); !ok || got != id || r.Error != nil || !r.Result.IsError || len(r.Result.Content) != 1 {
		return false
	}
	text := r.Result.Content[0].Text
	return strings.HasPrefix(text, "interrupted: ") && strings.HasSuffix(text, "context canceled. The call was cancelled.")
}

// TestHTTPDisconnect: over streamable HTTP, a call whose client goes away
// (closes the connection of its POST) while it runs is cancelled:
// run_pipeline, which would wait 60 s for a job no worker runs, ends, and
// its id is free again in the session (the SDK refuses a call whose id is
// that of a call in flight, HTTP 400) long before that wait would have
// ended. Before, the SDK ran the call with the session's context, which
// the client's going away does not end: it ran its wait out (60 s) for a
// reply nobody read.
func TestHTTPDisconnect(t *testing.T) {
	e := newEnv(t)
	if _, err := e.admin.CreatePipeline(context.Background(), []byte(shout)); err != nil {
		t.Fatal(err)
	}
	_, ts := httpServer(t, e, user("will", "writer"), Config{}, 0)
	const version = "2025-11-25"
	session := httpSession(t, ts.URL, version)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL, strings.NewReader(toolCall(4, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60})))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", version)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	for { // the call runs once its job exists
		jobs, err := e.admin.Jobs(context.Background(), engine.JobFilter{DocumentID: e.doc.ID}, docex.Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	gone := time.Now()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the POST of the call was answered: want it cut off by the client")
	}
	for {
		code, body, _ := postMCP(t, ts.URL, "", version, session, `{"jsonrpc":"2.0","id":4,"method":"ping"}`)
		if code == http.StatusOK {
			break
		}
		if code != http.StatusBadRequest || !strings.Contains(body, "duplicate in-flight request ID 4") {
			t.Fatalf("ping 4 while call 4 may run: HTTP %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The server's own wait, not a latency bound: the call ran it out.
	if d := time.Since(gone); d >= 50*time.Second {
		t.Fatalf("call 4 ended %v after its client went away: it ran its 60 s wait out", d)
	}
}

// TestHTTPUnreadReplies: over streamable HTTP, a client that does not read
// a POST's response stream holds few of its batch's replies in the server:
// once a write to the stream blocks, no further call of the POST starts
// (a call starts once fewer than maxPostCalls, 16, of the POST's calls
// run and no write to its response is under way), so of a batch of 50
// resources/read of a 4 MiB document, at most 16 run after the write that
// blocks (plus the replies the sockets' buffers took: about one); once
// the client reads, every call runs and is answered. Before, every call
// of the batch ran at once and its reply waited to be written: all 50
// ran (1,024 such calls of a 1 MiB document held 2.1 GiB of heap).
func TestHTTPUnreadReplies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const size = 4 << 20 // each reply is larger than the sockets' buffers hold (a send buffer is at most 4 MiB on Linux by default)
	a, err := e.admin.AddDocument(ctx, e.basket.ID, engine.NewDocument{Name: "big.txt", Content: strings.NewReader(strings.Repeat("x", size))})
	if err != nil {
		t.Fatal(err)
	}
	_, ts := httpServer(t, e, user("will", "writer"), Config{MaxResourceBytes: size}, 0)
	const version = "2025-03-26" // batches are taken before 2025-06-18
	session := httpSession(t, ts.URL, version)
	reads := func() int { // the calls run: each read is audited
		log, err := e.admin.Audit(ctx, docex.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range log {
			if a.UserID == "will" && strings.HasPrefix(a.Operation, "mcp.document.") {
				n++
			}
		}
		return n
	}
	before := reads()
	const calls = 50
	var msgs []string
	for i := range calls {
		msgs = append(msgs, `{"jsonrpc":"2.0","id":`+strconv.Itoa(i+10)+`,"method":"resources/read","params":{"uri":"docex://documents/`+a.Document.ID+`"}}`)
	}
	body := "[" + strings.Join(msgs, ",") + "]"
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: %s\r\nContent-Length: %d\r\n\r\n%s", u.Host, session, version, len(body), body)
	// The client reads nothing while the server goes on: until no call has
	// run for 2 s. This only bounds how long the test looks: the server
	// never runs more than the bound, however long it is given.
	const bound = 16 + 8 // maxPostCalls, and a margin for the replies the sockets' buffers took (4 MiB each: none or one here)
	ran, still := 0, 0
	for still < 40 {
		time.Sleep(50 * time.Millisecond)
		n := reads() - before
		if n > bound {
			t.Fatalf("%d of the batch's %d calls ran while its client read nothing, want at most %d", n, calls, bound)
		}
		if n == ran {
			still++
		} else {
			ran, still = n, 0
		}
	}
	if ran == 0 {
		t.Fatal("no call of the batch ran")
	}
	t.Logf("%d of %d calls ran while the client read nothing", ran, calls)
	// Once the client reads, every call runs and is answered.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 2*size)
	answered := 0
	for answered < calls && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !strings.Contains(d, `"contents":[{"uri":"docex://documents/`) {
				t.Fatalf("reply %d: %.300s", answered, d)
			}
			answered++
		}
	}
	if answered != calls {
		t.Fatalf("%d replies, want %d (%v)", answered, calls, sc.Err())
	}
}
