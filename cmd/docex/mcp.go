package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/internal/mcpserver"
	"github.com/docex-dev/docex/internal/sdkenv"
	"github.com/spf13/pflag"
	"golang.org/x/net/netutil"
)

// mcpOpts are the flags of docex mcp.
type mcpOpts struct {
	http        string
	allowRemote bool
	allowPath   string
	maxInline   int64
	maxRead     int
	worker      string
	sessionIdle time.Duration
	maxSessions int
	maxConns    int
	maxInflight int64
	maxCalls    int
}

// Bounds of docex mcp --http's connections: how many may be open at once
// (--max-connections, by default mcpMaxConns; past it the server accepts
// no more until one closes), and how long one may stay open between requests
// (mcpIdleTimeout). A request's headers must arrive within
// mcpHeaderTimeout; its body within mcpserver.DefaultBodyTimeout of its
// admission, with no stall longer than mcpserver.DefaultBodyStall. There
// is no write timeout: a response stream (a GET's, a POST's waiting on
// run_pipeline) may last; but each write of at most mcpStallChunk bytes
// of a response must be done within mcpWriteStall (stallWrites), so that
// a client that does not read its responses does not hold its connection
// for ever. GET streams may hold at most half of the connections
// (mcpMaxStreams).
const (
	mcpIdleTimeout   = 2 * time.Minute
	mcpHeaderTimeout = 10 * time.Second
	mcpWriteStall    = 30 * time.Second
	mcpStallChunk    = 64 << 10
)

// mcpTimeouts are the timeouts of docex mcp --http's server
// (mcpHTTPServer): mcpHeaderTimeout, mcpIdleTimeout and mcpWriteStall,
// shorter in tests.
type mcpTimeouts struct {
	header, idle, writeStall time.Duration
}

var defaultMCPTimeouts = mcpTimeouts{header: mcpHeaderTimeout, idle: mcpIdleTimeout, writeStall: mcpWriteStall}

// mcpMaxConns returns the default of --max-connections for an open-file
// limit of limit (fdlimit.Limit): a quarter of it, at least 1 and at most
// 256 (256 when the limit is unknown). Each connection holds a
// descriptor; the SQLite databases may take half the limit and the
// content store's directories an eighth (fdlimit.Share), so that an
// eighth is left for the rest (the listener, the files add_document
// reads, plugins).
func mcpMaxConns(limit int) int { return fdlimit.Share(limit, 4, 1, 256) }

// mcpMaxStreams returns the bound of the GET streams open at once
// (mcpserver.HTTPOptions.MaxStreams) for --max-connections maxConns:
// half of them, rounded down, so that POSTs (an initialize among them)
// always have connections; -1 (no GET stream) when that is 0.
func mcpMaxStreams(maxConns int) int {
	if n := maxConns / 2; n > 0 {
		return n
	}
	return -1
}

const mcpHelp = `Serves the Model Context Protocol to one agent: over stdin/stdout (the
default: an MCP client starts "docex mcp" as a subprocess), or with --http
ADDR as streamable HTTP at http://ADDR/mcp. Over stdio, calls take effect
in the order written, each once the calls before it are answered (ping and
notifications/cancelled are not held behind them); it exits at the end of
stdin once every call read is answered.

The identity is fixed when the server starts, from --tenant/--user/--roles
or DOCEX_TENANT/DOCEX_USER/DOCEX_ROLES: nothing the model sends can change
it. Without a user, for an unknown, suspended or bootstrap tenant, or with
roles that cannot read, the server exits with the usual code and message
before serving. Every call is audited as "mcp.<operation>", reads included.

add_document reads files by path only under --allow-path DIR, and never
docex's own: the config file and the files of data_dir, the databases, the
content store, the S3 spool and the plugin cache are refused even when DIR
holds them (--allow-path ~); a DIR inside one of those is refused before
serving.

Tools: list_baskets, create_basket, add_document, find_documents,
list_documents, get_document, read_document, set_metadata, list_plugins,
run_plugin, list_pipelines, run_pipeline, get_job. Resources:
docex://baskets, docex://baskets/{id}, docex://documents/{id}. With
SQLite this process also runs the tenant's pipeline jobs (--worker auto).
MCPGODEBUG (the MCP SDK's compatibility switches) is ignored: docex takes it
out of its environment as it starts, before the SDK reads it, and says so on
standard error. See docs/agents.md.

Example:
  DOCEX_TENANT=acme DOCEX_USER=assistant DOCEX_ROLES=writer docex mcp --allow-path ~/inbox
  docex mcp --http 127.0.0.1:8765 --tenant acme --user assistant --roles reader`

