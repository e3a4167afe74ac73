package mcpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// chunkedTrickle opens a chunked POST (no Content-Length) to ts and
// sends the first byte of its body, then nothing; it returns the
// connection, open.
func chunkedTrickle(t *testing.T, ts *httptest.Server) net.Conn {
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
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n", u.Host)
	return conn
}

// TestHTTPInflightTrickle: over streamable HTTP, a POST body counts in
// the bound on bodies in flight (--max-inflight-bytes) by the bytes that
// arrived, so bodies that trickle hold little of it and no place in its
// queue: a small POST is answered while four chunked POSTs that sent one
// byte of their body each are still open. Before, a chunked body counted
// the largest allowed body up front, and three of them (each 17 MiB of
// the 64 MiB) with a fourth waiting first in line held every later POST
// back until their bodies timed out (P16: about 58 s).
func TestHTTPInflightTrickle(t *testing.T) {
	e := newEnv(t)
	const version = "2025-11-25"
	srv, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxInflightBytes: 256 << 10, BodyStall: 10 * time.Minute, BodyTimeout: 10 * time.Minute})
	session := httpSession(t, ts.URL, version)
	var conns []net.Conn
	for range 4 {
		conns = append(conns, chunkedTrickle(t, ts))
	}
	// The four bodies are being read once their first byte is counted
	// (or, before, once they hold or wait for room).
	for {
		used, waiting := srv.inflightBytes.state()
		if used >= 4*bodyFirstChunk || used > 0 && waiting > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if used, waiting := srv.inflightBytes.state(); waiting != 0 {
		t.Fatalf("four bodies of one byte: %d bytes counted, %d POSTs waiting; want none waiting", used, waiting)
	}
	answered := make(chan string, 1)
	go func() {
		code, body, _ := postMCP(t, ts.URL, "", version, session, toolCall(7, "list_baskets", map[string]any{}))
		answered <- fmt.Sprint(code, " ", body)
	}()
	var got string
	select {
	case got = <-answered:
	case <-time.After(5 * time.Minute): // only a guard against a hang
		t.Fatal("list_baskets not answered while four bodies trickle")
	}
	if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"id":7,"result"`) {
		t.Fatalf("list_baskets while four bodies trickle: %s", got)
	}
	// The trickling POSTs are still open, unanswered.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Read(make([]byte, 1))
		if ne := (net.Error)(nil); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("trickling POST %d: read %d bytes, %v; want it still open, unanswered", i, n, err)
		}
	}
	// list_baskets's bytes are given back as its handler returns, which
	// may be just after its client read the end of its response.
	for {
		used, waiting := srv.inflightBytes.state()
		if waiting != 0 || used < 4*bodyFirstChunk {
			t.Fatalf("four bodies of one byte: %d bytes counted, %d waiting; want %d, none", used, waiting, 4*bodyFirstChunk)
		}
		if used == 4*bodyFirstChunk {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A trickle that ends is handled as any POST.
	fmt.Fprintf(conns[0], "0\r\n\r\n")
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "-32700") {
		t.Fatalf("the body {: %d %s, want 400 with a parse error", resp.StatusCode, body)
	}
}

// TestBudgetDeadlock: when every unit counted is held by waiters asking
// for more and the oldest does not fit, the latest waiter that holds
// units is refused (errBudgetDeadlock) and its units given back, so the
// others go on.
func TestBudgetDeadlock(t *testing.T) {
	b := &budget{limit: 10}
	ctx := context.Background()
	if err := b.acquire(ctx, nil, 6); err != nil {
		t.Fatal(err)
	}
	if err := b.acquire(ctx, nil, 4); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- b.acquireMore(ctx, nil, 2, 6) }()
	for {
		if _, waiting := b.state(); waiting == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-first:
		t.Fatalf("the first waiter: %v while 4 units are held by no waiter", err)
	default:
	}
	// The holder of 4 asks for more too: nothing can come back.
	if err := b.acquireMore(ctx, nil, 2, 4); !errors.Is(err, errBudgetDeadlock) {
		t.Fatalf("the latest waiter: %v, want errBudgetDeadlock", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the first waiter once the latest gave its units back: %v", err)
	}
	if used, waiting := b.state(); used != 8 || waiting != 0 {
		t.Fatalf("%d counted, %d waiting; want 8, none", used, waiting)
	}
}
