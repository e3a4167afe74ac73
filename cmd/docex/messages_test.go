package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex/tenancy"
)

func TestHelp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	top := h.ok("help").stdout
	if h.ok("--help").stdout != top {
		t.Fatal("docex help and docex --help differ")
	}
	// "docex help help" describes help: the top-level usage, exit 0.
	if h.ok("help", "help").stdout != top {
		t.Fatal("docex help help and docex help differ")
	}
	if h.ok("help", "help", "gc").stdout != h.ok("help", "gc").stdout {
		t.Fatal("docex help help gc and docex help gc differ")
	}
	for _, want := range []string{"Global flags", "--config PATH", "DOCEX_USER", "operator ", "Exit codes"} {
		if !strings.Contains(top, want) {
			t.Errorf("docex help lacks %q", want)
		}
	}
	if strings.Count(top, "--tenant ID") != 1 {
		t.Errorf("global flags listed %d times", strings.Count(top, "--tenant ID"))
	}
	for path, cmd := range commands().byPath {
		args := strings.Fields(path)
		got := h.ok(append([]string{"help"}, args...)...).stdout
		if flag := h.ok(append(args, "--help")...).stdout; flag != got {
			t.Errorf("docex help %s and docex %s --help differ", path, path)
		}
		if !strings.HasPrefix(got, "Usage: docex "+path) {
			t.Errorf("help %s: %q", path, got)
		}
		// Global flags once, in one line; never pflag's rendering of them.
		if strings.Contains(got, "--config string") || strings.Contains(got, "--help[") || strings.Contains(got, "-h, --help") {
			t.Errorf("help %s repeats the global flags:\n%s", path, got)
		}
		if !strings.Contains(got, "Global flags: --config, --tenant, --user, --roles, --json") {
			t.Errorf("help %s does not name the global flags", path)
		}
		if cmd.access == "operator" && !strings.Contains(got, "operator") {
			t.Errorf("help %s does not say who may run it", path)
		}
	}
	rule := h.ok("help", "tenant", "create").stdout
	// Every id and prefix the help names as reserved is refused.
	reserved := rule[strings.Index(rule, "Reserved ids are refused:")+len("Reserved ids are refused:") : strings.Index(rule, "; so are")]
	for _, id := range strings.FieldsFunc(reserved, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		if err := tenancy.ValidateTenantID(id); err == nil {
			t.Errorf("help says %q is reserved, but it is accepted", id)
		}
	}
	for _, p := range []string{"pg_", "pg-", "docex", "sqlite"} {
		if err := tenancy.ValidateTenantID(p + "x"); err == nil || !strings.Contains(rule, p) {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	for _, want := range []string{"1 to 40 bytes", "a-z, 0-9", "starting with a letter", "two separators", "information_schema", "pg_", "sqlite"} {
		if !strings.Contains(rule, want) {
			t.Errorf("tenant create --help lacks %q of the id rule", want)
		}
	}
	// What suspension and deletion do to the tenant's users, jobs and data.
	for path, wants := range map[string][]string{
		"tenant suspend": {"exit 4", "tenant_suspended", "jobs", "docex tenant resume", "verify"},
		"tenant delete":  {"Irreversible", "S3", "docex gc", "jobs", "same id starts empty"},
	} {
		got := h.ok(append([]string{"help"}, strings.Fields(path)...)...).stdout
		for _, w := range wants {
			if !strings.Contains(strings.Join(strings.Fields(got), " "), w) {
				t.Errorf("help %s lacks %q", path, w)
			}
		}
	}
	if v := h.ok("--version").stdout; v != h.ok("version").stdout || !strings.HasPrefix(v, "docex ") {
		t.Errorf("--version: %q", v)
	}
	if r := h.want(exitInvalid, "help", "frobnicate"); !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("help frobnicate: %q", r.stderr)
	}
}

