package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultSessionIdle is how long an HTTP session may go without a request
// before the server closes it (docex mcp --session-idle): without a bound
// every initialize would keep a session until the server stops.
const DefaultSessionIdle = 30 * time.Minute

// sessionHeader is the header of the streamable HTTP transport that names
// the session a request belongs to.
const sessionHeader = "Mcp-Session-Id"

// HTTPHandler returns the handler of the streamable HTTP transport for s,
// to serve at /mcp: the SDK's, refusing cross-origin browser requests
// (http.CrossOriginProtection), a POST without a session that is not an
// initialize request (requireSession) and a request body larger than
// maxBody bytes (HTTP 413), and giving every error reply a JSON-RPC code
// (HTTPErrorCodes), and a POST holding a batch of more than 1,024
// messages or a message whose id the SDK would not answer with exactly
// (exactIDs). A session that receives no request
// for idle is closed (its id then gets HTTP 404, and the client
// initializes again);
// 0 keeps sessions until the client deletes them or the server stops.
func (s *Server) HTTPHandler(maxBody int64, idle time.Duration) http.Handler {
	return s.HTTPHandlerWith(HTTPOptions{MaxBody: maxBody, Idle: idle})
}

// HTTPHandlerWith is HTTPHandler bounding also the request bodies being
// handled at once (inflight: o.MaxInflightBytes), how long a body may
// take to arrive (o.BodyTimeout, o.BodyStall), the live sessions (sessionCap:
// o.MaxSessions), the calls handled at once (countedCall: o.MaxCalls)
// and the GET streams open (streamCap: one a session, o.MaxStreams in
// all), and refusing a batch holding two calls with one id
// (exactIDs).
func (s *Server) HTTPHandlerWith(o HTTPOptions) http.Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxInflightBytes <= 0 {
		o.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.BodyStall <= 0 {
		o.BodyStall = DefaultBodyStall
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = DefaultMaxCalls
	}
	switch {
	case o.MaxStreams == 0:
		o.MaxStreams = DefaultMaxStreams
	case o.MaxStreams < 0:
		o.MaxStreams = 0
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.srv }, &mcp.StreamableHTTPOptions{
		MaxRequestBodyBytes: o.MaxBody,
		SessionTimeout:      o.Idle,
	})
	s.inflightBytes = &budget{limit: o.MaxInflightBytes}
	s.calls = &budget{limit: int64(o.MaxCalls)}
	s.sessions = &sessionCap{s: s, limit: o.MaxSessions, use: map[string]*sessionUse{}}
	s.streams = &streamCap{s: s, limit: o.MaxStreams, open: map[string]*getStream{}}
	return http.NewCrossOriginProtection().Handler(s.inflight(exactIDs(requireSession(s.streams.wrap(s.sessions.wrap(HTTPErrorCodes(s.postCalls(protocolErrors(h))))), o.MaxBody), o.MaxBody), s.inflightBytes, o.MaxBody, o.BodyTimeout, o.BodyStall))
}

// protocolErrors wraps h, the SDK's streamable HTTP handler, so that a
// POST whose body is one JSON object the SDK refuses with HTTP 400 and a
// line of text (a protocol mistake it finds before handling the message:
// checkRequest, readBatch) is answered as stdio answers the message
// instead: a message that is no JSON-RPC message (invalidMessage: a
// "jsonrpc" other than "2.0", ...) with HTTP 200 and a JSON-RPC error,
// -32600, with its id (usableID, else null); a call of a method the
// server does not have with HTTP 200 and -32601 (method not found:
// "..."), with its id; a call the SDK refuses otherwise (a notification's
// method with an id, a missing params) with HTTP 200 and -32600 with the
// SDK's text, with its id; a notification (an unknown one, or a method
// of a call without an id) with HTTP 202 Accepted and no body, as stdio
// ignores it. Any other answer of h (a batch's, a body that is not JSON)
// is sent as h made it.
func protocolErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		rb, ok := r.Body.(*readBody)
		if !ok || rb.read {
			h.ServeHTTP(w, r)
			return
		}
		msg := bytes.TrimSpace(rb.b)
		if len(msg) == 0 || msg[0] != '{' || !json.Valid(msg) {
			h.ServeHTTP(w, r)
			return
		}
		cw := &refusalWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if !cw.captured {
			return
		}
		text := strings.TrimSpace(cw.buf.String())
		reply := sdkRefusalReply(msg, text)
		hdr := w.Header()
		hdr.Del("X-Content-Type-Options")
		switch {
		case reply == nil:
			w.WriteHeader(http.StatusBadRequest)
			w.Write(cw.buf.Bytes())
		case len(reply) == 0:
			hdr.Del("Content-Type")
			w.WriteHeader(http.StatusAccepted)
		default:
			hdr.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write(reply)
		}
	})
}

