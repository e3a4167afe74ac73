package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var (
	sbOnce   sync.Once
	sharedSB *sandbox.Sandbox
	sbErr    error
)

// testSandbox is one sandbox for the package: modules compile once.
func testSandbox(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	sbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docex-mcp-wasm-cache-")
		if err != nil {
			sbErr = err
			return
		}
		sharedSB, sbErr = sandbox.New(context.Background(), sandbox.Config{CacheDir: dir})
	})
	if sbErr != nil {
		t.Fatal(sbErr)
	}
	return sharedSB
}

// env is an engine with two tenants, alpha and beta, each with a basket
// "in" holding one document, and the echo and trap plugins installed
// for alpha.
type env struct {
	eng      *engine.Engine
	be       *sqlite.Backend
	admin    *engine.Session // alpha admin, through the Go API
	beta     *engine.Session
	basket   docex.Basket // alpha's "in"
	doc      docex.Document
	betaDoc  docex.Document
	betaBask docex.Basket
	allow    string // a directory for --allow-path
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content"), Sandbox: testSandbox(t)}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	for _, id := range []string{"alpha", "beta"} {
		if _, err := eng.Provisioner("ops").Create(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{eng: eng, be: be,
		admin: eng.As(docex.UserContext{UserID: "ann", TenantID: "alpha", Roles: []string{"admin"}}),
		beta:  eng.As(docex.UserContext{UserID: "bob", TenantID: "beta", Roles: []string{"admin"}}),
		allow: filepath.Join(dir, "allowed"),
	}
	if e.basket, err = e.admin.CreateBasket(ctx, "in"); err != nil {
		t.Fatal(err)
	}
	a, err := e.admin.AddDocument(ctx, e.basket.ID, engine.NewDocument{Name: "first.txt", Content: strings.NewReader("one two three"),
		Metadata: map[string]docex.Value{"kind": docex.String("note")}})
	if err != nil {
		t.Fatal(err)
	}
	e.doc = a.Document
	if e.betaBask, err = e.beta.CreateBasket(ctx, "in"); err != nil {
		t.Fatal(err)
	}
	a, err = e.beta.AddDocument(ctx, e.betaBask.ID, engine.NewDocument{Name: "secret.txt", Content: strings.NewReader("beta's secret"),
		Metadata: map[string]docex.Value{"kind": docex.String("note")}})
	if err != nil {
		t.Fatal(err)
	}
	e.betaDoc = a.Document
	for _, name := range []string{"echo", "trap", "upper"} {
		manifest, module := pluginBytes(t, name)
		if _, err := e.admin.InstallPlugin(ctx, manifest, module); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(e.allow, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect serves uc over an in-memory transport and returns the client.
func (e *env) connect(t testing.TB, uc docex.UserContext, cfg Config) (*Server, *mcp.ClientSession) {
	t.Helper()
	ctx := context.Background()
	srv, err := New(e.eng, uc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.MCP().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return srv, cs
}

func user(id string, roles ...string) docex.UserContext {
	return docex.UserContext{UserID: id, TenantID: "alpha", Roles: roles}
}

// call calls a tool that must succeed and decodes its structured output.
func call[T any](t testing.TB, cs *mcp.ClientSession, tool string, args any) T {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s(%v): tool error %s", tool, args, text(res))
	}
	var out T
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: decode %s: %v", tool, data, err)
	}
	return out
}

// callErr calls a tool that must fail with a tool error and returns its
// message.
func callErr(t testing.TB, cs *mcp.ClientSession, tool string, args any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v, want a tool error", tool, err)
	}
	if !res.IsError {
		t.Fatalf("%s(%v): succeeded, want a tool error: %s", tool, args, text(res))
	}
	return text(res)
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

var allTools = []string{"add_document", "create_basket", "find_documents", "get_document", "get_job", "list_baskets",
	"list_documents", "list_pipelines", "list_plugins", "read_document", "run_pipeline", "run_plugin", "set_metadata"}

func TestListTools(t *testing.T) {
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "writer"), Config{})
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
		if tool.Description == "" || tool.InputSchema == nil || tool.OutputSchema == nil || tool.Annotations == nil {
			t.Errorf("%s: description, input and output schemas and annotations are required: %+v", tool.Name, tool)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, allTools) {
		t.Fatalf("tools %v, want %v", names, allTools)
	}
}

type docOut struct {
	ID       string         `json:"id"`
	BasketID string         `json:"basket_id"`
	Name     string         `json:"name"`
	Size     int64          `json:"size"`
	Metadata map[string]any `json:"metadata"`
	URI      string         `json:"uri"`
}

type pageOut struct {
	Text       string `json:"text"`
	Base64     string `json:"base64"`
	Offset     int64  `json:"offset"`
	Length     int    `json:"length"`
	EOF        bool   `json:"eof"`
	NextOffset *int64 `json:"next_offset"`
}

func TestToolsWorkflow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, cs := e.connect(t, user("will", "writer"), Config{})

	b := call[struct{ ID, Name string }](t, cs, "create_basket", map[string]any{"name": "notes"})
	if b.Name != "notes" || b.ID == "" {
		t.Fatalf("create_basket: %+v", b)
	}
	bl := call[struct {
		Baskets []struct {
			Name          string
			DocumentCount int64 `json:"document_count"`
		}
		NextOffset *int `json:"next_offset"`
	}](t, cs, "list_baskets", map[string]any{})
	if len(bl.Baskets) != 2 || bl.Baskets[0].Name != "in" || bl.Baskets[1].Name != "notes" || bl.NextOffset != nil {
		t.Fatalf("list_baskets: %+v", bl)
	}
	// next_offset is absent after the last page, also when that page is
	// exactly full (it was 2 for limit 2, and the next page empty).
	for _, c := range []struct {
		limit, offset int
		got           int
		next          *int
	}{
		{1, 0, 1, ptr(1)},
		{1, 1, 1, nil},
		{2, 0, 2, nil},
		{3, 0, 2, nil},
		{1, 2, 0, nil},
	} {
		p := call[struct {
			Baskets    []struct{ Name string }
			NextOffset *int `json:"next_offset"`
		}](t, cs, "list_baskets", map[string]any{"limit": c.limit, "offset": c.offset})
		if len(p.Baskets) != c.got || (p.NextOffset == nil) != (c.next == nil) || (c.next != nil && *p.NextOffset != *c.next) {
			t.Errorf("list_baskets limit %d offset %d: %d baskets, next_offset %v; want %d, %v", c.limit, c.offset, len(p.Baskets), p.NextOffset, c.got, c.next)
		}
	}

	// Add from text (by basket name), from base64 (by basket id), and the
	// same content again.
	body := strings.Repeat("héllo wörld ", 3000) // multi-byte characters across page boundaries
	added := call[struct {
		Document  docOut
		Duplicate bool
	}](t, cs, "add_document", map[string]any{"basket": "notes", "name": "hello.txt", "text": body,
		"metadata": map[string]any{"topic": "greeting", "n": 7, "ok": true}})
	d := added.Document
	if added.Duplicate || d.Size != int64(len(body)) || d.URI != "docex://documents/"+d.ID || d.Metadata["n"] != float64(7) || d.Metadata["ok"] != true {
		t.Fatalf("add_document: %+v", added)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, 'x'}
	binDoc := call[struct{ Document docOut }](t, cs, "add_document", map[string]any{"basket": b.ID, "name": "blob.bin",
		"base64": base64.StdEncoding.EncodeToString(bin)}).Document
	if binDoc.Size != int64(len(bin)) {
		t.Fatalf("base64 add: %+v", binDoc)
	}
	dup := call[struct {
		Document  docOut
		Duplicate bool
	}](t, cs, "add_document", map[string]any{"basket": "notes", "name": "again.txt", "text": body})
	if !dup.Duplicate || dup.Document.ID != d.ID {
		t.Fatalf("duplicate add: %+v", dup)
	}
	empty := call[struct{ Document docOut }](t, cs, "add_document", map[string]any{"basket": "notes", "name": "empty.txt", "text": ""})
	if empty.Document.Size != 0 {
		t.Fatalf("empty add: %+v", empty)
	}
	if ep := call[map[string]any](t, cs, "read_document", map[string]any{"id": empty.Document.ID}); ep["text"] != "" || ep["eof"] != true || ep["length"] != float64(0) {
		t.Fatalf("read of an empty document: %v", ep)
	}

	// Find by metadata: typed values, total and paging.
	found := call[struct {
		Documents  []docOut
		Total      int64
		NextOffset *int `json:"next_offset"`
	}](t, cs, "find_documents", map[string]any{"basket": "notes", "metadata": map[string]any{"topic": "greeting", "n": 7}})
	if found.Total != 1 || len(found.Documents) != 1 || found.Documents[0].ID != d.ID || found.NextOffset != nil {
		t.Fatalf("find_documents: %+v", found)
	}
	if none := call[struct{ Total int64 }](t, cs, "find_documents", map[string]any{"basket": "notes", "metadata": map[string]any{"n": "7"}}); none.Total != 0 {
		t.Fatal("the string \"7\" matched the number 7")
	}
	list := call[struct {
		Documents  []docOut
		NextOffset *int `json:"next_offset"`
	}](t, cs, "list_documents", map[string]any{"basket": "notes", "limit": 2, "order": "name"})
	if len(list.Documents) != 2 || list.Documents[0].Name != "blob.bin" || list.NextOffset == nil || *list.NextOffset != 2 {
		t.Fatalf("list_documents: %+v", list)
	}
	got := call[docOut](t, cs, "get_document", map[string]any{"id": d.ID})
	if got.Name != "hello.txt" || got.Metadata["topic"] != "greeting" {
		t.Fatalf("get_document: %+v", got)
	}

	// Read the text page by page: pages are valid UTF-8 and join to the content.
	var sb strings.Builder
	offset := int64(0)
	pages := 0
	for {
		p := call[pageOut](t, cs, "read_document", map[string]any{"id": d.ID, "offset": offset, "max_bytes": 4099})
		if p.Offset != offset || p.Length != len(p.Text) || p.Length > 4099 {
			t.Fatalf("page at %d: %+v", offset, p)
		}
		sb.WriteString(p.Text)
		pages++
		if p.EOF {
			if p.NextOffset != nil {
				t.Fatal("next_offset at eof")
			}
			break
		}
		offset = *p.NextOffset
	}
	if sb.String() != body || pages < len(body)/4099 {
		t.Fatalf("read back %d bytes in %d pages, want %d bytes", sb.Len(), pages, len(body))
	}
	// An offset inside a character starts at the next one.
	p := call[pageOut](t, cs, "read_document", map[string]any{"id": d.ID, "offset": 2, "max_bytes": 16})
	if p.Offset != 3 || !strings.HasPrefix(body[3:], p.Text) {
		t.Fatalf("read inside a character: %+v", p)
	}
	// The default page and its hint for the next call.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_document", Arguments: map[string]any{"id": d.ID}})
	if err != nil || res.IsError {
		t.Fatal(err, text(res))
	}
	if !strings.Contains(text(res), fmt.Sprintf("offset=%d", DefaultReadBytes)) {
		t.Fatalf("no next-page hint in %q", text(res)[len(text(res))-200:])
	}
	// Binary content: refused as text, readable as base64.
	if msg := callErr(t, cs, "read_document", map[string]any{"id": binDoc.ID}); !strings.Contains(msg, "base64") {
		t.Fatalf("binary as text: %s", msg)
	}
	bp := call[pageOut](t, cs, "read_document", map[string]any{"id": binDoc.ID, "encoding": "base64"})
	if raw, _ := base64.StdEncoding.DecodeString(bp.Base64); string(raw) != string(bin) || !bp.EOF {
		t.Fatalf("base64 page: %+v", bp)
	}

	// Set metadata, then find by it.
	upd := call[docOut](t, cs, "set_metadata", map[string]any{"id": d.ID, "metadata": map[string]any{"reviewed": true}})
	if upd.Metadata["reviewed"] != true || upd.Metadata["topic"] != "greeting" {
		t.Fatalf("set_metadata: %+v", upd)
	}

	// Plugins.
	pl := call[struct{ Plugins []struct{ Name string } }](t, cs, "list_plugins", map[string]any{})
	if len(pl.Plugins) != 3 || pl.Plugins[0].Name != "echo" || pl.Plugins[1].Name != "trap" {
		t.Fatalf("list_plugins: %+v", pl)
	}
	run := call[struct {
		Status   string
		Document docOut
		Derived  []docOut
		Report   map[string]any
	}](t, cs, "run_plugin", map[string]any{"plugin": "echo", "document_id": e.doc.ID})
	// echo derives a copy of its input: in the same basket, that is the input.
	if run.Status != "ok" || len(run.Derived) != 1 || run.Derived[0].ID != e.doc.ID || len(run.Report) == 0 {
		t.Fatalf("run_plugin: %+v", run)
	}
}