func mcpCommands() []*command {
	var o mcpOpts
	return []*command{
		{path: "mcp", access: "reader", maxArgs: 0, plugins: true,
			summary: "serve the Model Context Protocol to an agent as the user context (stdio, or --http)",
			help:    mcpHelp,
			flags: func(fs *pflag.FlagSet) {
				fs.StringVar(&o.http, "http", "", "serve streamable HTTP on ADDR (host:port, loopback only unless --allow-remote) instead of stdio")
				fs.BoolVar(&o.allowRemote, "allow-remote", false, "let --http listen on a non-loopback address (no authentication: put an authenticating proxy in front)")
				fs.StringVar(&o.allowPath, "allow-path", "", "directory add_document may read files from (default: none; symlinks may not lead outside it; docex's own config and data in it are refused)")
				fs.Int64Var(&o.maxInline, "max-inline-bytes", mcpserver.DefaultMaxInlineBytes, "largest document add_document accepts as text or base64")
				fs.IntVar(&o.maxRead, "max-read-bytes", mcpserver.DefaultMaxReadBytes, "largest page read_document returns")
				fs.DurationVar(&o.sessionIdle, "session-idle", mcpserver.DefaultSessionIdle, "with --http: close a session idle this long (0: never)")
				fs.IntVar(&o.maxSessions, "max-sessions", mcpserver.DefaultMaxSessions, "with --http: most sessions live at once (a new one closes the least recently used idle one)")
				fs.IntVar(&o.maxConns, "max-connections", mcpMaxConns(fdlimit.Limit()), "with --http: most connections open at once (more wait to be accepted), GET streams at most half of them; by default a quarter of the open-file limit (ulimit -n), at most 256")
				fs.Int64Var(&o.maxInflight, "max-inflight-bytes", mcpserver.DefaultMaxInflightBytes, "with --http: most bytes of request bodies handled at once, counted as they arrive (more wait, after those before them)")
				fs.IntVar(&o.maxCalls, "max-calls", mcpserver.DefaultMaxCalls, "most calls reaching the engine (tools/call, resources/read, resources/list) handled at once: of a batch on stdio, of all sessions together with --http (a call past it waits, after those before it)")
				fs.StringVar(&o.worker, "worker", "auto", "run the tenant's pipeline jobs in this process: auto (SQLite only), yes or no (rely on running workers)")
			},
			run: func(ctx context.Context, c *cli, _ []string) error { return cmdMCP(ctx, c, o) }},
	}
}

