package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/quote"
	"github.com/docex-dev/docex/internal/spell"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Origin is the audit origin of every call made through MCP: operations
// are audited as "mcp.document.add", "mcp.document.read", ...
const Origin = "mcp"

// extraProps finds the arguments a tool's schema refused as unknown in the
// SDK's message: `unexpected additional properties ["meta"]`.
var extraProps = regexp.MustCompile(`unexpected additional properties \[(.*?)\]`)

// cacheScope is the cacheScope of every result that has one: only the
// requesting user's client may cache it (the SDK's default is "public").
const cacheScope = "private"

// Defaults of Config.
const (
	DefaultMaxInlineBytes   = 8 << 20  // add_document text or decoded base64
	DefaultReadBytes        = 16 << 10 // read_document page when max_bytes is not given
	DefaultMaxReadBytes     = 64 << 10 // largest read_document page
	DefaultMaxResourceBytes = 1 << 20  // a document read as a resource
	MinReadBytes            = 16       // smallest read_document page
)

// VerifyReadBytes is the size up to which read_document and a document
// resource read a document's whole content, to check it against its
// checksum, whatever part of it they return. Larger content is checked
// by the page that reaches its end only (read_document's verified).
const VerifyReadBytes = 4 << 20

// Config configures a Server. The zero value is usable: no path access and
// the documented limits.
type Config struct {
	// AllowPath is the only directory add_document may read files from
	// (its "path" argument); default "": adding from a path is refused.
	// Paths are resolved inside it, symlinks included: nothing outside it
	// can be read, whatever the path or the links say.
	AllowPath string

	// Protected are docex's own files and directories: its configuration
	// file, data_dir, the databases, the content store, caches. AllowPath
	// may contain them (a home directory), but add_document refuses a path
	// that is one of them or lies inside one, by name once symlinks are
	// resolved, and by device and inode (a bind mount of a protected
	// directory, a hard link to a protected file or, on Unix, to a file
	// inside a protected directory); New refuses an AllowPath inside one.
	Protected []ProtectedPath

	// MaxInlineBytes bounds the content add_document accepts as text or as
	// base64 (decoded), default DefaultMaxInlineBytes. Keep it well under
	// the stdio transport's 16 MiB message limit; larger files belong in
	// AllowPath. The engine's own MaxDocumentBytes applies as well.
	MaxInlineBytes int64

	// MaxReadBytes is the largest page read_document returns, default
	// DefaultMaxReadBytes (a page is DefaultReadBytes unless the call asks
	// for another size).
	MaxReadBytes int

	// MaxResourceBytes bounds a document read as a docex:// resource,
	// default DefaultMaxResourceBytes; longer content is cut there and the
	// result's _meta says so (read_document pages through the rest).
	MaxResourceBytes int

	// Worker tells the model that this process runs pipeline jobs (the
	// caller runs an engine.Worker); it changes descriptions only.
	Worker bool

	// Version is the server version reported to clients (default "dev").
	Version string

	// MaxCalls bounds the calls that reach the engine (tools/call,
	// resources/read, resources/list) handled at once over the stdio
	// transport, the calls of a batch (DefaultMaxCalls when 0): the rest
	// wait, in order, cancellable (countedCall). HTTPOptions.MaxCalls is
	// the bound over HTTP.
	MaxCalls int

	// Logger receives diagnostics such as a recovered panic (default:
	// discarded), and the MCP SDK's, of which a client's protocol mistakes
	// (a call before initialize) at Info, not ERROR. Never stdout: that is
	// the stdio transport.
	Logger *slog.Logger
}

// loggingLevels are the levels of logging/setLevel (MCP's, RFC 5424's).
var loggingLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// Server is an MCP server for one user context.
type Server struct {
	eng     *engine.Engine
	uc      docex.UserContext
	s       *engine.Session // tagged "mcp", audits reads
	cfg     Config
	root    *os.Root // AllowPath, or nil
	rootDir []string // AllowPath as given (absolute) and with symlinks resolved
	srv     *mcp.Server
	log     *slog.Logger
	schemas jsonschema.ForOptions
	initErr error // a tool whose schema could not be built
	// inputs are the tools' input schemas by name (set by addTool while
	// New runs, read only after): a call with arguments the schema
	// refuses is told what the tool takes.
	inputs map[string]*jsonschema.Schema
	// posts are the POSTs being served over HTTP (*post), by the id
	// postCalls gives each (postSeq counts them).
	posts   sync.Map
	postSeq atomic.Uint64
	serving posting // the POSTs being served (postCalls)
	// inflightBytes, sessions and streams are the bounds of the last
	// handler HTTPHandlerWith made (for tests).
	inflightBytes *budget
	sessions      *sessionCap
	streams       *streamCap
	// calls bounds the calls handled at once (bound): Config.MaxCalls,
	// or over HTTP HTTPOptions.MaxCalls.
	calls *budget
	// stop ends when CancelCalls is called: every call runs with a
	// context that ends with it (bound).
	stop       context.Context
	cancelStop context.CancelFunc
}

