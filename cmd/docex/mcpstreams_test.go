package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMCPMaxStreams: docex mcp --http lets GET streams hold at most half
// of --max-connections, rounded down, and none (-1: refused with HTTP
// 405) with --max-connections 1.
func TestMCPMaxStreams(t *testing.T) {
	for conns, want := range map[int]int{1: -1, 2: 1, 3: 1, 6: 3, 7: 3, 256: 128} {
		if got := mcpMaxStreams(conns); got != want {
			t.Errorf("mcpMaxStreams(%d) = %d, want %d", conns, got, want)
		}
	}
}

// TestMCPHTTPGetStreamsLeaveConnections: with docex mcp --http
// --max-connections 2, one session's GET stream holds one connection, a
// second session's GET is refused with HTTP 503 and Retry-After and its
// connection closed, and an initialize is still answered on the other
// connection. Before, the second GET held the last connection and the
// initialize waited as long as the streams lasted (P4: six GET streams
// with --max-connections 6 left an initialize waiting 44 s and more).
func TestMCPHTTPGetStreamsLeaveConnections(t *testing.T) {
	h := mcpHarness(t)
	cfg := filepath.Join(h.dir, "docex.yaml")
	env := map[string]string{"DOCEX_TENANT": "acme", "DOCEX_USER": "agent", "DOCEX_ROLES": "reader", noBuiltinEnv: "1"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runIO(ctx, []string{"--config", cfg, "mcp", "--http", "127.0.0.1:0", "--max-connections", "2"},
			strings.NewReader(""), io.Discard, stderr, func(k string) string { return env[k] })
	}()
	url := mcpHTTPURL(t, stderr, done)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("exit: %v: %s", err, stderr.String())
		}
	}()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")
	const version = "2025-11-25"
	// Each POST on a connection of its own, closed once answered; the
	// timeout is only a guard against a hang.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Minute}
	post := func(session, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", version)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", body, err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id")
	}
	initialize := func() string {
		t.Helper()
		code, session := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		if code != http.StatusOK || session == "" {
			t.Fatalf("initialize: %d %q", code, session)
		}
		if code, _ := post(session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); code != http.StatusAccepted {
			t.Fatalf("notifications/initialized: %d", code)
		}
		return session
	}
	get := func(session string) (*bufio.Reader, *http.Response) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(2 * time.Minute)) // only a guard against a hang
		fmt.Fprintf(conn, "GET /mcp HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: %s\r\n\r\n", addr, session, version)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET in session %s: %v", session, err)
		}
		return br, resp
	}
	s1, s2 := initialize(), initialize()
	if _, resp := get(s1); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET of s1: %d %q, want a stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br, resp := get(s2)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"code":-32000,"message":"Server busy: 1 GET streams open`) {
		t.Fatalf("GET of s2: %d %q %s, want 503", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection of the refused GET: %v, want it closed", err)
	}
	initialize()
}