// cmdMCP serves MCP until stdin closes (stdio) or ctx ends; a stop by ctx
// returns nil and logs nothing.
func cmdMCP(ctx context.Context, c *cli, o mcpOpts) error {
	if v := sdkenv.Removed(); v != "" {
		c.progress("docex mcp: %s=%s ignored: docex mcp serves the MCP SDK's default behaviour (docs/agents.md)", sdkenv.Name, v)
	}
	if o.http == "" && o.allowRemote {
		return docex.Errorf(errUsage, "--allow-remote is for --http")
	}
	if o.sessionIdle < 0 {
		return docex.Errorf(errUsage, "--session-idle %s: want 0 (never) or more", o.sessionIdle)
	}
	if o.maxSessions <= 0 || o.maxConns <= 0 || o.maxInflight <= 0 || o.maxCalls <= 0 {
		return docex.Errorf(errUsage, "--max-sessions, --max-connections, --max-inflight-bytes and --max-calls must be positive")
	}
	if o.http != "" {
		if err := checkListenAddr(o.http, o.allowRemote, c.g.user, c.g.tenant); err != nil {
			return err
		}
	}
	switch o.worker {
	case "auto", "yes", "no":
	default:
		return docex.Errorf(errUsage, "--worker %q: want auto, yes or no", o.worker)
	}
	if o.maxInline <= 0 || o.maxRead <= 0 {
		return docex.Errorf(errUsage, "--max-inline-bytes and --max-read-bytes must be positive")
	}
	if o.maxRead < mcpserver.MinReadBytes {
		return docex.Errorf(errUsage, "--max-read-bytes %d: want at least %d (the smallest page read_document returns)", o.maxRead, mcpserver.MinReadBytes)
	}
	sys, err := c.system(ctx)
	if err != nil {
		return err
	}
	uc := c.userContext()
	worker := o.worker == "yes" || (o.worker == "auto" && sys.file.Database.Type == config.SQLiteBackend)
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfgPath, err := filepath.Abs(c.g.config)
	if err != nil {
		return fmt.Errorf("config path %s: %w", c.g.config, err)
	}
	srv, err := mcpserver.New(sys.eng, uc, mcpserver.Config{
		AllowPath: o.allowPath, Protected: protectedPaths(sys.file, cfgPath),
		MaxInlineBytes: o.maxInline, MaxReadBytes: o.maxRead,
		Worker: worker, Version: version, Logger: logger, MaxCalls: o.maxCalls,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Check(ctx); err != nil {
		return err
	}
	if worker {
		var tenants []string
		if uc.TenantID != "" {
			tenants = []string{uc.TenantID}
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- sys.eng.Worker(engine.WorkerConfig{Tenants: tenants, Logger: logger}).Run(wctx)
		}()
		defer func() {
			stop()
			if err := <-done; err != nil {
				fmt.Fprintf(c.stderr, "docex mcp: worker: %v\n", err)
			}
		}()
	}
	who := fmt.Sprintf("user %q", uc.UserID)
	if uc.TenantID != "" {
		who += fmt.Sprintf(" of tenant %q", uc.TenantID)
	}
	if o.http == "" {
		c.progress("docex mcp: serving MCP on stdio as %s", who)
		err := srv.Run(ctx, mcpserver.StdioTransport(c.stdin, c.stdout))
		if err == nil || errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil // the client closed the connection, or we were stopped
		}
		return fmt.Errorf("mcp: %w", err)
	}
	return serveMCPHTTP(ctx, c, srv, o.http, who, o.maxConns, mcpserver.HTTPOptions{
		MaxBody: 2*o.maxInline + 1<<20, Idle: o.sessionIdle,
		MaxSessions: o.maxSessions, MaxInflightBytes: o.maxInflight, MaxCalls: o.maxCalls,
		MaxStreams: mcpMaxStreams(o.maxConns),
	})
}

// protectedPaths returns what add_document never reads, whatever
// --allow-path covers: the config file at cfgPath and every path f names
// for docex's own data, the SQLite and filesystem ones whatever the backend
// in use (a store used before a change of backend still holds data), and
// the SQLite system file, named apart so that a hard link to it is seen
// too.
func protectedPaths(f *config.File, cfgPath string) []mcpserver.ProtectedPath {
	db, docs := f.Database.SQLite, f.Storage.Documents
	all := []mcpserver.ProtectedPath{
		{Path: cfgPath, What: "configuration file"},
		{Path: f.DataDir, What: "data directory (data_dir)"},
		{Path: db.Path, What: "SQLite databases (database.sqlite.path)"},
		{Path: filepath.Join(db.Path, db.SystemFile), What: "system database (database.sqlite.system_file)"},
		{Path: docs.Path, What: "content store (storage.documents.path)"},
		{Path: docs.S3.SpoolDir, What: "S3 spool (storage.documents.s3.spool_dir)"},
		{Path: f.Sandbox.CacheDir, What: "plugin compilation cache (sandbox.cache_dir)"},
	}
	out := all[:0]
	for _, p := range all {
		if p.Path != "" { // spool_dir is set with S3 only
			p.Path = f.Resolve(p.Path) // absolute already once loaded; a key left relative resolves as docex.yaml says
			out = append(out, p)
		}
	}
	return out
}

// checkListenAddr refuses a non-loopback address unless allowRemote: the
// server has no authentication of its own, and whoever reaches it acts as
// the server's user.
func checkListenAddr(addr string, allowRemote bool, user, tenant string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return docex.Errorf(errUsage, "--http %q: want host:port, e.g. 127.0.0.1:8765 (%v)", addr, err)
	}
	if allowRemote {
		return nil
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		return nil
	}
	return docex.Errorf(errUsage, "--http %s: refusing to listen on a non-loopback address: MCP over HTTP has no authentication here, so anyone who can reach it would act as user %q of tenant %q; listen on 127.0.0.1:PORT, or add --allow-remote behind an authenticating proxy", addr, user, tenant)
}

