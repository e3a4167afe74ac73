package mcpserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
// null); a JSON value that is no JSON-RPC message gets an invalid request
// error (-32600, with the line's id when it has a string or integer one,
// else null), and so does a call whose id is that of a call not yet
// answered (id null: the reply must not be taken for the first call's).
// So does a message whose id the SDK would not answer with exactly (see
// exactID: a fraction, an integer past 2^53-1) or that is null (the SDK
// would take it for a notification and answer nothing), with id null. A
// batch (a JSON array) of at most maxBatchMessages messages is taken
// apart here, its messages passed on one by one and its replies sent back
// as one array (see batchLine), when the session's protocol version
// allows batches; else it gets one -32600 error. That array's line is
// bounded (maxBatchReplyBytes): a reply past it is replaced with a -32000
// error (tooLargeReply). Empty lines are skipped. A line longer than 16 MiB is not read
// whole: the transport's read fails with a "maximum line length" error,
// which ends the session (whatever the line holds: JSON or not).
//
// Calls take effect in the order they were written: a goroutine reads in
// ahead, and a call (other than ping) is passed to the SDK, which would
// run it concurrently with the calls before it, only once every call
// passed before it is answered, so that a call may use what the one
// before it did (printf ... | docex mcp). ping, notifications/cancelled
// and responses to the server's own requests are passed at once, ahead of
// calls waiting; a notifications/cancelled for a call still waiting drops
// it (it gets no reply, as MCP has it), one for the call running reaches
// it. Other notifications keep their place among the calls (passed once
// the calls before them are passed). A batch is one step of that order:
// its calls run concurrently, once the calls before it are answered, and
// the calls after it wait for all of them (a batch of pings and
// notifications only waits for its place). A notifications/cancelled of
// a batch naming a call of another line is taken out of the batch and
// handled as one alone on its line read just before it (see batchLine). At most maxQueuedMessages
// messages (a batch's each counted; maxQueuedBytes) wait: past that the
// transport reads no more until one is passed.
//
// Replies are matched by id: an error reply of the transport's own (a
// line that is not a message, an id in use) is sent when the line is read
// and may precede the reply to an earlier call. At the end of in, the
// session ends once every call read is passed and answered (a client may
// write its requests and close its end); closing the session (an
// interrupt) does not wait. Neither in nor out is closed.
func StdioTransport(in io.Reader, out io.Writer) mcp.Transport {
	owed := newOwed()
	w := &lockedWriter{w: out, owed: owed}
	return &mcp.IOTransport{
		Reader: &lineFilter{r: bufio.NewReaderSize(in, 64<<10), replies: &replier{out: w, owed: owed}, owed: owed, max: maxLineBytes},
		Writer: w,
	}
}

// firstVersionWithoutBatches is the first MCP protocol version that has no
// JSON-RPC batches (2025-06-18 removed them). Versions are dates: an
// earlier one sorts before it. The SDK draws the same line.
const firstVersionWithoutBatches = "2025-06-18"

// owed is what the client is owed: the calls read and not answered
// (waiting in the queue, or passed to the SDK), the replies being written
// and the error replies queued, and the replies to a batch, sent together
// when its last call is answered. It also holds the protocol version the
// session negotiated, which says whether batches are taken, and the
// messages read that wait to be passed to the SDK.
type owed struct {
	mu      sync.Mutex
	cond    *sync.Cond
	calls   map[any]*pendingCall // by request id (jsonrpc.ID.Raw: int64 or string)
	writing int                  // replies to calls being written
	errs    int                  // error replies queued or being written
	inits   int                  // initialize calls pending while no version is negotiated
	version string               // the protocol version the answer to initialize gave; "" before
	stopped bool                 // the session was closed: nothing is waited for

	// The messages read and not passed to the SDK yet, in the order read
	// (see next), their bytes, the ordered calls passed and not answered,
	// and how reading ended (nil while it goes on).
	queue          []*queued
	queuedMessages int // the messages of queue, a batch's each counted
	queuedBytes    int
	inFlight       int
	readErr        error
}

// queued is a message read, or a batch's messages, waiting to be passed
// to the SDK.
type queued struct {
	data  []byte // the message and its newline, or a batch's messages one a line
	n     int    // the messages it holds: 1, or the batch's messages passed on
	kind  passKind
	calls []any // the ids (jsonrpc.ID.Raw) of its calls the transport recorded
	batch bool  // a batch
}