// New returns a server acting as uc on eng. It does no I/O on the engine
// (Check does); it returns a docex.ErrInvalid error for an AllowPath that
// is not a readable directory or lies inside a Protected directory.
func New(eng *engine.Engine, uc docex.UserContext, cfg Config) (*Server, error) {
	if cfg.MaxInlineBytes <= 0 {
		cfg.MaxInlineBytes = DefaultMaxInlineBytes
	}
	if cfg.MaxReadBytes <= 0 {
		cfg.MaxReadBytes = DefaultMaxReadBytes
	}
	cfg.MaxReadBytes = max(cfg.MaxReadBytes, MinReadBytes)
	if cfg.MaxResourceBytes <= 0 {
		cfg.MaxResourceBytes = DefaultMaxResourceBytes
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = DefaultMaxCalls
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	uc.Roles = append([]string(nil), uc.Roles...) // the caller's slice cannot change it later
	s, err := eng.AsWith(uc, engine.SessionOptions{Origin: Origin, AuditReads: true})
	if err != nil {
		return nil, err
	}
	srv := &Server{eng: eng, uc: uc, s: s, cfg: cfg, log: log, calls: &budget{limit: int64(cfg.MaxCalls)}}
	srv.stop, srv.cancelStop = context.WithCancel(context.Background())
	if cfg.AllowPath != "" {
		if err := srv.openRoot(cfg.AllowPath); err != nil {
			return nil, err
		}
	}
	srv.schemas = jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[docex.Value](): {Types: []string{"string", "number", "boolean"}},
	}}
	srv.srv = mcp.NewServer(&mcp.Implementation{Name: "docex", Title: "docex document engine", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: srv.instructions(),
		Logger:       slog.New(sdkLogHandler{log.Handler()}),
		HasTools:     true,
		HasResources: true,
		// Every result is for this server's one user: resources/read of
		// tenant data, the lists, the instructions naming the user.
		SetCacheable: func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) { c.CacheScope = cacheScope },
	})
	srv.srv.AddReceivingMiddleware(srv.middleware)
	srv.addTools()
	srv.addPipelineTools()
	srv.addResources()
	if srv.initErr != nil {
		srv.Close()
		return nil, srv.initErr
	}
	return srv, nil
}

func (s *Server) openRoot(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return docex.Errorf(docex.ErrInvalid, "allowed path %s: %v", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return docex.Errorf(docex.ErrInvalid, "allowed path %s: %v", dir, err)
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return docex.Errorf(docex.ErrInvalid, "allowed path %s is not a directory", dir)
	}
	if err := s.checkAllowedDir(dir, []string{abs, real}); err != nil {
		return err
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return docex.Errorf(docex.ErrInvalid, "allowed path %s: %v", dir, err)
	}
	s.root, s.rootDir = root, []string{abs, real}
	return nil
}

// MCP returns the SDK server, to connect to a transport.
func (s *Server) MCP() *mcp.Server { return s.srv }

// Run serves one session on t (stdio) until the client ends it or ctx
// ends. It returns nil when ctx ends: the session is closed and, unlike
// the SDK's Server.Run, nothing is logged, since that is a normal stop.
// Otherwise it returns the error of connecting to t, or the one the
// session ended with (nil for a clean end).
func (s *Server) Run(ctx context.Context, t mcp.Transport) error {
	ss, err := s.srv.Connect(ctx, t, nil)
	if err != nil {
		return err
	}
	ended := make(chan error, 1)
	go func() { ended <- ss.Wait() }()
	select {
	case err := <-ended:
		return err
	case <-ctx.Done():
		ss.Close()
		<-ended
		return nil
	}
}

// UserContext returns the identity every call runs as.
func (s *Server) UserContext() docex.UserContext { return s.uc }

// Check verifies, before serving, that the identity may use the tenant:
// a user is given, the tenant exists, is active and is not the bootstrap
// tenant, and the roles allow reading. It returns the engine's error
// (docex.ErrDenied or docex.ErrInvalid kinds) otherwise; a denial is
// audited as "mcp.basket.list".
func (s *Server) Check(ctx context.Context) error {
	probe, err := s.eng.AsWith(s.uc, engine.SessionOptions{Origin: Origin})
	if err != nil {
		return err
	}
	_, err = probe.Baskets(ctx, docex.Page{Limit: 1})
	return err
}

