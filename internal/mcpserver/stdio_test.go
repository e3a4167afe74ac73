package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func initLine(version string) string {
	return `{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"` + version + `","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
}

const (
	initialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	notified    = `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`
)

func ping(id any) string {
	data, _ := json.Marshal(id)
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"ping"}`, data)
}

// serveLines serves lines over the stdio transport, as a client that
// writes them all and closes its end, and returns the lines the server
// wrote once the session ended.
func serveLines(t *testing.T, srv *Server, lines ...string) []string {
	t.Helper()
	var out lockedBuffer
	in := strings.NewReader(strings.Join(lines, "\n") + "\n")
	if err := srv.Run(context.Background(), StdioTransport(in, &out)); err != nil {
		t.Fatalf("session: %v", err)
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

// rpcReply is a JSON-RPC response.
type rpcReply struct {
	ID     any             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// summary is "id:ok" or "id:code" for a reply, and "[...]" of those for
// an array of replies: a line in a form tests compare.
func summary(t *testing.T, line string) (string, []string) {
	t.Helper()
	one := func(r rpcReply) string {
		id, _ := json.Marshal(r.ID)
		if r.Error != nil {
			return fmt.Sprintf("%s:%d", id, r.Error.Code)
		}
		return string(id) + ":ok"
	}
	if strings.HasPrefix(line, "[") {
		var rs []rpcReply
		if err := json.Unmarshal([]byte(line), &rs); err != nil {
			t.Fatalf("reply %s: %v", line, err)
		}
		var parts, msgs []string
		for _, r := range rs {
			parts = append(parts, one(r))
			if r.Error != nil {
				msgs = append(msgs, r.Error.Message)
			}
		}
		return "[" + strings.Join(parts, " ") + "]", msgs
	}
	var r rpcReply
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("reply %s: %v", line, err)
	}
	if r.Error != nil {
		return one(r), []string{r.Error.Message}
	}
	return one(r), nil
}

// TestStdioBatches: in a session initialized with protocol version
// 2025-03-26, a JSON-RPC batch is taken (the old code refused every
// batch): the replies to its calls come back as one array in the batch's
// order, notifications get none, its invalid members and calls with an id
// in use get their -32600 error in place, and an empty batch gets one
// -32600 error, not an array.
func TestStdioBatches(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	list := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_baskets","arguments":{}}}`
	cases := []struct {
		name  string
		lines []string
		want  []string // summaries of the replies after initialize's, in any order
		msg   string   // in an error's message
	}{
		{"calls", []string{"[" + ping(2) + "," + list + "]"}, []string{"[2:ok 3:ok]"}, ""},
		{"one call", []string{"[" + ping("a") + "]"}, []string{`["a":ok]`}, ""},
		{"a call and a notification", []string{"[" + notified + "," + ping(2) + "]"}, []string{"[2:ok]"}, ""},
		{"notifications only", []string{"[" + notified + "," + notified + "]", ping(9)}, []string{"9:ok"}, ""},
		{"empty", []string{"[]", ping(9)}, []string{"null:-32600", "9:ok"}, "empty batch"},
		{"not messages", []string{`[1,"x",[]]`}, []string{"[null:-32600 null:-32600 null:-32600]"}, "JSON object"},
		{"nested batch", []string{"[[" + ping(2) + "]]"}, []string{"[null:-32600]"}, "not batches"},
		{"an invalid member among calls", []string{"[" + ping(2) + `,{"jsonrpc":"1.0","id":5,"method":"ping"},` + ping(4) + "]"},
			[]string{"[2:ok 5:-32600 4:ok]"}, "version"},
		{"an id twice", []string{"[" + ping(2) + "," + ping(2) + "]"}, []string{"[2:ok null:-32600]"}, "id 2 is the id of a call not answered yet"},
		{"an unknown method", []string{`[{"jsonrpc":"2.0","id":4,"method":"no/such"},` + ping(5) + "]"}, []string{"[4:-32601 5:ok]"}, "no/such"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := serveLines(t, srv, append([]string{initLine("2025-03-26"), initialized}, c.lines...)...)
			checkReplies(t, lines, append(c.want, `"init":ok`), c.msg)
		})
	}
}

// TestStdioBatchVersions: a batch is taken when initialize negotiated a
// protocol version before 2025-06-18, and refused with one -32600 error
// (id null) naming the version otherwise, or when no version is
// negotiated; the session goes on after a refusal. The batch follows
// initialize at once: it waits for initialize's answer.
func TestStdioBatchVersions(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	batch := "[" + ping(2) + "," + ping(3) + "]"
	cases := []struct {
		name  string
		lines []string
		want  []string
		msg   string
	}{
		{"2024-11-05", []string{initLine("2024-11-05"), batch, ping(9)}, []string{`"init":ok`, "[2:ok 3:ok]", "9:ok"}, ""},
		{"2025-03-26", []string{initLine("2025-03-26"), batch, ping(9)}, []string{`"init":ok`, "[2:ok 3:ok]", "9:ok"}, ""},
		{"2025-06-18", []string{initLine("2025-06-18"), batch, ping(9)}, []string{`"init":ok`, "null:-32600", "9:ok"},
			"JSON-RPC batches are not supported in protocol version 2025-06-18 and later (this session's is 2025-06-18)"},
		{"2025-11-25", []string{initLine("2025-11-25"), batch, ping(9)}, []string{`"init":ok`, "null:-32600", "9:ok"},
			"this session's is 2025-11-25"},
		{"an unknown version", []string{initLine("2099-01-01"), batch, ping(9)}, []string{`"init":ok`, "null:-32600", "9:ok"},
			"this session's is 2025-11-25"},
		{"no initialize", []string{batch, ping(9)}, []string{"null:-32600", "9:ok"}, "no protocol version is negotiated yet"},
		{"initialize refused", []string{`{"jsonrpc":"2.0","id":"init","method":"initialize"}`, batch}, []string{`"init":-32600`, "null:-32600"},
			"no protocol version is negotiated yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkReplies(t, serveLines(t, srv, c.lines...), c.want, c.msg)
		})
	}
}