// passKind says when a message read is passed to the SDK (see owed.next).
type passKind int

const (
	// inPlace: once every message read before it is passed (a
	// notification other than notifications/cancelled; a batch without a
	// call other than ping).
	inPlace passKind = iota
	// ordered: once every message read before it is passed and every
	// ordered call passed before it is answered (a call other than ping;
	// a batch with one).
	ordered
	// prompt: at once (ping, notifications/cancelled, a response).
	prompt
)

// Bounds of the messages read ahead and not passed to the SDK yet (each
// message of a batch counts): past either, the transport reads no more
// until a message is passed. One line is always taken, whatever its size
// (a batch holds at most maxBatchMessages).
const (
	maxQueuedMessages = 1024
	maxQueuedBytes    = 4 * maxLineBytes
)

// maxBatchMessages bounds the messages of one batch: a larger batch is
// refused whole (one -32600 error), as its calls would all run at once and
// their replies be held until the last. With maxQueuedMessages, it bounds
// the calls read and not answered: at most maxQueuedMessages waiting and
// maxBatchMessages (a batch) running.
const maxBatchMessages = maxQueuedMessages

// pendingCall is a call read and not answered yet: waiting in the queue,
// or passed to the SDK.
type pendingCall struct {
	batch *batch // the batch it came in, or nil
	slot  int    // its reply's index in batch.replies
	init  bool   // an initialize call: its answer gives the protocol version
	// ordered: a call that holds the ordered calls after it until it is
	// answered (every call but ping, and every call of a batch that has
	// one); passed: it was passed to the SDK.
	ordered, passed bool
}

// batch gathers the replies to one batch line: one per call or invalid
// message, in the batch's order.
type batch struct {
	replies [][]byte // an error reply, or a call's reply (nil until it comes)
	left    int      // calls not answered yet
	size    int      // the bytes of the array's line so far: brackets, commas, newline and the replies held
}

// maxBatchReplyBytes bounds the line of a batch's replies (the replies
// are held until the last, and a client reads the line whole; the Go
// SDK's reader takes lines of at most 16 MiB): a call's reply that would
// bring it past is replaced with a short error (tooLargeReply), which
// counts whatever its size.
const maxBatchReplyBytes = maxLineBytes

// hold returns what to hold for msg, the reply to the call of id of b:
// msg, or, when it would bring the line past maxBatchReplyBytes, the
// error that replaces it.
func (b *batch) hold(id jsonrpc.ID, msg []byte) []byte {
	if b.size+len(msg) > maxBatchReplyBytes {
		msg = bytes.TrimSpace(tooLargeReply(id, len(msg)))
	} else {
		msg = bytes.Clone(msg)
	}
	b.size += len(msg)
	return msg
}

// codeReplyTooLarge is the JSON-RPC code of tooLargeReply (of the range
// JSON-RPC leaves to implementations).
const codeReplyTooLarge = -32000

// tooLargeReply is the error that replaces the reply of n bytes to the
// call of id of a batch, which would bring the batch's line past
// maxBatchReplyBytes.
func tooLargeReply(id jsonrpc.ID, n int) []byte {
	raw, _ := json.Marshal(id.Raw())
	return encodeReply(raw, codeReplyTooLarge, fmt.Sprintf(
		"Reply too large: this call was handled, but its reply (%d bytes) would bring the line of the batch's replies past %d bytes, so it is left out: send fewer calls a batch, or one message per line", n, maxBatchReplyBytes))
}

// array is the batch's reply: its replies as one JSON array, with its
// newline.
func (b *batch) array() []byte {
	return append(append([]byte{'['}, bytes.Join(b.replies, []byte{','})...), ']', '\n')
}

func newOwed() *owed {
	o := &owed{calls: map[any]*pendingCall{}}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// inUse reports whether id is the id of a call not answered yet.
func (o *owed) inUse(id jsonrpc.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[id.Raw()] != nil
}

// asked records a call read, which the SDK will answer once passed to it,
// unless its id is in use: it reports whether it recorded it.
func (o *owed) asked(r *jsonrpc.Request) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls[r.ID.Raw()] != nil {
		return false
	}
	c := &pendingCall{init: r.Method == "initialize" && o.version == "", ordered: r.Method != "ping"}
	if c.init {
		o.inits++
	}
	o.calls[r.ID.Raw()] = c
	return true
}

