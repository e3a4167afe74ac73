package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jsonErr is the --json error object on stderr.
type jsonErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Hint    string `json:"hint"`
	} `json:"error"`
}

// setEnabled rewrites multi_tenancy.enabled in the harness's docex.yaml.
func setEnabled(t *testing.T, h *harness, from, to string) {
	t.Helper()
	p := filepath.Join(h.dir, "docex.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "enabled: "+from, "enabled: "+to, 1)
	if s == string(b) {
		t.Fatalf("no enabled: %s in %s", from, b)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dataFiles lists the names in the harness's docex-data.
func dataFiles(t *testing.T, h *harness) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(h.dir, "docex-data"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestChangedMultiTenancyIsAConfigError: multi_tenancy.enabled changed
// after docex init, with database.sqlite.system_file left to its default
// (whose name depends on the mode), is the config error naming that key
// and its line (README: "a multi-tenancy setting other than the one docex
// init recorded"), for every command and for docex init, which creates
// nothing: not "run docex init" (not_initialized), and not a second
// system beside the first.
func TestChangedMultiTenancyIsAConfigError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		init     []string
		from, to string
		cmd      []string // a command of the changed mode
		back     []string // a command of the system's mode
		files    []string // docex-data after the refused init
	}{
		{"single-file to multi-tenant", []string{"init", "--single-file"}, "false", "true",
			[]string{"tenant", "list"}, []string{"basket", "list", "--user", "u", "--roles", "admin"}, []string{"docex.db"}},
		{"multi-tenant to single-file", []string{"init"}, "true", "false",
			[]string{"basket", "list", "--user", "u", "--roles", "admin"}, []string{"tenant", "list"}, []string{"content", "system.db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.ok(tc.init...)
			setEnabled(t, h, tc.from, tc.to)
			for _, args := range [][]string{tc.cmd, {"init"}} {
				r := h.want(exitInvalid, append(args, "--json")...)
				e := decode[jsonErr](t, r.stderr)
				if e.Error.Code != "invalid_config" || !strings.Contains(e.Error.Message, "config key multi_tenancy.enabled (line 12): the system was initialised with multi_tenancy \""+tc.from+"\"") {
					t.Errorf("docex %s: %s", strings.Join(args, " "), r.stderr)
				}
			}
			if got := strings.Join(dataFiles(t, h), " "); got != strings.Join(tc.files, " ") {
				t.Errorf("docex-data after the refused init: %s, want %s", got, strings.Join(tc.files, " "))
			}
			// Set back, the system works as before.
			setEnabled(t, h, tc.to, tc.from)
			h.ok(tc.back...)
		})
	}
}

// TestInitBesideTheOtherMode: a first init (writing docex.yaml) whose data
// directory holds a system of the other mode is refused, creating nothing,
// with a hint naming the flag (docex init removed the docex.yaml it wrote,
// so "fix that key in docex.yaml" would send nowhere); with the flag that
// matches, init finds the system.
func TestInitBesideTheOtherMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		first, then []string
		hint        string
	}{
		{"single-file system, init without --single-file", []string{"init", "--single-file"}, []string{"init"}, "add --single-file"},
		{"multi-tenant system, init --single-file", []string{"init"}, []string{"init", "--single-file"}, "drop --single-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.ok(tc.first...)
			before := strings.Join(dataFiles(t, h), " ")
			cfg := filepath.Join(h.dir, "docex.yaml")
			if err := os.Remove(cfg); err != nil {
				t.Fatal(err)
			}
			r := h.want(exitInvalid, append(tc.then, "--json")...)
			e := decode[jsonErr](t, r.stderr)
			if e.Error.Code != "invalid_config" || !strings.Contains(e.Error.Message, "multi_tenancy.enabled") || !strings.Contains(e.Error.Hint, tc.hint) {
				t.Errorf("docex %s: %s", strings.Join(tc.then, " "), r.stderr)
			}
			if _, err := os.Stat(cfg); err == nil {
				t.Error("the refused init left its docex.yaml")
			}
			if got := strings.Join(dataFiles(t, h), " "); got != before {
				t.Errorf("docex-data after the refused init: %s, want %s", got, before)
			}
			r = h.ok(tc.first...)
			if !strings.Contains(r.stdout, "found an existing docex system") {
				t.Errorf("init with the system's mode: %s", r.stdout)
			}
		})
	}
}

