package mcpserver

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStdioIDs: a call is answered with its own id, or refused with
// -32600 and id null when the SDK would answer it with another: an id
// that is no string or integer from -(2^53-1) to 2^53-1 written without
// fraction or exponent. Before, 9007199254740993 was answered as
// 9007199254740992, 2^70 and 18446744073709551617 as
// -9223372036854775808 (and the second taken for a call in use), 1.5 as
// 1, 1e3 as 1000. A call with id null is refused too: before, the SDK
// took it for a notification, and it got no reply at all. A notification
// (no id member) still gets none. Only the message's own id is looked at
// (not one in its params), by its name unescaped.
func TestStdioIDs(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	raw := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"method":"ping"}` }
	cases := []struct {
		name  string
		lines []string
		want  []string // summaries of the replies after initialize's, in any order
		msg   string   // in an error's message
	}{
		{"the largest integer", []string{raw("9007199254740991")}, []string{"9007199254740991:ok"}, ""},
		{"the smallest integer", []string{raw("-9007199254740991")}, []string{"-9007199254740991:ok"}, ""},
		{"zero", []string{raw("0")}, []string{"0:ok"}, ""},
		{"strings", []string{raw(`""`), raw(`"9007199254740993"`), raw(`"1.5"`)},
			[]string{`"":ok`, `"9007199254740993":ok`, `"1.5":ok`}, ""},
		{"2^53", []string{raw("9007199254740992")}, []string{"null:-32600"}, "an id is a string or an integer from -9007199254740991 to 9007199254740991"},
		{"2^53+1", []string{raw("9007199254740993")}, []string{"null:-32600"}, "id 9007199254740993: "},
		{"past -(2^53-1)", []string{raw("-9007199254740992")}, []string{"null:-32600"}, "id -9007199254740992: "},
		{"past int64", []string{raw("1180591620717411303424"), raw("18446744073709551617")},
			[]string{"null:-32600", "null:-32600"}, "id 1180591620717411303424: "},
		{"1e300", []string{raw("1e300")}, []string{"null:-32600"}, "id 1e300: "},
		{"a fraction", []string{raw("1.5")}, []string{"null:-32600"}, "id 1.5: "},
		{"an integer with a fraction", []string{raw("3.0")}, []string{"null:-32600"}, "id 3.0: "},
		{"an exponent", []string{raw("1e3")}, []string{"null:-32600"}, "id 1e3: "},
		{"-0", []string{raw("-0")}, []string{"null:-32600"}, "id -0: "},
		{"true", []string{raw("true")}, []string{"null:-32600"}, "id true: "},
		{"an object", []string{raw(`{"a":1}`)}, []string{"null:-32600"}, `id {"a":1}: `},
		{"a long one", []string{raw("[" + strings.Repeat("1,", 50) + "1]")}, []string{"null:-32600"}, "id [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1...: "},
		{"null", []string{raw("null"), toolCall(nil, "list_baskets", map[string]any{})}, []string{"null:-32600", "null:-32600"},
			"id null: a request's id is a string or an integer (a notification has no id member)"},
		{"a notification", []string{notified, ping(9)}, []string{"9:ok"}, ""},
		{"an escaped name", []string{`{"jsonrpc":"2.0","\u0069d":1.5,"method":"ping"}`}, []string{"null:-32600"}, "id 1.5: "},
		{"a second id", []string{`{"jsonrpc":"2.0","id":1,"method":"ping","id":1.5}`}, []string{"null:-32600"}, "id 1.5: "},
		{"an id in params", []string{`{"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":{"id":1.5},"id":null}}`}, []string{"4:ok"}, ""},
		{"ID", []string{`{"jsonrpc":"2.0","ID":1.5,"id":5,"method":"ping"}`}, []string{"5:ok"}, ""},
		{"in a batch", []string{"[" + raw("1.5") + "," + raw("null") + "," + raw("9007199254740993") + "," + ping(2) + "]"},
			[]string{"[null:-32600 null:-32600 null:-32600 2:ok]"}, "id null: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := serveLines(t, srv, append([]string{initLine("2025-03-26"), initialized}, c.lines...)...)
			checkReplies(t, lines, append(c.want, `"init":ok`), c.msg)
		})
	}
}

// TestStdioCancelInexactID: a notifications/cancelled whose requestId is
// no id a call may have is ignored: the call it rounds to (4) runs.
// Before, the requestId was read as a float64 made an int64 (4.5 and 4e0
// as 4): call 4, waiting behind a running call, was dropped without a
// reply.
func TestStdioCancelInexactID(t *testing.T) {
	for _, id := range []string{"4.5", "4e0", "4.0"} {
		t.Run(id, func(t *testing.T) {
			c := runningPipeline(t, "2025-11-25")
			c.write(toolCall(4, "list_baskets", map[string]any{}),
				`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`+id+`,"reason":"test"}}`,
				cancelled(2))
			c.in.Close()
			var got []string
			for line := c.next(); line != ""; line = c.next() {
				id, _ := json.Marshal(parseReply(t, line).ID)
				got = append(got, string(id))
			}
			if err := <-c.done; err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != "2 4" {
				t.Fatalf("replies %s after the ping's, want 2 4 (the cancel names no call)", s)
			}
		})
	}
}

// TestStdioBatchLimit: a batch of more than maxBatchMessages (1,024)
// messages is refused whole, with one -32600 error (id null) naming the
// limit: none of its calls runs (create_basket of "over" did not); a
// batch of maxBatchMessages is taken. Before, a batch of any size was
// taken, its calls all run at once and their replies held until the last
// (40,000 list_documents calls in one line: 1.26 GB).
func TestStdioBatchLimit(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	batch := func(n int, basket string) string {
		var members []string
		for k := 1; k < n; k++ {
			members = append(members, ping(k))
		}
		members = append(members, toolCall("create", "create_basket", map[string]any{"name": basket}))
		return "[" + strings.Join(members, ",") + "]"
	}
	list := toolCall("list", "list_baskets", map[string]any{})
	cases := []struct {
		name, basket string
		n            int // messages of the batch
		replies      int // members of the batch's reply array; 0: one error
	}{
		{"over the limit", "over", maxBatchMessages + 1, 0},
		{"far over the limit", "far", 40 * maxBatchMessages, 0},
		{"at the limit", "atlimit", maxBatchMessages, maxBatchMessages},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := serveLines(t, srv, initLine("2025-03-26"), initialized, batch(c.n, c.basket), list)
			var listed string
			for _, line := range lines {
				switch s, msgs := summary(t, line); {
				case s == `"init":ok`:
				case s == `"list":ok`:
					listed = line
				case c.replies == 0:
					if s != "null:-32600" || !strings.Contains(msgs[0], "a batch of more than 1024 messages (none of it is handled)") {
						t.Errorf("the batch's reply: %s %q, want one -32600 error (id null) naming the limit", s, msgs)
					}
				default:
					var rs []rpcReply
					if err := json.Unmarshal([]byte(line), &rs); err != nil || len(rs) != c.replies || len(msgs) > 0 {
						t.Errorf("the batch's reply: %d replies (%v), errors %q; want %d, none an error", len(rs), err, msgs, c.replies)
					}
				}
			}
			if got, want := strings.Contains(listed, `\"name\":\"`+c.basket+`\"`), c.replies > 0; got != want {
				t.Fatalf("basket %s created: %v, want %v; %d replies; list_baskets: %.300s", c.basket, got, want, len(lines), listed)
			}
		})
	}
}