// askedBatch records the calls of b, whose ids are not in use, and the
// indexes of their replies in b.replies; ordered says whether they hold
// the calls after them.
func (o *owed) askedBatch(b *batch, ids []jsonrpc.ID, slots []int, ordered bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b.left = len(ids)
	b.size = len("[]\n") + len(b.replies) - 1 // its brackets, newline and commas
	for _, r := range b.replies {
		b.size += len(r) // the errors placed already
	}
	for i, id := range ids {
		o.calls[id.Raw()] = &pendingCall{batch: b, slot: slots[i], ordered: ordered}
	}
}

// push queues q, a message read, waiting while the queue is full; it
// reports false, queueing nothing, once the session is closed.
func (o *owed) push(q *queued) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for !o.stopped && len(o.queue) > 0 && (o.queuedMessages+q.n > maxQueuedMessages || o.queuedBytes+len(q.data) > maxQueuedBytes) {
		o.cond.Wait()
	}
	if o.stopped {
		return false
	}
	o.queue = append(o.queue, q)
	o.queuedMessages += q.n
	o.queuedBytes += len(q.data)
	o.cond.Broadcast()
	return true
}

// dropQueued forgets the call of id when it is a call read alone (not in
// a batch) and not passed to the SDK yet: it is taken out of the queue,
// and will not be answered. It reports whether it did.
func (o *owed) dropQueued(id jsonrpc.ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := slices.IndexFunc(o.queue, func(q *queued) bool { return !q.batch && len(q.calls) == 1 && q.calls[0] == id.Raw() })
	if i < 0 {
		return false
	}
	o.queuedBytes -= len(o.queue[i].data)
	o.queuedMessages -= o.queue[i].n
	o.queue = slices.Delete(o.queue, i, i+1)
	if c := o.calls[id.Raw()]; c != nil && c.init {
		o.inits--
	}
	delete(o.calls, id.Raw())
	o.cond.Broadcast()
	return true
}

// finish records how reading ended: err is io.EOF at the end of input.
func (o *owed) finish(err error) {
	o.mu.Lock()
	o.readErr = err
	o.mu.Unlock()
	o.cond.Broadcast()
}

// next returns the next message (or a batch's messages) to pass to the
// SDK, waiting until one may be passed: the first queued that is prompt,
// or the first of the queue when it is inPlace, or ordered and no ordered
// call passed is unanswered. An ordered message passed marks its calls
// passed. At the end of reading, once the queue is empty and every call
// is answered, it returns the error reading ended with; once the session
// is closed, errClosed.
func (o *owed) next() ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for !o.stopped {
		blocked := false // a message before q waits
		for i, q := range o.queue {
			if q.kind != prompt && (blocked || q.kind == ordered && o.inFlight > 0) {
				blocked = true
				continue
			}
			o.queue = slices.Delete(o.queue, i, i+1)
			o.queuedBytes -= len(q.data)
			o.queuedMessages -= q.n
			for _, id := range q.calls {
				if c := o.calls[id]; c != nil && c.ordered {
					c.passed = true
					o.inFlight++
				}
			}
			o.cond.Broadcast()
			return q.data, nil
		}
		if o.readErr != nil && len(o.queue) == 0 {
			// The end of the client's input: its replies first.
			for !o.stopped && (len(o.calls) > 0 || o.writing > 0 || o.errs > 0) {
				o.cond.Wait()
			}
			if o.stopped {
				break
			}
			return nil, o.readErr
		}
		o.cond.Wait()
	}
	return nil, errClosed
}

