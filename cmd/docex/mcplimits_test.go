package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestMCPHTTPServerBounds: docex mcp --http's server closes a connection
// idle between requests after mcpIdleTimeout, reads headers within
// mcpHeaderTimeout, has no ReadTimeout or WriteTimeout (a response stream
// may last; the handler bounds a body's arrival; a write's stall is
// bounded, TestMCPHTTPWriteStall), and accepts at most
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
	hs, ln := mcpHTTPServer(h, raw, 1, defaultMCPTimeouts)
	if hs.IdleTimeout != 2*time.Minute || hs.ReadHeaderTimeout != 10*time.Second || hs.ReadTimeout != 0 || hs.WriteTimeout != 0 {
		t.Fatalf("timeouts: idle %v, header %v, read %v, write %v; want 2m, 10s, none, none", hs.IdleTimeout, hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout)
	}
	if defaultMCPTimeouts.writeStall != 30*time.Second || mcpStallChunk != 64<<10 {
		t.Fatalf("a write may stall %v a piece of %d bytes; want 30s, 64 KiB (docs/agents.md)", defaultMCPTimeouts.writeStall, mcpStallChunk)
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

// TestMCPHTTPIdleKeepAliveClosed: a keep-alive connection with no request
// after its response is closed by the server once the idle timeout
// passes (a short one here; mcpIdleTimeout in docex mcp). The test waits
// for the close, not for a time.
func TestMCPHTTPIdleKeepAliveClosed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, ln := mcpHTTPServer(h, raw, 4, mcpTimeouts{header: 10 * time.Second, idle: 50 * time.Millisecond, writeStall: 10 * time.Second})
	go hs.Serve(ln)
	defer hs.Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /mcp HTTP/1.1\r\nHost: %s\r\n\r\n", raw.Addr())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.Close {
		t.Fatalf("the response: %v (close %v), want one kept alive", err, resp != nil && resp.Close)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // a guard against a hang only
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the idle connection: read %d bytes, %v; want it closed (EOF)", n, err)
	}
}

// TestMCPHTTPWriteStall: a client that sends a request and never reads
// its response holds its connection only until a write of the response
// stalls past the write stall bound (a short one here; mcpWriteStall in
// docex mcp): the handler's write then fails and the connection is
// closed. A client that reads gets a long response whole. Before, there
// was no bound: the handler's write blocked for ever, holding the
// connection (and, past --max-connections of them, the server).
func TestMCPHTTPWriteStall(t *testing.T) {
	const size = 64 << 20 // more than the buffers between server and client hold
	failed := make(chan error, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		piece := bytes.Repeat([]byte("x"), 1<<20)
		for n := 0; n < size; n += len(piece) {
			if _, err := w.Write(piece); err != nil {
				failed <- err
				return
			}
			if err := rc.Flush(); err != nil {
				failed <- err
				return
			}
		}
		failed <- nil
	})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, ln := mcpHTTPServer(h, raw, 4, mcpTimeouts{header: 10 * time.Second, idle: time.Minute, writeStall: 5 * time.Second})
	go hs.Serve(ln)
	defer hs.Close()
	// A client that reads gets it all. The stall bound is 5 s, not less,
	// so that a reader descheduled on a loaded machine is not taken for
	// one that stopped reading.
	resp, err := http.Get("http://" + raw.Addr().String() + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || <-failed != nil {
		t.Fatalf("a client that reads: %d bytes, %v; want %d", n, err, size)
	}
	// One that does not read.
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /mcp HTTP/1.1\r\nHost: %s\r\n\r\n", raw.Addr())
	select {
	case err := <-failed:
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the write to a client that does not read: %v, want a deadline exceeded", err)
		}
	case <-time.After(2 * time.Minute): // a guard against a hang only
		t.Fatal("the write to a client that does not read never failed")
	}
}
