package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestStdioBatchReplyBounded: the line of a batch's replies is bounded
// (maxBatchReplyBytes): once the replies held would pass it, a call's
// reply is replaced with a short -32000 error saying so (the call was
// handled); every call gets its reply, the first ones answered their
// results. Before, a batch of 12 list_documents of a 1 MiB listing was
// one line of 24.7 MB.
func TestStdioBatchReplyBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.admin.CreateBasket(ctx, "fat")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 18 {
		if _, err := e.admin.AddDocument(ctx, b.ID, engine.NewDocument{Name: fmt.Sprintf("d%02d.txt", i), Content: strings.NewReader(fmt.Sprint("doc ", i)),
			Metadata: map[string]docex.Value{"big": docex.String(strings.Repeat("v", 60000))}}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const calls = 12
	var members []string
	for k := range calls {
		members = append(members, toolCall(k, "list_documents", map[string]any{"basket": b.ID, "limit": 100}))
	}
	members = append(members, ping("p"))
	lines := serveLines(t, srv, initLine("2025-03-26"), initialized, "["+strings.Join(members, ",")+"]")
	var line string
	for _, l := range lines {
		if strings.HasPrefix(l, "[") {
			line = l
		}
	}
	var rs []rpcReply
	if err := json.Unmarshal([]byte(line), &rs); err != nil || len(rs) != calls+1 {
		t.Fatalf("the batch's reply: %d replies (%v), want %d", len(rs), err, calls+1)
	}
	ok, cut := 0, 0
	for i, r := range rs {
		switch {
		case r.Error == nil:
			ok++
		case r.Error.Code == codeReplyTooLarge && strings.Contains(r.Error.Message, "Reply too large: this call was handled, but its reply (") &&
			strings.Contains(r.Error.Message, fmt.Sprintf("past %d bytes", maxBatchReplyBytes)):
			cut++
		default:
			t.Fatalf("reply %d: error %d %s", i, r.Error.Code, r.Error.Message)
		}
		if want := fmt.Sprint(i); i == calls && r.ID != "p" || i < calls && fmt.Sprint(r.ID) != want {
			t.Fatalf("reply %d has id %v", i, r.ID)
		}
	}
	t.Logf("%d replies kept, %d cut, a line of %d bytes", ok, cut, len(line))
	// The errors count past the bound: each under 512 bytes.
	if ok < 2 || cut == 0 || len(line)+1 > maxBatchReplyBytes+cut*512 {
		t.Fatalf("%d replies kept, %d cut, a line of %d bytes: want some of each, at most %d bytes and the errors", ok, cut, len(line)+1, maxBatchReplyBytes)
	}
}

// endlessLine is a client writing initialize, then one line of n bytes
// of x (never all in memory here), then nothing more.
type endlessLine struct {
	head []byte
	n    int
}

func (r *endlessLine) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		k := copy(p, r.head)
		r.head = r.head[k:]
		return k, nil
	}
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// TestStdioLongLineNotBuffered: a line longer than maxLineBytes is not
// read whole: the transport reads at most maxLineBytes of it and a chunk
// (and the SDK none), then ends the session saying why. A line of 256
// MiB allocates about twice the limit (its buffer grown by doubling): 51
// MB (2026-12-07), not the line; before, with the buffer grown by
// append (a quarter at a time), 100 MB.
func TestStdioLongLineNotBuffered(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations under the race detector are not the program's")
	}
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	in := &endlessLine{head: []byte(initLine("2025-06-18") + "\n" + `{"jsonrpc":"2.0","id":2,"method":"ping","params":{"_meta":{"x":"`), n: 256 << 20}
	var out lockedBuffer
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = srv.Run(context.Background(), StdioTransport(in, &out))
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("exceeds the maximum line length of %d bytes", maxLineBytes)) {
		t.Fatalf("session: %v, want the maximum line length error", err)
	}
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("a line of 256 MiB: %d bytes allocated, %d read", n, 256<<20-in.n)
	if n > 80<<20 {
		t.Fatalf("a line of 256 MiB allocated %d bytes, more than 80 MiB", n)
	}
}