// sdkRefusalReply returns the reply protocolErrors sends for msg, one
// JSON object, that the SDK refused with text: a JSON-RPC error, an empty
// reply for a notification (HTTP 202), or nil to send the SDK's refusal.
func sdkRefusalReply(msg []byte, text string) []byte {
	reason, m := invalidMessage(msg)
	if reason != "" {
		return encodeReply(usableID(msg), jsonrpc.CodeInvalidRequest, "Invalid request: "+reason)
	}
	req, ok := m.(*jsonrpc.Request)
	switch {
	case !ok:
		return nil
	case !req.IsCall():
		return []byte{}
	case strings.HasPrefix(text, "JSON RPC not handled"):
		return encodeReply(usableID(msg), jsonrpc.CodeMethodNotFound, fmt.Sprintf("method not found: %q", req.Method))
	case strings.HasPrefix(text, "invalid request: "):
		return encodeReply(usableID(msg), jsonrpc.CodeInvalidRequest, text)
	}
	return nil
}

// refusalWriter holds back an HTTP 400 answer in text (http.Error's), for
// protocolErrors to rewrite: captured says it did, buf holds its text.
type refusalWriter struct {
	http.ResponseWriter
	started  bool
	captured bool
	buf      bytes.Buffer
}

func (c *refusalWriter) WriteHeader(code int) {
	if !c.started && code == http.StatusBadRequest && strings.HasPrefix(c.Header().Get("Content-Type"), "text/plain") {
		c.started, c.captured = true, true
		return
	}
	c.started = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *refusalWriter) Write(p []byte) (int, error) {
	if c.captured {
		return c.buf.Write(p)
	}
	c.started = true
	return c.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the writer underneath, to flush it.
func (c *refusalWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// postHeader is the request header under which postCalls names the POST
// a request came in, for the middleware (the SDK hands a request's HTTP
// header to its handler, RequestExtra.Header): a client's own is
// replaced (or removed, on another method).
const postHeader = "X-Docex-Post"

// postCalls wraps h so that the calls of a POST (requests with an id:
// tools/call, resources/read, ...) run with a context that ends when the
// POST's does (bound): the client went away (closed its connection).
// The SDK runs a session's calls with the session's context, which a
// client that disconnects does not end: the engine call would run its
// course (run_pipeline's wait up to 60 s, an add_document) for a reply
// nobody reads. A POST ending once each of its calls is answered ends
// none.
func (s *Server) postCalls(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			r.Header.Del(postHeader)
			h.ServeHTTP(w, r)
			return
		}
		s.serving.enter()
		defer s.serving.leave()
		id := strconv.FormatUint(s.postSeq.Add(1), 10)
		p := &post{ctx: r.Context(), changed: make(chan struct{})}
		s.posts.Store(id, p)
		defer s.posts.Delete(id)
		r.Header.Set(postHeader, id)
		h.ServeHTTP(&postWriter{ResponseWriter: w, p: p}, r)
	})
}

// maxPostCalls is how many calls of one POST may run or wait for their
// reply to be written at once: a call starts once fewer do (post.start).
const maxPostCalls = 16

