package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Defaults of the bounds of the streamable HTTP transport (HTTPOptions,
// docex mcp --max-inflight-bytes, --max-sessions, --max-calls).
const (
	// DefaultMaxInflightBytes bounds the request bodies being handled at
	// once: 24 POSTs of a 16 MiB add_document took 2.1 GB more memory
	// than the server at rest (each body is held several times over while
	// its call runs).
	DefaultMaxInflightBytes = 64 << 20
	// DefaultMaxSessions bounds the live sessions (about 16 KiB each).
	DefaultMaxSessions = 1000
	// DefaultMaxCalls bounds the calls that reach the engine (tools/call,
	// resources/read, resources/list) handled at once, all sessions
	// together: each may hold a plugin's sandbox, a database connection
	// or a pipeline's wait.
	DefaultMaxCalls = 64
	// DefaultBodyTimeout is how long a POST's body may take to arrive
	// once its POST is admitted.
	DefaultBodyTimeout = 60 * time.Second
	// DefaultBodyStall is how long a POST's body may go without a byte
	// arriving, within DefaultBodyTimeout: as long as its headers may
	// take (docex mcp's 10 s), so that a client that sends some of a
	// body and stops holds its connection no longer than one that
	// stops in its headers.
	DefaultBodyStall = 10 * time.Second
	// DefaultMaxStreams bounds the GET streams open at once, all
	// sessions together: half of the largest default of docex mcp
	// --max-connections (256), which passes half of its own.
	DefaultMaxStreams = 128
)

// HTTPOptions configures HTTPHandlerWith; a field left 0 takes its
// default.
type HTTPOptions struct {
	// MaxBody is the largest request body (HTTP 413 past it); 0: 1 MiB.
	MaxBody int64
	// Idle closes a session that receives no request for that long; 0
	// keeps sessions until the client deletes them or the server stops.
	Idle time.Duration
	// MaxInflightBytes bounds the bodies of the POSTs being handled at
	// once (DefaultMaxInflightBytes): see inflight.
	MaxInflightBytes int64
	// MaxSessions bounds the live sessions (DefaultMaxSessions): see
	// sessionCap.
	MaxSessions int
	// BodyTimeout is how long a POST's body may take to arrive once
	// admitted (DefaultBodyTimeout).
	BodyTimeout time.Duration
	// BodyStall is how long a POST's body may go without a byte
	// arriving, within BodyTimeout (DefaultBodyStall).
	BodyStall time.Duration
	// MaxCalls bounds the calls that reach the engine handled at once
	// (DefaultMaxCalls): see countedCall.
	MaxCalls int
	// MaxStreams bounds the GET streams open at once, all sessions
	// together (DefaultMaxStreams); negative: none, every GET stream is
	// refused (HTTP 405). See streamCap.
	MaxStreams int
}

// countedCall reports whether a call of method counts against
// HTTPOptions.MaxCalls: one that reaches the engine. Past the bound such
// a call waits, after those that came before it, until one ends, or
// until it is cancelled (notifications/cancelled, its POST's client gone,
// the server stopping: it is then answered as a call cancelled before it
// started). Protocol requests (initialize, ping, tools/list,
// resources/templates/list, ...) never wait.
func countedCall(method string) bool {
	return method == "tools/call" || method == "resources/read" || method == "resources/list"
}

// budget counts units of a bounded resource taken at once: the bytes of
// the request bodies being handled (inflight), the calls being handled
// (HTTPOptions.MaxCalls). Its waiters are served first come, first
// served: one that does not fit yet holds back those behind it, so that a
// large body is not starved by a stream of small ones.
type budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	queue []*budgetWaiter // waiting, oldest first
	// waitHeld is the units the waiters hold already (acquireMore): when
	// it is all of used and the oldest waiter does not fit, no unit can
	// come back but by a waiter giving up (grant).
	waitHeld int64
}