func TestAddFromPath(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "secret.txt"), "outside secret")
	write(filepath.Join(e.allow, "ok.txt"), "inside")
	if err := os.MkdirAll(filepath.Join(e.allow, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(e.allow, "sub", "deep.txt"), "deep inside")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(e.allow, "link-out.txt")))
	must(os.Symlink(outside, filepath.Join(e.allow, "dir-out")))
	must(os.Symlink(filepath.Join(e.allow, "sub", "deep.txt"), filepath.Join(e.allow, "link-in.txt")))
	relOut, err := filepath.Rel(e.allow, outside)
	must(err)
	must(os.Symlink(relOut, filepath.Join(e.allow, "rel-out")))
	fifo := mkfifo(filepath.Join(e.allow, "fifo")) == nil // not on Windows

	// Through a symlinked path to the allowed directory, too.
	alias := filepath.Join(t.TempDir(), "alias")
	must(os.Symlink(e.allow, alias))
	_, cs := e.connect(t, user("will", "writer"), Config{AllowPath: alias})

	for _, c := range []struct{ path, want string }{
		{"ok.txt", "inside"},
		{filepath.Join(e.allow, "sub", "deep.txt"), "deep inside"},
		{filepath.Join(alias, "sub/../ok.txt"), "inside"},
		{"link-in.txt", "deep inside"},
	} {
		a := call[struct{ Document docOut }](t, cs, "add_document", map[string]any{"basket": "in", "path": c.path})
		data, err := e.admin.ReadContent(context.Background(), a.Document.ID)
		if err != nil || string(data) != c.want {
			t.Fatalf("%s: read %q %v, want %q", c.path, data, err, c.want)
		}
	}
	for _, path := range []string{
		"../" + filepath.Base(outside) + "/secret.txt",
		filepath.Join(outside, "secret.txt"),
		"link-out.txt",
		"dir-out/secret.txt",
		"rel-out/secret.txt",
		"/etc/passwd",
		"sub/../../x",
	} {
		msg := callErr(t, cs, "add_document", map[string]any{"basket": "in", "path": path})
		if !strings.HasPrefix(msg, "denied:") || strings.Contains(msg, "outside secret") {
			t.Errorf("%s: %s", path, msg)
		}
	}
	if !fifo && runtime.GOOS != "windows" {
		t.Error("mkfifo failed")
	}
	if msg := callErr(t, cs, "add_document", map[string]any{"basket": "in", "path": "fifo"}); fifo && !strings.HasPrefix(msg, "invalid:") {
		t.Errorf("fifo: %s", msg)
	}
	// A missing file is not an id: the hint speaks of the directory, not
	// of the tools that return ids.
	if msg := callErr(t, cs, "add_document", map[string]any{"basket": "in", "path": "missing.txt"}); !strings.HasPrefix(msg, "not_found:") ||
		strings.Contains(msg, "Use ids") || !strings.Contains(msg, "relative to the allowed directory") {
		t.Errorf("missing: %s", msg)
	}
	// Every refused path is in the tenant's audit log, as a denial of the
	// add, with the path the agent asked for.
	log, err := e.admin.Audit(context.Background(), docex.Page{Limit: 1000})
	must(err)
	refused := map[string]bool{}
	for _, a := range log {
		if a.Operation == "mcp.document.add" && a.Outcome == "denied" {
			p, _ := a.Detail["path"].(string)
			refused[p] = true
		}
	}
	for _, p := range []string{"link-out.txt", "/etc/passwd", "sub/../../x"} {
		if !refused[p] {
			t.Errorf("path %q refused without an audit entry (denied: %v)", p, refused)
		}
	}
	// Nothing of the outside was stored.
	docs, _, err := e.admin.FindDocuments(context.Background(), e.basket.ID, []docex.MetaFilter{{Key: "kind", Value: docex.String("note")}}, docex.Page{})
	if err != nil || len(docs) != 1 {
		t.Fatalf("documents: %v %v", docs, err)
	}

	// Without --allow-path, paths are refused.
	_, cs2 := e.connect(t, user("will", "writer"), Config{})
	if msg := callErr(t, cs2, "add_document", map[string]any{"basket": "in", "path": "ok.txt"}); !strings.Contains(msg, "--allow-path") {
		t.Errorf("no allow-path: %s", msg)
	}
	if _, err := New(e.eng, user("will", "writer"), Config{AllowPath: filepath.Join(e.allow, "ok.txt")}); !errors.Is(err, docex.ErrInvalid) {
		t.Errorf("allow-path on a file: %v", err)
	}
}

