package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"time"
)

// harness runs the CLI in-process in a temporary directory with its own
// environment.
type harness struct {
	t   *testing.T
	dir string
	env map[string]string
}

func newHarness(t *testing.T) *harness {
	// The built-in steps are installed by the tests that use them
	// (builtin_test.go): compiling their module costs seconds.
	return &harness{t: t, dir: t.TempDir(), env: map[string]string{noBuiltinEnv: "1"}}
}

type result struct {
	code           int
	stdout, stderr string
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--config", filepath.Join(h.dir, "docex.yaml")}, args...)
	err := runEnv(context.Background(), full, &out, &errb, func(k string) string { return h.env[k] })
	return result{code: exitCode(err), stdout: out.String(), stderr: errb.String()}
}

func (h *harness) ok(args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("docex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (h *harness) want(code int, args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != code {
		h.t.Fatalf("docex %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

func (h *harness) file(name, content string) string {
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// editConfig replaces the first old in the harness's docex.yaml with
// new, failing the test when old is not there.
func (h *harness) editConfig(old, new string) {
	h.t.Helper()
	path := filepath.Join(h.dir, "docex.yaml")
	cfg, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	edited := strings.Replace(string(cfg), old, new, 1)
	if edited == string(cfg) {
		h.t.Fatalf("docex.yaml has no %q to replace:\n%s", old, cfg)
	}
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
	return v
}

type doc struct {
	ID          string         `json:"id"`
	BasketID    string         `json:"basket_id"`
	Name        string         `json:"name"`
	ContentType string         `json:"content_type"`
	Size        int64          `json:"size"`
	Checksum    string         `json:"checksum"`
	Status      string         `json:"status"`
	CreatedAt   string         `json:"created_at"`
	UpdatedAt   string         `json:"updated_at"`
	Metadata    map[string]any `json:"metadata"`
}

// added is an element of doc add --json.
type added struct {
	Document  doc  `json:"document"`
	Duplicate bool `json:"duplicate"`
}

func documents(as []added) []doc {
	out := make([]doc, len(as))
	for i, a := range as {
		out[i] = a.Document
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.ok("init")
	if !strings.Contains(r.stdout, "initialised") {
		t.Fatalf("init: %s", r.stdout)
	}
	cfg, _ := os.ReadFile(filepath.Join(h.dir, "docex.yaml"))
	r = h.ok("init")
	if !strings.Contains(r.stdout, "already initialised") {
		t.Fatalf("second init: %s", r.stdout)
	}
	if cfg2, _ := os.ReadFile(filepath.Join(h.dir, "docex.yaml")); !bytes.Equal(cfg, cfg2) {
		t.Fatal("second init rewrote docex.yaml")
	}
	h.ok("tenant", "create", "acme", "--display-name", "Acme Corp")
	h.ok("tenant", "create", "globex")
	h.want(exitConflict, "tenant", "create", "acme")

	type tenant struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		Status      string `json:"status"`
		IsSystem    bool   `json:"is_system"`
		CreatedAt   string `json:"created_at"`
	}
	ts := decode[[]tenant](t, h.ok("tenant", "list", "--json").stdout)
	if len(ts) != 3 || ts[2].ID != "system" || !ts[2].IsSystem || ts[0].DisplayName != "Acme Corp" {
		t.Fatalf("tenants: %+v", ts)
	}

	acme := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	// Flags after positional arguments (GNU style).
	h.ok(append([]string{"basket", "create", "invoices"}, acme...)...)
	a := h.file("a.txt", "hello world")
	b := h.file("b.txt", "second")
	docs := documents(decode[[]added](t, h.ok(append([]string{"doc", "add", "invoices", a, b, "--meta", "lang=en", "--meta", "pages=42", "--meta", "paid=true", "--json"}, acme...)...).stdout))
	if len(docs) != 2 || docs[0].Name != "a.txt" || docs[0].Size != 11 || docs[0].Metadata["pages"] != float64(42) || docs[0].Metadata["paid"] != true || docs[0].Metadata["lang"] != "en" {
		t.Fatalf("added: %+v", docs)
	}
	if len(docs[0].Checksum) != 64 || docs[0].Status != "active" || docs[0].CreatedAt == "" || docs[0].BasketID == "" || !strings.HasPrefix(docs[0].ContentType, "text/plain") {
		t.Fatalf("document fields: %+v", docs[0])
	}
	if docs[0].ID == docs[1].ID || strings.Trim(docs[0].ID, "0123456789") == "" {
		t.Fatalf("ids must be opaque and unique: %q %q", docs[0].ID, docs[1].ID)
	}
	id := docs[0].ID

	r = h.ok(append([]string{"doc", "cat", id}, acme...)...)
	if r.stdout != "hello world" {
		t.Fatalf("cat: %q", r.stdout)
	}
	found := decode[[]doc](t, h.ok(append([]string{"doc", "find", "invoices", "--meta", "pages=42", "--meta", "lang=en", "--json"}, acme...)...).stdout)
	if len(found) != 2 {
		t.Fatalf("find: %+v", found)
	}
	found = decode[[]doc](t, h.ok(append([]string{"doc", "find", "invoices", "--meta", "pages=s:42", "--json"}, acme...)...).stdout)
	if len(found) != 0 {
		t.Fatalf("string 42 matched number 42: %+v", found)
	}
	list := decode[[]doc](t, h.ok(append([]string{"doc", "list", "invoices", "--limit", "1", "--offset", "1", "--json"}, acme...)...).stdout)
	if len(list) != 1 || list[0].ID != docs[1].ID {
		t.Fatalf("list page: %+v", list)
	}
	h.ok(append([]string{"doc", "meta", "set", id, "status=final", "n=1.5"}, acme...)...)
	got := decode[doc](t, h.ok(append([]string{"doc", "get", id, "--json"}, acme...)...).stdout)
	if got.Metadata["status"] != "final" || got.Metadata["n"] != 1.5 {
		t.Fatalf("meta set: %+v", got.Metadata)
	}
	if m := decode[map[string]any](t, h.ok(append([]string{"doc", "meta", "get", id, "n", "--json"}, acme...)...).stdout); m["value"] != 1.5 || m["key"] != "n" || m["document_id"] != id {
		t.Fatalf("meta get: %v", m)
	}
	if r := h.ok(append([]string{"doc", "meta", "get", id, "n"}, acme...)...); strings.TrimSpace(r.stdout) != "1.5" {
		t.Fatalf("meta get: %q", r.stdout)
	}
	if m := decode[map[string]any](t, h.ok(append([]string{"doc", "meta", "get", id, "--json"}, acme...)...).stdout); m["status"] != "final" {
		t.Fatalf("meta get all: %+v", m)
	}
	h.want(exitNotFound, append([]string{"doc", "meta", "get", id, "nope"}, acme...)...)
	h.ok(append([]string{"doc", "meta", "delete", id, "status"}, acme...)...)
	h.want(exitNotFound, append([]string{"doc", "meta", "delete", id, "status"}, acme...)...)

	upd := h.file("new.txt", "updated content")
	got = decode[doc](t, h.ok(append([]string{"doc", "update", id, upd, "--json"}, acme...)...).stdout)
	if got.ID != id || got.Size != 15 || got.Checksum == docs[0].Checksum {
		t.Fatalf("update: %+v", got)
	}
	if r := h.ok(append([]string{"doc", "cat", id}, acme...)...); r.stdout != "updated content" {
		t.Fatalf("cat after update: %q", r.stdout)
	}

	// Cross-tenant read is not found, not denied: globex cannot even learn it exists.
	globex := []string{"--tenant", "globex", "--user", "bob", "--roles", "admin"}
	h.want(exitNotFound, append([]string{"doc", "get", id}, globex...)...)
	h.want(exitNotFound, append([]string{"doc", "cat", id}, globex...)...)
	h.want(exitNotFound, append([]string{"basket", "show", "invoices"}, globex...)...)

	bs := decode[[]map[string]any](t, h.ok(append([]string{"basket", "list", "--json"}, acme...)...).stdout)
	if len(bs) != 1 || bs[0]["name"] != "invoices" || bs[0]["document_count"] != float64(2) {
		t.Fatalf("baskets: %+v", bs)
	}
	h.want(exitConflict, append([]string{"basket", "delete", "invoices"}, acme...)...)
	h.want(exitConflict, append([]string{"basket", "create", "invoices"}, acme...)...)
	h.ok(append([]string{"doc", "delete", docs[1].ID}, acme...)...)
	h.want(exitNotFound, append([]string{"doc", "delete", docs[1].ID}, acme...)...)
	h.ok(append([]string{"basket", "delete", "invoices", "--force"}, acme...)...)

	audit := decode[[]map[string]any](t, h.ok(append([]string{"audit", "list", "--limit", "100", "--json"}, acme...)...).stdout)
	if len(audit) < 8 || audit[0]["operation"] != "basket.delete" || audit[0]["user_id"] != "alice" {
		t.Fatalf("audit: %+v", audit)
	}
	sys := decode[[]map[string]any](t, h.ok("audit", "list", "--system", "--json").stdout)
	if len(sys) == 0 {
		t.Fatal("system audit is empty")
	}

	h.ok("tenant", "suspend", "globex")
	h.want(exitDenied, append([]string{"basket", "list"}, globex...)...)
	h.ok("tenant", "resume", "globex")
	h.ok(append([]string{"basket", "list"}, globex...)...)
	h.want(exitInvalid, "tenant", "delete", "globex")
	h.ok("tenant", "delete", "globex", "--yes")
	h.want(exitDenied, append([]string{"basket", "list"}, globex...)...)
	h.want(exitNotFound, "tenant", "show", "globex")
	h.ok("tenant", "create", "globex")
	if r := h.ok(append([]string{"basket", "list", "--json"}, globex...)...); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("re-created tenant has baskets: %s", r.stdout)
	}
	rep := decode[map[string]any](t, h.ok("gc", "--grace", "0s", "--json").stdout)
	if rep["content_files"] != float64(0) {
		t.Fatalf("gc: %+v", rep)
	}
	h.want(exitInvalid, "gc", "--grace", "-1s")
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Before init: config missing.
	r := h.want(exitInvalid, "tenant", "list")
	if !strings.Contains(r.stderr, "docex init") {
		t.Fatalf("missing config: %s", r.stderr)
	}
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.ok("tenant", "create", "beta")
	h.ok("tenant", "suspend", "beta")
	f := h.file("x.txt", "x")
	cases := []struct {
		name string
		code int
		args []string
	}{
		{"help", exitOK, []string{"--help"}},
		{"command help", exitOK, []string{"doc", "add", "--help"}},
		{"group help", exitOK, []string{"tenant", "--help"}},
		{"no command", exitInvalid, nil},
		{"unknown command", exitInvalid, []string{"frobnicate"}},
		{"group without subcommand", exitInvalid, []string{"tenant"}},
		{"unknown flag", exitInvalid, []string{"tenant", "list", "--bogus"}},
		{"zero limit", exitInvalid, []string{"audit", "list", "--system", "--limit", "0"}},
		{"limit above the most", exitOK, []string{"audit", "list", "--system", "--limit", "100000"}},
		{"missing argument", exitInvalid, []string{"tenant", "create"}},
		{"too many arguments", exitInvalid, []string{"tenant", "show", "a", "b"}},
		{"invalid tenant id", exitInvalid, []string{"tenant", "create", "../evil"}},
		{"upper-case tenant id", exitInvalid, []string{"tenant", "create", "Acme"}},
		{"reserved tenant id", exitInvalid, []string{"tenant", "create", "public"}},
		{"tenant exists", exitConflict, []string{"tenant", "create", "acme"}},
		{"bootstrap tenant create", exitConflict, []string{"tenant", "create", "system"}},
		{"tenant not found", exitNotFound, []string{"tenant", "show", "nobody"}},
		{"delete without yes", exitInvalid, []string{"tenant", "delete", "acme"}},
		{"delete bootstrap", exitDenied, []string{"tenant", "delete", "system", "--yes"}},
		{"no user", exitDenied, []string{"basket", "list", "--tenant", "acme", "--roles", "admin"}},
		{"no tenant", exitDenied, []string{"basket", "list", "--user", "u", "--roles", "admin"}},
		{"unknown tenant", exitDenied, []string{"basket", "list", "--tenant", "nobody", "--user", "u", "--roles", "admin"}},
		{"suspended tenant", exitDenied, []string{"basket", "list", "--tenant", "beta", "--user", "u", "--roles", "admin"}},
		{"bootstrap tenant", exitDenied, []string{"basket", "list", "--tenant", "system", "--user", "u", "--roles", "admin"}},
		{"forbidden role", exitDenied, []string{"basket", "create", "b", "--tenant", "acme", "--user", "u", "--roles", "reader"}},
		{"no roles", exitDenied, []string{"basket", "list", "--tenant", "acme", "--user", "u"}},
		{"invalid runtime tenant id", exitInvalid, []string{"basket", "list", "--tenant", "a;drop", "--user", "u", "--roles", "admin"}},
		{"basket not found", exitNotFound, []string{"doc", "add", "nope", f, "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"malformed document id", exitInvalid, []string{"doc", "get", "nope", "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"malformed document id to run", exitInvalid, []string{"doc", "cat", "../x", "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"document not found", exitNotFound, []string{"doc", "get", "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b", "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"help command", exitOK, []string{"help"}},
		{"help for a command", exitOK, []string{"help", "doc", "add"}},
		{"help for a group", exitOK, []string{"help", "tenant"}},
		{"help for an unknown command", exitInvalid, []string{"help", "frobnicate"}},
		{"version flag", exitOK, []string{"--version"}},
		{"file missing", exitInvalid, []string{"doc", "add", "b", filepath.Join(h.dir, "missing"), "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"bad meta", exitInvalid, []string{"doc", "find", "b", "--meta", "novalue", "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"bad order", exitInvalid, []string{"doc", "list", "b", "--order", "sideways", "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"negative limit", exitInvalid, []string{"basket", "list", "--limit", "-1", "--tenant", "acme", "--user", "u", "--roles", "admin"}},
		{"init backend mismatch", exitInvalid, []string{"init", "--backend", "postgres"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.run(c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.code != exitOK && r.stderr == "" {
				t.Fatal("no error message on stderr")
			}
		})
	}
	// An internal error: a corrupt tenant registry is exit 1, not a
	// user error. Simulate by making the system database unreadable.
	sysdb := filepath.Join(h.dir, "docex-data", "system.db")
	if err := os.WriteFile(sysdb, []byte("this is not a database, but long enough to be read as one......................................................................."), 0o600); err != nil {
		t.Fatal(err)
	}
	h.want(exitInternal, "tenant", "list")
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	r := h.want(exitDenied, "basket", "list", "--json", "--tenant", "acme", "--roles", "admin")
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil {
		t.Fatalf("stderr is not JSON: %q", r.stderr)
	}
	if e.Error.Code != "user_required" || e.Error.Message == "" {
		t.Fatalf("error = %+v", e)
	}
	r = h.want(exitInvalid, "--json", "tenant", "create", "Bad")
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || e.Error.Code != "invalid_id" {
		t.Fatalf("error = %q", r.stderr)
	}
	r = h.want(exitInvalid, "--json", "tenant", "list", "--bogus")
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || e.Error.Code != "invalid" {
		t.Fatalf("usage error = %q", r.stderr)
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"] = "acme"
	h.env["DOCEX_USER"] = "env-user"
	h.env["DOCEX_ROLES"] = "writer,reader"
	h.ok("basket", "create", "b")
	// Flags override the environment.
	h.want(exitDenied, "basket", "create", "c", "--roles", "reader")
	// DOCEX_CONFIG names the config file.
	var out, errb bytes.Buffer
	err := runEnv(context.Background(), []string{"basket", "list", "--json"}, &out, &errb, func(k string) string {
		if k == "DOCEX_CONFIG" {
			return filepath.Join(h.dir, "docex.yaml")
		}
		return h.env[k]
	})
	if err != nil || !strings.Contains(out.String(), `"b"`) {
		t.Fatalf("DOCEX_CONFIG: %v %s %s", err, out.String(), errb.String())
	}
}

func TestInitDataDirAndMove(t *testing.T) {
	h := newHarness(t)
	t.Chdir(h.dir) // --data-dir is relative to the working directory
	h.ok("init", "--data-dir", "elsewhere")
	if _, err := os.Stat(filepath.Join(h.dir, "elsewhere", "system.db")); err != nil {
		t.Fatalf("--data-dir not honoured: %v", err)
	}
	h.ok("tenant", "create", "acme")
	f := h.file("a.txt", "moved content")
	h.ok("basket", "create", "b", "--tenant", "acme", "--user", "u", "--roles", "admin")
	added := documents(decode[[]added](t, h.ok("doc", "add", "b", f, "--json", "--tenant", "acme", "--user", "u", "--roles", "admin").stdout))
	// Move the whole directory: relative paths follow the config file.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(h.dir, moved); err != nil {
		t.Fatal(err)
	}
	h.dir = moved
	if r := h.ok("doc", "cat", added[0].ID, "--tenant", "acme", "--user", "u", "--roles", "reader"); r.stdout != "moved content" {
		t.Fatalf("after move: %q", r.stdout)
	}
}

func TestSingleFileMode(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.ok("init", "--single-file", "--json")
	res := decode[map[string]any](t, r.stdout)
	if res["multi_tenancy"] != false || res["content_storage"] != "database" {
		t.Fatalf("init: %+v", res)
	}
	h.want(exitInvalid, "tenant", "create", "acme")
	f := h.file("a.txt", "local data")
	h.want(exitDenied, "basket", "create", "b", "--roles", "admin")
	h.ok("basket", "create", "b", "--user", "me", "--roles", "admin")
	added := documents(decode[[]added](t, h.ok("doc", "add", "b", f, "--json", "--user", "me", "--roles", "admin").stdout))
	// Exactly one database file holds everything; copy it elsewhere and read.
	data := filepath.Join(h.dir, "docex-data")
	entries, _ := os.ReadDir(data)
	var dbs []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") {
			dbs = append(dbs, e.Name())
		}
	}
	if len(dbs) != 1 {
		t.Fatalf("database files: %v", dbs)
	}
	if _, err := os.Stat(filepath.Join(data, "tenants")); err == nil {
		t.Fatal("single-file mode created a tenants directory")
	}
	h2 := newHarness(t)
	h2.ok("init", "--single-file")
	// Replace the new system file with a copy of the first (after a
	// checkpoint: the engine has closed it, so the WAL is folded in).
	src, err := os.ReadFile(filepath.Join(data, dbs[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(h2.dir, "docex-data", dbs[0]+suffix))
	}
	if err := os.WriteFile(filepath.Join(h2.dir, "docex-data", dbs[0]), src, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := h2.ok("doc", "cat", added[0].ID, "--user", "me", "--roles", "reader"); r.stdout != "local data" {
		t.Fatalf("copied file: %q", r.stdout)
	}
	// The copied file alone, in a directory of its own: init writes a
	// docex.yaml for it and says so, rather than "nothing changed".
	h3 := newHarness(t)
	must(t, os.WriteFile(filepath.Join(h3.dir, dbs[0]), src, 0o600))
	r = h3.ok("init", "--single-file", "--data-dir", h3.dir)
	if !strings.Contains(r.stdout, "wrote ") || strings.Contains(r.stdout, "nothing changed") || !strings.Contains(r.stdout, "existing") {
		t.Fatalf("init next to a copied file: %s", r.stdout)
	}
	if r := h3.ok("doc", "cat", added[0].ID, "--user", "me", "--roles", "reader"); r.stdout != "local data" {
		t.Fatalf("copied file alone: %q", r.stdout)
	}
	if r := h3.ok("init"); !strings.Contains(r.stdout, "already initialised; nothing changed") {
		t.Fatalf("init again: %s", r.stdout)
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"unknown key":     "config_version: 1\nbogus: true\n",
		"nested unknown":  "config_version: 1\ndatabase:\n  type: sqlite\n  colour: red\n",
		"wrong type":      "config_version: 1\nmulti_tenancy:\n  enabled: maybe\n",
		"bad version":     "config_version: 2\n",
		"no version":      "database:\n  type: sqlite\n",
		"bad backend":     "config_version: 1\ndatabase:\n  type: oracle\n",
		"password in dsn": "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: postgres://u:hunter2@localhost/db\n",
		"not yaml":        "{{{",
		"empty":           "",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.file("docex.yaml", content)
			r := h.want(exitInvalid, "tenant", "list")
			if strings.Contains(r.stderr, "hunter2") {
				t.Fatal("password printed")
			}
			// init refuses it too and leaves it alone.
			h.want(exitInvalid, "init")
			if b, _ := os.ReadFile(filepath.Join(h.dir, "docex.yaml")); string(b) != content {
				t.Fatal("init changed a bad config")
			}
		})
	}
}

// testPostgresDSN returns DOCEX_TEST_POSTGRES_DSN; without it the test
// is skipped, and fails in CI (CI=true), where PostgreSQL tests must run.
func testPostgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("DOCEX_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DOCEX_TEST_POSTGRES_DSN is not set in CI")
		}
		t.Skip("set DOCEX_TEST_POSTGRES_DSN to run the PostgreSQL tests")
	}
	return dsn
}

// TestPostgresCLI runs the CLI against PostgreSQL when
// DOCEX_TEST_POSTGRES_DSN is set (CI sets it, and fails if it is missing).
func TestPostgresCLI(t *testing.T) {
	t.Parallel()
	dsn := testPostgresDSN(t)
	h := newHarness(t)
	h.env["PGTEST_DSN"] = dsn
	// A schema of our own so that runs never collide.
	schema := fmt.Sprintf("docex_cli_%d", time.Now().UnixNano()%1_000_000_000)
	prefix := fmt.Sprintf("c%d_", time.Now().UnixNano()%100000)
	h.file("docex.yaml", fmt.Sprintf(`config_version: 1
multi_tenancy:
  bootstrap_tenant:
    schema: %s
database:
  type: postgres
  postgres:
    dsn_env: PGTEST_DSN
    tenant_schema_prefix: %s
storage:
  documents:
    type: database
`, schema, prefix))
	h.ok("init")
	r := h.ok("init")
	if !strings.Contains(r.stdout, "already initialised") {
		t.Fatalf("second init: %s", r.stdout)
	}
	tn := "pgcli" + prefix[1:len(prefix)-1]
	h.ok("tenant", "create", tn)
	t.Cleanup(func() { dropSchemas(t, dsn, prefix+tn, schema, schema+"_local", schema+"_jobs") }) // nothing left in a shared database
	u := []string{"--tenant", tn, "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	f := h.file("a.txt", "postgres content")
	docs := documents(decode[[]added](t, h.ok(append([]string{"doc", "add", "b", f, "--meta", "k=1", "--json"}, u...)...).stdout))
	if r := h.ok(append([]string{"doc", "cat", docs[0].ID}, u...)...); r.stdout != "postgres content" {
		t.Fatalf("cat: %q", r.stdout)
	}
	found := decode[[]doc](t, h.ok(append([]string{"doc", "find", "b", "--meta", "k=1", "--json"}, u...)...).stdout)
	if len(found) != 1 {
		t.Fatalf("find: %+v", found)
	}
	// pipeline create runs the plugin's parameter check (docex_validate):
	// a refusal is exit 2, a plugin failing its check exit 6; nothing is
	// stored.
	h.ok(append([]string{"plugin", "install", "../../testplugins/validate"}, u...)...)
	check := func(mode string) string {
		return h.file("v.toml", "name = \"v\"\n[[steps]]\nname = \"c\"\nplugin = \"validate\"\nparams = { mode = \""+mode+"\" }\n")
	}
	r = h.want(exitInvalid, append([]string{"pipeline", "create", check("refuse")}, u...)...)
	if !strings.Contains(r.stderr, `pipeline line 5, key steps[0].params.mode: plugin "validate" refused its parameters: mode: refused on purpose`) {
		t.Fatalf("refused parameters: %s", r.stderr)
	}
	h.want(exitPlugin, append([]string{"pipeline", "create", check("loop")}, u...)...)
	h.want(exitNotFound, append([]string{"pipeline", "show", "v"}, u...)...)
	h.ok(append([]string{"pipeline", "create", check("ok")}, u...)...)
	h.want(exitDenied, "basket", "list", "--tenant", "system", "--user", "u", "--roles", "admin")
	// A bad password is never printed.
	bad := &harness{t: t, dir: h.dir, env: map[string]string{"PGTEST_DSN": "postgres://postgres:hunter2secret@127.0.0.1:1/nope?connect_timeout=2"}}
	r = bad.run("tenant", "list")
	if r.code == 0 || strings.Contains(r.stderr, "hunter2secret") {
		t.Fatalf("bad DSN: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestInitPostgresDSN: init --dsn connects with the DSN, never writes a
// password to docex.yaml, and never prints it.
func TestInitPostgresDSN(t *testing.T) {
	dsn := testPostgresDSN(t)
	h := newHarness(t)
	r := h.ok("init", "--dsn", dsn)
	cfg, err := os.ReadFile(filepath.Join(h.dir, "docex.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "type: postgres") || !strings.Contains(string(cfg), "dsn_env: DOCEX_POSTGRES_DSN") {
		t.Fatalf("config:\n%s", cfg)
	}
	_ = r
	// A DSN with a password: refused connection (bad port), password never
	// printed nor written.
	h2 := newHarness(t)
	r = h2.run("init", "--dsn", "postgres://postgres:sekr1tpw@127.0.0.1:1/x?connect_timeout=2")
	if r.code == 0 || strings.Contains(r.stderr+r.stdout, "sekr1tpw") {
		t.Fatalf("exit %d, output %s %s", r.code, r.stdout, r.stderr)
	}
	if cfg, _ := os.ReadFile(filepath.Join(h2.dir, "docex.yaml")); strings.Contains(string(cfg), "sekr1tpw") {
		t.Fatal("password written to docex.yaml")
	}
	h2.want(exitInvalid, "init", "--dsn", "x", "--backend", "sqlite")
}

// TestPostgresDataDir: with PostgreSQL, filesystem content and the plugin
// cache go under data_dir (init --data-dir), not next to where the command
// ran.
func TestPostgresDataDir(t *testing.T) {
	h := newHarness(t)
	elsewhere := t.TempDir()
	t.Chdir(elsewhere) // content must not land in the working directory
	postgresConfig(t, h, "dd", "data_dir: stored\n")
	res := decode[map[string]any](t, h.ok("init", "--json").stdout)
	if res["data_dir"] != filepath.Join(h.dir, "stored") || res["content_dir"] != filepath.Join(h.dir, "stored", "content") {
		t.Fatalf("init: %v", res)
	}
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	h.ok(append([]string{"doc", "add", "b", h.file("a.txt", "content on disk")}, u...)...)
	if _, err := os.Stat(filepath.Join(h.dir, "stored", "content", "tenants", "acme")); err != nil {
		t.Fatalf("content not under data_dir: %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("files written to the working directory: %v", entries)
	}
}

// TestDroppedTenantSchemaHint: a tenant whose schema was dropped is
// corrupt (exit 1), with a hint about the database, not the content
// store's storage.documents (which the error does not involve).
func TestDroppedTenantSchemaHint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dsn, _, prefix := postgresConfig(t, h, "dh", "")
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	dropSchemas(t, dsn, prefix+"acme")
	for _, args := range [][]string{{"basket", "list"}, {"doc", "list", "b"}} {
		r := h.want(exitInternal, append(append(args, u...), "--json")...)
		e := decode[struct {
			Error struct{ Code, Hint string } `json:"error"`
		}](t, r.stderr).Error
		if e.Code != "corrupt" || strings.Contains(e.Hint, "storage.documents") || !strings.Contains(e.Hint, "PostgreSQL schema") {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
}

// dropSchemas removes schemas a PostgreSQL test created in a shared database.
func dropSchemas(t *testing.T, dsn string, schemas ...string) {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Log(err)
		return
	}
	defer conn.Close(context.Background())
	for _, s := range schemas {
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
	}
}

// dropSchemasWithPrefix drops every schema whose name starts with
// prefix: the tenants a test created under its tenant_schema_prefix,
// whatever their ids.
func dropSchemasWithPrefix(t *testing.T, dsn, prefix string) {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Log(err)
		return
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1", prefix)
	if err != nil {
		t.Log(err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Log(err)
		return
	}
	dropSchemas(t, dsn, names...)
}

// TestSuggestions: a misspelt command or flag names the close match; a
// name close to nothing gets no suggestion.
func TestSuggestions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pipline", "list"}, `unknown command "pipline" (did you mean "pipeline"?)`},
		{[]string{"pipeline", "lst"}, `unknown command "pipeline lst" (did you mean "pipeline list"?)`},
		{[]string{"doc", "ad", "b", "f"}, `unknown command "doc ad" (did you mean "doc add"?)`},
		{[]string{"job", "list", "--stat", "failed"}, `unknown flag: --stat (did you mean "--state"?)`},
		{[]string{"tenant", "list", "--jsno"}, `unknown flag: --jsno (did you mean "--json"?)`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (docex help lists the commands)`},
		{[]string{"tenant", "list", "--bogus"}, `unknown flag: --bogus (see docex help tenant list)`},
	} {
		if r := h.want(exitInvalid, c.args...); !strings.Contains(r.stderr, c.want) {
			t.Errorf("docex %v: stderr %q, want %q", c.args, r.stderr, c.want)
		}
	}
}

// copyFiles makes directory dst holding a copy of each file of the
// repository named by files (destination name: path from the repository
// root), passed through edit when edit is not nil, and returns dst.
func copyFiles(t *testing.T, dst string, files map[string]string, edit func(name string, b []byte) []byte) string {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(src)))
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			b = edit(name, b)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestInitFailureChangesNothing: a first init that fails after writing
// docex.yaml (the DSN variable unset, a server that refuses) removes the
// config and the directories it made; a directory that was there before
// stays, and a later init with the variable set works.
func TestInitFailureChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"DSN variable unset", map[string]string{}, []string{"init", "--backend", "postgres"}},
		{"server refuses", map[string]string{"DOCEX_POSTGRES_DSN": "postgres://postgres@127.0.0.1:1/x?connect_timeout=2"}, []string{"init", "--backend", "postgres"}},
		{"existing data dir kept", map[string]string{}, []string{"init", "--backend", "postgres", "--data-dir", "mine"}},
		// The config file's directories init made go too; one that was
		// there stays.
		{"config directories", map[string]string{}, []string{"init", "--backend", "postgres", "--config", "DIR/sub/dir/docex.yaml"}},
		{"config directory under an existing one", map[string]string{}, []string{"init", "--backend", "postgres", "--config", "DIR/mine/new/docex.yaml"}},
		{"config directories, SQLite", map[string]string{}, []string{"init", "--config", "DIR/a/b/docex.yaml", "--data-dir", "DIR/notes.txt/data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for i, a := range tc.args {
				tc.args[i] = strings.Replace(a, "DIR", h.dir, 1)
			}
			for k, v := range tc.env {
				h.env[k] = v
			}
			keep := filepath.Join(h.dir, "mine")
			if err := os.Mkdir(keep, 0o700); err != nil {
				t.Fatal(err)
			}
			h.file("notes.txt", "the user's own file")
			r := h.run(tc.args...)
			if r.code == 0 {
				t.Fatalf("init succeeded: %s", r.stdout)
			}
			ents, err := os.ReadDir(h.dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, ",") != "mine,notes.txt" {
				t.Fatalf("after a failed init the directory holds %v, want only what was there", names)
			}
			if ents, err := os.ReadDir(keep); err != nil || len(ents) > 0 {
				t.Fatalf("after a failed init the directory that was there holds %v (%v), want nothing", ents, err)
			}
		})
	}
	dsn := os.Getenv("DOCEX_TEST_POSTGRES_DSN")
	if dsn == "" {
		return
	}
	h := newHarness(t)
	if r := h.run("init", "--backend", "postgres"); r.code == 0 {
		t.Fatal("init without the DSN variable succeeded")
	}
	h.env["DOCEX_POSTGRES_DSN"] = dsn
	h.ok("init", "--backend", "postgres")
}

// TestPostgresConnectErrorOneLine: a connection refused by the server
// (a role that does not exist) is reported on one line, each attempt
// once, in text and in JSON; pgx's own message puts each attempt on a
// line of its own, which text mode showed as a literal \n\t.
func TestPostgresConnectErrorOneLine(t *testing.T) {
	t.Parallel()
	cfg, err := pgx.ParseConfig(testPostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	// No sslmode: pgx tries with TLS, then without, and lists both.
	dsn := fmt.Sprintf("postgres://docex_no_such_role@%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	for _, json := range []bool{false, true} {
		h := newHarness(t)
		args := []string{"init", "--dsn", dsn}
		if json {
			args = append(args, "--json")
		}
		r := h.want(exitInternal, args...)
		msg := r.stderr
		if json {
			msg = decode[struct {
				Error struct{ Message string } `json:"error"`
			}](t, r.stderr).Error.Message
		}
		if strings.Contains(msg, `\n`) || strings.Contains(msg, "\n\t") || strings.Count(msg, `role "docex_no_such_role" does not exist`) != 1 {
			t.Fatalf("json %v: error not on one line, each attempt once:\n%s", json, r.stderr)
		}
	}
}

// TestRolesTrimmed: --roles is read as DOCEX_ROLES is, each role trimmed
// and empty ones dropped ("--roles ' admin'" was refused as role " admin").
func TestRolesTrimmed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"] = "acme"
	h.env["DOCEX_USER"] = "ann"
	for i, roles := range []string{" writer", "reader, writer ", ",writer,,", " admin "} {
		h.ok("basket", "create", fmt.Sprintf("b%d", i), "--roles", roles)
	}
	h.want(exitDenied, "basket", "create", "c", "--roles", " reader ")
	h.want(exitDenied, "basket", "create", "c", "--roles", " , ")
}

// TestJSONNotHTMLEscaped: --json writes "<", ">" and "&" as they are,
// on stdout and in the error object on stderr.
func TestJSONNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"] = "acme"
	h.env["DOCEX_USER"] = "ann"
	h.env["DOCEX_ROLES"] = "writer"
	h.ok("basket", "create", "in")
	added := decode[[]added](t, h.ok("doc", "add", "in", h.file("a.txt", "hello"), "--json").stdout)
	id := added[0].Document.ID
	h.ok("doc", "meta", "set", id, "note=a->b <c> & d")
	r := h.ok("doc", "meta", "get", id, "note", "--json")
	if !strings.Contains(r.stdout, `a->b <c> & d`) {
		t.Fatalf("stdout escapes HTML characters: %s", r.stdout)
	}
	r = h.want(exitNotFound, "basket", "show", "x<y>&z", "--json")
	if !strings.Contains(r.stderr, `x<y>&z`) {
		t.Fatalf("stderr escapes HTML characters: %s", r.stderr)
	}
}

// TestBootstrapSchemaIgnoredOnSQLite: multi_tenancy.bootstrap_tenant.schema
// is PostgreSQL's; docex init writes it for SQLite too (and
// docex.yaml.example shows it with type: sqlite), where changing it after
// init changes nothing, as docex.yaml.example says; a bad name is still a
// config error naming the key and line.
func TestBootstrapSchemaIgnoredOnSQLite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	cfg := filepath.Join(h.dir, "docex.yaml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		schema string
		code   int
		stderr string
	}{
		{"other_system", 0, ""},
		{"Bad-Name", exitInvalid, "config key multi_tenancy.bootstrap_tenant.schema (line "},
	} {
		edited := strings.Replace(string(data), "schema: docex_system", "schema: "+tt.schema, 1)
		if edited == string(data) {
			t.Fatalf("docex init wrote no schema: docex_system:\n%s", data)
		}
		h.file("docex.yaml", edited)
		r := h.want(tt.code, "tenant", "list")
		if tt.code == 0 && !strings.Contains(r.stdout, "acme") {
			t.Errorf("schema %s: tenant list without acme:\n%s", tt.schema, r.stdout)
		}
		if !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("schema %s: stderr %q, want %q", tt.schema, r.stderr, tt.stderr)
		}
	}
}

// postgresConfig writes the harness's docex.yaml for a PostgreSQL system
// of its own (bootstrap schema docex_<tag>_N, tenant schemas <tag>N_;
// extra goes before the multi_tenancy section), dropped when the test
// ends with its tenant acme, and returns the DSN, the bootstrap schema
// and the tenant schema prefix.
func postgresConfig(t *testing.T, h *harness, tag, extra string) (dsn, schema, prefix string) {
	t.Helper()
	dsn = testPostgresDSN(t)
	h.env["PGTEST_DSN"] = dsn
	n := time.Now().UnixNano() % 1_000_000_000
	schema, prefix = fmt.Sprintf("docex_%s_%d", tag, n), fmt.Sprintf("%c%d_", tag[len(tag)-1], n%100000)
	h.file("docex.yaml", fmt.Sprintf(`config_version: 1
%smulti_tenancy:
  bootstrap_tenant:
    schema: %s
database:
  type: postgres
  postgres:
    dsn_env: PGTEST_DSN
    tenant_schema_prefix: %s
`, extra, schema, prefix))
	t.Cleanup(func() { dropSchemas(t, dsn, schema, schema+"_local", schema+"_jobs", prefix+"acme") })
	return dsn, schema, prefix
}