// TestMessagesSayWhatToDo: errors name the flag, variable or command that
// fixes them, once, without doubled prefixes.
func TestMessagesSayWhatToDo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if r := h.want(exitInvalid, "basket", "list"); !strings.Contains(r.stderr, "run docex init") {
		t.Errorf("missing config: %s", r.stderr)
	}
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.ok("tenant", "create", "paused")
	h.ok("tenant", "suspend", "paused")
	admin := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "full"}, admin...)...)
	h.ok(append([]string{"doc", "add", "full", h.file("a.txt", "a")}, admin...)...)
	missing := filepath.Join(h.dir, "invoice.pdf")
	// A plugin's source directory (a copy: the example may have been built
	// in place), and a plugin whose module no longer matches its sha256.
	source := copyFiles(t, filepath.Join(h.dir, "wordcount-source"), map[string]string{
		"plugin.toml": "plugins/examples/wordcount/plugin.toml", "main.go": "plugins/examples/wordcount/main.go"}, nil)
	echo := map[string]string{"plugin.toml": "testplugins/echo/plugin.toml", "echo.wasm": "testplugins/echo/echo.wasm"}
	stale := copyFiles(t, filepath.Join(h.dir, "stale"), echo, func(name string, b []byte) []byte {
		if name == "echo.wasm" {
			b = append(b, 0) // a custom section's worth of change
		}
		return b
	})
	// A manifest with a value of the wrong type: the message names the
	// file, line and key, without the sandbox's prefixes.
	badType := copyFiles(t, filepath.Join(h.dir, "badtype"), echo, func(name string, b []byte) []byte {
		if name == "plugin.toml" {
			b = bytes.Replace(b, []byte("abi_version = 1"), []byte(`abi_version = "1"`), 1)
		}
		return b
	})
	cases := []struct {
		name string
		code int
		args []string
		want []string
	}{
		{"manifest type", exitInvalid, append([]string{"plugin", "install", badType}, admin...), []string{"invalid plugin: " + filepath.Join(badType, "plugin.toml") + " line ", ", key abi_version: want an integer, got a string"}},
		{"no user", exitDenied, []string{"basket", "list", "--tenant", "acme", "--roles", "admin"}, []string{"--user", "DOCEX_USER"}},
		{"no tenant", exitDenied, []string{"basket", "list", "--user", "u", "--roles", "admin"}, []string{"--tenant", "DOCEX_TENANT"}},
		{"no roles", exitDenied, []string{"basket", "list", "--tenant", "acme", "--user", "u"}, []string{"--roles", "DOCEX_ROLES"}},
		{"unknown tenant", exitDenied, []string{"basket", "list", "--tenant", "nobody", "--user", "u", "--roles", "admin"}, []string{"docex tenant create"}},
		{"suspended tenant", exitDenied, []string{"basket", "list", "--tenant", "paused", "--user", "u", "--roles", "admin"}, []string{"docex tenant resume paused"}},
		{"bootstrap tenant", exitDenied, []string{"basket", "list", "--tenant", "system", "--user", "u", "--roles", "admin"}, []string{"bootstrap", "docex tenant create"}},
		{"non-empty basket", exitConflict, append([]string{"basket", "delete", "full"}, admin...), []string{"--force"}},
		{"missing file", exitInvalid, append([]string{"doc", "add", "full", missing}, admin...), []string{missing, "no such file"}},
		{"malformed id", exitInvalid, append([]string{"doc", "get", "not-an-id"}, admin...), []string{"malformed"}},
		{"tenant delete unconfirmed", exitInvalid, []string{"tenant", "delete", "acme"}, []string{"--yes"}},
		// An operator command names the bootstrap tenant as an argument:
		// the hint does not tell it to pass --tenant.
		{"delete bootstrap tenant", exitDenied, []string{"tenant", "delete", "system", "--yes"}, []string{"bootstrap", "docex tenant list"}},
		{"suspend bootstrap tenant", exitDenied, []string{"tenant", "suspend", "system"}, []string{"bootstrap", "docex tenant list"}},
		{"verify bootstrap tenant", exitDenied, []string{"verify", "system"}, []string{"bootstrap", "docex tenant list"}},
		{"tenant show unknown", exitNotFound, []string{"tenant", "show", "nobody"}, []string{"hint: ", "docex tenant list"}},
		{"tenant delete unknown", exitNotFound, []string{"tenant", "delete", "nobody", "--yes"}, []string{"hint: ", "docex tenant list"}},
		{"verify unknown", exitNotFound, []string{"verify", "nobody"}, []string{"hint: ", "docex tenant list"}},
		{"stale module", exitInvalid, append([]string{"plugin", "install", stale}, admin...), []string{"set sha256 in plugin.toml"}},
		{"source directory", exitInvalid, append([]string{"plugin", "install", source}, admin...), []string{"go build", "GOOS=wasip1", "docs/writing-plugins.md"}},
	}
	for _, c := range cases {
		r := h.want(c.code, c.args...)
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, `\n`) {
			t.Errorf("%s: a newline printed as \\n: %s", c.name, r.stderr)
		}
		if strings.Contains(c.name, "bootstrap tenant") && c.args[0] != "basket" && strings.Contains(r.stderr, "--tenant") {
			t.Errorf("%s: the hint asks for --tenant: %s", c.name, r.stderr)
		}
		if strings.Contains(r.stderr, "use force") {
			t.Errorf("%s: %s", c.name, r.stderr)
		}
		if d := doubledPrefix(r.stderr); d != "" {
			t.Errorf("%s: doubled %q in %s", c.name, d, r.stderr)
		}
		if strings.Count(r.stderr, missing) > 1 {
			t.Errorf("%s: path named twice: %s", c.name, r.stderr)
		}
	}
}