// budgetWaiter is a waiter of a budget: ready is closed once its n units
// are counted, or once err is set (it is then refused, and its held units
// were given back).
type budgetWaiter struct {
	n     int64
	held  int64
	err   error
	ready chan struct{}
}

// errBudgetDeadlock refuses a waiter that holds units when every unit
// counted is held by waiters (grant): none would ever fit.
var errBudgetDeadlock = errors.New("every byte of the bound is held by request bodies being read, each waiting for room for more")

// acquire waits until n more units fit (n is at most limit) and every
// earlier waiter has its own, counts them, and returns nil; or the cause
// of ctx's or stop's end when one ends first (stop may be nil), counting
// nothing.
func (b *budget) acquire(ctx, stop context.Context, n int64) error {
	return b.acquireMore(ctx, stop, n, 0)
}

// acquireMore is acquire for a holder of held units (counted by earlier
// acquires, not given back yet) that asks for n more. When every unit
// counted is held by such waiters and the oldest waiter does not fit,
// grant refuses the latest of them that holds units: its acquireMore
// returns errBudgetDeadlock, and its held units are given back (the
// caller must not release them again).
func (b *budget) acquireMore(ctx, stop context.Context, n, held int64) error {
	b.mu.Lock()
	if len(b.queue) == 0 && b.used+n <= b.limit {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, held: held, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.waitHeld += held
	b.grant() // w may be the waiter that leaves no unit to come back
	b.mu.Unlock()
	var stopped <-chan struct{}
	if stop != nil {
		stopped = stop.Done()
	}
	var err error
	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
		err = context.Cause(ctx)
	case <-stopped:
		err = context.Cause(stop)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // counted (or refused) meanwhile
		if w.err != nil {
			return w.err
		}
		b.used -= n
	default:
		for i, q := range b.queue {
			if q == w {
				b.queue = append(b.queue[:i:i], b.queue[i+1:]...)
				break
			}
		}
		b.waitHeld -= held
	}
	b.grant() // those behind w may fit now
	return err
}

// release gives back n units acquire counted.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.grant()
	b.mu.Unlock()
}

// grant counts the units of the waiters that fit, oldest first, stopping
// at the first that does not. Then, while the oldest waiter does not fit
// and every unit counted is held by waiters (no unit can come back), it
// refuses the latest waiter that holds units, giving its units back
// (errBudgetDeadlock), and grants again. b.mu is held.
func (b *budget) grant() {
	for {
		for len(b.queue) > 0 && b.used+b.queue[0].n <= b.limit {
			w := b.queue[0]
			b.queue = b.queue[1:]
			b.used += w.n
			b.waitHeld -= w.held
			close(w.ready)
		}
		if len(b.queue) == 0 || b.used != b.waitHeld {
			return
		}
		i := len(b.queue) - 1
		for i >= 0 && b.queue[i].held == 0 {
			i--
		}
		if i < 0 {
			return
		}
		w := b.queue[i]
		b.queue = append(b.queue[:i:i], b.queue[i+1:]...)
		b.used -= w.held
		b.waitHeld -= w.held
		w.err = errBudgetDeadlock
		close(w.ready)
	}
}

// state returns the units counted and the waiters (for tests).
func (b *budget) state() (used int64, waiting int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, len(b.queue)
}

// Steps of the charging of a request body (inflight): its bytes are
// taken into chunks of bodyFirstChunk bytes, doubling with the bytes read
// up to bodyChunk each, and each chunk is counted as its first bytes
// arrive.
const (
	bodyFirstChunk = 4 << 10
	bodyChunk      = 64 << 10
)