// CancelCalls cancels every call that runs, and every call made after
// it: each ends as a call its client cancelled does (a tool error ending
// "The call was cancelled.", or the interrupted JSON-RPC error), and is
// answered. It then waits until no POST is being served over HTTP
// (HTTPHandler: a POST ends once each of its calls is answered), and
// returns nil, or ctx's error when ctx ends first. A server that stops
// serving calls it before it closes its sessions, which wait for their
// calls to end and drop the replies not written yet.
func (s *Server) CancelCalls(ctx context.Context) error {
	if s.cancelStop != nil {
		s.cancelStop()
	}
	return s.serving.wait(ctx)
}

// Close releases the allowed directory, and cancels the calls that run
// (CancelCalls). Connected sessions end with their transports.
func (s *Server) Close() error {
	if s.cancelStop != nil {
		s.cancelStop()
	}
	if s.root != nil {
		return s.root.Close()
	}
	return nil
}

func (s *Server) instructions() string {
	var b strings.Builder
	fmt.Fprintf(&b, "docex stores documents in baskets. You act as user %q", s.uc.UserID)
	if s.uc.TenantID != "" {
		fmt.Fprintf(&b, " of tenant %q", s.uc.TenantID)
	}
	fmt.Fprintf(&b, " with roles %s; this identity is fixed. ", rolesText(s.uc.Roles))
	b.WriteString("Start with list_baskets; find documents with find_documents (metadata key=value) or list_documents; " +
		"read text page by page with read_document (follow next_offset). Ids are opaque: use the ones tools return.")
	if s.root != nil {
		b.WriteString(" add_document can read files under " + s.rootDir[0] + ".")
	}
	return b.String()
}

func rolesText(roles []string) string {
	if len(roles) == 0 {
		return "(none)"
	}
	return strings.Join(roles, ",")
}

// middleware serves resources/list from the engine, turns a panic in any
// handler into an error result (the process keeps serving), and gives
// every error of a request a JSON-RPC error code: the SDK sends any
// other error with code 0, which JSON-RPC does not have. A panic is an
// internal error (-32603, data {"code": "internal", "kind": "internal"})
// or, in tools/call, an error result; the SDK's refusal of a second
// initialize is an invalid request (-32600); any other error that is no
// JSON-RPC error is rpcError's. A call (any request but a notification)
// runs with a context that CancelCalls ends, and over HTTP the end of its
// POST (bound).
func (s *Server) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (res mcp.Result, err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			s.log.Error("mcp: recovered from a panic", "method", method, "panic", p, "stack", string(debug.Stack()))
			perr := fmt.Errorf("internal error: the server failed on this call (%v); it is still serving, other calls work", p)
			if method == "tools/call" {
				r := &mcp.CallToolResult{}
				r.SetError(perr)
				res, err = r, nil
				return
			}
			res, err = nil, wireError(jsonrpc.CodeInternalError, perr.Error(), errorData{Code: "internal", Kind: "internal"})
		}()
		if lp, ok := req.GetParams().(*mcp.SetLoggingLevelParams); ok && method == "logging/setLevel" && lp != nil && !slices.Contains(loggingLevels, string(lp.Level)) {
			// The SDK takes any level (and sends nothing below an unknown
			// one); MCP has an invalid level refused as invalid params.
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("invalid params: unknown logging level %q: one of %s", lp.Level, strings.Join(loggingLevels, ", "))}
		}
		if method == "prompts/list" || method == "prompts/get" {
			// The SDK answers them though the server has no prompts (and
			// advertises no prompts capability): a method it does not have.
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf("method not found: %q", method)}
		}
		if cr, ok := req.(*mcp.CallToolRequest); ok && method == "tools/call" && cr.Params != nil && s.inputs[cr.Params.Name] != nil {
			// Before the SDK validates them: its error for a bad argument
			// holds the argument many times over.
			if aerr := s.checkArguments(cr.Params.Name, cr.Params.Arguments); aerr != nil {
				r := &mcp.CallToolResult{}
				r.SetError(s.toolError(aerr))
				return r, nil
			}
		}
		if !strings.HasPrefix(method, "notifications/") {
			bctx, unbind, err := s.bound(ctx, method, req)
			if err != nil { // cancelled before it started
				if method == "tools/call" {
					r := &mcp.CallToolResult{}
					r.SetError(s.toolError(err))
					return r, nil
				}
				return nil, s.rpcError(err)
			}
			defer unbind()
			ctx = bctx
		}
		if lr, ok := req.(*mcp.ListResourcesRequest); ok && method == "resources/list" {
			res, err = s.listResources(ctx, lr)
		} else {
			res, err = next(ctx, method, req)
		}
		switch {
		case err == nil:
			if cr, ok := req.(*mcp.CallToolRequest); ok && method == "tools/call" {
				s.explainArguments(cr, res)
				shortenQuoted(cr, res)
			}
		case errors.As(err, new(*jsonrpc.Error)):
		case method == "initialize":
			err = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: err.Error()}
		default:
			err = s.rpcError(err)
		}
		return res, err
	}
}

