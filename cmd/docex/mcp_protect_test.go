package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPAllowPathRefusesDocexFiles: with --allow-path on a directory that
// holds docex's own storage (the directory of docex.yaml, whose data_dir
// docex-data is the default), tenant evil's agent may not add tenant
// acme's database or content, the system database, docex.yaml or a
// directory docex.yaml names for its data (here sandbox.cache_dir outside
// data_dir), by any name: directly, through a symlink, or a hard link to
// the configuration file, the system database, a tenant database or a
// content pack (the last two were added before 2026-12-06; a file of the
// user's with two names is still added). Each is refused as a
// denial (audited as one); a file of the user's next to them is added.
// Over stdio and over --http. An --allow-path inside one of docex's
// directories is refused before serving (exit 2). Before, every one of
// these files was added and readable with read_document.
func TestMCPAllowPathRefusesDocexFiles(t *testing.T) {
	h := mcpHarness(t)
	h.ok("tenant", "create", "evil")
	cfg := filepath.Join(h.dir, "docex.yaml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("sandbox:\n  cache_dir: cache\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	secret := h.file("secret.txt", "ACME CONFIDENTIAL: merger with globex")
	h.ok("--tenant", "acme", "--user", "u", "--roles", "writer", "basket", "create", "b")
	h.ok("--tenant", "acme", "--user", "u", "--roles", "writer", "doc", "add", "b", secret)
	if err := os.Remove(secret); err != nil {
		t.Fatal(err)
	}
	h.ok("--tenant", "evil", "--user", "u", "--roles", "writer", "basket", "create", "x")
	mine := h.file("mine.txt", "evil's own notes")

	data := filepath.Join(h.dir, "docex-data")
	one := func(pattern string) string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(data, pattern))
		if err != nil || len(m) != 1 {
			t.Fatalf("%s: %v %v", pattern, m, err)
		}
		return m[0]
	}
	tenantDB := one("tenants/acme/*.db")
	pack := one("content/tenants/acme/*/packs/*.pack")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(h.dir, "cache"), 0o700))
	cached := filepath.Join(h.dir, "cache", "module.bin")
	must(os.WriteFile(cached, []byte("compiled"), 0o600))
	must(os.Symlink(tenantDB, filepath.Join(h.dir, "link.db")))
	must(os.Symlink(filepath.Join("docex-data", "content"), filepath.Join(h.dir, "content-link")))
	must(os.Link(cfg, filepath.Join(h.dir, "hard.yaml")))
	must(os.Link(filepath.Join(data, "system.db"), filepath.Join(h.dir, "hard-system.db")))
	must(os.Link(tenantDB, filepath.Join(h.dir, "hard-tenant.db")))
	must(os.Link(pack, filepath.Join(h.dir, "hard.pack")))
	// A file of the user's with two names, neither of them docex's, is
	// the user's: added.
	must(os.Link(mine, filepath.Join(h.dir, "mine-too.txt")))
	packRel, err := filepath.Rel(filepath.Join(data, "content"), pack)
	must(err)
	dbRel, err := filepath.Rel(h.dir, tenantDB)
	must(err)

	refused := []struct{ name, path, msg string }{
		{"tenant database", tenantDB, "inside docex's own data directory (data_dir)"},
		{"tenant database, relative", dbRel, "inside docex's own data directory"},
		{"system database", filepath.Join(data, "system.db"), "inside docex's own data directory"},
		{"content pack", pack, "inside docex's own data directory"},
		{"configuration file", cfg, "docex's own configuration file"},
		{"configuration file, relative", "docex.yaml", "docex's own configuration file"},
		{"sandbox.cache_dir outside data_dir", cached, "inside docex's own plugin compilation cache (sandbox.cache_dir)"},
		{"symlink to a tenant database", "link.db", "inside docex's own data directory"},
		{"symlinked directory into the content", filepath.Join("content-link", packRel), "inside docex's own data directory"},
		{"hard link to the configuration file", "hard.yaml", "configuration file, under another name"},
		{"hard link to the system database", "hard-system.db", "system database (database.sqlite.system_file), under another name"},
		{"hard link to a tenant database", "hard-tenant.db", "a hard link to a file inside docex's own data directory"},
		{"hard link to a content pack", "hard.pack", "a hard link to a file inside docex's own data directory"},
	}
	env := map[string]string{"DOCEX_TENANT": "evil", "DOCEX_USER": "agent", "DOCEX_ROLES": "writer", noBuiltinEnv: "1"}
	for _, transport := range []string{"stdio", "http"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cs *mcp.ClientSession
			var stop func() int
			if transport == "stdio" {
				h.env = env
				var stderr *syncBuffer
				cs, stderr, stop = h.startMCP("--allow-path", h.dir)
				defer func() {
					if code := stop(); code != 0 {
						t.Errorf("exit %d: %s", code, stderr.String())
					}
				}()
			} else {
				stderr := &syncBuffer{}
				done := make(chan error, 1)
				go func() {
					done <- runIO(ctx, []string{"--config", cfg, "mcp", "--http", "127.0.0.1:0", "--allow-path", h.dir},
						strings.NewReader(""), io.Discard, stderr, func(k string) string { return env[k] })
				}()
				url := mcpHTTPURL(t, stderr, done)
				cs, err = mcp.NewClient(&mcp.Implementation{Name: "http-test", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
				must(err)
				defer func() {
					cs.Close()
					cancel()
					if err := <-done; err != nil {
						t.Errorf("exit: %v: %s", err, stderr.String())
					}
				}()
			}
			for _, c := range refused {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_document", Arguments: map[string]any{"basket": "x", "path": c.path}})
				if err != nil {
					t.Fatal(err)
				}
				if !res.IsError {
					t.Errorf("%s: tenant evil's agent added docex's own file %s", c.name, c.path)
					continue
				}
				msg := res.Content[0].(*mcp.TextContent).Text
				if !strings.HasPrefix(msg, "denied: ") || !strings.Contains(msg, c.msg) || !strings.Contains(msg, "never added by path") {
					t.Errorf("%s: %s, want denied naming %q", c.name, msg, c.msg)
				}
			}
			// The user's own file next to them is added, by either of
			// its names (the second is a duplicate of the first).
			for _, p := range []string{mine, "mine-too.txt"} {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_document", Arguments: map[string]any{"basket": "x", "path": p}})
				if err != nil || res.IsError {
					t.Fatalf("a legitimate file %s: %v %+v", p, err, res)
				}
			}
		})
	}

	// Every refusal is audited as a denied add, with the path asked for.
	h.env = map[string]string{noBuiltinEnv: "1"}
	log := decode[[]struct {
		Operation, Outcome string
		Detail             map[string]any
	}](t, h.ok("--tenant", "evil", "--user", "u", "--roles", "admin", "audit", "list", "--json", "--limit", "1000").stdout)
	denied := map[string]int{}
	for _, e := range log {
		if e.Operation == "mcp.document.add" && e.Outcome == "denied" {
			p, _ := e.Detail["path"].(string)
			denied[p]++
		}
	}
	for _, c := range refused {
		if denied[c.path] != 2 {
			t.Errorf("%s: %d denials of %s in the audit log, want 2 (stdio, http)", c.name, denied[c.path], c.path)
		}
	}
	// Nothing of docex's was added: evil's basket holds its own file only.
	docs := decode[[]doc](t, h.ok("--tenant", "evil", "--user", "u", "--roles", "reader", "doc", "list", "x", "--json").stdout)
	if len(docs) != 1 || docs[0].Name != "mine.txt" {
		t.Fatalf("evil's basket: %+v", docs)
	}

	// An --allow-path inside one of docex's directories is refused before
	// serving; one that merely contains them (above) is not.
	for _, c := range []struct{ name, dir, msg string }{
		{"data_dir", data, "docex's own data directory (data_dir)"},
		{"content", filepath.Join(data, "content"), "docex's own data directory (data_dir)"},
		{"sandbox.cache_dir", filepath.Join(h.dir, "cache"), "docex's own plugin compilation cache (sandbox.cache_dir)"},
		{"symlink to data_dir", filepath.Join(h.dir, "content-link"), "docex's own data directory (data_dir)"},
	} {
		t.Run("allow-path in "+c.name, func(t *testing.T) {
			r := h.want(exitInvalid, "--tenant", "evil", "--user", "agent", "--roles", "writer", "mcp", "--allow-path", c.dir)
			if r.stdout != "" || !strings.Contains(r.stderr, "allowed path "+c.dir+" is inside "+c.msg) {
				t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
			}
		})
	}
}