// post is a POST being served (postCalls): its context, and what starting
// its calls waits for.
type post struct {
	ctx     context.Context
	mu      sync.Mutex
	held    int           // its calls that run or whose reply is not written yet
	changed chan struct{} // closed (and replaced) when held drops
}

// start waits until a call of p may start: fewer than maxPostCalls of its
// calls run or wait for their reply to be written (a client that does not
// read its response stream blocks the writes: the calls that run end,
// their replies wait, and no other starts). It counts the call, and
// returns nil; or the cause of ctx's end when ctx ends first.
func (p *post) start(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.held < maxPostCalls {
			p.held++
			p.mu.Unlock()
			return nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// written notes that a reply was written to p's response: one call less
// is held (a reply the SDK made without the call passing start, such as
// its refusal of an unknown method, frees one too, as the client took
// it; none is held less than 0).
func (p *post) written() {
	p.mu.Lock()
	if p.held > 0 {
		p.held--
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// postWriter notes in p each reply written to the POST's response.
type postWriter struct {
	http.ResponseWriter
	p *post
}

func (w *postWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	if err == nil && isReply(b) {
		w.p.written()
	}
	return n, err
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *postWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// replyStart is how the SDK's encoding of a JSON-RPC response or request
// with an id begins.
const replyStart = `{"jsonrpc":"2.0","id":`

// isReply reports whether b, an event the SDK writes (or a JSON body),
// holds a response: after its id comes "result" or "error", not "method"
// (a request of the server's). A string id has no unescaped quote, so
// its end is found.
func isReply(b []byte) bool {
	i := bytes.Index(b, []byte(replyStart))
	if i < 0 {
		return false
	}
	rest := b[i+len(replyStart):]
	j := 0
	if len(rest) > 0 && rest[0] == '"' {
		for j = 1; j < len(rest) && rest[j] != '"'; j++ {
			if rest[j] == '\\' {
				j++
			}
		}
		j++
	} else {
		for j < len(rest) && rest[j] != ',' && rest[j] != '}' {
			j++
		}
	}
	if j > len(rest) {
		return false
	}
	rest = rest[j:]
	return bytes.HasPrefix(rest, []byte(`,"result"`)) || bytes.HasPrefix(rest, []byte(`,"error"`))
}

// posting counts the POSTs being served, for CancelCalls to wait for.
type posting struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (p *posting) enter() {
	p.mu.Lock()
	if p.n == 0 {
		p.idle = make(chan struct{})
	}
	p.n++
	p.mu.Unlock()
}

func (p *posting) leave() {
	p.mu.Lock()
	if p.n--; p.n == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// wait returns nil once no POST is being served, or ctx's error when ctx
// ends first.
func (p *posting) wait(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	n := p.n
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bound returns ctx, that of a call req (a request with an id) of
// method, ending also when CancelCalls is called and, for a call that
// came in a POST still being served (postCalls), when the POST's context
// ends, once the call may start (post.start: its reply, once written,
// frees its place; and, for a call of a method countedCall counts, once
// fewer than Config.MaxCalls (over HTTP, HTTPOptions.MaxCalls) of those
// are handled: its
// end frees its place); and a func to call once the call is handled. It
// returns the cause of the context's end when that ends before the call
// may start (the func is then nil).
func (s *Server) bound(ctx context.Context, method string, req mcp.Request) (context.Context, func(), error) {
	ctx, cancel := context.WithCancelCause(ctx)
	var stops []func() bool
	if s.stop != nil { // nil in a Server not made by New
		stops = append(stops, context.AfterFunc(s.stop, func() { cancel(context.Cause(s.stop)) }))
	}
	var p *post
	if extra := req.GetExtra(); extra != nil && extra.Header != nil {
		if v, ok := s.posts.Load(extra.Header.Get(postHeader)); ok {
			p = v.(*post)
			stops = append(stops, context.AfterFunc(p.ctx, func() { cancel(context.Cause(p.ctx)) }))
		}
	}
	unbind := func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
	}
	if p != nil {
		if err := p.start(ctx); err != nil {
			unbind()
			return nil, nil, err
		}
	}
	if calls := s.calls; calls != nil && countedCall(method) {
		if err := calls.acquire(ctx, nil, 1); err != nil {
			unbind()
			return nil, nil, err
		}
		unbound := unbind
		unbind = func() {
			calls.release(1)
			unbound()
		}
	}
	return ctx, unbind, nil
}

// exactIDs wraps h so that a JSON POST (in a session or not) is refused
// with HTTP 400 Bad Request and one JSON-RPC error (-32600, id null), and
// h never sees any of it, when its body is a batch of more than
// maxBatchMessages (1,024) messages (stdio's message, "or one message per
// POST"; the SDK takes a batch of any size and runs all its calls at
// once), or holds a message whose id is null or no id the SDK answers
// with exactly (see badID: a fraction, an exponent, an integer past
// 2^53-1, -0), the body's one message or any message of a batch (with
// the reason stdio gives; the SDK, which reads a number as a float64,
// would answer under another id, 1.5 as 1, and take id null for a
// notification). A notifications/cancelled whose requestId names no call
// there can be reaches h with a null requestId, and cancels nothing (see
// nullInexactCancels). Any other body reaches h as it came. A body larger
// than maxBody bytes is refused with HTTP 413, as h refuses it; a
// rebinding and a body of another type are left to h (403, 415).
func exactIDs(h http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || rebinding(r) {
			h.ServeHTTP(w, r)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			h.ServeHTTP(w, r)
			return
		}
		body, ok := bodyBytes(w, r, maxBody)
		if !ok {
			return
		}
		msgs, ok := jsonMessages(body)
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write(encodeReply(nil, jsonrpc.CodeInvalidRequest, batchTooLarge("one message per POST")))
			return
		}
		if reason := badIDs(msgs); reason != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write(encodeReply(nil, jsonrpc.CodeInvalidRequest, "Invalid request: "+reason))
			return
		}
		methods := messageMethods(msgs)
		if reason := dupCallID(msgs, methods); reason != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write(encodeReply(nil, jsonrpc.CodeInvalidRequest, "Invalid request: "+reason))
			return
		}
		r.Body = &readBody{b: nullInexactCancels(body, msgs, methods)}
		if calls := toolCallIDs(msgs, methods); len(calls) > 0 {
			r = r.WithContext(context.WithValue(r.Context(), toolCallsKey{}, calls))
		}
		h.ServeHTTP(w, r)
	})
}

// nullInexactCancels returns body, a POST's, with the requestId of each
// notifications/cancelled (the body's one message or any message of a
// batch) that names no call there can be (see cancelledID: a fraction, an
// exponent, an integer past 2^53-1, -0, no string or number) made null,
// which the SDK takes for no id and cancels nothing with: it would read
// 4.5 as a float64 and cancel call 4. Each params member of such a
// message is looked at, and every requestId member of one that names no
// call is made null. msgs are body's messages (jsonMessages(body): its
// sub-slices, whose places in body are known by their capacity), methods
// their method members (messageMethods). body itself
// is returned when no message needs it (or body is not JSON: the SDK
// refuses it), else a new body.
func nullInexactCancels(body []byte, msgs [][]byte, methods [][][]byte) []byte {
	var nulls [][]byte // requestId values to make null: sub-slices of body, in order
	for i, m := range msgs {
		if !slices.ContainsFunc(methods[i], func(v []byte) bool { return named(v, "notifications/cancelled") }) {
			continue
		}
		for _, params := range members(m, "params") {
			if _, _, ok := cancelledID(&jsonrpc.Request{Params: params}); !ok {
				nulls = append(nulls, members(params, "requestId")...)
			}
		}
	}
	if len(nulls) == 0 {
		return body
	}
	out := make([]byte, 0, len(body)+4*len(nulls))
	done := 0 // the bytes of body copied to out
	for _, v := range nulls {
		at := cap(body) - cap(v) // v is body[at:at+len(v)]
		out = append(append(out, body[done:at]...), "null"...)
		done = at + len(v)
	}
	return append(out, body[done:]...)
}

// messageMethods returns the method members of each of msgs (a POST's
// messages, jsonMessages): none for a message that is no JSON object.
func messageMethods(msgs [][]byte) [][][]byte {
	methods := make([][][]byte, len(msgs))
	for i, m := range msgs {
		if m[0] == '{' {
			methods[i] = members(m, "method")
		}
	}
	return methods
}

// toolCallsKey is the key of a POST's context under which exactIDs puts
// the ids of its tools/call requests (toolCallIDs), for cancelledReply.
type toolCallsKey struct{}

// toolCallIDs returns the ids of the tools/call requests among msgs, a
// POST's messages (jsonMessages) with their method members (methods), as
// the SDK's replies carry them; nil when there is none.
func toolCallIDs(msgs [][]byte, methods [][][]byte) map[jsonrpc.ID]bool {
	var ids map[jsonrpc.ID]bool
	for i, m := range msgs {
		if len(methods[i]) != 1 || !named(methods[i][0], "tools/call") {
			continue
		}
		for _, raw := range members(m, "id") {
			var v any
			if json.Unmarshal(raw, &v) != nil {
				continue
			}
			if id, err := jsonrpc.MakeID(v); err == nil && id.IsValid() {
				if ids == nil {
					ids = make(map[jsonrpc.ID]bool)
				}
				ids[id] = true
			}
		}
	}
	return ids
}

// jsonMessages returns the JSON values body, a POST's, holds: body
// without the space around it when it is a JSON value other than an
// array, the elements of a JSON array (a batch), or nil when body is not
// JSON: sub-slices of body. It returns false when body is a batch of more
// than maxBatchMessages elements (none of them is returned).
func jsonMessages(body []byte) ([][]byte, bool) {
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return nil, true
	}
	if body[0] != '[' {
		return [][]byte{body}, true
	}
	return elements(body, maxBatchMessages)
}