// suggestArg is spell.Suggest, or else ` (did you mean "P"?)` for the
// argument P that name abbreviates or extends (meta: metadata, ids:
// document_ids, document_id: id), or "". An identity (tenant_id...) is
// never an argument: it says so.
func suggestArg(name string, props []string) string {
	switch name {
	case "tenant", "tenant_id", "user", "user_id", "roles", "role":
		return " (the identity is the server's, fixed when it started: no call can name one)"
	}
	if s := spell.Suggest(name, props); s != "" {
		return s
	}
	for _, p := range props {
		if len(name) >= 3 && (strings.HasPrefix(p, name) || strings.HasSuffix(p, "_"+name) || strings.HasPrefix(name, p) || strings.HasSuffix(name, "_"+p)) {
			return fmt.Sprintf(" (did you mean %q?)", p)
		}
	}
	return ""
}

// explainArguments adds to a call's error result that the SDK's schema
// validation made ("validating \"arguments\": ...") what the tool takes
// and, for an argument it does not know, the close name it may have
// meant: a model corrects its call from that.
func (s *Server) explainArguments(req *mcp.CallToolRequest, res mcp.Result) {
	r, ok := res.(*mcp.CallToolResult)
	if !ok || !r.IsError || len(r.Content) != 1 || req.Params == nil {
		return
	}
	tc, ok := r.Content[0].(*mcp.TextContent)
	in := s.inputs[req.Params.Name]
	if !ok || in == nil || !strings.HasPrefix(tc.Text, `validating "arguments"`) {
		return
	}
	props := make([]string, 0, len(in.Properties))
	for name := range in.Properties {
		props = append(props, name)
	}
	sort.Strings(props)
	var b strings.Builder
	b.WriteString(tc.Text + ".")
	if m := extraProps.FindStringSubmatch(tc.Text); m != nil {
		var names []string
		if json.Unmarshal([]byte("["+m[1]+"]"), &names) == nil {
			for _, n := range names {
				fmt.Fprintf(&b, " %q is not an argument of %s%s.", n, req.Params.Name, suggestArg(n, props))
			}
		}
	}
	if len(props) == 0 {
		fmt.Fprintf(&b, " %s takes no arguments: call it with {}.", req.Params.Name)
		tc.Text = b.String()
		return
	}
	fmt.Fprintf(&b, " %s takes:", req.Params.Name)
	for i, name := range props {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(" " + name)
		if slices.Contains(in.Required, name) {
			b.WriteString(" (required)")
		}
	}
	b.WriteString(". Fix the arguments and call again.")
	tc.Text = b.String()
}

// quoteMax is the most of an argument's value an error message quotes.
const quoteMax = quote.Max

// shortenQuoted cuts, in a call's error result, every string of its
// arguments (a value or a key) longer than quoteMax bytes that the
// message quotes (as %q writes it, or as it is): to its first quoteMax
// bytes (a whole character), "..." and its length, `"abc..." (N bytes)`.
// Before, the SDK's schema validation and the engine quoted a bad value
// in full: a 15 MiB argument made an error reply of 94 MB (its escapes
// escaped again, up to 6 bytes a byte).
func shortenQuoted(req *mcp.CallToolRequest, res mcp.Result) {
	r, ok := res.(*mcp.CallToolResult)
	if !ok || !r.IsError || req.Params == nil || len(req.Params.Arguments) <= quoteMax {
		return
	}
	var args any
	if json.Unmarshal(req.Params.Arguments, &args) != nil {
		return
	}
	var long []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) > quoteMax {
				long = append(long, v)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				walk(k)
				walk(e)
			}
		}
	}
	walk(args)
	if len(long) == 0 {
		return
	}
	// The longest first: a shorter one may be part of it.
	slices.SortFunc(long, func(a, b string) int { return len(b) - len(a) })
	for _, c := range r.Content {
		tc, ok := c.(*mcp.TextContent)
		if !ok {
			continue
		}
		for _, v := range long {
			if q := strconv.Quote(v); strings.Contains(tc.Text, q) {
				tc.Text = strings.ReplaceAll(tc.Text, q, quote.Short(v))
			}
			if strings.Contains(tc.Text, v) {
				tc.Text = strings.ReplaceAll(tc.Text, v, fmt.Sprintf("%s... (%d bytes)", quote.Head(v), len(v)))
			}
		}
	}
}