// inflight wraps h so that the bodies of the JSON POSTs being handled fit
// in the budget b, counted by the bytes that arrived: a body is read in
// chunks (bodyFirstChunk, doubling up to bodyChunk), each counted once
// the first of its bytes have arrived (a body counts at most the whole
// budget, so a body as large runs alone); a chunk that does not fit
// waits, after those that came before it, until enough POSTs end (or
// its client goes away, or the server stops: it is then answered HTTP
// 503), reading nothing meanwhile. So a body whose bytes have not
// arrived holds nothing, and holds no waiter back. When every byte
// counted is held by bodies waiting for room for more, and the oldest
// waiter does not fit, the POST of the latest of them is refused with
// HTTP 503 (Retry-After 1) and its bytes given back (budget.grant). A
// body must arrive within bodyTimeout, the waits for room not counted,
// with no wait of more than stall for its next bytes (else HTTP 400, and
// the connection is closed); it is read whole and handed on to h, and
// counts until h returns. A Content-Length larger than maxBody is refused
// at once with HTTP 413, nothing read. Other requests reach h as they
// came.
func (s *Server) inflight(h http.Handler, b *budget, maxBody int64, bodyTimeout, stall time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || rebinding(r) {
			h.ServeHTTP(w, r)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			h.ServeHTTP(w, r) // refused (415) without reading the body
			return
		}
		if r.ContentLength > maxBody {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body exceeds %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		rc := http.NewResponseController(w)
		sb := &stallBody{ReadCloser: r.Body, rc: rc, stall: stall, end: time.Now().Add(bodyTimeout)} // not every writer has a deadline (httptest.ResponseRecorder)
		cb := &chargedBody{s: s, b: b, ctx: r.Context(), body: sb, length: r.ContentLength}
		body, err := cb.readAll(http.MaxBytesReader(w, sb, maxBody))
		defer func() { b.release(cb.charged) }()
		if err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				http.Error(w, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
				return
			}
			var waitErr *bodyWaitError
			if !errors.As(err, &waitErr) {
				// The deadline stays: the server's reading the rest of
				// the body ends with it, and the connection is closed.
				http.Error(w, fmt.Sprintf("reading the request body: %v", err), http.StatusBadRequest)
				return
			}
			w.Header().Set("Connection", "close")
			if errors.Is(err, errBudgetDeadlock) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "Server busy: the request bodies being read fill docex mcp --max-inflight-bytes, each waiting for room for more: POST again", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "the server is stopping or the client went away while this POST waited for other POSTs to end", http.StatusServiceUnavailable)
			return
		}
		_ = rc.SetReadDeadline(time.Time{}) // a stream may last: the server's read that notices a client going away must not time out
		r.Body = &readBody{b: body}
		h.ServeHTTP(w, r)
	})
}

// chargedBody reads a POST's body for inflight, counting its chunks in b.
type chargedBody struct {
	s       *Server
	b       *budget
	ctx     context.Context
	body    *stallBody
	length  int64 // the Content-Length, or -1
	charged int64 // the units counted in b, to release
}

// bodyWaitError is the end of a wait for room for a body's next chunk.
type bodyWaitError struct{ err error }

func (e *bodyWaitError) Error() string { return e.err.Error() }
func (e *bodyWaitError) Unwrap() error { return e.err }

