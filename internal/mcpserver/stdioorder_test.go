package mcpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// toolCall is a tools/call line of id id.
func toolCall(id any, tool string, args map[string]any) string {
	data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	return string(data)
}

// cancelled is a notifications/cancelled line for the call of id id.
func cancelled(id any) string {
	data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled",
		"params": map[string]any{"requestId": id, "reason": "test"}})
	return string(data)
}

// toolReply is a reply to a tools/call: its id, the JSON-RPC error or the
// tool's error, and the tool's structured result.
type toolReply struct {
	ID     any `json:"id"`
	Result struct {
		IsError           bool `json:"isError"`
		Content           []struct{ Text string }
		StructuredContent json.RawMessage `json:"structuredContent"`
	} `json:"result"`
	Error *struct {
		Code    int
		Message string
	} `json:"error"`
}

// failure is what failed of r, or "".
func (r toolReply) failure() string {
	switch {
	case r.Error != nil:
		return fmt.Sprintf("JSON-RPC error %d: %s", r.Error.Code, r.Error.Message)
	case r.Result.IsError:
		var texts []string
		for _, c := range r.Result.Content {
			texts = append(texts, c.Text)
		}
		return "tool error: " + strings.Join(texts, " ")
	}
	return ""
}

func parseReply(t *testing.T, line string) toolReply {
	t.Helper()
	var r toolReply
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("reply %s: %v", line, err)
	}
	return r
}

// TestStdioCallsInOrder: calls written together, as `printf ... | docex
// mcp` writes them, take effect in the order written, each after the one
// before it is answered, and their replies come in that order: adding a
// document to a basket created by the call before it, and listing it
// after, succeed. A batch is one step of that order: it waits for the
// calls before it, and the calls after it wait for all of its calls.
// Before, the SDK ran the calls concurrently: add_document and
// list_documents failed with not_found (5 runs out of 5), and replies
// came in any order.
func TestStdioCallsInOrder(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	create := func(b string) string { return toolCall(2, "create_basket", map[string]any{"name": b}) }
	add := func(b string) string {
		return toolCall(3, "add_document", map[string]any{"basket": b, "text": "hello", "name": "h.txt"})
	}
	list := func(b string) string { return toolCall(4, "list_documents", map[string]any{"basket": b}) }
	cases := []struct {
		name  string
		lines func(b string) []string
	}{
		{"one call a line", func(b string) []string {
			return []string{initLine("2025-11-25"), initialized, create(b), add(b), list(b)}
		}},
		{"a batch between calls", func(b string) []string {
			return []string{initLine("2025-03-26"), initialized, create(b), "[" + add(b) + "," + ping(5) + "]", list(b)}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := fmt.Sprintf("ordered%d", i)
			lines := serveLines(t, srv, c.lines(b)...)
			var ids []string
			for _, line := range lines {
				if strings.HasPrefix(line, "[") {
					var rs []toolReply
					if err := json.Unmarshal([]byte(line), &rs); err != nil {
						t.Fatalf("reply %s: %v", line, err)
					}
					for _, r := range rs {
						if f := r.failure(); f != "" {
							t.Errorf("reply to %v: %s", r.ID, f)
						}
					}
					s, _ := summary(t, line)
					ids = append(ids, s)
					continue
				}
				r := parseReply(t, line)
				id, _ := json.Marshal(r.ID)
				ids = append(ids, string(id))
				if f := r.failure(); f != "" {
					t.Errorf("reply to %s: %s", id, f)
				}
			}
			want := `"init" 2 3 4`
			if strings.Contains(c.name, "batch") {
				want = `"init" 2 [3:ok 5:ok] 4`
			}
			if got := strings.Join(ids, " "); got != want {
				t.Fatalf("replies to %s, want %s:\n%s", got, want, strings.Join(lines, "\n"))
			}
			var docs struct {
				Documents []struct{ Name string }
			}
			if err := json.Unmarshal(parseReply(t, lines[len(lines)-1]).Result.StructuredContent, &docs); err != nil {
				t.Fatal(err)
			}
			if len(docs.Documents) != 1 || docs.Documents[0].Name != "h.txt" {
				t.Fatalf("list_documents: %+v, want h.txt", docs.Documents)
			}
		})
	}
}