// toolError is the message a model gets for a failed call: the error's
// code, the engine's message and what to do about it.
func (s *Server) toolError(err error) error {
	text := errorText(s.explain(asInterrupted(err)))
	var rf *engine.RunFailure
	if errors.As(err, &rf) {
		// A run that failed once the plugin ran (run_plugin): what it
		// used, on a line of its own, as docex run --json's "report".
		if data, jerr := json.Marshal(rf.Report); jerr == nil {
			text += "\nreport: " + string(data)
		}
	}
	return errors.New(text)
}

// errorText is the text of a failed call: "code: message. hint" (without
// ". hint" when there is none).
func errorText(code, msg, hint string) string {
	text := code + ": " + msg
	if hint != "" {
		text += ". " + hint
	}
	return text
}

// explain returns the parts of err's message: its code (docex.Code), the
// error's message without the code (the engine's often starts with it:
// "forbidden: write requires ..."), and what to do about it ("" when
// nothing can be said).
func (s *Server) explain(err error) (code, msg, hint string) {
	switch {
	case errors.Is(err, docex.ErrTooManyOpenFiles):
		hint = "The server ran out of file descriptors: call again once other calls have ended; its operator can raise its open-file limit (ulimit -n)."
	case errors.Is(err, docex.ErrHostCapacity):
		hint = "The plugin is valid: the server has no room for it at the moment (its compiled code or its memory); call again once other runs have ended."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, docex.ErrPluginFailed):
		// Not a plugin's own time limit (plugin_failed, its message says
		// so): the call was not cancelled.
		hint = "The call was cancelled."
	case errors.Is(err, errPathPrivate):
		hint = "docex's own configuration and storage are never added by path, whatever the allowed directory (--allow-path) holds; retrying will not help: add other files, or send content as text or base64."
	case errors.Is(err, errPathRefused):
		hint = "Only files under the directory the server was started with (--allow-path) can be added by path; send other content as text or base64."
	case errors.As(err, new(noFileError)):
		hint = "Give the path of an existing file, relative to the allowed directory (or absolute, inside it); or send the content as text or base64."
	case errors.Is(err, docex.ErrNotFound):
		hint = "Use ids and names returned by list_baskets, list_documents, find_documents, list_plugins, list_pipelines or run_pipeline; only this tenant's objects exist here."
	case errors.Is(err, docex.ErrForbidden):
		hint = fmt.Sprintf("This server acts as user %q with roles %s, fixed when it started; this call needs another role. Retrying will not help: ask the operator.", s.uc.UserID, rolesText(s.uc.Roles))
	case errors.Is(err, docex.ErrTenantSuspended):
		hint = fmt.Sprintf("An operator can resume it (docex tenant resume %s); calls then work again, in this session too.", s.uc.TenantID)
	case errors.Is(err, docex.ErrPluginDenied):
		hint = "The plugin used a capability it was not granted."
	case errors.Is(err, docex.ErrDenied):
		hint = "This server's identity is fixed when it started; retrying will not help."
	case errors.Is(err, docex.ErrTooLarge):
		hint = "Send less: a smaller page, or a file under the allowed path instead of inline content."
	case errors.Is(err, docex.ErrPluginInvalid):
		hint = "The plugin refused the input (parameters or content type): check list_plugins."
	case errors.Is(err, docex.ErrInvalid):
		hint = "Fix the argument and call again."
	case errors.Is(err, docex.ErrDuplicateContent), errors.Is(err, docex.ErrExists):
		hint = "It exists already: use the existing one."
	case errors.Is(err, docex.ErrConflict):
		hint = "The current state does not allow this."
	case errors.Is(err, docex.ErrPluginFailed):
		hint = "The plugin ran and failed; running it again on the same input will fail the same way."
	case errors.Is(err, docex.ErrNoSandbox):
		hint = "This server runs no plugins."
	}
	// The code once, even when the engine's message starts with it.
	code = docex.Code(err)
	return code, strings.TrimPrefix(err.Error(), code+": "), hint
}