// readAll reads body (the POST's, bounded) whole, and returns its bytes;
// or why not (a *bodyWaitError when a wait for room ended it).
func (c *chargedBody) readAll(body io.Reader) ([]byte, error) {
	var (
		chunks  [][]byte
		cur     []byte // the last chunk: its free room is cur[len(cur):cap(cur)]
		total   int64
		scratch []byte
	)
	for {
		var p []byte
		if len(cur) < cap(cur) {
			p = cur[len(cur):cap(cur)]
		} else {
			// Room is counted once bytes are here to fill it.
			if scratch == nil {
				scratch = make([]byte, bodyFirstChunk)
			}
			p = scratch
		}
		n, err := body.Read(p)
		if n > 0 {
			if len(cur) < cap(cur) {
				cur = cur[:len(cur)+n]
			} else {
				size := min(max(total, bodyFirstChunk), bodyChunk)
				if c.length >= 0 {
					size = min(size, c.length-total)
				}
				size = max(size, int64(n))
				if err := c.grow(size); err != nil {
					return nil, err
				}
				if cur != nil {
					chunks = append(chunks, cur)
				}
				cur = make([]byte, n, size)
				copy(cur, p[:n])
			}
			total += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(chunks) == 0 {
		return cur, nil
	}
	out := make([]byte, 0, total)
	for _, ch := range chunks {
		out = append(out, ch...)
	}
	return append(out, cur...), nil
}

// grow counts size more bytes (at most what brings the count to the
// whole budget), waiting for room; the wait does not count against the
// body's time.
func (c *chargedBody) grow(size int64) error {
	size = min(size, c.b.limit-c.charged)
	if size <= 0 {
		return nil
	}
	start := time.Now()
	err := c.b.acquireMore(c.ctx, c.s.stop, size, c.charged)
	c.body.end = c.body.end.Add(time.Since(start))
	if errors.Is(err, errBudgetDeadlock) {
		c.charged = 0 // given back
	}
	if err != nil {
		return &bodyWaitError{err}
	}
	c.charged += size
	return nil
}

// stallBody is a POST's body being read (inflight): before each read,
// the connection's read deadline is moved to stall from now, at most
// end.
type stallBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	end   time.Time
}

func (b *stallBody) Read(p []byte) (int, error) {
	d := time.Now().Add(b.stall)
	if d.After(b.end) {
		d = b.end
	}
	_ = b.rc.SetReadDeadline(d)
	return b.ReadCloser.Read(p)
}

// sessionCap bounds the live sessions of an HTTP handler (sessionCap.wrap).
type sessionCap struct {
	s     *Server
	limit int
	mu    sync.Mutex
	// use is, by session id, when a request of the session last started
	// or ended, and how many of its POSTs are being handled.
	use     map[string]*sessionUse
	pending int // POSTs without a session being handled: each may connect one
	evicted int // sessions closed to make room (for tests)
}

type sessionUse struct {
	last  time.Time
	posts int
}

// wrap wraps h so that a POST without an Mcp-Session-Id header (one that
// may connect a session: requireSession let it through) is handled only
// when fewer than limit sessions live, counting those such POSTs being
// handled may connect: when as many live, the least recently used
// session (by the start or end of its last request) with no POST being
// handled, and not being initialized, is closed first (its Mcp-Session-Id then gets HTTP 404, and its
// client initializes again); when every one has a POST being handled,
// the POST is refused with HTTP 503 Service Unavailable, a Retry-After of
// 1 second and one JSON-RPC error (-32000, id null) saying so, and
// connects nothing.
func (c *sessionCap) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(sessionHeader)
		if id != "" {
			c.started(id, r.Method == http.MethodPost)
			defer c.ended(id, r.Method == http.MethodPost)
			h.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodPost || rebinding(r) {
			h.ServeHTTP(w, r) // a rebinding is refused (403)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			h.ServeHTTP(w, r) // refused (415)
			return
		}
		if !c.admit() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(encodeReply(nil, codeSessionsFull, fmt.Sprintf("Server busy: %d sessions live (docex mcp --max-sessions), each with a POST being handled, so none can be closed to make room: initialize again once one ends", c.limit)))
			return
		}
		defer func() {
			c.mu.Lock()
			c.pending--
			if id := w.Header().Get(sessionHeader); id != "" && c.use[id] == nil {
				c.use[id] = &sessionUse{last: time.Now()}
			}
			c.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// codeSessionsFull is the JSON-RPC code of sessionCap's refusal: one of
// the range for implementations.
const codeSessionsFull = -32000

// admit makes room for one more session, closing the least recently used
// idle one when needed, and counts the POST as pending; it reports false
// when there is no room.
func (c *sessionCap) admit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := map[string]bool{}
	for ss := range c.s.srv.Sessions() {
		live[ss.ID()] = true
	}
	for id := range c.use { // closed (idle, deleted, evicted)
		if !live[id] && c.use[id].posts == 0 {
			delete(c.use, id)
		}
	}
	// A live session not in use yet is one whose initialize is being
	// handled: pending counts it, and it is not closed.
	n := 0
	for id := range live {
		if c.use[id] != nil {
			n++
		}
	}
	for n+c.pending >= c.limit {
		victim, oldest := "", time.Time{}
		for id := range live {
			u := c.use[id]
			if u == nil || u.posts > 0 {
				continue
			}
			if victim == "" || u.last.Before(oldest) {
				victim, oldest = id, u.last
			}
		}
		if victim == "" {
			return false
		}
		for ss := range c.s.srv.Sessions() {
			if ss.ID() == victim {
				ss.Close()
				c.evicted++
			}
		}
		delete(live, victim)
		delete(c.use, victim)
		n--
	}
	c.pending++
	return true
}

// busy returns how many sessions have a POST being handled (for tests).
func (c *sessionCap) busy() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, u := range c.use {
		if u.posts > 0 {
			n++
		}
	}
	return n
}