// badIDs returns why msgs, the messages of a POST's body (jsonMessages),
// hold a message with an id that badID refuses (the first such of a
// batch), or "". A body that is not JSON is left to the SDK (or
// requireSession) to refuse.
func badIDs(msgs [][]byte) string {
	for _, m := range msgs {
		if m[0] == '{' {
			if reason := badID(m); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// bodyBytes returns r's body, at most maxBody bytes: read whole (into a
// buffer of its Content-Length when it has one, so that a large body is
// not copied as it grows), or, when it is a readBody not read yet, its
// bytes as they are. When it cannot, it answers (HTTP 413 for a body
// larger, else 400) and returns false.
func bodyBytes(w http.ResponseWriter, r *http.Request, maxBody int64) ([]byte, bool) {
	if rb, ok := r.Body.(*readBody); ok && !rb.read {
		return rb.b, true
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= maxBody {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // ReadFrom asks for MinRead bytes free before its last read
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, fmt.Sprintf("reading the request body: %v", err), http.StatusBadRequest)
		return nil, false
	}
	return buf.Bytes(), true
}

// readBody is a request body read already (bodyBytes), handed on as
// bytes: a wrapper after the first takes them as they are, and the SDK,
// which reads the body into a copy of its own, reads them; at the end of
// b (or when closed) it lets b go, so that the body is not held twice
// while the SDK handles it.
type readBody struct {
	b    []byte
	read bool // Read was called
}

func (rb *readBody) Read(p []byte) (int, error) {
	rb.read = true
	if len(rb.b) == 0 {
		rb.b = nil
		return 0, io.EOF
	}
	n := copy(p, rb.b)
	if rb.b = rb.b[n:]; len(rb.b) == 0 {
		rb.b = nil
	}
	return n, nil
}

func (rb *readBody) Close() error {
	rb.b = nil
	return nil
}

// versionHeader is the header of the streamable HTTP transport that names
// the protocol version of a request; newProtocol is the first version
// without sessions (SEP-2575), which h answers itself (a server with
// sessions refuses its calls saying which versions it supports).
const (
	versionHeader = "Mcp-Protocol-Version"
	newProtocol   = "2026-07-28"
)

// requireSession wraps h so that a POST without an Mcp-Session-Id header
// reaches h only when its body holds an initialize request (or, for
// clients of protocol 2026-07-28 and later, which h answers itself, a
// request whose _meta names a protocol version, or a POST whose
// Mcp-Protocol-Version header is one of those), or when h
// refuses it anyway (a DNS rebinding: a loopback address reached with
// another Host, 403): any other is
// refused with HTTP 400 Bad Request, as the MCP specification asks of a
// server that requires sessions, and a JSON-RPC error body (-32600, or
// -32700 for a body that is not JSON-RPC), and h never sees it. The SDK
// would connect a session for it, answer it (a call with an error, ping
// and logging/setLevel with a result) and close the session again. A body
// larger than maxBody bytes is refused with HTTP 413, as h refuses it.
func requireSession(h http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get(sessionHeader) != "" || rebinding(r) || r.Header.Get(versionHeader) >= newProtocol {
			h.ServeHTTP(w, r) // h refuses a rebinding (403) before connecting anything
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			h.ServeHTTP(w, r) // h refuses it (415) before connecting anything
			return
		}
		body, ok := bodyBytes(w, r, maxBody)
		if !ok {
			return
		}
		id, sdks, err := peekInitialize(body)
		if trimmed := bytes.TrimSpace(body); sdks && len(trimmed) > 0 && trimmed[0] == '[' {
			if v := r.Header.Get(versionHeader); v >= batchlessProtocol {
				// The SDK refuses a batch so in a session, but not one
				// holding initialize without a session.
				http.Error(w, fmt.Sprintf("JSON-RPC batching is not supported in %s and later (request version: %s)", batchlessProtocol, v), http.StatusBadRequest)
				return
			}
		}
		if sdks {
			r.Body = &readBody{b: body}
			h.ServeHTTP(w, r)
			return
		}
		code, msg := int64(jsonrpc.CodeInvalidRequest), "Bad Request: no Mcp-Session-Id header: a POST without one must be an initialize request; send initialize first, then the Mcp-Session-Id its response gives with every request"
		if err != nil {
			code, msg = jsonrpc.CodeParseError, fmt.Sprintf("Bad Request: no Mcp-Session-Id header, and the body is not a JSON-RPC message: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(encodeReply(id, code, msg))
	})
}

// batchlessProtocol is the first protocol version without JSON-RPC
// batches.
const batchlessProtocol = "2025-06-18"

// rebinding reports whether r reached a loopback address with a Host
// header that is not a loopback one, which h refuses (403) as a DNS
// rebinding.
func rebinding(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && local != nil && loopback(local.String()) && !loopback(r.Host)
}

// loopback reports whether addr (host or host:port) is localhost or a
// loopback IP address, as the SDK decides it for its DNS rebinding check.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// peekInitialize reports whether body, a JSON-RPC message or a batch of
// them, holds a request h must see without a session: initialize, or one
// whose params' _meta names a protocol version
// (io.modelcontextprotocol/protocolVersion). It returns the id to answer a refusal
// with: the call's when body is one call with a string or integer id,
// else nil (null); and an error when body is not JSON-RPC.
func peekInitialize(body []byte) (json.RawMessage, bool, error) {
	body = bytes.TrimSpace(body)
	raws := []json.RawMessage{body}
	if len(body) > 0 && body[0] == '[' {
		// Into a new slice: a RawMessage element is decoded into the
		// memory it holds, and body's would be overwritten.
		raws = nil
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, false, err
		}
	}
	for _, raw := range raws {
		m, err := jsonrpc.DecodeMessage(raw)
		if err != nil {
			return nil, false, err
		}
		if req, ok := m.(*jsonrpc.Request); ok && (req.Method == "initialize" || metaVersion(req.Params)) {
			return nil, true, nil
		}
	}
	if len(raws) != 1 {
		return nil, false, nil
	}
	if m, _ := jsonrpc.DecodeMessage(body); m != nil {
		if req, ok := m.(*jsonrpc.Request); ok && req.IsCall() {
			return usableID(body), false, nil
		}
	}
	return nil, false, nil
}

// HTTPErrorCodes wraps h, the SDK's streamable HTTP handler, so that no
// error reply it sends has code 0, which JSON-RPC does not have: the one
// the SDK sends so, refusing a call before initialize (in a batch without
// a session, ahead of its initialize: requireSession refuses a POST
// without one), is sent as an invalid request (-32600), as over stdio
// (withCode). A call the client cancelled before its handler started
// (the SDK then answers with code 0, "context canceled") is answered as
// one cancelled while it ran (cancelledReply). Each event of a response
// stream is written whole (one Write), and flushed as h flushes it.
func HTTPErrorCodes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tools, _ := r.Context().Value(toolCallsKey{}).(map[jsonrpc.ID]bool)
		h.ServeHTTP(&codedWriter{ResponseWriter: w, tools: tools}, r)
	})
}

