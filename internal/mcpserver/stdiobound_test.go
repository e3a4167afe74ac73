package mcpserver

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// lineSource is a client writing n invalid lines, each answered with an
// error reply of id k (1 to n): each Read returns one line, so the
// transport reads line k only when it has handled the lines before it.
// When line k is asked for, the k-1 replies sent so far are written
// (out.written) or waiting: no more than maxQueuedReplies may wait. When
// it serves line maxQueuedReplies+1 it checks that every slot is taken
// and only then lets out write: a transport without the bound would ask
// for the next line while out has written nothing, and fail the check.
type lineSource struct {
	t       *testing.T
	n, next int
	f       *lineFilter
	out     *countingGate
}

func (s *lineSource) Read(p []byte) (int, error) {
	if s.next == s.n {
		s.out.release()
		return 0, io.EOF
	}
	s.next++
	waiting := s.next - 1 - int(s.out.written.Load())
	if waiting > maxQueuedReplies {
		s.t.Errorf("line %d read with %d error replies waiting to be written, more than %d", s.next, waiting, maxQueuedReplies)
		s.out.release()
	}
	if s.next == maxQueuedReplies+1 {
		s.f.replies.mu.Lock()
		slots, queued := s.f.replies.slots, len(s.f.replies.queue)
		s.f.replies.mu.Unlock()
		// Every slot is taken: by the replies queued and the one being
		// written (held by out), if the writer took it from the queue yet.
		if len(slots) != maxQueuedReplies || cap(slots) != maxQueuedReplies || queued > maxQueuedReplies {
			s.t.Errorf("at the bound: %d of %d slots taken, %d replies queued; want %d of %d, at most %d queued",
				len(slots), cap(slots), queued, maxQueuedReplies, maxQueuedReplies, maxQueuedReplies)
		}
		s.out.release()
	}
	return copy(p, fmt.Sprintf(`{"jsonrpc":"1.0","id":%d,"method":"ping"}`+"\n", s.next)), nil
}

// countingGate holds every write until release, and counts the writes
// done.
type countingGate struct {
	open    chan struct{}
	once    sync.Once
	written atomic.Int64
	out     lockedBuffer
}

func (g *countingGate) release() { g.once.Do(func() { close(g.open) }) }

func (g *countingGate) Write(p []byte) (int, error) {
	<-g.open
	n, err := g.out.Write(p)
	g.written.Add(1)
	return n, err
}

// TestStdioErrorReplyBound floods the transport with invalid lines while
// the client reads none of its replies: at most maxQueuedReplies (1024)
// error replies wait to be written, then the transport stops reading
// until the client reads; none is dropped: once the client reads, every
// line gets its reply, in order, and the end of input is reached. (Before,
// the bound was not covered by any test.)
func TestStdioErrorReplyBound(t *testing.T) {
	const n = maxQueuedReplies + 100
	out := &countingGate{open: make(chan struct{})}
	src := &lineSource{t: t, n: n, out: out}
	tr, ok := StdioTransport(src, out).(*mcp.IOTransport)
	if !ok {
		t.Fatalf("StdioTransport is a %T", tr)
	}
	src.f = tr.Reader.(*lineFilter)
	// No line is passed to the SDK: Read returns at the end of input, once
	// every reply is written.
	if k, err := src.f.Read(make([]byte, 512)); k != 0 || err != io.EOF {
		t.Fatalf("Read: %d, %v; want 0, EOF", k, err)
	}
	lines := strings.Split(strings.TrimSuffix(out.out.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d replies, want %d", len(lines), n)
	}
	for i, line := range lines {
		var r rpcReply
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Error == nil || r.Error.Code != -32600 || r.ID != float64(i+1) {
			t.Fatalf("reply %d: %s (%v), want -32600 with id %d", i+1, line, err, i+1)
		}
	}
}