func TestToolErrors(t *testing.T) {
	e := newEnv(t)
	_, writer := e.connect(t, user("will", "writer"), Config{MaxInlineBytes: 1000, MaxReadBytes: 4096})
	_, reader := e.connect(t, user("rita", "reader"), Config{})
	ghost := "0190c1a2-0000-7000-8000-000000000000"
	big := strings.Repeat("x", 1001)
	cases := []struct {
		name string
		cs   *mcp.ClientSession
		tool string
		args map[string]any
		want string // prefix of the message: the error code
	}{
		// Unknown ids and another tenant's ids are not found.
		{"unknown doc", writer, "get_document", map[string]any{"id": ghost}, "not_found:"},
		{"beta doc get", writer, "get_document", map[string]any{"id": e.betaDoc.ID}, "not_found:"},
		{"beta doc read", writer, "read_document", map[string]any{"id": e.betaDoc.ID}, "not_found:"},
		{"beta doc set", writer, "set_metadata", map[string]any{"id": e.betaDoc.ID, "metadata": map[string]any{"x": 1}}, "not_found:"},
		{"beta doc run", writer, "run_plugin", map[string]any{"plugin": "echo", "document_id": e.betaDoc.ID}, "not_found:"},
		{"beta basket find", writer, "find_documents", map[string]any{"basket": e.betaBask.ID, "metadata": map[string]any{"kind": "note"}}, "not_found:"},
		{"beta basket list", writer, "list_documents", map[string]any{"basket": e.betaBask.ID}, "not_found:"},
		{"beta basket add", writer, "add_document", map[string]any{"basket": e.betaBask.ID, "name": "x", "text": "x"}, "not_found:"},
		{"unknown basket", writer, "list_documents", map[string]any{"basket": "nope"}, "not_found:"},
		{"unknown plugin", writer, "run_plugin", map[string]any{"plugin": "nope", "document_id": e.doc.ID}, "not_found:"},
		// Roles: a reader cannot change anything.
		{"reader create", reader, "create_basket", map[string]any{"name": "r"}, "forbidden:"},
		{"reader add", reader, "add_document", map[string]any{"basket": "in", "name": "r.txt", "text": "r"}, "forbidden:"},
		{"reader set", reader, "set_metadata", map[string]any{"id": e.doc.ID, "metadata": map[string]any{"x": 1}}, "forbidden:"},
		{"reader run", reader, "run_plugin", map[string]any{"plugin": "echo", "document_id": e.doc.ID}, "forbidden:"},
		// Invalid arguments, caught by the schema or by the engine.
		{"missing id", writer, "get_document", map[string]any{}, "validating"},
		{"wrong type", writer, "get_document", map[string]any{"id": 42}, "validating"},
		{"identity in arguments", writer, "get_document", map[string]any{"id": e.betaDoc.ID, "tenant_id": "beta"}, "validating"},
		// An unknown argument: what the tool takes, and the likely one.
		{"abbreviated argument", writer, "find_documents", map[string]any{"basket": "in", "meta": map[string]any{"kind": "note"}}, `validating "arguments": validating root: unexpected additional properties ["meta"]. "meta" is not an argument of find_documents (did you mean "metadata"?). find_documents takes: basket (required), limit, metadata (required), offset, order. Fix the arguments and call again.`},
		{"argument of a tool that takes none", writer, "list_pipelines", map[string]any{"x": 1}, `validating "arguments": validating root: unexpected additional properties ["x"]. "x" is not an argument of list_pipelines. list_pipelines takes no arguments: call it with {}.`},
		{"misspelt argument", writer, "list_documents", map[string]any{"baskte": "in"}, `validating "arguments": validating root: unexpected additional properties ["baskte"]. "baskte" is not an argument of list_documents (did you mean "basket"?). list_documents takes: basket (required), limit, offset, order.`},
		{"longer argument", writer, "get_document", map[string]any{"document_id": e.doc.ID}, `validating "arguments": validating root: unexpected additional properties ["document_id"]. "document_id" is not an argument of get_document (did you mean "id"?). get_document takes: id (required), keys.`},
		{"identity named", writer, "get_document", map[string]any{"id": e.doc.ID, "user_id": "root"}, `validating "arguments": validating root: unexpected additional properties ["user_id"]. "user_id" is not an argument of get_document (the identity is the server's, fixed when it started: no call can name one).`},
		{"bad metadata value", writer, "set_metadata", map[string]any{"id": e.doc.ID, "metadata": map[string]any{"x": []int{1}}}, "validating"},
		{"no metadata", writer, "set_metadata", map[string]any{"id": e.doc.ID, "metadata": map[string]any{}}, "validating"},
		{"empty key", writer, "set_metadata", map[string]any{"id": e.doc.ID, "metadata": map[string]any{"": 1}}, "invalid:"},
		{"no filters", writer, "find_documents", map[string]any{"basket": "in", "metadata": map[string]any{}}, "validating"},
		{"bad order", writer, "list_documents", map[string]any{"basket": "in", "order": "size"}, "validating"},
		{"limit too high", writer, "list_documents", map[string]any{"basket": "in", "limit": 101}, "validating"},
		{"negative offset", writer, "list_baskets", map[string]any{"offset": -1}, "validating"},
		// An integer past Go's int was a bare unmarshal error.
		{"offset past int", writer, "list_baskets", map[string]any{"offset": json.Number("9223372036854775808")}, `validating "arguments": validating root: validating /properties/offset: maximum:`},
		{"read offset past int", writer, "read_document", map[string]any{"id": e.doc.ID, "offset": json.Number("1e30")}, `validating "arguments": validating root: validating /properties/offset: maximum:`},
		{"empty basket name", writer, "create_basket", map[string]any{"name": " "}, "invalid:"},
		{"long basket name", writer, "create_basket", map[string]any{"name": strings.Repeat("b", 129)}, "invalid:"},
		{"no content", writer, "add_document", map[string]any{"basket": "in", "name": "x"}, "invalid:"},
		{"two contents", writer, "add_document", map[string]any{"basket": "in", "name": "x", "text": "a", "base64": "YQ=="}, "invalid:"},
		{"no name", writer, "add_document", map[string]any{"basket": "in", "text": "a"}, "invalid:"},
		{"bad base64", writer, "add_document", map[string]any{"basket": "in", "name": "x", "base64": "!!!"}, "invalid:"},
		{"offset past end", writer, "read_document", map[string]any{"id": e.doc.ID, "offset": 1 << 20}, "invalid:"},
		{"bad encoding", writer, "read_document", map[string]any{"id": e.doc.ID, "encoding": "utf16"}, "validating"},
		// Oversized inputs and pages.
		// The server's own byte check decides, in a short message: the
		// schema has no maxLength, whose refusal quoted the whole value.
		{"text too large", writer, "add_document", map[string]any{"basket": "in", "name": "x", "text": big}, "too_large: text is 1001 bytes, more than the limit of 1000."},
		{"text far too large", writer, "add_document", map[string]any{"basket": "in", "name": "x", "text": big + big}, "too_large: text is 2002 bytes"},
		{"text too large in bytes", writer, "add_document", map[string]any{"basket": "in", "name": "x", "text": strings.Repeat("é", 501)}, "too_large: text is 1002 bytes"},
		{"base64 too large", writer, "add_document", map[string]any{"basket": "in", "name": "x", "base64": base64.StdEncoding.EncodeToString([]byte(big))}, "too_large:"},
		{"base64 far too large", writer, "add_document", map[string]any{"basket": "in", "name": "x", "base64": base64.StdEncoding.EncodeToString([]byte(big + big))}, "too_large: base64 content decodes to about"},
		{"page too large", writer, "read_document", map[string]any{"id": e.doc.ID, "max_bytes": 4097}, "validating"},
		// Conflicts and plugin failures.
		{"basket exists", writer, "create_basket", map[string]any{"name": "in"}, "exists:"},
		{"plugin trap", writer, "run_plugin", map[string]any{"plugin": "trap", "document_id": e.doc.ID}, "plugin_failed:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := callErr(t, c.cs, c.tool, c.args)
			if !strings.HasPrefix(msg, c.want) {
				t.Fatalf("message %q, want prefix %q", msg, c.want)
			}
			// The code once: "forbidden: write requires ...", as docs/agents.md shows.
			if code, _, _ := strings.Cut(msg, ":"); strings.HasPrefix(msg, code+": "+code+":") {
				t.Fatalf("message %q repeats its code", msg)
			}
			if strings.Contains(msg, "xxxxxxxxxxxxxxxx") || strings.Contains(msg, "ééééééé") || strings.Contains(msg, "eHh4eHh4eHh4") {
				t.Fatalf("message quotes the argument: %.300s", msg)
			}
			if strings.Contains(msg, "beta's secret") || strings.Contains(msg, e.betaDoc.Name) {
				t.Fatalf("message leaks beta: %s", msg)
			}
		})
	}
	// The engine-level limits hold even when the schema is bypassed.
	s, err := New(e.eng, user("will", "writer"), Config{MaxInlineBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.addDocument(context.Background(), addDocumentIn{Basket: "in", Name: "x", Text: &big}); !errors.Is(err, docex.ErrTooLarge) {
		t.Fatalf("text over the limit: %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(big))
	if _, err := s.addDocument(context.Background(), addDocumentIn{Basket: "in", Name: "x", Base64: &b64}); !errors.Is(err, docex.ErrTooLarge) {
		t.Fatalf("base64 over the limit: %v", err)
	}
	// Failed calls changed nothing, and the server still serves.
	bl := call[struct{ Baskets []struct{ Name string } }](t, writer, "list_baskets", nil)
	if len(bl.Baskets) != 1 {
		t.Fatalf("baskets after failures: %+v", bl)
	}
	d, err := e.admin.Document(context.Background(), e.doc.ID)
	if err != nil || len(d.Metadata) != 1 {
		t.Fatalf("document after failures: %+v %v", d, err)
	}
	bd, err := e.beta.Document(context.Background(), e.betaDoc.ID)
	if err != nil || len(bd.Metadata) != 1 {
		t.Fatalf("beta's document after failures: %+v %v", bd, err)
	}
	// An unknown tool is the protocol's error, not a crash.
	if _, err := writer.CallTool(context.Background(), &mcp.CallToolParams{Name: "drop_tenant"}); err == nil {
		t.Fatal("unknown tool succeeded")
	}
	call[struct{}](t, writer, "list_plugins", nil)
}

func TestPanicIsToolError(t *testing.T) {
	s := &Server{log: discardLogger()}
	h := s.middleware(func(context.Context, string, mcp.Request) (mcp.Result, error) { panic("boom") })
	res, err := h(context.Background(), "tools/call", &mcp.CallToolRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.(*mcp.CallToolResult); !ok || !r.IsError || !strings.Contains(text(r), "boom") {
		t.Fatalf("panic result %+v", res)
	}
	// Elsewhere, an internal error (-32603): before, its code was 0.
	_, err = h(context.Background(), "resources/read", &mcp.ReadResourceRequest{})
	if err == nil || !strings.Contains(err.Error(), "still serving") {
		t.Fatalf("panic in resources/read: %v", err)
	}
	if rpcErr, data := rpcErrorOf(t, err); rpcErr.Code != jsonrpc.CodeInternalError || data.Code != "internal" || data.Kind != "internal" {
		t.Fatalf("panic in resources/read: %d %s, want -32603 of kind internal", rpcErr.Code, rpcErr.Data)
	}
}

func TestCheckIdentity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.eng.Provisioner("ops").Create(ctx, "gamma", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Provisioner("ops").Suspend(ctx, "gamma"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uc   docex.UserContext
		want error
	}{
		{docex.UserContext{UserID: "rita", TenantID: "alpha", Roles: []string{"reader"}}, nil},
		{docex.UserContext{TenantID: "alpha", Roles: []string{"admin"}}, docex.ErrUserRequired},
		{docex.UserContext{UserID: "x", Roles: []string{"admin"}}, docex.ErrTenantRequired},
		{docex.UserContext{UserID: "x", TenantID: "nope", Roles: []string{"admin"}}, docex.ErrTenantUnknown},
		{docex.UserContext{UserID: "x", TenantID: "gamma", Roles: []string{"admin"}}, docex.ErrTenantSuspended},
		{docex.UserContext{UserID: "x", TenantID: "system", Roles: []string{"admin"}}, docex.ErrBootstrapTenant},
		{docex.UserContext{UserID: "x", TenantID: "alpha"}, docex.ErrForbidden},
	} {
		s, err := New(e.eng, c.uc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(ctx); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%+v: %v, want %v", c.uc, err, c.want)
		}
	}
	// The identity is copied: changing the caller's roles later changes nothing.
	roles := []string{"reader"}
	s, _ := New(e.eng, docex.UserContext{UserID: "rita", TenantID: "alpha", Roles: roles}, Config{})
	roles[0] = "admin"
	if s.UserContext().Roles[0] != "reader" {
		t.Fatal("server shares the caller's roles slice")
	}
}

func TestAuditOrigin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, w := e.connect(t, user("will", "writer"), Config{})
	_, r := e.connect(t, user("rita", "reader"), Config{})
	add := call[struct{ Document docOut }](t, w, "add_document", map[string]any{"basket": "in", "name": "a.txt", "text": "abc"})
	call[pageOut](t, w, "read_document", map[string]any{"id": add.Document.ID})
	callErr(t, w, "get_document", map[string]any{"id": e.betaDoc.ID})
	call[map[string]any](t, w, "list_documents", map[string]any{"basket": "in"})
	callErr(t, r, "create_basket", map[string]any{"name": "x"})
	log, err := e.admin.Audit(ctx, docex.Page{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range log {
		if a.UserID == "ann" {
			continue
		}
		if !strings.HasPrefix(a.Operation, "mcp.") {
			t.Errorf("entry without the mcp origin: %+v", a)
		}
		seen[a.UserID+" "+a.Operation+" "+a.Outcome] = true
	}
	for _, want := range []string{
		"will mcp.document.add ok", "will mcp.document.read ok", "will mcp.document.get error",
		"will mcp.basket.get ok", "rita mcp.basket.create denied",
	} {
		if !seen[want] {
			t.Errorf("no audit entry %q in %v", want, seen)
		}
	}
	// Beta's log holds nothing of alpha's attempts.
	blog, err := e.beta.Audit(ctx, docex.Page{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range blog {
		if a.UserID != "bob" {
			t.Errorf("alpha's call in beta's log: %+v", a)
		}
	}
}

func TestResources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Enough documents for several pages of resources/list.
	var docs []engine.NewDocument
	for i := range 2*listPage + 7 {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%03d.txt", i), Content: strings.NewReader(fmt.Sprintf("document %d", i))})
	}
	b2, err := e.admin.CreateBasket(ctx, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.AddDocuments(ctx, b2.ID, docs); err != nil {
		t.Fatal(err)
	}
	_, cs := e.connect(t, user("rita", "reader"), Config{MaxResourceBytes: 64})

	var uris []string
	for r, err := range cs.Resources(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		uris = append(uris, r.URI)
	}
	want := 1 + 2 + 1 + len(docs) // baskets, two baskets, their documents
	if len(uris) != want || uris[0] != "docex://baskets" {
		t.Fatalf("%d resources, want %d: %v", len(uris), want, uris[:min(5, len(uris))])
	}
	seen := map[string]bool{}
	for _, u := range uris {
		if seen[u] {
			t.Fatalf("resource %s listed twice", u)
		}
		seen[u] = true
	}
	if seen[documentURI(e.betaDoc.ID)] || seen[basketURI(e.betaBask.ID)] {
		t.Fatal("beta's objects listed")
	}
	var tmpl []string
	for rt, err := range cs.ResourceTemplates(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		tmpl = append(tmpl, rt.URITemplate)
	}
	if !slices.Contains(tmpl, "docex://documents/{id}") || !slices.Contains(tmpl, "docex://baskets/{id}") {
		t.Fatalf("templates %v", tmpl)
	}

	read := func(uri string) (*mcp.ReadResourceResult, error) {
		return cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	}
	res, err := read(documentURI(e.doc.ID))
	if err != nil || res.Contents[0].Text != "one two three" || res.Contents[0].Meta != nil {
		t.Fatalf("document resource: %+v %v", res, err)
	}
	long := call[struct{ Document docOut }](t, e.writerClient(t), "add_document", map[string]any{"basket": "in", "name": "long.txt", "text": strings.Repeat("é", 100)}).Document
	res, err = read(documentURI(long.ID))
	if err != nil || len(res.Contents[0].Text) != 64 || res.Contents[0].Meta["truncated"] != true {
		t.Fatalf("long document resource: %+v %v", res.Contents[0], err)
	}
	res, err = read(basketURI(e.basket.ID))
	if err != nil || !strings.Contains(res.Contents[0].Text, e.doc.ID) {
		t.Fatalf("basket resource: %+v %v", res, err)
	}
	res, err = read(basketsURI)
	if err != nil || !strings.Contains(res.Contents[0].Text, `"bulk"`) || strings.Contains(res.Contents[0].Text, e.betaBask.ID) {
		t.Fatalf("baskets resource: %+v %v", res, err)
	}
	for _, uri := range []string{documentURI(e.betaDoc.ID), basketURI(e.betaBask.ID), documentURI("0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b"), "docex://tenants"} {
		if _, err := read(uri); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%s: %v, want not found", uri, err)
		}
	}
	// A malformed id names no resource either.
	if _, err := read(documentURI("x")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("malformed id: %v, want not found", err)
	}
	if _, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: "garbage!"}); err == nil {
		t.Error("a forged cursor was accepted")
	}
}

func (e *env) writerClient(t *testing.T) *mcp.ClientSession {
	_, cs := e.connect(t, user("will", "writer"), Config{})
	return cs
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

const shout = `name = "shout"
description = "upper-cases text"
max_attempts = 2
max_derived = 50

[[steps]]
name = "upper"
plugin = "upper"
accept = ["text/*"]
retry_timeout = true
`

func TestPipelineTools(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.admin.CreatePipeline(ctx, []byte(shout)); err != nil {
		t.Fatal(err)
	}
	_, w := e.connect(t, user("will", "writer"), Config{})
	_, r := e.connect(t, user("rita", "reader"), Config{})

	pl := call[struct {
		Pipelines []struct {
			Name        string
			Version     int
			MaxAttempts int `json:"max_attempts"`
			MaxDerived  int `json:"max_derived"`
			Steps       []struct {
				Name, Plugin string
				RetryTimeout bool `json:"retry_timeout"`
			}
		}
	}](t, w, "list_pipelines", nil)
	if len(pl.Pipelines) != 1 || pl.Pipelines[0].Name != "shout" || len(pl.Pipelines[0].Steps) != 1 || pl.Pipelines[0].Steps[0].Plugin != "upper" {
		t.Fatalf("list_pipelines: %+v", pl)
	}
	// The limits a job runs under are part of what an agent reads.
	if p := pl.Pipelines[0]; p.MaxAttempts != 2 || p.MaxDerived != 50 || !p.Steps[0].RetryTimeout {
		t.Fatalf("list_pipelines: max_attempts %d, max_derived %d, retry_timeout %v; want 2, 50, true", p.MaxAttempts, p.MaxDerived, p.Steps[0].RetryTimeout)
	}

	type runOut struct {
		JobIDs []string `json:"job_ids"`
		Status struct {
			Total, Succeeded, Pending int
			Done                      bool
		}
	}
	// Without a worker the job stays queued: the status says so.
	queued := call[runOut](t, w, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}})
	if len(queued.JobIDs) != 1 || queued.Status.Pending != 1 || queued.Status.Done {
		t.Fatalf("run_pipeline: %+v", queued)
	}
	// A worker runs it; run_pipeline on the basket waits for the result.
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.eng.Worker(engine.WorkerConfig{Tenants: []string{"alpha"}, Poll: 20 * time.Millisecond}).Run(wctx)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ran := call[runOut](t, w, "run_pipeline", map[string]any{"pipeline": "shout", "basket": "in", "wait_seconds": 60})
	if len(ran.JobIDs) != 1 || (ran.Status.Done && ran.Status.Succeeded != 1) {
		t.Fatalf("run_pipeline with wait: %+v", ran)
	}
	type jobOut struct {
		State      string
		DocumentID string `json:"document_id"`
		Outputs    []string
		Steps      []struct{ Step, Outcome string }
	}
	// Not done within the wait on a loaded machine: poll (no timing
	// threshold decides this test).
	job := call[jobOut](t, w, "get_job", map[string]any{"id": ran.JobIDs[0]})
	for deadline := time.Now().Add(10 * time.Minute); (job.State == "queued" || job.State == "running") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		job = call[jobOut](t, w, "get_job", map[string]any{"id": ran.JobIDs[0]})
	}
	if job.State != "succeeded" || job.DocumentID != e.doc.ID || len(job.Outputs) != 1 || len(job.Steps) != 1 {
		t.Fatalf("get_job: %+v", job)
	}
	page := call[pageOut](t, w, "read_document", map[string]any{"id": job.Outputs[0]})
	if page.Text != "ONE TWO THREE" {
		t.Fatalf("pipeline output %q", page.Text)
	}
	// The basket now holds the output too, but a run on the basket takes
	// its originals only, and the tool says so to the model.
	again := call[runOut](t, w, "run_pipeline", map[string]any{"pipeline": "shout", "basket": "in"})
	if len(again.JobIDs) != 1 {
		t.Fatalf("run_pipeline on a basket holding a derived document: %d jobs, want 1 (the original)", len(again.JobIDs))
	}
	tools, err := w.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name != "run_pipeline" {
			continue
		}
		schema, _ := json.Marshal(tool.InputSchema)
		if !strings.Contains(tool.Description, "original") || !strings.Contains(string(schema), "original") {
			t.Errorf("run_pipeline does not say that a basket's originals are run, not its derived documents: %q %s", tool.Description, schema)
		}
	}

	// Beta's job is not alpha's to see.
	manifest, module := pluginBytes(t, "upper")
	if _, err := e.beta.InstallPlugin(ctx, manifest, module); err != nil {
		t.Fatal(err)
	}
	if _, err := e.beta.CreatePipeline(ctx, []byte(shout)); err != nil {
		t.Fatal(err)
	}
	betaJobs, err := e.beta.RunPipeline(ctx, "shout", engine.RunTarget{DocumentIDs: []string{e.betaDoc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	many := make([]string, maxRunDocuments+1)
	for i := range many {
		many[i] = e.doc.ID
	}
	for _, c := range []struct {
		name string
		cs   *mcp.ClientSession
		tool string
		args map[string]any
		want string
	}{
		{"beta's job", w, "get_job", map[string]any{"id": betaJobs[0]}, "not_found:"},
		{"unknown job", w, "get_job", map[string]any{"id": "0190c1a2-0000-7000-8000-000000000000"}, "not_found:"},
		{"unknown pipeline", w, "run_pipeline", map[string]any{"pipeline": "nope", "document_ids": []string{e.doc.ID}}, "not_found:"},
		{"beta's document", w, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.betaDoc.ID}}, "not_found:"},
		{"beta's basket", w, "run_pipeline", map[string]any{"pipeline": "shout", "basket": e.betaBask.ID}, "not_found:"},
		{"both targets", w, "run_pipeline", map[string]any{"pipeline": "shout", "basket": "in", "document_ids": []string{e.doc.ID}}, "invalid:"},
		{"no target", w, "run_pipeline", map[string]any{"pipeline": "shout"}, "invalid:"},
		{"too many documents", w, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": many}, "validating"},
		{"wait too long", w, "run_pipeline", map[string]any{"pipeline": "shout", "basket": "in", "wait_seconds": 61}, "validating"},
		{"reader runs", r, "run_pipeline", map[string]any{"pipeline": "shout", "basket": "in"}, "forbidden:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if msg := callErr(t, c.cs, c.tool, c.args); !strings.HasPrefix(msg, c.want) {
				t.Fatalf("message %q, want prefix %q", msg, c.want)
			}
		})
	}
	// A reader may look at jobs and pipelines.
	call[struct{ State string }](t, r, "get_job", map[string]any{"id": ran.JobIDs[0]})
	call[struct{}](t, r, "list_pipelines", nil)
}

func pluginBytes(t testing.TB, name string) (manifest, module []byte) {
	t.Helper()
	fsys, err := testplugins.Dir(name)
	if err != nil {
		t.Fatal(err)
	}
	if manifest, err = fs.ReadFile(fsys, "plugin.toml"); err != nil {
		t.Fatal(err)
	}
	m, err := pluginapi.ParseManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if module, err = fs.ReadFile(fsys, m.Module); err != nil {
		t.Fatal(err)
	}
	return manifest, module
}

// TestTenantsInterleaved: agents of two tenants call tools concurrently in
// random order, each also trying the other's ids; every foreign id is
// not found, and each tenant ends with exactly its own documents.
func TestTenantsInterleaved(t *testing.T) {
	e := newEnv(t)
	_, a := e.connect(t, user("will", "writer"), Config{})
	_, b := e.connect(t, docex.UserContext{UserID: "bea", TenantID: "beta", Roles: []string{"writer"}}, Config{})
	type side struct {
		name   string
		cs     *mcp.ClientSession
		mu     sync.Mutex
		ids    []string
		errors []string
	}
	sides := []*side{{name: "alpha", cs: a}, {name: "beta", cs: b}}
	var wg sync.WaitGroup
	for i, me := range sides {
		other := sides[1-i]
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for n := range 40 {
				ctx := context.Background()
				switch rng.IntN(4) {
				case 0, 1:
					res, err := me.cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_document", Arguments: map[string]any{
						"basket": "in", "name": fmt.Sprintf("%s-%d.txt", me.name, n), "text": fmt.Sprintf("%s %d %d", me.name, n, rng.Uint64()),
						"metadata": map[string]any{"owner": me.name}}})
					if err != nil || res.IsError {
						me.mu.Lock()
						me.errors = append(me.errors, fmt.Sprintf("add: %v %s", err, text(res)))
						me.mu.Unlock()
						continue
					}
					id := res.StructuredContent.(map[string]any)["document"].(map[string]any)["id"].(string)
					me.mu.Lock()
					me.ids = append(me.ids, id)
					me.mu.Unlock()
				case 2:
					other.mu.Lock()
					var foreign string
					if len(other.ids) > 0 {
						foreign = other.ids[rng.IntN(len(other.ids))]
					}
					other.mu.Unlock()
					if foreign == "" {
						continue
					}
					tool := []string{"get_document", "read_document"}[rng.IntN(2)]
					res, err := me.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"id": foreign}})
					if err != nil || !res.IsError || !strings.HasPrefix(text(res), "not_found:") {
						me.mu.Lock()
						me.errors = append(me.errors, fmt.Sprintf("%s of %s's id: %v %s", tool, other.name, err, text(res)))
						me.mu.Unlock()
					}
				case 3:
					res, err := me.cs.CallTool(ctx, &mcp.CallToolParams{Name: "find_documents", Arguments: map[string]any{
						"basket": "in", "metadata": map[string]any{"owner": other.name}}})
					if err != nil || res.IsError || res.StructuredContent.(map[string]any)["total"] != float64(0) {
						me.mu.Lock()
						me.errors = append(me.errors, fmt.Sprintf("find of %s's documents: %v %s", other.name, err, text(res)))
						me.mu.Unlock()
					}
				}
			}
		}(uint64(i + 1))
	}
	wg.Wait()
	for _, s := range sides {
		for _, msg := range s.errors {
			t.Errorf("%s: %s", s.name, msg)
		}
	}
	for _, c := range []struct {
		s    *engine.Session
		mine *side
	}{{e.admin, sides[0]}, {e.beta, sides[1]}} {
		ctx := context.Background()
		bs, err := c.s.BasketByName(ctx, "in")
		if err != nil {
			t.Fatal(err)
		}
		docs, total, err := c.s.FindDocuments(ctx, bs.ID, []docex.MetaFilter{{Key: "owner", Value: docex.String(c.mine.name)}}, docex.Page{Limit: 1000})
		if err != nil || int(total) != len(c.mine.ids) {
			t.Fatalf("%s holds %d of its documents, added %d (%v)", c.mine.name, total, len(c.mine.ids), err)
		}
		for _, d := range docs {
			if !slices.Contains(c.mine.ids, d.ID) {
				t.Fatalf("%s holds a document it did not add: %s", c.mine.name, d.ID)
			}
		}
		if bs.DocumentCount != int64(len(c.mine.ids))+1 {
			t.Fatalf("%s's basket holds %d documents, want %d", c.mine.name, bs.DocumentCount, len(c.mine.ids)+1)
		}
	}
}