// doubledPrefix returns a "x: " prefix that repeats back to back in msg.
func doubledPrefix(msg string) string {
	parts := strings.Split(msg, ": ")
	for i := 1; i < len(parts); i++ {
		if parts[i] == parts[i-1] || strings.HasSuffix(parts[i-1], " "+parts[i]) {
			return parts[i]
		}
	}
	return ""
}

func TestSingleFileModeSaysNothingOfTenants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.ok("init", "--single-file")
	if strings.Contains(r.stdout+r.stderr, "bootstrap") || strings.Contains(r.stdout+r.stderr, "tenant") {
		t.Fatalf("single-file init talks about tenants: %s", r.stdout)
	}
	if res := decode[map[string]any](t, h.ok("init", "--json").stdout); res["bootstrap_tenant"] != "" || res["multi_tenancy"] != false {
		t.Fatalf("init --json: %v", res)
	}
	if r := h.want(exitInvalid, "basket", "list", "--tenant", "acme", "--user", "u", "--roles", "admin"); !strings.Contains(r.stderr, "drop --tenant") {
		t.Fatalf("tenant in single-file mode: %s", r.stderr)
	}
	if r := h.want(exitInvalid, "tenant", "create", "acme"); !strings.Contains(r.stderr, "has no tenants") || strings.Contains(r.stderr, "drop --tenant") {
		t.Fatalf("tenant create in single-file mode: %s", r.stderr)
	}
	h.ok("basket", "create", "b", "--user", "u", "--roles", "admin")
	h.ok("doc", "add", "b", h.file("a.txt", "a"), "--user", "u", "--roles", "admin")
	if r := h.ok("verify"); strings.Contains(r.stdout, "tenant") || !strings.Contains(r.stdout, "verified 1 stored object(s)") {
		t.Fatalf("verify in single-file mode: %s", r.stdout)
	}
}

// TestReadmeNamesThePagedLists: the README's paragraph on --limit names
// exactly the commands that take it, and the lists that print every entry.
func TestReadmeNamesThePagedLists(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ")
	i := strings.Index(text, "`--limit N`")
	if i < 0 {
		t.Fatal("the README does not describe --limit")
	}
	start := strings.LastIndex(text[:i], ". ") + 2
	end := i + strings.Index(text[i:], ").")
	para := text[start:end]
	if len(para) > 450 {
		t.Fatalf("no paragraph on --limit ending with the lists that print every entry: %s...", para[:450])
	}
	paged, all := para[:strings.Index(para, "take")], para[strings.Index(para, "("):]
	h := newHarness(t)
	for path := range commands().byPath {
		if !strings.Contains(path, "list") && path != "doc find" {
			continue
		}
		takes := strings.Contains(h.ok(append([]string{"help"}, strings.Fields(path)...)...).stdout, "--limit")
		named := "`" + path + "`"
		switch {
		case takes && !strings.Contains(paged, named):
			t.Errorf("%s takes --limit, but the README does not say so: %s", path, para)
		case !takes && !strings.Contains(all, named):
			t.Errorf("%s prints every entry, but the README does not say so: %s", path, para)
		}
	}
}

