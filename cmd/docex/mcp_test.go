package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mcpHarness is an initialised directory with tenant acme.
func mcpHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	return h
}

// startMCP runs "docex mcp args..." in-process on pipes and returns a
// connected client and a function that closes the client and returns the
// command's exit code.
func (h *harness) startMCP(args ...string) (*mcp.ClientSession, *syncBuffer, func() int) {
	h.t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	full := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp"}, args...)
	go func() {
		err := runIO(context.Background(), full, inR, outW, stderr, func(k string) string { return h.env[k] })
		outW.Close()
		done <- exitCode(err)
	}()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "cli-test", Version: "1"}, nil).
		Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		h.t.Fatalf("connect: %v (stderr: %s)", err, stderr.String())
	}
	return cs, stderr, func() int {
		cs.Close()
		inW.Close()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Minute):
			h.t.Fatal("docex mcp did not exit after stdin closed")
			return -1
		}
	}
}

func TestMCPStdio(t *testing.T) {
	h := mcpHarness(t)
	h.env["DOCEX_TENANT"] = "acme"
	h.env["DOCEX_USER"] = "agent"
	h.env["DOCEX_ROLES"] = "writer"
	cs, stderr, stop := h.startMCP()
	ctx := context.Background()
	callOK := func(tool string, args map[string]any) map[string]any {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", tool, err, res)
		}
		return res.StructuredContent.(map[string]any)
	}
	callOK("create_basket", map[string]any{"name": "inbox"})
	added := callOK("add_document", map[string]any{"basket": "inbox", "name": "memo.txt", "text": "quarterly memo", "metadata": map[string]any{"kind": "memo"}})
	id := added["document"].(map[string]any)["id"].(string)
	found := callOK("find_documents", map[string]any{"basket": "inbox", "metadata": map[string]any{"kind": "memo"}})
	if found["total"] != float64(1) {
		t.Fatalf("find: %v", found)
	}
	if page := callOK("read_document", map[string]any{"id": id}); page["text"] != "quarterly memo" || page["eof"] != true {
		t.Fatalf("read: %v", page)
	}
	// A tool error keeps the server serving.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_document", Arguments: map[string]any{"id": "0190c1a2-0000-7000-8000-000000000000"}})
	if err != nil || !res.IsError {
		t.Fatalf("unknown id: %v %+v", err, res)
	}
	callOK("list_baskets", nil)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after stdin closed; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `serving MCP on stdio as user "agent" of tenant "acme"`) {
		t.Fatalf("stderr: %s", stderr.String())
	}
	// The calls are in the tenant's audit log, tagged as MCP.
	h.env["DOCEX_ROLES"] = "admin"
	log := decode[[]struct{ Operation, UserID string }](t, h.ok("audit", "list", "--json").stdout)
	ops := map[string]bool{}
	for _, e := range log {
		ops[e.Operation] = true
	}
	for _, op := range []string{"mcp.basket.create", "mcp.document.add", "mcp.document.find", "mcp.document.read", "mcp.document.get"} {
		if !ops[op] {
			t.Errorf("no %s in the audit log: %v", op, ops)
		}
	}
}

// TestMCPResourceErrorCodes: with docex tenant suspend run while a
// session serves, resources/read and resources/list fail with the
// JSON-RPC error of a denial (-32010, docs/agents.md), its data giving the
// code and kind of a CLI --json error and the hint; after docex tenant
// resume, the same session reads again. Before, the error's code was 0,
// which JSON-RPC does not have.
func TestMCPResourceErrorCodes(t *testing.T) {
	h := mcpHarness(t)
	h.env["DOCEX_TENANT"] = "acme"
	h.env["DOCEX_USER"] = "agent"
	h.env["DOCEX_ROLES"] = "writer"
	cs, stderr, stop := h.startMCP()
	ctx := context.Background()
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "docex://baskets"}); err != nil {
		t.Fatal(err)
	}
	h.ok("tenant", "suspend", "acme")
	for name, call := range map[string]func() error{
		"resources/read": func() error {
			_, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "docex://baskets"})
			return err
		},
		"resources/list": func() error { _, err := cs.ListResources(ctx, nil); return err },
	} {
		var rpcErr *jsonrpc.Error
		if err := call(); !errors.As(err, &rpcErr) {
			t.Fatalf("%s: %v, want a JSON-RPC error", name, err)
		}
		var data struct{ Code, Kind, Hint string }
		if err := json.Unmarshal(rpcErr.Data, &data); err != nil {
			t.Fatalf("%s: data %s: %v", name, rpcErr.Data, err)
		}
		if rpcErr.Code != -32010 || !strings.HasPrefix(rpcErr.Message, `tenant_suspended: tenant "acme" is suspended. `) ||
			data.Code != "tenant_suspended" || data.Kind != "denied" || !strings.Contains(data.Hint, "docex tenant resume acme") {
			t.Errorf("%s: %d %q %s, want -32010, tenant_suspended, kind denied and the hint", name, rpcErr.Code, rpcErr.Message, rpcErr.Data)
		}
	}
	h.ok("tenant", "resume", "acme")
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "docex://baskets"}); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
}