// TestListPluginsSaysHowToCallThem: list_plugins gives what run_plugin's
// errors send the model to look up: the content types each plugin accepts
// and its parameters; an unknown plugin's error points to list_plugins.
func TestListPluginsSaysHowToCallThem(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"derive", "wordcount"} {
		manifest, module := pluginBytes(t, name)
		if _, err := e.admin.InstallPlugin(context.Background(), manifest, module); err != nil {
			t.Fatal(err)
		}
	}
	_, cs := e.connect(t, user("will", "writer"), Config{})
	type param struct {
		Name, Type, Description string
		Required                bool
	}
	pl := call[struct {
		Plugins []struct {
			Name       string
			Accepts    []string
			Parameters []param
		}
	}](t, cs, "list_plugins", map[string]any{})
	got := map[string]int{}
	for i, p := range pl.Plugins {
		got[p.Name] = i
	}
	derive, wc, echo := pl.Plugins[got["derive"]], pl.Plugins[got["wordcount"]], pl.Plugins[got["echo"]]
	if want := []param{{Name: "title", Type: "string", Description: "Text of the summary.", Required: true}}; !slices.Equal(derive.Parameters, want) {
		t.Errorf("derive's parameters: %+v, want %+v", derive.Parameters, want)
	}
	if !slices.Equal(wc.Accepts, []string{"text/*"}) || len(wc.Parameters) != 0 {
		t.Errorf("wordcount: %+v", wc)
	}
	if len(echo.Accepts) != 0 || len(echo.Parameters) != 0 {
		t.Errorf("echo: %+v", echo)
	}
	for _, c := range []struct {
		args map[string]any
		want []string
	}{
		{map[string]any{"plugin": "derive", "document_id": e.doc.ID}, []string{"plugin_invalid:", `"title"`, "list_plugins"}},
		{map[string]any{"plugin": "nope", "document_id": e.doc.ID}, []string{"not_found:", `plugin "nope"`, "list_plugins"}},
	} {
		msg := callErr(t, cs, "run_plugin", c.args)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("run_plugin %v: %q, want %q in it", c.args, msg, w)
			}
		}
	}
}

