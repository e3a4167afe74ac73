package mcpserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxLineBytes is the longest message (one line) the stdio transport
// reads: the SDK's mcp.DefaultMaxLineLength, 16 MiB.
const maxLineBytes = mcp.DefaultMaxLineLength

// StdioTransport returns the transport of one session over a stream of
// newline-delimited JSON-RPC messages, in from the client and out to it
// (stdin and stdout). It is the SDK's mcp.IOTransport with each line
// checked before the SDK reads it: the SDK ends the session on a line it
// cannot decode, while here the client is answered and the session goes
// on. A line that is not JSON gets a JSON-RPC parse error (-32700, id
// null); a JSON value that is no JSON-RPC message, or a batch (a JSON
// array: one message per line), gets an invalid request error (-32600,
// with the line's id when it has a string or integer one, else null).
// Empty lines are skipped. A line longer than 16 MiB is not read whole:
// it reaches the SDK as it is, which ends the session as before (with its
// "maximum line length" error, or the JSON error of the line's start).
// Replies are matched by id: an error reply may precede the reply to an
// earlier call, as replies to concurrent calls may. At the end of in, the
// session ends once every request read has been answered (a client may
// write its requests and close its end: printf ... | docex mcp); closing
// the session (an interrupt) does not wait. Neither in nor out is closed.
func StdioTransport(in io.Reader, out io.Writer) mcp.Transport {
	owed := newOwed()
	w := &lockedWriter{w: out, owed: owed}
	return &mcp.IOTransport{
		Reader: &lineFilter{r: bufio.NewReaderSize(in, 64<<10), replies: &replier{out: w, owed: owed}, owed: owed, max: maxLineBytes},
		Writer: w,
	}
}

// owed counts the replies the client is owed: the requests passed to the
// SDK that it has not answered, and the error replies not yet written.
type owed struct {
	mu      sync.Mutex
	cond    *sync.Cond
	calls   map[any]int // by request id (jsonrpc.ID.Raw: int64 or string)
	errs    int
	stopped bool // the session was closed: nothing is waited for
}

func newOwed() *owed {
	o := &owed{calls: map[any]int{}}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// asked records a request the SDK will answer.
func (o *owed) asked(id jsonrpc.ID) {
	o.mu.Lock()
	o.calls[id.Raw()]++
	o.mu.Unlock()
}

// wrote notes a message written to the client: a response pays what its
// request is owed.
func (o *owed) wrote(p []byte) {
	m, err := jsonrpc.DecodeMessage(bytes.TrimSpace(p))
	r, ok := m.(*jsonrpc.Response)
	if err != nil || !ok || !r.ID.IsValid() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := o.calls[r.ID.Raw()]; n > 1 {
		o.calls[r.ID.Raw()] = n - 1
	} else if n == 1 {
		delete(o.calls, r.ID.Raw())
		o.cond.Broadcast()
	}
}

// errReply counts an error reply queued (+1) or written (-1).
func (o *owed) errReply(d int) {
	o.mu.Lock()
	o.errs += d
	o.mu.Unlock()
	o.cond.Broadcast()
}

// settle waits until nothing is owed, or the session is closed.
func (o *owed) settle() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for !o.stopped && (len(o.calls) > 0 || o.errs > 0) {
		o.cond.Wait()
	}
}

// stop ends every wait: the session is closed.
func (o *owed) stop() {
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
	o.cond.Broadcast()
}

// lockedWriter serialises the SDK's writes and replier's: the SDK writes
// each message with one Write call, so whole lines never interleave. Once
// the session closes it (the SDK closes its transport), nothing more is
// written: a late error reply does not reach out after Run returned.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	owed   *owed
	closed atomic.Bool
}

// errClosed is the error of a write after the session ended.
var errClosed = errors.New("mcp stdio: session closed")

// Write writes p to the stream whole, or returns errClosed after Close.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return 0, errClosed
	}
	n, err := l.w.Write(p)
	if err == nil {
		l.owed.wrote(p)
	}
	return n, err
}

// Close stops later writes without waiting for one under way, which may
// block on a client that does not read; it does not close the stream.
func (l *lockedWriter) Close() error {
	l.closed.Store(true)
	l.owed.stop()
	return nil
}

// lineFilter passes the SDK the lines of r that are JSON-RPC messages,
// and answers the others through replies. The SDK reads it from one
// goroutine.
type lineFilter struct {
	r       *bufio.Reader
	replies *replier
	owed    *owed
	max     int
	pending []byte // what Read returns next
	raw     bool   // a line was too long: pass everything through
}