// answer returns what to write for p, a message the SDK writes: p itself,
// nil when p is the reply to a call of a batch with calls left, or the
// batch's array when p is its last reply; counted says the write counts
// as a reply being written until written is called.
func (o *owed) answer(p []byte) (data []byte, counted bool) {
	msg := bytes.TrimSpace(p)
	m, err := jsonrpc.DecodeMessage(msg)
	r, ok := m.(*jsonrpc.Response)
	if err != nil || !ok || !r.ID.IsValid() {
		return p, false
	}
	if coded := withCode(r); coded != nil {
		msg, p = coded, append(coded, '\n')
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls[r.ID.Raw()]
	if c == nil {
		return p, false
	}
	delete(o.calls, r.ID.Raw())
	if c.passed {
		o.inFlight--
	}
	if c.init {
		o.inits--
		var res struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if r.Error == nil && json.Unmarshal(r.Result, &res) == nil && o.version == "" {
			o.version = res.ProtocolVersion
		}
	}
	o.cond.Broadcast()
	if c.batch == nil {
		o.writing++
		return p, true
	}
	c.batch.replies[c.slot] = c.batch.hold(r.ID, msg)
	if c.batch.left--; c.batch.left > 0 {
		return nil, false
	}
	o.writing++
	return c.batch.array(), true
}

// withCode returns r, an error reply of the SDK with code 0 (which
// JSON-RPC does not have), encoded with a code, or nil when r has a code
// or is no error. The SDK makes such replies before any middleware: its
// refusal of a call before initialize, an invalid request (-32600); and
// initialize's params that are null (`handling 'initialize': missing
// required "params"`), an invalid request too, or that do not unmarshal
// (`handling 'initialize': unmarshaling ...`), invalid params (-32602),
// said as the SDK says them for the other methods ("invalid request: ",
// "invalid params: " before the reason). Any other would be an internal
// error (-32603). Every other error reaches the middleware, which gives
// it its code.
func withCode(r *jsonrpc.Response) []byte {
	var we *jsonrpc.Error
	if r.Error == nil || !errors.As(r.Error, &we) || we.Code != 0 {
		return nil
	}
	code, msg := int64(jsonrpc.CodeInternalError), we.Message
	const initPrefix = "handling 'initialize': "
	switch rest, isInit := strings.CutPrefix(we.Message, initPrefix); {
	case strings.HasSuffix(we.Message, "is invalid during session initialization"):
		code = jsonrpc.CodeInvalidRequest
	case isInit && rest == `missing required "params"`:
		code, msg = jsonrpc.CodeInvalidRequest, initPrefix+"invalid request: "+rest
	case isInit && strings.HasPrefix(rest, "unmarshaling "):
		code, msg = jsonrpc.CodeInvalidParams, initPrefix+"invalid params: "+rest
	}
	data, err := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: r.ID, Error: &jsonrpc.Error{Code: code, Message: msg, Data: we.Data}})
	if err != nil {
		return nil
	}
	return data
}

// written notes that a reply answer returned was written (or failed).
func (o *owed) written() {
	o.mu.Lock()
	o.writing--
	o.mu.Unlock()
	o.cond.Broadcast()
}

// batchVersion returns the negotiated protocol version, "" when none is,
// waiting for the answer to an initialize call read before (a client may
// send initialize and a batch without waiting).
func (o *owed) batchVersion() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.version == "" && o.inits > 0 && !o.stopped {
		o.cond.Wait()
	}
	return o.version
}

// errReply counts an error reply queued (+1) or written (-1).
func (o *owed) errReply(d int) {
	o.mu.Lock()
	o.errs += d
	o.mu.Unlock()
	o.cond.Broadcast()
}

// stop ends every wait: the session is closed.
func (o *owed) stop() {
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
	o.cond.Broadcast()
}

// lockedWriter serialises the SDK's writes and replier's: the SDK writes
// each message with one Write call, so whole lines never interleave. A
// reply to a call of a batch is held until the batch's last, and then
// written with the others as one array. Once the session closes it (the
// SDK closes its transport), nothing more is written: a late error reply
// does not reach out after Run returned.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	owed   *owed
	closed atomic.Bool
}

// errClosed is the error of a write after the session ended.
var errClosed = errors.New("mcp stdio: session closed")

// Write writes p, a message of the SDK, to the stream whole (or, for a
// reply to a batch's call, holds it, or writes the batch's array), or
// returns errClosed after Close.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return 0, errClosed
	}
	data, counted := l.owed.answer(p)
	if data == nil {
		return len(p), nil
	}
	_, err := l.w.Write(data)
	if counted {
		l.owed.written()
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeOwn writes p, an error reply of the transport's own, to the stream
// whole, or returns errClosed after Close.
func (l *lockedWriter) writeOwn(p []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return errClosed
	}
	_, err := l.w.Write(p)
	return err
}