// TestReadDefaultWithinTheMost: with --max-read-bytes below the default
// page, read_document's description and schema give the page a call
// without max_bytes gets (the most), not a default above the most.
func TestReadDefaultWithinTheMost(t *testing.T) {
	e := newEnv(t)
	_, cs := e.connect(t, user("will", "reader"), Config{MaxReadBytes: 100})
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name != "read_document" {
			continue
		}
		schema, _ := json.Marshal(tool.InputSchema)
		if want := "default 100, at most 100"; !strings.Contains(tool.Description, want) || strings.Contains(string(schema), fmt.Sprint(DefaultReadBytes)) {
			t.Errorf("read_document: %q (want %q), schema %s", tool.Description, want, schema)
		}
	}
	big := call[struct {
		Length int `json:"length"`
	}](t, cs, "read_document", map[string]any{"id": e.doc.ID})
	if big.Length != len("one two three") {
		t.Fatalf("page: %+v", big)
	}
}

// TestSuspendedTenantHint: a call while the tenant is suspended says
// that an operator can resume it, and after the resume the same session
// works (the hint said retrying would not help).
func TestSuspendedTenantHint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, cs := e.connect(t, user("will", "writer"), Config{})
	if err := e.eng.Provisioner("ops").Suspend(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	msg := callErr(t, cs, "list_baskets", nil)
	if !strings.HasPrefix(msg, "tenant_suspended:") || !strings.Contains(msg, "An operator can resume it (docex tenant resume alpha); calls then work again") ||
		strings.Contains(strings.ToLower(msg), "retrying will not help") {
		t.Fatalf("suspended: %s", msg)
	}
	if err := e.eng.Provisioner("ops").Resume(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	call[struct{}](t, cs, "list_baskets", nil)
}

// TestCacheScope: every result that carries cache fields says "private":
// they are one tenant's data seen by one user (the SDK's default was
// "public", and resources/list, which the server serves itself, had none).
func TestCacheScope(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, cs := e.connect(t, user("rita", "reader"), Config{})
	scopes := map[string]string{}
	if r, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: documentURI(e.doc.ID)}); err == nil {
		scopes["resources/read document"] = r.CacheScope
	} else {
		t.Fatal(err)
	}
	if r, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: basketsURI}); err == nil {
		scopes["resources/read baskets"] = r.CacheScope
	} else {
		t.Fatal(err)
	}
	if r, err := cs.ListResources(ctx, nil); err == nil {
		scopes["resources/list"] = r.CacheScope
		if r, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: r.NextCursor}); err == nil {
			scopes["resources/list page 2"] = r.CacheScope
		} else {
			t.Fatal(err)
		}
	} else {
		t.Fatal(err)
	}
	if r, err := cs.ListResourceTemplates(ctx, nil); err == nil {
		scopes["resources/templates/list"] = r.CacheScope
	} else {
		t.Fatal(err)
	}
	if r, err := cs.ListTools(ctx, nil); err == nil {
		scopes["tools/list"] = r.CacheScope
	} else {
		t.Fatal(err)
	}
	for method, scope := range scopes {
		if scope != "private" {
			t.Errorf("%s: cacheScope %q, want private", method, scope)
		}
	}
}