func (c *sessionCap) started(id string, post bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.use[id]
	if u == nil {
		u = &sessionUse{}
		c.use[id] = u
	}
	u.last = time.Now()
	if post {
		u.posts++
	}
}

func (c *sessionCap) ended(id string, post bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.use[id]
	if u == nil {
		return
	}
	u.last = time.Now()
	if post {
		u.posts--
	}
}

// streamCap bounds the GET streams (a session's stream of the server's
// messages) of an HTTP handler: one a session, and limit in all
// (streamCap.wrap).
type streamCap struct {
	s     *Server
	limit int // 0: none
	mu    sync.Mutex
	open  map[string]*getStream // by session id: its newest GET
	n     int                   // the GET streams counted: at most limit
	// replaced counts the GET streams ended by a newer GET of their
	// session (for tests).
	replaced int
}

// getStream is a GET stream being served.
type getStream struct {
	cancel context.CancelCauseFunc // ends its request's context
	rc     *http.ResponseController
	done   chan struct{} // closed once its handler returned
}

// errStreamReplaced ends a GET stream a newer GET of its session replaced.
var errStreamReplaced = errors.New("replaced by a newer GET stream of its session")

// wrap wraps h so that a GET that would open a stream (one with an
// Mcp-Session-Id header naming a live session, an Accept that takes
// text/event-stream and no Last-Event-ID: h refuses any other at once) is
// handled only when it fits: a GET of a session that has a GET stream
// open already ends that older stream (its response ends, and its
// connection is closed) and takes its place; any other opens a stream
// only while fewer than limit are open, else it is refused with HTTP 503
// Service Unavailable, a Retry-After of 1 second and one JSON-RPC error
// (-32000, id null) saying so, and its connection is closed. With limit
// 0 every such GET is refused with HTTP 405 Method Not Allowed (Allow:
// POST, DELETE), as the MCP specification has a server that offers no
// stream answer. The connection of a GET stream is closed when the
// stream ends, so that it does not stay open idle.
func (c *streamCap) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(sessionHeader)
		if r.Method != http.MethodGet || id == "" || rebinding(r) || !acceptsStream(r.Header.Values("Accept")) ||
			len(r.Header.Values("Last-Event-ID")) > 0 || !c.live(id) {
			h.ServeHTTP(w, r) // not a stream: h answers it at once
			return
		}
		if c.limit == 0 {
			w.Header().Set("Allow", "POST, DELETE")
			refuseStream(w, http.StatusMethodNotAllowed, "Method not allowed: this server opens no GET streams (docex mcp --max-connections 1 leaves them no connection): POST requests, and read each reply on its POST's response")
			return
		}
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		me := &getStream{cancel: cancel, rc: http.NewResponseController(w), done: make(chan struct{})}
		c.mu.Lock()
		old := c.open[id]
		if old == nil && c.n >= c.limit {
			c.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			refuseStream(w, http.StatusServiceUnavailable, fmt.Sprintf("Server busy: %d GET streams open, the most there may be (half of docex mcp --max-connections), so that POSTs always have connections: open the stream again once one ends, or read each reply on its POST's response", c.limit))
			return
		}
		if old == nil {
			c.n++
		} else {
			// old's handler has not returned (it takes c.mu first), so
			// its response is still its own.
			old.cancel(errStreamReplaced)
			_ = old.rc.SetWriteDeadline(time.Now()) // a write to a client that does not read ends too
			c.replaced++
		}
		c.open[id] = me // old's place is taken: its end counts nothing
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			if c.open[id] == me {
				delete(c.open, id)
				c.n--
			}
			close(me.done)
			c.mu.Unlock()
		}()
		if old != nil {
			select {
			case <-old.done: // h let old's stream go: this one may take it
			case <-r.Context().Done():
				return
			}
			if ctx.Err() != nil {
				refuseStream(w, http.StatusConflict, "Conflict: a newer GET of this session replaced this one before its stream opened")
				return
			}
		}
		h.ServeHTTP(&closingWriter{ResponseWriter: w}, r.WithContext(ctx))
	})
}