func TestMCPRefusesBeforeServing(t *testing.T) {
	h := mcpHarness(t)
	h.ok("tenant", "create", "frozen")
	h.ok("tenant", "suspend", "frozen")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no user", []string{"--tenant", "acme", "--roles", "reader"}, exitDenied, "user"},
		{"no tenant", []string{"--user", "a", "--roles", "reader"}, exitDenied, "tenant"},
		{"unknown tenant", []string{"--tenant", "nope", "--user", "a", "--roles", "reader"}, exitDenied, `unknown tenant "nope"`},
		{"suspended tenant", []string{"--tenant", "frozen", "--user", "a", "--roles", "reader"}, exitDenied, "suspended"},
		{"bootstrap tenant", []string{"--tenant", "system", "--user", "a", "--roles", "admin"}, exitDenied, "bootstrap"},
		{"no role", []string{"--tenant", "acme", "--user", "a"}, exitDenied, "forbidden"},
		{"remote http", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--http", "0.0.0.0:0"}, exitInvalid, "non-loopback"},
		{"all interfaces", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--http", ":8765"}, exitInvalid, "--allow-remote"},
		{"allow-remote without http", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--allow-remote"}, exitInvalid, "--http"},
		{"bad allow-path", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--allow-path", "/nonexistent/dir"}, exitInvalid, "allowed path"},
		// A page under 16 bytes was raised to 16 without a word.
		{"no sessions", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--http", "127.0.0.1:0", "--max-sessions", "0"}, exitInvalid, "--max-sessions, --max-connections, --max-inflight-bytes and --max-calls must be positive"},
		{"no calls", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--http", "127.0.0.1:0", "--max-calls", "0"}, exitInvalid, "must be positive"},
		{"no connections", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--http", "127.0.0.1:0", "--max-connections", "-1"}, exitInvalid, "must be positive"},
		{"read page below the least", []string{"--tenant", "acme", "--user", "a", "--roles", "reader", "--max-read-bytes", "8"}, exitInvalid, "--max-read-bytes 8: want at least 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.want(c.code, append([]string{"mcp"}, c.args...)...)
			if r.stdout != "" {
				t.Fatalf("wrote to stdout before refusing: %q", r.stdout)
			}
			if !strings.Contains(r.stderr, c.msg) {
				t.Fatalf("stderr %q, want %q", r.stderr, c.msg)
			}
		})
	}
	// The denial is in the system audit log, tagged as MCP.
	sys := decode[[]struct{ Operation, Outcome string }](t, h.ok("audit", "list", "--system", "--json").stdout)
	tagged := false
	for _, e := range sys {
		tagged = tagged || (strings.HasPrefix(e.Operation, "mcp.") && e.Outcome == "denied")
	}
	if !tagged {
		t.Fatalf("no mcp denial in the system audit: %+v", sys)
	}
}

// TestMCPHTTPBatches pins what docs/agents.md says of batches over
// --http, which the SDK's streamable transport handles itself: a POST
// holding a batch is answered (each reply an event of the response's
// stream) unless its Mcp-Protocol-Version header names 2025-06-18 or
// later, which gets HTTP 400, as do an empty batch and a batch holding
// something that is not a JSON-RPC message.
func TestMCPHTTPBatches(t *testing.T) {
	h := mcpHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, _, done := startMCPHTTP(ctx, t, h)
	post := func(t *testing.T, session, version, body string) (int, string, http.Header) {
		t.Helper()
		return mcpPost(ctx, t, url, session, version, body)
	}
	code, body, hdr := post(t, "", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" || !strings.Contains(body, `"protocolVersion":"2025-03-26"`) {
		t.Fatalf("initialize: %d %s %v", code, body, hdr)
	}
	if code, body, _ := post(t, session, "2025-03-26", `{"jsonrpc":"2.0","method":"notifications/initialized"}`); code != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", code, body)
	}
	batch := `[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_baskets","arguments":{}}}]`
	for _, c := range []struct {
		version, body string
		code          int
		want          []string
	}{
		{"2025-03-26", batch, http.StatusOK, []string{`data: {"jsonrpc":"2.0","id":2,"result":{}}`, `"id":3,"result"`}},
		{"", batch, http.StatusOK, []string{`data: {"jsonrpc":"2.0","id":2,"result":{}}`, `"id":3,"result"`}},
		{"2025-06-18", batch, http.StatusBadRequest, []string{"JSON-RPC batching is not supported in 2025-06-18 and later (request version: 2025-06-18)"}},
		{"2025-11-25", batch, http.StatusBadRequest, []string{"(request version: 2025-11-25)"}},
		{"2025-03-26", `[]`, http.StatusBadRequest, []string{"malformed payload: empty batch"}},
		{"2025-03-26", `[1,{"jsonrpc":"2.0","id":5,"method":"ping"}]`, http.StatusBadRequest, []string{"malformed payload"}},
	} {
		code, body, _ := post(t, session, c.version, c.body)
		if code != c.code {
			t.Errorf("%s with version %q: HTTP %d, want %d: %s", c.body, c.version, code, c.code, body)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s with version %q: %s, want %q in it", c.body, c.version, body, w)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestMCPHTTPStopCancelsCalls: docex mcp --http interrupted while a call
// runs cancels it: the call is answered on its POST as a cancelled call
// (run_pipeline's wait for a job no worker runs: a tool error ending "The
// call was cancelled."), then the server exits 0. Before, the stop closed
// the session, which waited for the call until Shutdown's 5 s were up,
// and dropped its reply: the POST ended with none.
func TestMCPHTTPStopCancelsCalls(t *testing.T) {
	h, sess := shoutHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, stderr, done := startMCPHTTP(ctx, t, h, "writer")
	post := func(session, body string) (int, string, http.Header) {
		t.Helper()
		return mcpPost(context.Background(), t, url, session, "2025-11-25", body)
	}
	code, body, hdr := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	if code, body, _ := post(session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); code != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", code, body)
	}
	type reply struct {
		code int
		body string
	}
	replied := make(chan reply, 1)
	go func() {
		code, body, _ := post(session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_pipeline","arguments":{"pipeline":"shout","basket":"inbox","wait_seconds":60}}}`)
		replied <- reply{code, body}
	}()
	for { // the call runs once its job exists
		jobs, err := sess.Jobs(context.Background(), engine.JobFilter{}, docex.Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	r := <-replied
	// What the engine was doing when cancelled may be named before
	// "context canceled" ("read tenant registry: ").
	want := regexp.MustCompile(`(?m)^data: \{"jsonrpc":"2.0","id":2,"result":\{"content":\[\{"type":"text","text":"interrupted: [^"]*context canceled\. The call was cancelled\."\}\],"isError":true\}\}$`)
	if r.code != http.StatusOK || !want.MatchString(r.body) {
		t.Fatalf("run_pipeline while docex mcp stops: HTTP %d %s\nwant 200 and a reply matching\n%s", r.code, r.body, want)
	}
	if err := <-done; err != nil {
		t.Fatalf("exit %d: %v; stderr: %s", exitCode(err), err, stderr.String())
	}
}

// mcpPost posts body to the MCP endpoint url, with the session id and
// protocol version headers when not "", and returns the HTTP status, the
// body and the headers of the response.
func mcpPost(ctx context.Context, t *testing.T, url, session, version, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
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

// TestMCPHTTPErrorCodes: over --http too, no error reply has code 0,
// which JSON-RPC does not have: a call in a POST without a session id
// that is not initialize is refused (HTTP 400, -32600), a call ahead of
// initialize in a batch (the SDK refuses it before any middleware) is an
// invalid request (-32600), so is a second initialize, and a
// resources/read of a suspended tenant is -32010 with its data. Before,
// the last three had code 0.
func TestMCPHTTPErrorCodes(t *testing.T) {
	h := mcpHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, _, done := startMCPHTTP(ctx, t, h)
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	code, body, _ := mcpPost(ctx, t, url, "", "", `{"jsonrpc":"2.0","id":"early","method":"tools/list"}`)
	if want := `{"jsonrpc":"2.0","id":"early","error":{"code":-32600,"message":"Bad Request: no Mcp-Session-Id header: a POST without one must be an initialize request;`; code != http.StatusBadRequest || !strings.HasPrefix(body, want) {
		t.Errorf("a call without a session: %d %s, want 400 %s", code, body, want)
	}
	code, body, _ = mcpPost(ctx, t, url, "", "2025-03-26", `[{"jsonrpc":"2.0","id":"early","method":"tools/list"},`+initialize+`]`)
	if want := `data: {"jsonrpc":"2.0","id":"early","error":{"code":-32600,"message":"method \"tools/list\" is invalid during session initialization"}}`; code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("a call ahead of initialize in a batch: %d %s, want %s", code, body, want)
	}
	code, body, hdr := mcpPost(ctx, t, url, "", "", initialize)
	session := hdr.Get("Mcp-Session-Id")
	if code != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	mcpPost(ctx, t, url, session, "2025-11-25", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if _, body, _ := mcpPost(ctx, t, url, session, "2025-11-25", initialize); !strings.Contains(body, `"error":{"code":-32600,"message":"duplicate \"initialize\" received"}`) {
		t.Errorf("a second initialize: %s", body)
	}
	h.ok("tenant", "suspend", "acme")
	_, body, _ = mcpPost(ctx, t, url, session, "2025-11-25", `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"docex://baskets"}}`)
	if !strings.Contains(body, `"error":{"code":-32010,"message":"tenant_suspended: `) || !strings.Contains(body, `"data":{"code":"tenant_suspended","kind":"denied","hint":`) {
		t.Errorf("resources/read of a suspended tenant: %s", body)
	}
	h.ok("tenant", "resume", "acme")
	if _, body, _ := mcpPost(ctx, t, url, session, "2025-11-25", `{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"docex://baskets"}}`); !strings.Contains(body, `"id":4,"result"`) {
		t.Errorf("resources/read after resume: %s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestMCPHTTPAddressInUse: an address another process listens on is the
// environment's failure (exit 1, kind internal), and the hint names the
// address and another port; a malformed port stays a usage error (exit 2).
func TestMCPHTTPAddressInUse(t *testing.T) {
	h := mcpHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	user := []string{"--tenant", "acme", "--user", "a", "--roles", "reader"}
	r := h.want(exitInternal, append([]string{"mcp", "--http", addr}, user...)...)
	if !strings.Contains(r.stderr, "--http "+addr+": the address is already in use") ||
		!strings.Contains(r.stderr, "hint: another process listens on "+addr+": stop it, or pass another port (--http 127.0.0.1:") {
		t.Fatalf("address in use: stderr %q", r.stderr)
	}
	e := decode[map[string]map[string]string](t, h.want(exitInternal, append([]string{"mcp", "--http", addr, "--json"}, user...)...).stderr)
	if e["error"]["kind"] != "internal" || !strings.Contains(e["error"]["hint"], addr) {
		t.Fatalf("address in use, JSON: %+v", e)
	}
	r = h.want(exitInvalid, append([]string{"mcp", "--http", "127.0.0.1:99999"}, user...)...)
	if !strings.Contains(r.stderr, "--http 127.0.0.1:99999") {
		t.Fatalf("malformed port: stderr %q", r.stderr)
	}
}

// TestListenError: which listen failures are the environment's (exit 1)
// and which the address's (exit 2), and the port each hint suggests.
func TestListenError(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	cases := []struct {
		addr string
		err  error
		code int
		hint string
	}{
		{"127.0.0.1:8765", opErr(syscall.EADDRINUSE), exitInternal, "another process listens on 127.0.0.1:8765: stop it, or pass another port (--http 127.0.0.1:8766)"},
		{"[::1]:65535", opErr(syscall.EADDRINUSE), exitInternal, "(--http [::1]:8765)"},
		{"127.0.0.1:80", opErr(syscall.EACCES), exitInternal, "ports below 1024 need privileges: pass another port (--http 127.0.0.1:8765)"},
		{"127.0.0.2:8765", opErr(syscall.EADDRNOTAVAIL), exitInvalid, ""},
		{"127.0.0.1:99999", &net.AddrError{Err: "invalid port", Addr: "99999"}, exitInvalid, ""},
	}
	for _, c := range cases {
		err := listenError(c.addr, c.err)
		if got := exitCode(err); got != c.code {
			t.Errorf("%s %v: exit %d, want %d", c.addr, c.err, got, c.code)
		}
		if hint := hintFor(err, globals{}); !strings.Contains(hint, c.hint) || (c.hint == "") != (hint == "") {
			t.Errorf("%s %v: hint %q, want %q", c.addr, c.err, hint, c.hint)
		}
	}
}

func TestMCPHTTP(t *testing.T) {
	h := mcpHarness(t)
	h.ok("--tenant", "acme", "--user", "a", "--roles", "writer", "basket", "create", "inbox")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, stderr, done := startMCPHTTP(ctx, t, h)
	// A call without a session is the client's mistake: it is told so
	// (400), and the server logs no ERROR.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"error":{"code":-32600,"message":"Bad Request: no Mcp-Session-Id header`) {
		t.Fatalf("tools/list without a session: %v, %d %s", err, resp.StatusCode, body)
	}
	if strings.Contains(stderr.String(), "ERROR") {
		t.Fatalf("a client's call before initialize logged an error: %s", stderr.String())
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "http-test", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_baskets"})
	if err != nil || res.IsError {
		t.Fatalf("list_baskets over HTTP: %v %+v", err, res)
	}
	data, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(data), `"inbox"`) {
		t.Fatalf("list_baskets: %s", data)
	}
	// The reader's identity holds over HTTP too.
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_basket", Arguments: map[string]any{"name": "x"}}); err != nil || !res.IsError {
		t.Fatalf("reader created a basket over HTTP: %v %+v", err, res)
	}
	cs.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Minute):
		t.Fatal("docex mcp --http did not stop")
	}
}

// TestAgentsDoc keeps docs/agents.md exact: its client configuration
// starts a server that serves, and its tool table is the server's tools.
func TestAgentsDoc(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "agents.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	block := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(doc)
	if block == nil {
		t.Fatal("no JSON client configuration in docs/agents.md")
	}
	var conf struct {
		MCPServers map[string]struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(block[1]), &conf); err != nil {
		t.Fatalf("client configuration: %v", err)
	}
	srv, ok := conf.MCPServers["docex"]
	if !ok || srv.Command != "docex" {
		t.Fatalf("client configuration: %+v", conf)
	}
	h := mcpHarness(t)
	if err := os.MkdirAll(filepath.Join(h.dir, "inbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	var args []string
	for i := 0; i < len(srv.Args); i++ {
		switch a := srv.Args[i]; a {
		case "--config": // the harness gives its own
			i++
		case "mcp":
		case "--allow-path":
			args = append(args, a, filepath.Join(h.dir, "inbox"))
			i++
		default:
			args = append(args, a)
		}
	}
	for k, v := range srv.Env {
		h.env[k] = v
	}
	cs, stderr, stop := h.startMCP(args...)
	var tools []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools = append(tools, tool.Name)
		if !strings.Contains(doc, "| `"+tool.Name+"` |") {
			t.Errorf("tool %s is not in the table of docs/agents.md", tool.Name)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (reader|writer|admin) \\|").FindAllStringSubmatch(doc, -1) {
		if !slices.Contains(tools, m[1]) {
			t.Errorf("docs/agents.md lists tool %s, which the server does not have", m[1])
		}
	}
	if !strings.Contains(stderr.String(), `serving MCP on stdio as user "assistant" of tenant "acme"`) || !strings.Contains(doc, `docex mcp: serving MCP on stdio as user "assistant" of tenant "acme"`) {
		t.Errorf("the startup line differs from the doc: %s", stderr.String())
	}
	help := h.ok("mcp", "--help").stdout
	for _, flag := range regexp.MustCompile("(?m)^\\| `(--[a-z-]+)").FindAllStringSubmatch(doc, -1) {
		if !strings.Contains(help, flag[1]+" ") && !strings.Contains(help, flag[1]+"[") {
			t.Errorf("docs/agents.md documents flag %s, which docex mcp does not have", flag[1])
		}
	}
}

// TestMCPOversizedMessage: a message over the stdio transport's 16 MiB
// frame limit cannot be skipped (the stream has no resynchronisation
// point), so the server ends the session with a message and exit code 1,
// without a panic.
func TestMCPOversizedMessage(t *testing.T) {
	h := mcpHarness(t)
	for _, c := range []struct {
		name        string
		start, fill []byte
	}{
		{"json", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_document","arguments":{"text":"`), []byte("x")},
		// Not JSON: the reason was the line's parse error ("invalid
		// character '\x00'"), not its size.
		{"nul bytes", nil, []byte{0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			inR, inW := io.Pipe()
			stderr := &syncBuffer{}
			done := make(chan int, 1)
			go func() {
				err := runIO(context.Background(), []string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--tenant", "acme", "--user", "a", "--roles", "writer"},
					inR, io.Discard, stderr, func(string) string { return "" })
				inR.Close()
				done <- exitCode(err)
			}()
			go func() {
				inW.Write(c.start)
				inW.Write(bytes.Repeat(c.fill, 17<<20))
				inW.Close()
			}()
			select {
			case code := <-done:
				if code != exitInternal || !strings.Contains(stderr.String(), "maximum line length") || strings.Contains(stderr.String(), "invalid character") {
					t.Fatalf("exit %d, stderr %q", code, stderr.String())
				}
			case <-time.After(10 * time.Minute):
				t.Fatal("docex mcp did not end the session")
			}
		})
	}
}

// shoutHarness is mcpHarness with the upper plugin, a pipeline shout
// running it, and a document a.txt in basket inbox of tenant acme; it
// returns an admin's session of acme too.
func shoutHarness(t *testing.T) (*harness, *engine.Session) {
	t.Helper()
	h := mcpHarness(t)
	admin := []string{"--tenant", "acme", "--user", "ops", "--roles", "admin"}
	h.ok(append(admin, "plugin", "install", filepath.Join("..", "..", "testplugins", "upper"))...)
	h.ok(append(admin, "basket", "create", "inbox")...)
	sess := h.engineSession(docex.UserContext{UserID: "ops", TenantID: "acme", Roles: []string{"admin"}})
	if _, err := sess.CreatePipeline(context.Background(), []byte("name = \"shout\"\n[[steps]]\nname = \"upper\"\nplugin = \"upper\"\n")); err != nil {
		t.Fatal(err)
	}
	h.file("a.txt", "quiet")
	h.ok(append(admin, "doc", "add", "inbox", filepath.Join(h.dir, "a.txt"))...)
	return h, sess
}

// TestMCPWorker: on SQLite the server runs the tenant's pipeline jobs by
// default (--worker auto), so run_pipeline can wait for the result; with
// --worker no they stay queued.
func TestMCPWorker(t *testing.T) {
	h, _ := shoutHarness(t)
	h.want(exitInvalid, "mcp", "--worker", "maybe", "--tenant", "acme", "--user", "agent", "--roles", "writer")
	cs, stderr, stop := h.startMCP("--worker", "no", "--tenant", "acme", "--user", "agent", "--roles", "writer")
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_pipeline", Arguments: map[string]any{"pipeline": "shout", "basket": "inbox", "wait_seconds": 1}})
	if err != nil || res.IsError || res.StructuredContent.(map[string]any)["status"].(map[string]any)["done"] != false {
		t.Fatalf("run_pipeline without a worker: %v %+v", err, res)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cs, stderr, stop = h.startMCP("--tenant", "acme", "--user", "agent", "--roles", "writer")
	ctx := context.Background()
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_pipeline", Arguments: map[string]any{"pipeline": "shout", "basket": "inbox", "wait_seconds": 60}})
	if err != nil || res.IsError {
		t.Fatalf("run_pipeline: %v %+v", err, res)
	}
	data, _ := json.Marshal(res.StructuredContent)
	var out struct {
		JobIDs []string `json:"job_ids"`
		Status struct {
			Succeeded int
			Done      bool
		}
	}
	if err := json.Unmarshal(data, &out); err != nil || len(out.JobIDs) != 1 || (out.Status.Done && out.Status.Succeeded != 1) {
		t.Fatalf("run_pipeline: %s %v", data, err)
	}
	// Not done within the wait on a loaded machine: poll (no timing
	// threshold decides this test).
	state := ""
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"id": out.JobIDs[0]}})
		if err != nil || res.IsError {
			t.Fatalf("get_job: %v %+v", err, res)
		}
		if state = res.StructuredContent.(map[string]any)["state"].(string); state != "queued" && state != "running" {
			break
		}
	}
	if state != "succeeded" {
		t.Fatalf("job %s", state)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// engineSession opens the harness's system through the CLI's own code and
// returns a session of uc (closed with the test).
func (h *harness) engineSession(uc docex.UserContext) *engine.Session {
	h.t.Helper()
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return h.env[k] }}
	c.g.config = filepath.Join(h.dir, "docex.yaml")
	sys, err := c.system(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.close)
	return sys.eng.As(uc)
}

// TestMCPStopQuiet: a normal stop (Ctrl-C or SIGTERM cancels main's
// context) while a client is connected exits 0 and logs no ERROR or WARN
// line, on stdio and over HTTP.
func TestMCPStopQuiet(t *testing.T) {
	h := mcpHarness(t)
	for _, transport := range []string{"stdio", "http"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--tenant", "acme", "--user", "a", "--roles", "reader"}
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			defer inW.Close()
			defer outR.Close()
			if transport == "http" {
				args = append(args, "--http", "127.0.0.1:0")
			}
			stderr := &syncBuffer{}
			done := make(chan error, 1)
			go func() {
				err := runIO(ctx, args, inR, outW, stderr, func(string) string { return "" })
				outW.Close()
				done <- err
			}()
			var ct mcp.Transport = &mcp.IOTransport{Reader: outR, Writer: inW}
			if transport == "http" {
				url := mcpHTTPURL(t, stderr, done)
				// The test opens the session's event stream itself (below).
				ct = &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}
			}
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "stop-test", Version: "1"}, nil).Connect(context.Background(), ct, nil)
			if err != nil {
				t.Fatalf("connect: %v (stderr: %s)", err, stderr.String())
			}
			defer cs.Close()
			if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_baskets"}); err != nil || res.IsError {
				t.Fatalf("list_baskets: %v %+v", err, res)
			}
			var events io.ReadCloser // the session's open event stream (HTTP)
			if transport == "http" {
				req, err := http.NewRequest(http.MethodGet, ct.(*mcp.StreamableClientTransport).Endpoint, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("Mcp-Session-Id", cs.ID())
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("GET event stream: %v %v", err, resp)
				}
				events = resp.Body
				defer events.Close()
			}
			cancel() // the client is still connected
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit %d: %v; stderr: %s", exitCode(err), err, stderr.String())
				}
			case <-time.After(10 * time.Minute):
				t.Fatal("docex mcp did not stop")
			}
			if events != nil {
				// The stop ended the session and so its event stream:
				// nothing is left serving it.
				read := make(chan error, 1)
				go func() { _, err := io.Copy(io.Discard, events); read <- err }()
				select {
				case <-read:
				case <-time.After(10 * time.Minute):
					t.Fatal("the session's event stream is still open after docex mcp --http stopped")
				}
			}
			for _, line := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
					t.Errorf("a normal stop logged %q; stderr: %s", line, stderr.String())
				}
			}
		})
	}
}

// mcpHTTPURL waits for `docex mcp --http 127.0.0.1:0` to say on stderr
// where it listens and returns the endpoint's URL; it fails the test if the
// command exits first (done) or never says (a hang bound, not a timing
// check).
// startMCPHTTP runs docex mcp --http on a free loopback port in h, as
// user a of tenant acme (with the roles given, else reader), until ctx is
// done; it returns the endpoint's URL, the server's stderr and the
// channel its run's error arrives on.
func startMCPHTTP(ctx context.Context, t *testing.T, h *harness, roles ...string) (string, *syncBuffer, chan error) {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{"reader"}
	}
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runIO(ctx, []string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--http", "127.0.0.1:0", "--worker", "no",
			"--tenant", "acme", "--user", "a", "--roles", strings.Join(roles, ",")}, strings.NewReader(""), io.Discard, stderr, func(string) string { return "" })
	}()
	return mcpHTTPURL(t, stderr, done), stderr, done
}

func mcpHTTPURL(t *testing.T, stderr *syncBuffer, done <-chan error) string {
	t.Helper()
	addr := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/mcp`)
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			return "http://" + m[1] + "/mcp"
		}
		select {
		case err := <-done:
			t.Fatalf("docex mcp --http exited: %v; stderr: %s", err, stderr.String())
		default:
		}
	}
	t.Fatalf("no address on stderr: %s", stderr.String())
	return ""
}

// TestMCPStdioBadLines: a line that is not a JSON-RPC message is answered
// with a JSON-RPC error (parse error -32700 for a line that is not JSON,
// invalid request -32600 for any other, with the line's id when it has a
// usable one) and the server goes on: the calls before and after it are
// answered, nothing is logged, and it exits 0 when stdin closes. Before,
// the SDK ended the session at such a line (exit 1). An id that is null or
// not answered exactly (1.5, past 2^53-1) is refused with id null too:
// before, a call with id null got no reply, and 1.5 was answered as 1.
func TestMCPStdioBadLines(t *testing.T) {
	h := mcpHarness(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		err := runIO(context.Background(), []string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--tenant", "acme", "--user", "a", "--roles", "reader"},
			inR, outW, stderr, func(string) string { return "" })
		inR.Close() // the test's writes fail instead of blocking
		outW.Close()
		done <- exitCode(err)
	}()
	out := bufio.NewScanner(outR)
	out.Buffer(nil, 1<<20)
	type reply struct {
		ID     any             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	send := func(t *testing.T, line string) {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatalf("write %q: %v (stderr: %s)", line, err, stderr.String())
		}
	}
	read := func(t *testing.T) reply {
		t.Helper()
		if !out.Scan() {
			t.Fatalf("no reply: the server ended (%v); stderr: %s", out.Err(), stderr.String())
		}
		var r reply
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("reply %q: %v", out.Text(), err)
		}
		return r
	}
	send(t, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if r := read(t); r.Error != nil {
		t.Fatalf("initialize: %+v", r.Error)
	}
	send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	cases := []struct {
		name, line string
		code       int // 0: no reply
		id         any // nil: null
		msg        string
	}{
		{"text", `this is not json`, -32700, nil, "not JSON"},
		{"broken object", `{not json`, -32700, nil, "not JSON"},
		{"two messages on a line", `{"jsonrpc":"2.0","id":7,"method":"ping"} {"jsonrpc":"2.0","id":8,"method":"ping"}`, -32700, nil, "not JSON"},
		{"number", `42`, -32600, nil, "JSON object"},
		{"null", `null`, -32600, nil, "JSON object"},
		{"string", `"ping"`, -32600, nil, "JSON object"},
		{"empty object", `{}`, -32600, nil, "version"},
		{"version 1.0", `{"jsonrpc":"1.0","id":3,"method":"ping"}`, -32600, float64(3), "version"},
		{"no method, no result", `{"jsonrpc":"2.0","id":9}`, -32600, float64(9), "no method"},
		{"method not a string", `{"jsonrpc":"2.0","id":"s","method":5}`, -32600, "s", "Invalid request"},
		{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, -32600, nil, `id {"a":1}: an id is a string or an integer`},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, -32600, nil, "id null: a request's id is a string or an integer"},
		{"fraction id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, -32600, nil, "id 1.5: an id is a string or an integer"},
		{"id past 2^53-1", `{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}`, -32600, nil, "id 9007199254740993: "},
		{"batch (not in 2025-06-18)", `[{"jsonrpc":"2.0","id":4,"method":"ping"},{"jsonrpc":"2.0","id":5,"method":"ping"}]`, -32600, nil,
			"JSON-RPC batches are not supported in protocol version 2025-06-18 and later (this session's is 2025-06-18): send one message per line"},
		{"empty batch", `[]`, -32600, nil, "empty batch"},
		{"empty line", ``, 0, nil, ""},
		{"blank line", " \t\r", 0, nil, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, after := fmt.Sprintf("before-%d", i), fmt.Sprintf("after-%d", i)
			send(t, `{"jsonrpc":"2.0","id":"`+before+`","method":"tools/call","params":{"name":"list_baskets","arguments":{}}}`)
			send(t, c.line)
			send(t, `{"jsonrpc":"2.0","id":"`+after+`","method":"tools/call","params":{"name":"list_baskets","arguments":{}}}`)
			// Replies are matched by id: calls are answered concurrently.
			want := 3
			if c.code == 0 {
				want = 2
			}
			answered := map[any]bool{}
			for range want {
				r := read(t)
				switch r.ID {
				case before, after:
					if r.Error != nil || r.Result == nil {
						t.Errorf("call %v: %+v", r.ID, r.Error)
					}
					answered[r.ID] = true
				default:
					if c.code == 0 {
						t.Fatalf("a reply to an empty line: %+v %+v", r.ID, r.Error)
					}
					if r.Error == nil || r.Error.Code != c.code || r.ID != c.id || !strings.Contains(r.Error.Message, c.msg) {
						t.Errorf("reply %+v %+v, want code %d, id %v, message with %q", r.ID, r.Error, c.code, c.id, c.msg)
					}
				}
			}
			if !answered[before] || !answered[after] {
				t.Errorf("calls answered: %v", answered)
			}
		})
	}
	inW.Close()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 {
		t.Fatalf("logged more than the startup line: %s", stderr.String())
	}
}

// TestMCPUnknownBasketRunAudited: run_pipeline on a basket that does not
// exist is audited as the CLI's pipeline run --basket is
// (TestUnknownBasketWritesAudited): mcp.pipeline.run, outcome error, its
// target the pipeline and the basket as given in the detail. Before, only
// the basket's read (mcp.basket.get) was in the log.
func TestMCPUnknownBasketRunAudited(t *testing.T) {
	h := mcpHarness(t)
	h.env["DOCEX_TENANT"] = "acme"
	h.env["DOCEX_USER"] = "agent"
	h.env["DOCEX_ROLES"] = "writer"
	cs, stderr, stop := h.startMCP()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "run_pipeline", Arguments: map[string]any{"pipeline": "up", "basket": "nobasket"}})
	if err != nil || !res.IsError {
		t.Fatalf("run_pipeline on an unknown basket: %v %+v", err, res)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after stdin closed; stderr: %s", code, stderr.String())
	}
	h.env["DOCEX_ROLES"] = "admin"
	type entry struct {
		Operation, Target, Outcome string
		Detail                     map[string]any
	}
	var got []entry
	for _, e := range decode[[]entry](t, h.ok("audit", "list", "--json").stdout) {
		if strings.HasSuffix(e.Operation, ".run") {
			got = append(got, e)
		}
	}
	want := []entry{{"mcp.pipeline.run", "up", "error", map[string]any{"basket": "nobasket"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit entries:\n got %+v\nwant %+v", got, want)
	}
}