// TestInitDataDirFlagHint: a --data-dir that cannot be used (a regular
// file) is an error whose hint names the flag, not "fix that key in
// docex.yaml": docex init removed the docex.yaml it wrote.
func TestInitDataDirFlagHint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	afile := h.file("afile", "")
	r := h.want(exitInvalid, "init", "--data-dir", afile, "--json")
	e := decode[jsonErr](t, r.stderr)
	if e.Error.Code != "invalid_config" || !strings.Contains(e.Error.Hint, "--data-dir "+afile) || strings.Contains(e.Error.Hint, "in docex.yaml") {
		t.Errorf("init --data-dir FILE: %s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "docex.yaml")); err == nil {
		t.Error("the refused init left its docex.yaml")
	}
	// The default data directory, a file: the hint names --data-dir too.
	h.file("docex-data", "")
	r = h.want(exitInvalid, "init", "--json")
	if e := decode[jsonErr](t, r.stderr); !strings.Contains(e.Error.Hint, "--data-dir") || strings.Contains(e.Error.Hint, "in docex.yaml") {
		t.Errorf("init with docex-data a file: %s", r.stderr)
	}
}

// TestPostgresChangedMultiTenancy: on PostgreSQL the system schema does
// not depend on the mode, and the mode docex init recorded is enforced:
// multi_tenancy.enabled changed either way is the config error naming the
// key and its line, for commands and for docex init, which changes nothing.
func TestPostgresChangedMultiTenancy(t *testing.T) {
	t.Parallel()
	dsn := testPostgresDSN(t)
	for _, tc := range []struct {
		from, to string
		cmd      []string
	}{
		{"true", "false", []string{"basket", "list", "--user", "u", "--roles", "admin"}},
		{"false", "true", []string{"tenant", "list"}},
	} {
		t.Run("from "+tc.from, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.env["PGTEST_DSN"] = dsn
			schema := fmt.Sprintf("docex_mode_%s_%d", tc.from, time.Now().UnixNano()%1_000_000_000)
			t.Cleanup(func() { dropSchemas(t, dsn, schema, schema+"_local", schema+"_jobs") }) // nothing left in a shared database
			h.file("docex.yaml", fmt.Sprintf(`config_version: 1
multi_tenancy:
  enabled: %s
  bootstrap_tenant:
    schema: %s
database:
  type: postgres
  postgres:
    dsn_env: PGTEST_DSN
    tenant_schema_prefix: dm_
`, tc.from, schema))
			// Without multi-tenancy on PostgreSQL there is no SQLite file
			// to name: the first init says where the data is.
			if out := h.ok("init").stdout; !strings.Contains(out, "initialised docex") || strings.Contains(out, "single-file") || strings.Contains(out, ".db") {
				t.Errorf("init: %s", out)
			}
			setEnabled(t, h, tc.from, tc.to)
			for _, args := range [][]string{tc.cmd, {"init"}} {
				r := h.want(exitInvalid, append(args, "--json")...)
				e := decode[jsonErr](t, r.stderr)
				if e.Error.Code != "invalid_config" || !strings.Contains(e.Error.Message, "config key multi_tenancy.enabled (line 3): the system was initialised with multi_tenancy \""+tc.from+"\"") {
					t.Errorf("docex %s: %s", strings.Join(args, " "), r.stderr)
				}
			}
			setEnabled(t, h, tc.to, tc.from)
			h.ok("init")
		})
	}
}
