package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestMCPHTTPServerBounds: docex mcp --http's server closes a connection
// idle between requests after mcpIdleTimeout, reads headers within
// mcpHeaderTimeout, has no ReadTimeout or WriteTimeout (a response stream
// may last; the handler bounds a body's arrival), and accepts at most
// --max-connections connections at once: with 1, a second connection is
// served only once the first closes. Before, the server had only a
// ReadHeaderTimeout and accepted every connection: 160 clients that sent
// headers and stalled made it stop accepting with ulimit -n 150.
func TestMCPHTTPServerBounds(t *testing.T) {
	var served atomic.Int32
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		<-release
	})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, ln := mcpHTTPServer(h, raw, 1)
	if hs.IdleTimeout != 2*time.Minute || hs.ReadHeaderTimeout != 10*time.Second || hs.ReadTimeout != 0 || hs.WriteTimeout != 0 {
		t.Fatalf("timeouts: idle %v, header %v, read %v, write %v; want 2m, 10s, none, none", hs.IdleTimeout, hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout)
	}
	go hs.Serve(ln)
	defer hs.Close()
	get := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /mcp HTTP/1.1\r\nHost: %s\r\n\r\n", raw.Addr())
		return c
	}
	first := get()
	for served.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	second := get()
	defer second.Close()
	// Not a latency bound: the second connection must not be served
	// however long it waits; this only bounds how long the test looks.
	time.Sleep(300 * time.Millisecond)
	if n := served.Load(); n != 1 {
		t.Fatalf("%d requests served with at most 1 connection open, want 1", n)
	}
	close(release)
	if _, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second.SetReadDeadline(time.Now().Add(2 * time.Minute)) // a guard against a hang only
	if resp, err := http.ReadResponse(bufio.NewReader(second), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the second connection once the first closed: %v", err)
	}
}