// TestRepeatedKeyIsRefused: a --param or --meta key given twice is a
// mistake (which value was meant?); it used to keep the last one without
// a word. Refused before anything runs, naming the key and both values.
func TestRepeatedKeyIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	as := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append(as, "basket", "create", "b")...)
	id := strings.TrimSpace(h.ok(append(as, "doc", "add", "b", h.file("a.txt", "hello"), "-q")...).stdout)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "stats", id, "--param", "top=5", "--param", "top=9"}, `--param "top" given twice (top=5, top=9): give each parameter once`},
		{[]string{"doc", "meta", "set", id, "k=1", "k=2"}, `metadata key "k" given twice (k=1, k=2): give each key once`},
		{[]string{"doc", "add", "b", h.file("c.txt", "other"), "--meta", "k=1", "--meta", "k=2"}, `metadata key "k" given twice (k=1, k=2)`},
		{[]string{"doc", "find", "b", "--meta", "k=1", "--meta", "k=2"}, `metadata key "k" given twice (k=1, k=2)`},
	} {
		r := h.want(exitInvalid, append(as, c.args...)...)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("docex %s: %q, want %q", strings.Join(c.args, " "), r.stderr, c.want)
		}
	}
	// Nothing was added or set.
	if r := h.ok(append(as, "doc", "list", "b", "-q")...); strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("documents after the refusals: %q", r.stdout)
	}
	// The same key with the same value twice says one thing: accepted.
	h.ok(append(as, "doc", "meta", "set", id, "k=1", "k=1")...)
}

// TestNegativeOffsetNamesTheFlag: --offset -1 is refused like --limit 0,
// naming the flag, not with the library's "negative limit or offset".
func TestNegativeOffsetNamesTheFlag(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	as := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, as...)...)
	for _, args := range [][]string{{"job", "list"}, {"basket", "list"}, {"audit", "list"}, {"doc", "list", "b"}} {
		r := h.want(exitInvalid, append(append(args, "--offset", "-1"), as...)...)
		if !strings.Contains(r.stderr, `invalid argument "-1" for "--offset" flag: must be 0 or more`) || strings.Contains(r.stderr, "negative limit or offset") {
			t.Errorf("docex %s --offset -1: %q", strings.Join(args, " "), r.stderr)
		}
	}
}

// TestPostgresDSNVariableHint: a PostgreSQL docex.yaml whose DSN variable
// is unset, or holds a string that does not parse, is fixed in the
// environment, not in docex.yaml: the hint names the variable.
func TestPostgresDSNVariableHint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.file("docex.yaml", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn_env: MY_PG_DSN\n")
	for _, c := range []struct{ value, want string }{
		{"", "hint: set MY_PG_DSN to the PostgreSQL connection string"},
		{"not a dsn", "hint: fix the connection string in MY_PG_DSN"},
	} {
		h.env["MY_PG_DSN"] = c.value
		for _, args := range [][]string{{"tenant", "list"}, {"init", "--backend", "postgres"}} {
			r := h.want(exitInvalid, args...)
			if !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "fix that key in docex.yaml") {
				t.Errorf("docex %s with MY_PG_DSN=%q: %q, want %q", strings.Join(args, " "), c.value, r.stderr, c.want)
			}
		}
	}
}

// TestPostgresDSNPastedInEnvKey: a DSN pasted into dsn_env (in docex.yaml
// or through init --dsn-env) is printed neither in the message nor in the
// hint, and neither is a name that is not a conventional one (P11's H1);
// a DSN given with init --dsn that does not parse is named as --dsn, not
// as the variable docex.yaml names (P11's M1).
func TestPostgresDSNPastedInEnvKey(t *testing.T) {
	t.Parallel()
	const secret = "SECRETpw"
	for _, c := range []struct {
		name, yaml string
		args       []string
		want       string
	}{
		{"yaml DSN", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn_env: \"postgres://u:" + secret + "@h/db\"\n",
			[]string{"tenant", "list"}, "hint: database.postgres.dsn_env holds the name of an environment variable"},
		{"yaml lower-case name", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn_env: my_" + secret + "_var\n",
			[]string{"tenant", "list"}, "hint: database.postgres.dsn_env holds the name of an environment variable"},
		{"init --dsn-env DSN", "", []string{"init", "--backend", "postgres", "--dsn-env", "postgres://u:" + secret + "@h/db", "--no-builtin-steps"},
			"hint: database.postgres.dsn_env holds the name of an environment variable"},
		{"init --dsn unparsable", "", []string{"init", "--dsn", "postgres://u:" + secret + "@127.0.0.1:1/db?bogus_param=%zz", "--no-builtin-steps"},
			"hint: fix the connection string in --dsn:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if c.yaml != "" {
				h.file("docex.yaml", c.yaml)
			}
			r := h.want(exitInvalid, c.args...)
			if strings.Contains(r.stderr, secret) || !strings.Contains(r.stderr, c.want) {
				t.Errorf("docex %s: %q, want %q and no %q", strings.Join(c.args, " "), r.stderr, c.want, secret)
			}
			r = h.want(exitInvalid, append(c.args, "--json")...)
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("docex %s --json printed the secret: %q %q", strings.Join(c.args, " "), r.stdout, r.stderr)
			}
		})
	}
}