// Close stops later writes without waiting for one under way, which may
// block on a client that does not read; it does not close the stream.
func (l *lockedWriter) Close() error {
	l.closed.Store(true)
	l.owed.stop()
	return nil
}

// lineFilter passes the SDK the lines of r that are JSON-RPC messages,
// and answers the others through replies. A goroutine of its own reads r
// ahead (readAhead) into owed's queue; Read, which the SDK calls from one
// goroutine, passes on the messages queued when owed.next allows.
type lineFilter struct {
	r       *bufio.Reader
	replies *replier
	owed    *owed
	max     int
	start   sync.Once
	pending []byte // what Read returns next
}

// Read returns the next valid lines, in the order owed.next passes them.
// It returns r's error (io.EOF at the end) once the lines before it are
// passed on and answered, and errClosed once the session is closed.
func (f *lineFilter) Read(p []byte) (int, error) {
	f.start.Do(func() { go f.readAhead() })
	if len(f.pending) == 0 {
		data, err := f.owed.next()
		if err != nil {
			return 0, err
		}
		f.pending = data
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// readAhead reads r's lines and queues them (take) until r's end or
// error, or a line too long, which it records in owed (finish), or until
// the session is closed.
func (f *lineFilter) readAhead() {
	for {
		line, long, err := f.readLine()
		if long {
			// It cannot be skipped (the stream has no point to resume
			// at): the session ends, saying why whatever the line holds.
			f.owed.finish(fmt.Errorf("a message (one line) exceeds the maximum line length of %d bytes (16 MiB): the session ends; send less inline content (--max-inline-bytes) or use path (--allow-path)", f.max))
			return
		}
		if msg := bytes.TrimSpace(line); len(msg) > 0 {
			for _, q := range f.take(msg) {
				if !f.owed.push(q) {
					return
				}
			}
		}
		if err != nil {
			f.owed.finish(err)
			return
		}
	}
}

// take returns what to queue of msg, one non-empty line without
// surrounding space, in its order: msg with its newline when it is a
// JSON-RPC message the SDK takes; for a batch, what batchLine returns;
// or nothing. It sends the error replies msg needs. A
// notifications/cancelled naming a call still queued alone drops that
// call (dropQueued), and is not queued itself.
func (f *lineFilter) take(msg []byte) []*queued {
	if !json.Valid(msg) {
		err := json.Unmarshal(msg, new(json.RawMessage))
		f.replies.send(encodeReply(nil, jsonrpc.CodeParseError,
			fmt.Sprintf("Parse error: the line is not JSON (%v); send one JSON-RPC message per line", err)))
		return nil
	}
	if msg[0] == '[' {
		return f.batchLine(msg)
	}
	if q := f.takeOne(msg); q != nil {
		return []*queued{q}
	}
	return nil
}

// takeOne is take for a line that is valid JSON and not an array.
func (f *lineFilter) takeOne(msg []byte) *queued {
	reason, m := "a JSON-RPC message is a JSON object", jsonrpc.Message(nil)
	if msg[0] == '{' {
		reason, m = invalidMessage(msg)
	}
	if reason != "" {
		f.replies.send(encodeReply(usableID(msg), jsonrpc.CodeInvalidRequest, "Invalid request: "+reason))
		return nil
	}
	q := &queued{data: append(msg, '\n'), n: 1, kind: prompt}
	r, ok := m.(*jsonrpc.Request)
	switch {
	case !ok: // a response: a call of the server's may wait for it
	case r.IsCall():
		if !f.owed.asked(r) {
			f.replies.send(encodeReply(nil, jsonrpc.CodeInvalidRequest, "Invalid request: "+idInUse(r.ID)))
			return nil
		}
		q.calls = []any{r.ID.Raw()}
		if r.Method != "ping" {
			q.kind = ordered
		}
	case r.Method == "notifications/cancelled":
		switch id, named, ok := cancelledID(r); {
		case !ok: // it names no call there can be: the SDK would cancel another
			return nil
		case named && f.owed.dropQueued(id):
			return nil
		}
	default:
		q.kind = inPlace
	}
	return q
}

// cancelledID returns the id of the call r, a notifications/cancelled,
// names: named is false when its params name none (no requestId, or
// null), and ok is false when its requestId is no id a call may have (see
// exactID): the SDK, which reads a number as a float64, would take it for
// another (1.5 for 1).
func cancelledID(r *jsonrpc.Request) (id jsonrpc.ID, named, ok bool) {
	params := bytes.TrimSpace(r.Params)
	if len(params) == 0 || params[0] != '{' || !json.Valid(params) {
		return jsonrpc.ID{}, false, true
	}
	var raw []byte
	for _, v := range members(params, "requestId") {
		if string(v) == "null" {
			continue
		}
		if !exactID(v) {
			return jsonrpc.ID{}, false, false
		}
		raw = v
	}
	if raw == nil {
		return jsonrpc.ID{}, false, true
	}
	return makeID(raw), true, true
}

// batchLine takes msg, a JSON array: a batch of JSON-RPC messages
// (JSON-RPC 2.0), which MCP allows in protocol version 2025-03-26 and
// removed in 2025-06-18. When the version initialize negotiated is earlier
// than 2025-06-18 (2025-03-26 or 2024-11-05, as for the SDK's own
// transports), it returns the batch's messages, one a line, and the
// replies to its calls are sent together as one JSON array, in the
// batch's order, once the last is answered; an invalid message of the
// batch, or a call whose id is in use (by another call of the batch or
// one not answered yet), is not passed on and gets its -32600 error in
// the array. A batch of notifications and responses only gets no reply.
// An empty batch, a batch of more than maxBatchMessages messages, or a
// batch before any version is negotiated or in a later version, gets one
// -32600 error (id null) and none of it is passed on (JSON-RPC answers a
// batch it cannot take with one error).
//
// A notifications/cancelled of the batch naming a call of the batch is
// dropped (the call runs with its batch); one naming another call is
// handled as if it came alone on its line, before the batch: it drops
// that call when it waits in the queue alone (dropQueued), else it is
// queued on its own, to be passed at once (prompt), ahead of the batch,
// which may have to wait for the call it names. So the returned messages
// are those cancels, then the batch (when anything of it is left).
func (f *lineFilter) batchLine(msg []byte) []*queued {
	elems, ok := elements(msg, maxBatchMessages)
	switch {
	case !ok:
		f.replies.send(encodeReply(nil, jsonrpc.CodeInvalidRequest, batchTooLarge("one message per line")))
		return nil
	case len(elems) == 0:
		f.replies.send(encodeReply(nil, jsonrpc.CodeInvalidRequest, "Invalid request: an empty batch (a batch holds one JSON-RPC message or more)"))
		return nil
	}
	switch v := f.owed.batchVersion(); {
	case v == "":
		f.replies.send(encodeReply(nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf(
			"Invalid request: no protocol version is negotiated yet, and JSON-RPC batches are taken only in protocol versions before %s: send initialize alone first, or one message per line", firstVersionWithoutBatches)))
		return nil
	case v >= firstVersionWithoutBatches:
		f.replies.send(encodeReply(nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf(
			"Invalid request: JSON-RPC batches are not supported in protocol version %s and later (this session's is %s): send one message per line", firstVersionWithoutBatches, v)))
		return nil
	}
	var (
		b     batch
		ids   []jsonrpc.ID
		slots []int
		pass  []byte
		seen  = map[any]bool{}
		q     = &queued{kind: inPlace, batch: true}
		// cancels are the batch's notifications/cancelled naming a call.
		cancels []batchCancel
	)
	for _, raw := range elems {
		reason, m := "a JSON-RPC message is a JSON object", jsonrpc.Message(nil)
		switch raw[0] {
		case '{':
			reason, m = invalidMessage(raw)
		case '[':
			reason = "a batch holds JSON-RPC messages, not batches"
		}
		if reason != "" {
			b.replies = append(b.replies, bytes.TrimSpace(encodeReply(usableID(raw), jsonrpc.CodeInvalidRequest, "Invalid request: "+reason)))
			continue
		}
		r, isReq := m.(*jsonrpc.Request)
		if isReq && r.Method == "notifications/cancelled" {
			id, named, ok := cancelledID(r)
			if !ok {
				continue // it names no call there can be (as in take)
			}
			if named {
				// It may name a call of this batch, before or after it:
				// decided once every call of the batch is known.
				cancels = append(cancels, batchCancel{id: id, raw: raw})
				q.n++
				continue
			}
		}
		if isReq && r.IsCall() {
			if seen[r.ID.Raw()] || f.owed.inUse(r.ID) {
				b.replies = append(b.replies, bytes.TrimSpace(encodeReply(nil, jsonrpc.CodeInvalidRequest, "Invalid request: "+idInUse(r.ID))))
				continue
			}
			seen[r.ID.Raw()] = true
			q.calls = append(q.calls, r.ID.Raw())
			if r.Method != "ping" {
				q.kind = ordered
			}
			ids, slots = append(ids, r.ID), append(slots, len(b.replies))
			b.replies = append(b.replies, nil)
		}
		pass = append(append(pass, raw...), '\n')
		q.n++
	}
	// A cancel for a call of this batch is ignored: the call has not
	// started (its batch starts as a whole, after the calls before it),
	// and runs with its batch (docs/agents.md). One for another call takes
	// effect now, as alone on its line: it must not wait for the batch's
	// turn, which may come after the call it names has run.
	var out []*queued
	for _, c := range cancels {
		q.n--
		if seen[c.id.Raw()] || f.owed.dropQueued(c.id) {
			continue
		}
		out = append(out, &queued{data: append(bytes.Clone(c.raw), '\n'), n: 1, kind: prompt})
	}
	if len(ids) > 0 {
		f.owed.askedBatch(&b, ids, slots, q.kind == ordered)
	} else if len(b.replies) > 0 {
		f.replies.send(b.array())
	}
	if len(pass) > 0 {
		q.data = pass
		out = append(out, q)
	}
	return out
}

// batchCancel is a notifications/cancelled of a batch naming a call: the
// id it names, and the message.
type batchCancel struct {
	id  jsonrpc.ID
	raw []byte
}

// batchTooLarge is the message of the error a batch of more than
// maxBatchMessages messages gets (over stdio and over HTTP); instead is
// how else to send them.
func batchTooLarge(instead string) string {
	return fmt.Sprintf("Invalid request: a batch of more than %d messages (none of it is handled): send at most %d in one batch, or %s", maxBatchMessages, maxBatchMessages, instead)
}

// idInUse is the reason a call is refused whose id is that of a call not
// answered yet.
func idInUse(id jsonrpc.ID) string {
	data, _ := json.Marshal(id.Raw())
	return fmt.Sprintf("id %s is the id of a call not answered yet: give each call an id of its own", data)
}

// replier writes lineFilter's error replies in their order, from a
// goroutine of its own: a client that writes on before it reads its
// replies does not stop the server reading (as the SDK's replies do not).
// A failed write is not reported here: the SDK's next write meets it.
// At most maxQueuedReplies wait: past that, send waits for the client to
// read, so that a client writing bad lines without reading cannot grow
// the server's memory.
type replier struct {
	out     *lockedWriter
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
		_ = r.out.writeOwn(reply)
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
		if len(line)+len(chunk) > cap(line) && len(line) > 0 {
			// Grown by doubling (append grows a large slice by a quarter,
			// copying a 16 MiB line about 20 times over).
			// The line ends within f.max and a chunk past it.
			line = append(make([]byte, 0, max(min(2*cap(line), f.max+f.r.Size()), len(line)+len(chunk))), line...)
		}
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

// invalidMessage returns why msg, a JSON object, is not a JSON-RPC
// request, notification or response the SDK takes, or "" and the message.
// Its id, when it has one, is a string or an integer the SDK holds
// exactly (see exactID); not null either, which the SDK takes for no id
// (a request would be a notification, and get no reply).
func invalidMessage(msg []byte) (string, jsonrpc.Message) {
	if reason := badID(msg); reason != "" {
		return reason, nil
	}
	m, err := jsonrpc.DecodeMessage(msg)
	if err != nil {
		return err.Error(), nil
	}
	if r, ok := m.(*jsonrpc.Response); ok && r.Result == nil && r.Error == nil {
		return "no method (a request) and no result or error (a response)", nil
	}
	return "", m
}

// badID returns why the id of msg, a valid JSON object (with no space
// around it), is no id the SDK answers with exactly (see exactID), or
// null; "" when its id members are all good, or it has none (a
// notification). Over stdio and over HTTP such a message is refused.
func badID(msg []byte) string {
	for _, id := range members(msg, "id") {
		switch {
		case string(id) == "null":
			return "id null: a request's id is a string or an integer (a notification has no id member)"
		case !exactID(id):
			if len(id) > 40 {
				id = append(id[:40:40], "..."...)
			}
			return fmt.Sprintf("id %s: an id is a string or an integer from -%d to %d, written without fraction or exponent (else it could not be answered with the same id)", id, maxExactID, maxExactID)
		}
	}
	return ""
}

// maxExactID is the largest integer id (and -maxExactID the smallest):
// 2^53-1, the largest integer every JSON number (a float64) holds
// exactly, which the SDK reads ids as.
const maxExactID = 1<<53 - 1

// integer is a JSON integer of 16 digits at most, without "-0".
var integer = regexp.MustCompile(`^(0|-?[1-9][0-9]{0,15})$`)

// exactID reports whether raw, a JSON value, is an id the SDK holds and
// answers with exactly: a string, or an integer from -maxExactID to
// maxExactID written without fraction or exponent (and not -0). The SDK
// reads a number as a float64 and makes it an int64: 1.5 would be
// answered as 1, 2^53+1 as 2^53, and every integer past int64 as the
// smallest int64.
func exactID(raw []byte) bool {
	if len(raw) > 0 && raw[0] == '"' {
		return true
	}
	if !integer.Match(raw) {
		return false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil && n >= -maxExactID && n <= maxExactID
}

// makeID returns the id raw is, a JSON value exactID accepts.
func makeID(raw []byte) jsonrpc.ID {
	var v any
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		v = s
	} else {
		n, _ := strconv.ParseInt(string(raw), 10, 64)
		v = float64(n) // exact: |n| <= 2^53-1
	}
	id, _ := jsonrpc.MakeID(v)
	return id
}

// usableID returns the id of msg, a valid JSON value, when it is an
// object whose id is one exactID accepts (every id member's, when there
// are more), else nil.
func usableID(msg []byte) json.RawMessage {
	if msg[0] != '{' {
		return nil
	}
	var id json.RawMessage
	for _, v := range members(msg, "id") {
		if !exactID(v) {
			return nil
		}
		id = v
	}
	return id
}

// members returns the values of the members named key of obj, a valid
// JSON object (with no space around it), in their order: sub-slices of
// obj. A name is compared unescaped, as the SDK's decoder does ("\u0069d"
// is id), and exactly (not "ID"); members of nested values are not
// looked at.
func members(obj []byte, key string) [][]byte {
	var vals [][]byte
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end := skipString(obj, i)
		name := obj[i:end]
		i = skipSpace(obj, skipSpace(obj, end)+1) // past ':'
		vend := skipValue(obj, i)
		if named(name, key) {
			vals = append(vals, obj[i:vend])
		}
		if i = skipSpace(obj, vend); i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return vals
}

// elements returns the elements of arr, a valid JSON array (with no space
// around it), as sub-slices of arr, or false when it has more than max.
func elements(arr []byte, max int) ([][]byte, bool) {
	var elems [][]byte
	for i := skipSpace(arr, 1); i < len(arr) && arr[i] != ']'; {
		if len(elems) == max {
			return nil, false
		}
		end := skipValue(arr, i)
		elems = append(elems, arr[i:end])
		if i = skipSpace(arr, end); i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return elems, true
}

// named reports whether name, a JSON string, is key.
func named(name []byte, key string) bool {
	if bytes.IndexByte(name, '\\') < 0 {
		return len(name) == len(key)+2 && string(name[1:len(name)-1]) == key
	}
	var s string
	return json.Unmarshal(name, &s) == nil && s == key
}

// skipSpace returns the index of the first byte of data from i that is
// not JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the JSON value at data[i], in
// valid JSON.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	// A number, true, false or null.
	for i < len(data) && !strings.ContainsRune(",}] \t\r\n", rune(data[i])) {
		i++
	}
	return i
}

func encodeReply(id json.RawMessage, code int64, message string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	data, _ := json.Marshal(errorReply{JSONRPC: "2.0", ID: id, Error: jsonrpc.Error{Code: code, Message: message}})
	return append(data, '\n')
}