// refuseStream answers a GET streamCap does not let open a stream with
// code, one JSON-RPC error (-32000, id null) of msg, and the closing of
// its connection.
func refuseStream(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(encodeReply(nil, codeSessionsFull, msg))
}

// live reports whether the session of id is live.
func (c *streamCap) live(id string) bool {
	for ss := range c.s.srv.Sessions() {
		if ss.ID() == id {
			return true
		}
	}
	return false
}

// streams returns the GET streams counted and how many were replaced
// (for tests).
func (c *streamCap) streams() (open, replaced int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.replaced
}

// acceptsStream reports whether Accept header values take
// text/event-stream, as the SDK decides it (text/event-stream, text/* or
// */*, parameters aside).
func acceptsStream(values []string) bool {
	for _, v := range values {
		for _, raw := range strings.Split(v, ",") {
			base, _, _ := strings.Cut(raw, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "text/event-stream", "text/*", "*/*":
				return true
			}
		}
	}
	return false
}

// closingWriter is the writer of a GET stream: its response closes its
// connection once it ends ("Connection: close", whatever h sets).
type closingWriter struct {
	http.ResponseWriter
	once sync.Once // the header is set before the first write
}

func (c *closingWriter) closing() {
	c.once.Do(func() { c.Header().Set("Connection", "close") })
}

func (c *closingWriter) WriteHeader(code int) {
	c.closing()
	c.ResponseWriter.WriteHeader(code)
}

func (c *closingWriter) Write(p []byte) (int, error) {
	c.closing()
	return c.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the writer underneath, to flush it.
func (c *closingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// dupCallID returns why msgs, the messages of a POST's body
// (jsonMessages), hold two calls (requests with an id) with the same id,
// as stdio says it of the second (idInUse), or "".
func dupCallID(msgs [][]byte, methods [][][]byte) string {
	if len(msgs) < 2 {
		return ""
	}
	seen := map[any]bool{}
	for i, m := range msgs {
		if len(methods[i]) == 0 {
			continue // a response, or no message
		}
		for _, raw := range members(m, "id") {
			id, ok := callID(raw)
			if !ok {
				continue
			}
			if seen[id.Raw()] {
				return idInUse(id)
			}
			seen[id.Raw()] = true
		}
	}
	return ""
}

// callID returns the id raw (a JSON value badID took: a string, or an
// integer a float64 holds exactly) names.
func callID(raw []byte) (jsonrpc.ID, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return jsonrpc.ID{}, false
	}
	id, err := jsonrpc.MakeID(v)
	return id, err == nil && id.IsValid()
}