// codedWriter rewrites the error replies with code 0 of the events h
// writes to a text/event-stream response: the SDK's reply to a call
// cancelled before its handler started (jsonrpc2 answers it with the
// context's error, "context canceled", before any middleware) as
// cancelledReply, any other as withCode.
type codedWriter struct {
	http.ResponseWriter
	tools map[jsonrpc.ID]bool // the ids of the POST's tools/call requests (toolCallIDs)
}

// cancelledReply returns the reply to the call of id, cancelled by the
// client (notifications/cancelled) before its handler started, as the
// server answers a call cancelled while it runs: for a tools/call (tool
// true), a tool error ("interrupted: context canceled. The call was
// cancelled."); for any other, the JSON-RPC error rpcError makes of it
// (-32603, the same text, data code and kind interrupted). It returns
// nil if it cannot encode it.
func cancelledReply(id jsonrpc.ID, tool bool) []byte {
	err := asInterrupted(context.Canceled)
	code, msg, hint := (&Server{}).explain(err) // a cancellation's hint names no part of the server
	text := errorText(code, msg, hint)
	resp := &jsonrpc.Response{ID: id}
	if tool {
		res, merr := json.Marshal(&mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, IsError: true})
		if merr != nil {
			return nil
		}
		resp.Result = res
	} else {
		kind := kindOf(err)
		resp.Error = wireError(codeOfKind(kind), text, errorData{Code: code, Kind: kind, Hint: hint})
	}
	data, merr := jsonrpc.EncodeMessage(resp)
	if merr != nil {
		return nil
	}
	return data
}