// batchFlood is a client writing initialize and then batches of
// logging/setLevel calls, each of maxBatchMessages, one line a Read; out
// holds the server's replies (the reply to initialize first) until the
// third batch is asked for. When a line is asked for it checks the calls read and not
// answered: at most maxQueuedMessages waiting and a batch running.
type batchFlood struct {
	t     *testing.T
	lines []string
	next  int
	f     *lineFilter
	out   *gatedWriter
	peak  int
	rest  string // of the line read last
}

func (s *batchFlood) Read(p []byte) (int, error) {
	if len(s.rest) > 0 { // the rest of a line longer than p
		n := copy(p, s.rest)
		s.rest = s.rest[n:]
		return n, nil
	}
	s.f.owed.mu.Lock()
	held := len(s.f.owed.calls)
	s.f.owed.mu.Unlock()
	s.peak = max(s.peak, held)
	if held > maxQueuedMessages+maxBatchMessages {
		s.t.Errorf("line %d asked for with %d calls read and not answered, more than %d waiting and a batch of %d running",
			s.next+1, held, maxQueuedMessages, maxBatchMessages)
	}
	if s.next == 4 { // the third batch: the first is passed, the second waits
		close(s.out.open)
	}
	if s.next == len(s.lines) {
		return 0, io.EOF
	}
	s.next++
	s.rest = s.lines[s.next-1] + "\n"
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// TestStdioBatchReadAhead: each message of a batch counts against the
// read-ahead bound (maxQueuedMessages), so that the calls read and not
// answered stay at most maxQueuedMessages waiting plus a batch running,
// however many batches a client writes; every call is answered, in the
// end, in order. Before, the bound counted a batch as one message: while
// the first batch ran, the transport read every batch after it.
func TestStdioBatchReadAhead(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const batches = 5
	src := &batchFlood{t: t, lines: []string{initLine("2025-03-26"), initialized}}
	for b := range batches {
		var members []string
		for k := range maxBatchMessages {
			members = append(members, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"logging/setLevel","params":{"level":"info"}}`, b*maxBatchMessages+k))
		}
		src.lines = append(src.lines, "["+strings.Join(members, ",")+"]")
	}
	src.out = &gatedWriter{open: make(chan struct{})}
	tr := StdioTransport(src, src.out)
	src.f = tr.(*mcp.IOTransport).Reader.(*lineFilter)
	if err := srv.Run(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(src.out.out.String(), "\n"), "\n")
	if len(lines) != batches+1 {
		t.Fatalf("%d replies, want %d (initialize's and one array a batch): %.600s", len(lines), batches+1, src.out.out.String())
	}
	for b, line := range lines[1:] {
		var rs []rpcReply
		if err := json.Unmarshal([]byte(line), &rs); err != nil || len(rs) != maxBatchMessages {
			t.Fatalf("reply %d: %d replies (%v), want %d", b+2, len(rs), err, maxBatchMessages)
		}
		for k, r := range rs {
			if r.Error != nil || r.ID != float64(b*maxBatchMessages+k) {
				t.Fatalf("reply %d, member %d: id %v, error %v; want id %d, no error", b+2, k, r.ID, r.Error, b*maxBatchMessages+k)
			}
		}
	}
	t.Logf("at most %d calls read and not answered", src.peak)
}