// stdioClient is a client of a session over the stdio transport through
// pipes: it writes lines and reads replies one at a time.
type stdioClient struct {
	t       *testing.T
	in      *io.PipeWriter
	replies chan string
	done    chan error
}

func newStdioClient(t *testing.T, srv *Server) *stdioClient {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &stdioClient{t: t, in: inW, replies: make(chan string, 16), done: make(chan error, 1)}
	go func() {
		err := srv.Run(context.Background(), StdioTransport(inR, outW))
		outW.Close()
		c.done <- err
	}()
	go func() {
		defer close(c.replies)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.replies <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	return c
}

func (c *stdioClient) write(lines ...string) {
	c.t.Helper()
	for _, line := range lines {
		if _, err := io.WriteString(c.in, line+"\n"); err != nil {
			c.t.Fatal(err)
		}
	}
}

// next returns the next reply, or "" once the session wrote its last.
func (c *stdioClient) next() string {
	c.t.Helper()
	select {
	case line := <-c.replies:
		return line
	case <-time.After(2 * time.Minute): // a hang bound
		c.t.Fatal("no reply")
	}
	return ""
}

// runningPipeline starts a session of protocol version over stdio whose
// call 2, a run_pipeline, waits for a job no worker runs; it returns once
// call 3, a ping written after it, is answered: run_pipeline was passed to
// the SDK before the ping, and the ping's reply comes while it waits.
func runningPipeline(t *testing.T, version string) *stdioClient {
	t.Helper()
	c, _ := runningPipelineEnv(t, version)
	return c
}

// runningPipelineEnv is runningPipeline, with the session's env.
func runningPipelineEnv(t *testing.T, version string) (*stdioClient, *env) {
	t.Helper()
	e := newEnv(t)
	if _, err := e.admin.CreatePipeline(context.Background(), []byte(shout)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := newStdioClient(t, srv)
	c.write(initLine(version), initialized)
	if s, _ := summary(t, c.next()); s != `"init":ok` {
		t.Fatalf("initialize: %s", s)
	}
	c.write(toolCall(2, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60}), ping(3))
	if s, _ := summary(t, c.next()); s != "3:ok" {
		t.Fatalf("the reply after run_pipeline and ping is %s, want the ping's", s)
	}
	return c, e
}

// TestStdioCancelAndPing: while a call runs (run_pipeline waiting up to
// 60 s for a job no worker runs), a ping is answered at once, before it;
// calls written after it wait; a notifications/cancelled for a waiting
// call drops it (it gets no reply), one for the running call reaches it
// although a waiting call was written before the cancel: it ends
// cancelled, and then the waiting call runs. The session ends at the end
// of input once the calls are answered.
func TestStdioCancelAndPing(t *testing.T) {
	c := runningPipeline(t, "2025-11-25")
	c.write(toolCall(4, "list_baskets", map[string]any{}),
		toolCall(5, "list_baskets", map[string]any{}), cancelled(5),
		cancelled(2))
	c.in.Close()
	var got []string
	for line := c.next(); line != ""; line = c.next() {
		r := parseReply(t, line)
		id, _ := json.Marshal(r.ID)
		got = append(got, string(id))
		switch f := r.failure(); {
		case r.ID == float64(2) && (!strings.HasSuffix(f, "The call was cancelled.") || !strings.Contains(f, "interrupted: ")):
			// interrupted, the code the CLI gives a cancelled wait: it was
			// internal ("internal: read tenant registry: context canceled").
			t.Errorf("run_pipeline did not end cancelled (interrupted: ... The call was cancelled.): %s", line)
		case r.ID != float64(2) && f != "":
			t.Errorf("reply to %s: %s", id, f)
		}
	}
	if err := <-c.done; err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "2 4" {
		t.Fatalf("replies %s after the ping's, want 2 4 (5 was cancelled before it ran)", s)
	}
}

// TestStdioCancelInBatch: a batch written while a call runs waits for it,
// and a notifications/cancelled for a call of the batch, which has not
// started, is ignored: the call runs with its batch once the running call
// is answered (cancelled here).
func TestStdioCancelInBatch(t *testing.T) {
	c := runningPipeline(t, "2025-03-26")
	c.write("["+toolCall(6, "list_baskets", map[string]any{})+","+ping(7)+"]", cancelled(6), cancelled(2))
	c.in.Close()
	var got []string
	for line := c.next(); line != ""; line = c.next() {
		s, msgs := summary(t, line)
		got = append(got, s)
		if s == "2:ok" && !strings.Contains(line, "The call was cancelled.") {
			t.Errorf("run_pipeline did not end cancelled: %s", line)
		}
		if len(msgs) > 0 {
			t.Errorf("errors: %q", msgs)
		}
	}
	if err := <-c.done; err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "2:ok [6:ok 7:ok]" {
		t.Fatalf("replies %s after the ping's, want 2:ok [6:ok 7:ok]", s)
	}
}

// callFlood is a client writing initialize, a run_pipeline call that
// waits 1 s, n logging/setLevel calls, which wait behind it, and a ping,
// one line a Read. When the ping is asked for, the transport has read
// every call before it: with at most maxQueuedMessages waiting, it can
// read them all only once run_pipeline is answered and the first calls
// after it have left the queue.
type callFlood struct {
	t     *testing.T
	lines []string
	next  int
	f     *lineFilter
}

func (s *callFlood) Read(p []byte) (int, error) {
	if s.next == len(s.lines) {
		return 0, io.EOF
	}
	if s.next == len(s.lines)-1 {
		s.f.owed.mu.Lock()
		waiting, running := len(s.f.owed.queue), s.f.owed.calls["run"] != nil
		s.f.owed.mu.Unlock()
		if running {
			s.t.Errorf("every call read while run_pipeline runs: %d messages waiting, more than %d", waiting, maxQueuedMessages)
		}
	}
	s.next++
	return copy(p, s.lines[s.next-1]+"\n"), nil
}

// TestStdioReadAheadBound: while a call runs, the transport reads at most
// maxQueuedMessages messages ahead of it, then waits for the queue to
// shrink (a client writing calls without end does not grow the server's
// memory without bound); every call is answered, in order, in the end.
func TestStdioReadAheadBound(t *testing.T) {
	e := newEnv(t)
	if _, err := e.admin.CreatePipeline(context.Background(), []byte(shout)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const n = maxQueuedMessages + 1
	src := &callFlood{t: t, lines: []string{initLine("2025-11-25"), initialized,
		toolCall("run", "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 1})}}
	for k := 1; k <= n; k++ {
		src.lines = append(src.lines, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"logging/setLevel","params":{"level":"info"}}`, k))
	}
	src.lines = append(src.lines, ping("last"))
	var out lockedBuffer
	tr := StdioTransport(src, &out)
	src.f = tr.(*mcp.IOTransport).Reader.(*lineFilter)
	if err := srv.Run(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	// The ping is answered at once, ahead of the calls waiting.
	var got []string
	pinged := false
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		s, msgs := summary(t, line)
		if len(msgs) > 0 {
			t.Fatalf("%s: %q", s, msgs)
		}
		if s == `"last":ok` {
			pinged = true
			continue
		}
		got = append(got, s)
	}
	want := []string{`"init":ok`, `"run":ok`}
	for k := 1; k <= n; k++ {
		want = append(want, fmt.Sprintf("%d:ok", k))
	}
	if !pinged || !slices.Equal(got, want) {
		t.Fatalf("ping answered: %v; %d replies %v..., want %d in order", pinged, len(got), got[:min(5, len(got))], len(want))
	}
}