// codeZero is how the SDK encodes an error reply of code 0. Inside a JSON
// string a quote is escaped, so the text of a document or message cannot
// hold it: only an error object can.
const codeZero = `"error":{"code":0,`

func (c *codedWriter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(codeZero)) || c.Header().Get("Content-Type") != "text/event-stream" {
		return c.ResponseWriter.Write(p)
	}
	lines := bytes.Split(p, []byte{'\n'})
	for i, line := range lines {
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok || !bytes.Contains(data, []byte(codeZero)) {
			continue
		}
		m, err := jsonrpc.DecodeMessage(data)
		r, ok := m.(*jsonrpc.Response)
		if err != nil || !ok {
			continue
		}
		var coded []byte
		if we := (*jsonrpc.Error)(nil); errors.As(r.Error, &we) && we.Code == 0 && we.Message == context.Canceled.Error() {
			coded = cancelledReply(r.ID, c.tools[r.ID])
		} else {
			coded = withCode(r)
		}
		if coded != nil {
			lines[i] = append([]byte("data: "), coded...)
		}
	}
	if _, err := c.ResponseWriter.Write(bytes.Join(lines, []byte{'\n'})); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap gives http.ResponseController the writer underneath, to flush it.
func (c *codedWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// metaVersion reports whether params, a request's, has a _meta naming a
// protocol version (io.modelcontextprotocol/protocolVersion).
func metaVersion(params json.RawMessage) bool {
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return false
	}
	_, ok := p.Meta[mcp.MetaKeyProtocolVersion]
	return ok
}