// TestConfigNotAFile: --config naming a directory or a device read forever
// (/dev/zero) or said "fix that key in docex.yaml"; each is refused with
// exit 2 and a hint about the file, and init writes nothing.
func TestConfigNotAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	paths := []string{dir}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths = append(paths, "/dev/zero")
	}
	for _, p := range paths {
		for _, args := range [][]string{{"tenant", "list"}, {"init"}} {
			var out, errb bytes.Buffer
			err := runEnv(context.Background(), append([]string{"--config", p}, args...), &out, &errb, func(string) string { return "" })
			if code := exitCode(err); code != exitInvalid || !strings.Contains(errb.String(), p+" is not a regular file") ||
				!strings.Contains(errb.String(), "hint: point --config or DOCEX_CONFIG at a readable docex.yaml") || strings.Contains(errb.String(), "fix that key") {
				t.Errorf("docex --config %s %s: exit %d, %q", p, strings.Join(args, " "), code, errb.String())
			}
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("init wrote %v (%v)", ents, err)
	}
}

// TestHelpRefusesUnknownWords: a word after a command that names no
// subcommand and cannot be one of its arguments is an unknown command
// (exit 2), after a command as after a group; help with a command's
// arguments ("doc add FILE --help") is help.
func TestHelpRefusesUnknownWords(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		want string // the unknown command, or "" for help
	}{
		{[]string{"help", "doc", "nosuch"}, "doc nosuch"},
		{[]string{"help", "gc", "bogus"}, "gc bogus"},
		{[]string{"help", "init", "set"}, "init set"},
		{[]string{"help", "doc", "add", "FILE"}, "doc add FILE"},
		{[]string{"doc", "--help", "nosuch"}, "doc nosuch"},
		{[]string{"gc", "--help", "bogus"}, "gc bogus"},
		{[]string{"gc", "bogus", "-h"}, "gc bogus"},
		{[]string{"help", "gc"}, ""},
		{[]string{"doc", "add", "b", "FILE", "--help"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := h.run(tc.args...)
			if tc.want == "" {
				if r.code != exitOK || !strings.HasPrefix(r.stdout, "Usage: docex ") {
					t.Fatalf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
				}
				return
			}
			if r.code != exitInvalid || !strings.Contains(r.stderr, `unknown command "`+tc.want+`"`) || r.stdout != "" {
				t.Fatalf("exit %d, want %d\nstdout: %q\nstderr: %q", r.code, exitInvalid, r.stdout, r.stderr)
			}
		})
	}
}

// TestHelpZeroDefaults: the help of worker --lease and pipeline show
// --version did not say what 0 (their default) means, and doc meta set's
// showed "e.g. --meta code=s:007" for a command that takes key=value as
// arguments. Each help now says it (the value form, without --meta).
func TestHelpZeroDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		cmd       []string
		want, not string
	}{
		{[]string{"worker"}, "0 or left out: the backend's default, SQLite 1m, PostgreSQL 1h", ""},
		{[]string{"pipeline", "show"}, "0 or left out: the newest", ""},
		{[]string{"doc", "meta", "set"}, "e.g. code=s:007", "--meta code=s:007"},
		{[]string{"doc", "add"}, "e.g. code=s:007", ""},
	}
	for _, c := range cases {
		got := strings.Join(strings.Fields(h.ok(append([]string{"help"}, c.cmd...)...).stdout), " ")
		if !strings.Contains(got, c.want) || (c.not != "" && strings.Contains(got, c.not)) {
			t.Errorf("help %s: want %q (and not %q) in:\n%s", strings.Join(c.cmd, " "), c.want, c.not, got)
		}
	}
}