// TestAddFromPathProtected: Config.Protected entries are refused as
// denials (the hint says retrying will not help), a protected directory
// created after the server started included; a file next to them is
// added; an AllowPath inside a protected directory is refused by New.
func TestAddFromPathProtected(t *testing.T) {
	e := newEnv(t)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(e.allow, "conf.yaml")
	must(os.WriteFile(conf, []byte("dsn: secret"), 0o600))
	must(os.WriteFile(filepath.Join(e.allow, "ok.txt"), []byte("inside"), 0o600))
	later := filepath.Join(e.allow, "later")
	_, cs := e.connect(t, user("will", "writer"), Config{AllowPath: e.allow, Protected: []ProtectedPath{
		{Path: conf, What: "configuration file"}, {Path: later, What: "cache (cache_dir)"},
	}})
	must(os.MkdirAll(filepath.Join(later, "sub"), 0o700))
	must(os.WriteFile(filepath.Join(later, "sub", "x.bin"), []byte("cached"), 0o600))
	for _, c := range []struct{ path, want string }{
		{"conf.yaml", `denied: path "conf.yaml" is docex's own configuration file`},
		{"later/sub/x.bin", `denied: path "later/sub/x.bin" lies inside docex's own cache (cache_dir)`},
	} {
		msg := callErr(t, cs, "add_document", map[string]any{"basket": "in", "path": c.path})
		if !strings.HasPrefix(msg, c.want) || !strings.Contains(msg, "retrying will not help") || strings.Contains(msg, "secret") {
			t.Errorf("%s: %s", c.path, msg)
		}
	}
	call[struct{ Document docOut }](t, cs, "add_document", map[string]any{"basket": "in", "path": "ok.txt"})
	for _, dir := range []string{later, filepath.Join(later, "sub")} {
		if _, err := New(e.eng, user("will", "writer"), Config{AllowPath: dir, Protected: []ProtectedPath{{Path: later, What: "cache (cache_dir)"}}}); !errors.Is(err, docex.ErrInvalid) ||
			!strings.Contains(err.Error(), "is inside docex's own cache (cache_dir)") {
			t.Errorf("allow-path %s inside a protected directory: %v", dir, err)
		}
	}
}