// Read returns the next valid lines. It returns r's error (io.EOF at the
// end) once the lines before it are read.
func (f *lineFilter) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.raw {
			return f.r.Read(p)
		}
		line, long, err := f.readLine()
		if long {
			// The SDK refuses it with the error of today: pass it on.
			f.pending, f.raw = line, true
			break
		}
		if msg := bytes.TrimSpace(line); len(msg) > 0 {
			reply, m := badLineReply(msg)
			switch {
			case reply != nil:
				f.replies.send(reply)
			default:
				if r, ok := m.(*jsonrpc.Request); ok && r.IsCall() {
					f.owed.asked(r.ID)
				}
				f.pending = append(msg, '\n')
			}
		}
		if err != nil && len(f.pending) == 0 {
			// The end of the client's input: its replies first.
			f.owed.settle()
			return 0, err
		}
		if err != nil {
			// Deliver the last line first; r returns err again next time.
			break
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// replier writes lineFilter's error replies in their order, from a
// goroutine of its own: a client that writes on before it reads its
// replies does not stop the server reading (as the SDK's replies do not).
// A failed write is not reported here: the SDK's next write meets it.
// At most maxQueuedReplies wait: past that, send waits for the client to
// read, so that a client writing bad lines without reading cannot grow
// the server's memory.
type replier struct {
	out     io.Writer
	owed    *owed
	slots   chan struct{} // one per reply queued or being written
	mu      sync.Mutex
	queue   [][]byte
	running bool // a goroutine is draining queue
}

// maxQueuedReplies bounds the error replies waiting to be written.
const maxQueuedReplies = 1024

func (r *replier) send(reply []byte) {
	r.mu.Lock()
	if r.slots == nil {
		r.slots = make(chan struct{}, maxQueuedReplies)
	}
	slots := r.slots
	r.mu.Unlock()
	slots <- struct{}{}
	r.owed.errReply(+1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, reply)
	if !r.running {
		r.running = true
		go r.drain()
	}
}

func (r *replier) drain() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		reply := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		_, _ = r.out.Write(reply)
		<-r.slots
		r.owed.errReply(-1)
	}
}

// Close ends the wait for owed replies (the session is closed); it does
// not close the stream.
func (f *lineFilter) Close() error {
	f.owed.stop()
	return nil
}

// readLine returns the next line with its newline, or, when it is longer
// than f.max, its first f.max+1 bytes and long. err is r's error at the
// end of the stream (io.EOF), with the unterminated last line if any.
func (f *lineFilter) readLine() (line []byte, long bool, err error) {
	for {
		chunk, err := f.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(bytes.TrimRight(line, "\r\n")) > f.max {
			return line, true, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, false, err
		}
	}
}

// errorReply is a JSON-RPC error response. Unlike the SDK's encoding it
// keeps "id": null, which the JSON-RPC specification requires when the
// request's id cannot be known.
type errorReply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   jsonrpc.Error   `json:"error"`
}

// badLineReply returns the error reply (with its newline) to msg, one
// non-empty line without surrounding space, or, when msg is a JSON-RPC
// request, notification or response the SDK takes, nil and the message.
func badLineReply(msg []byte) ([]byte, jsonrpc.Message) {
	if !json.Valid(msg) {
		err := json.Unmarshal(msg, new(json.RawMessage))
		return encodeReply(nil, jsonrpc.CodeParseError,
			fmt.Sprintf("Parse error: the line is not JSON (%v); send one JSON-RPC message per line", err)), nil
	}
	reason := ""
	var m jsonrpc.Message
	switch msg[0] {
	case '[':
		reason = "JSON-RPC batches are not supported: send one message per line"
	case '{':
		var err error
		m, err = jsonrpc.DecodeMessage(msg)
		if err != nil {
			reason = err.Error()
		} else if r, ok := m.(*jsonrpc.Response); ok && r.Result == nil && r.Error == nil {
			reason = "no method (a request) and no result or error (a response)"
		}
	default:
		reason = "a JSON-RPC message is a JSON object"
	}
	if reason == "" {
		return nil, m
	}
	return encodeReply(usableID(msg), jsonrpc.CodeInvalidRequest, "Invalid request: "+reason), nil
}

// integer is a JSON integer.
var integer = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// usableID returns the id of msg, a valid JSON value, when it is an
// object with a string or integer id, else nil.
func usableID(msg []byte) json.RawMessage {
	var obj struct {
		ID json.RawMessage `json:"id"`
	}
	if msg[0] != '{' || json.Unmarshal(msg, &obj) != nil {
		return nil
	}
	if len(obj.ID) > 0 && (obj.ID[0] == '"' || integer.Match(obj.ID)) {
		return obj.ID
	}
	return nil
}

func encodeReply(id json.RawMessage, code int64, message string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	data, _ := json.Marshal(errorReply{JSONRPC: "2.0", ID: id, Error: jsonrpc.Error{Code: code, Message: message}})
	return append(data, '\n')
}