// listenError is the error of a failed listen on --http addr: an address
// in use or a port the user may not open is the environment's doing (exit
// 1, with a hint naming the address), anything else is an address that
// cannot be listened on (exit 2: a malformed port, a host that is not
// this machine's).
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return withHint(fmt.Errorf("--http %s: the address is already in use: %w", addr, err),
			fmt.Sprintf("another process listens on %s: stop it, or pass another port (--http %s)", addr, otherPort(addr)))
	case errors.Is(err, syscall.EACCES):
		return withHint(fmt.Errorf("--http %s: not allowed to listen there: %w", addr, err),
			fmt.Sprintf("ports below 1024 need privileges: pass another port (--http %s)", otherPort(addr)))
	}
	return docex.Errorf(errUsage, "--http %s: %v", addr, err)
}

// otherPort returns addr with another port: the next one, or 8765 when
// addr's port is not a number or the last one.
func otherPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1:8765"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1024 || n >= 65535 {
		n = 8764
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// mcpHTTPServer returns the server of docex mcp --http: h at /mcp, with
// the timeouts to (no ReadTimeout, no WriteTimeout: a stream may last, and
// the handler bounds a body's arrival; but a write may not stall past
// to.writeStall, stallWrites), and ln limited to maxConns open
// connections.
func mcpHTTPServer(h http.Handler, ln net.Listener, maxConns int, to mcpTimeouts) (*http.Server, net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	hs := &http.Server{Handler: stallWrites(mux, to.writeStall), ReadHeaderTimeout: to.header, IdleTimeout: to.idle,
		// A connection idle between requests has no write deadline
		// left of its last response (stallWrites): the server's own
		// answer to its next request (a malformed one) is written.
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateIdle {
				_ = c.SetWriteDeadline(time.Time{})
			}
		}}
	return hs, netutil.LimitListener(ln, maxConns)
}

// stallWrites wraps h so that each write of a response, in pieces of at
// most mcpStallChunk bytes, and each flush, must be done within stall of
// its start: past it the write fails (i/o timeout) and the connection is
// closed. A response may last (a GET's stream, a POST's while
// run_pipeline waits) as long as its client reads it; a client that does
// not read holds its connection for stall once the buffers between them
// are full, not for ever. The write the server makes of a response's end,
// once h returns, has stall too.
func stallWrites(h http.Handler, stall time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		defer func() { _ = rc.SetWriteDeadline(time.Now().Add(stall)) }()
		h.ServeHTTP(&stallWriter{ResponseWriter: w, rc: rc, stall: stall}, r)
	})
}

// stallWriter is a response writer of stallWrites.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		piece := p[:min(len(p), mcpStallChunk)]
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
		m, err := w.ResponseWriter.Write(piece)
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// FlushError flushes with the write deadline (http.ResponseController
// calls it).
func (w *stallWriter) FlushError() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
	return w.rc.Flush()
}

// Flush is FlushError for callers of http.Flusher.
func (w *stallWriter) Flush() { _ = w.FlushError() }

// Unwrap gives http.ResponseController the writer underneath.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func serveMCPHTTP(ctx context.Context, c *cli, srv *mcpserver.Server, addr, who string, maxConns int, o mcpserver.HTTPOptions) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError(addr, err)
	}
	hs, ln := mcpHTTPServer(srv.HTTPHandlerWith(o), ln, maxConns, defaultMCPTimeouts)
	// A stop ends the sessions, so that their open event streams end and
	// Shutdown need not wait for them.
	hs.RegisterOnShutdown(func() {
		for ss := range srv.MCP().Sessions() {
			ss.Close()
		}
	})
	c.progress("docex mcp: serving MCP (streamable HTTP) at http://%s/mcp as %s", ln.Addr(), who)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("mcp http: %w", err)
	case <-ctx.Done():
	}
	// The calls that run are cancelled first, so that each is answered
	// (as a cancelled call) and its POST ends before the sessions close.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.CancelCalls(sctx)
	_ = hs.Shutdown(sctx)
	return nil
}