// gatedWriter holds every write until open is closed.
type gatedWriter struct {
	open chan struct{}
	out  lockedBuffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.out.Write(p)
}

// TestStdioIDInUse: a call whose id is that of a call not answered yet is
// refused with -32600 and id null, and the session still ends at the end
// of input once the calls are answered. Before, the SDK refused it with a
// reply without id, which the transport never counted as the call's: it
// waited for a second reply to that id forever, and the session never
// ended.
func TestStdioIDInUse(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	inR, inW := io.Pipe()
	out := &gatedWriter{open: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background(), StdioTransport(inR, out)) }()
	// The reply to initialize is held, so call 2 cannot be answered before
	// the second call 2 is read: a write returns once the server has read
	// it, and the blank line is read only after the line before it is
	// handled. (A tools/call: the SDK answers ping at once, in its reader.)
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_baskets","arguments":{}}}`
	for _, line := range []string{initLine("2025-06-18"), initialized, list, list, ""} {
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	close(out.open)
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute): // a hang bound
		t.Fatalf("the session did not end at the end of input; written: %s", out.out.String())
	}
	checkReplies(t, strings.Split(strings.TrimSpace(out.out.String()), "\n"), []string{`"init":ok`, "2:ok", "null:-32600"},
		"id 2 is the id of a call not answered yet")
}

// checkReplies fails t unless the summaries of lines (see summary) are
// want, in any order, and, with msg not empty, an error message holds msg.
func checkReplies(t *testing.T, lines, want []string, msg string) {
	t.Helper()
	var got, msgs []string
	for _, line := range lines {
		s, m := summary(t, line)
		got, msgs = append(got, s), append(msgs, m...)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("replies %v, want %v:\n%s", got, want, strings.Join(lines, "\n"))
	}
	if msg != "" && !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, msg) }) {
		t.Errorf("no error message with %q: %q", msg, msgs)
	}
}

// TestStdioErrorCodes: every error reply has a JSON-RPC error code. The
// SDK refuses a call before initialize, and a second initialize, with an
// error of code 0, which JSON-RPC does not have: over stdio they are
// invalid requests (-32600), in a batch too; a resources/read or
// resources/list of a suspended tenant is -32010 (denied), not 0 either.
func TestStdioErrorCodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	call := func(id, method, params string) string {
		return `{"jsonrpc":"2.0","id":"` + id + `","method":"` + method + `","params":` + params + `}`
	}
	again := call("again", "initialize", `{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`)
	cases := []struct {
		name    string
		suspend bool
		lines   []string
		want    []string // summaries of the replies, in any order
		msg     string   // in an error's message
	}{
		{"a call before initialize", false, []string{call("early", "tools/list", "{}"), initLine("2025-11-25"), initialized, ping(9)},
			[]string{`"early":-32600`, `"init":ok`, "9:ok"}, `method "tools/list" is invalid during session initialization`},
		{"a second initialize", false, []string{initLine("2025-11-25"), initialized, again, ping(9)},
			[]string{`"init":ok`, `"again":-32600`, "9:ok"}, `duplicate "initialize" received`},
		{"a second initialize in a batch", false, []string{initLine("2025-03-26"), initialized, "[" + again + "," + ping(9) + "]"},
			[]string{`"init":ok`, `["again":-32600 9:ok]`}, `duplicate "initialize" received`},
		{"initialize with params not an object", false, []string{call("bad", "initialize", "3"), initLine("2025-11-25"), initialized, ping(9)},
			[]string{`"bad":-32602`, `"init":ok`, "9:ok"}, `handling 'initialize': invalid params: unmarshaling "3" into`},
		{"initialize with a field of the wrong type", false, []string{call("bad", "initialize", `{"protocolVersion":7}`), initLine("2025-11-25"), initialized, ping(9)},
			[]string{`"bad":-32602`, `"init":ok`, "9:ok"}, `handling 'initialize': invalid params: unmarshaling`},
		{"initialize with null params", false, []string{call("bad", "initialize", "null"), initLine("2025-11-25"), initialized, ping(9)},
			[]string{`"bad":-32600`, `"init":ok`, "9:ok"}, `handling 'initialize': invalid request: missing required "params"`},
		{"a suspended tenant's resources", true, []string{initLine("2025-11-25"), initialized,
			call("read", "resources/read", `{"uri":"docex://baskets"}`), call("list", "resources/list", "{}")},
			[]string{`"init":ok`, `"read":-32010`, `"list":-32010`}, "tenant_suspended: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.suspend {
				if err := e.eng.Provisioner("ops").Suspend(ctx, "alpha"); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := e.eng.Provisioner("ops").Resume(ctx, "alpha"); err != nil {
						t.Fatal(err)
					}
				}()
			}
			lines := serveLines(t, srv, c.lines...)
			var got, msgs []string
			for _, line := range lines {
				s, m := summary(t, line)
				got, msgs = append(got, s), append(msgs, m...)
			}
			slices.Sort(got)
			if want := slices.Sorted(slices.Values(c.want)); !slices.Equal(got, want) {
				t.Fatalf("replies %v, want %v:\n%s", got, want, strings.Join(lines, "\n"))
			}
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, c.msg) }) {
				t.Errorf("no error message with %q: %q", c.msg, msgs)
			}
		})
	}
}
