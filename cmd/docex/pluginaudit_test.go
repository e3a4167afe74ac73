package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Installs the CLI refuses before the engine sees the plugin (a module
// path escaping the plugin directory, a symlink out of it, a bad name) are
// audited like any other refused install (issue 7, defect 6).
func TestRefusedInstallsAreAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	outside := h.file("secret.wasm", "\x00asm\x01\x00\x00\x00")
	plugin := func(name, module string) string {
		dir := filepath.Join(h.dir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		toml := "name = \"" + name + "\"\nversion = \"1\"\nabi_version = 1\nmodule = \"" + module + "\"\nsha256 = \"" + strings.Repeat("0", 64) + "\"\n"
		if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	link := plugin("link", "link.wasm")
	if err := os.Symlink(outside, filepath.Join(link, "link.wasm")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{plugin("traversal", "../secret.wasm"), link, plugin("Bad-Name", "m.wasm")} {
		h.want(exitInvalid, append([]string{"plugin", "install", dir}, admin...)...)
	}
	log := h.ok(append([]string{"audit", "list", "--json"}, admin...)...).stdout
	if n := strings.Count(log, `"plugin.install"`); n != 3 {
		t.Fatalf("%d plugin.install entries, want 3 refusals:\n%s", n, log)
	}
	for _, src := range []string{"traversal", "link", "Bad-Name"} {
		if !strings.Contains(log, filepath.Join(h.dir, src)) {
			t.Errorf("no audit entry names %s:\n%s", src, log)
		}
	}
}

// TestPluginRunAuditDetail: the detail of the plugin.run entries audit
// list prints has the keys docs/json.md documents for it, with the report
// a RunReport and "ran" saying whether the plugin ran: true for a run
// that succeeded, for one that trapped and for one whose start function
// trapped (starthost: its report is the failed initialisation's, a cold
// start with its init_duration_ms; before, ran was false and the report
// zero), false (and a zero report) for a run refused before it (a
// required parameter missing); a denied run has {}.
func TestPluginRunAuditDetail(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`plugin\\.run`: `(\\{[^`]*\\})`").FindSubmatch(data)
	if m == nil {
		t.Fatal("docs/json.md documents no plugin.run detail")
	}
	documented := objectKeys(string(m[1]))
	shapes := parseJSONShapes(t)

	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "b")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("a.txt", "alpha"), "-q")...).stdout)
	h.ok(with("plugin", "install", "../../testplugins/derive")...)
	h.ok(with("plugin", "install", "../../testplugins/trap")...)
	h.ok(with("plugin", "install", "../../testplugins/starthost")...)
	h.ok(with("run", "derive", id, "--param", "title=T")...)
	h.want(exitPlugin, with("run", "trap", id)...)
	h.want(exitPlugin, with("run", "starthost", id)...)
	h.want(exitInvalid, with("run", "derive", id)...) // title is required: refused before the run
	h.want(exitDenied, "run", "derive", id, "--param", "title=T", "--tenant", "acme", "--user", "r", "--roles", "reader")

	var log []struct {
		Operation string         `json:"operation"`
		Outcome   string         `json:"outcome"`
		Target    string         `json:"target"`
		Detail    map[string]any `json:"detail"`
	}
	if err := json.Unmarshal([]byte(h.ok(with("audit", "list", "--json")...).stdout), &log); err != nil {
		t.Fatal(err)
	}
	var got []string // outcome, plugin and ran of each plugin.run entry, oldest first
	for i := len(log) - 1; i >= 0; i-- {
		e := log[i]
		if e.Operation != "plugin.run" {
			continue
		}
		if e.Outcome == "denied" {
			if len(e.Detail) != 0 {
				t.Errorf("denied plugin.run: detail %v, want {}", e.Detail)
			}
			got = append(got, e.Outcome+" "+e.Target)
			continue
		}
		var keys []string
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := slices.Sorted(slices.Values(documented))
		if !slices.Equal(keys, want) {
			t.Errorf("plugin.run %s detail keys %v, docs/json.md documents %v", e.Outcome, keys, want)
		}
		for _, p := range shapes.shapeMismatches("plugin.run detail.report", "RunReport", e.Detail["report"]) {
			t.Error(p)
		}
		ran, ok := e.Detail["ran"].(bool)
		if !ok {
			t.Errorf("plugin.run detail ran = %#v, want a bool", e.Detail["ran"])
		}
		if e.Detail["document_id"] != id {
			t.Errorf("plugin.run detail document_id = %v, want %s", e.Detail["document_id"], id)
		}
		if r, _ := e.Detail["report"].(map[string]any); !ran && (r["instructions"] != 0.0 || r["duration_ms"] != 0.0) {
			t.Errorf("plugin.run that did not run: report %v, want zeros", r)
		}
		if r, _ := e.Detail["report"].(map[string]any); e.Target == "starthost" &&
			(r["cold_start"] != true || r["instance_retired"] != true || r["init_duration_ms"] == 0.0 || r["duration_ms"] != 0.0) {
			t.Errorf("plugin.run of starthost: report %v, want its failed initialisation's", r)
		}
		got = append(got, fmt.Sprintf("%s %s ran=%t", e.Outcome, e.Target, ran))
	}
	want := []string{"ok derive ran=true", "error trap ran=true", "error starthost ran=true", "error derive ran=false", "denied derive"}
	if !slices.Equal(got, want) {
		t.Errorf("plugin.run entries %q, want %q", got, want)
	}
}

// TestRunShowsMetadataSet: docex run printed the document's metadata as
// "metadata: ...", keys the plugin did not set among them (upper, which
// sets none, printed chunk_count=7). The text now lists what the plugin
// set ("metadata set: ..."), nothing when it set nothing; --json keeps
// the document with all its metadata (docs/json.md, RunResult).
func TestRunShowsMetadataSet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	for _, p := range []string{"upper", "tag"} {
		h.ok(with("plugin", "install", "../../testplugins/"+p)...)
	}
	h.ok(with("basket", "create", "b")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("a.txt", "some text"), "-q")...).stdout)
	h.ok(with("doc", "meta", "set", id, "chunk_count=7")...)
	if out := h.ok(with("run", "upper", id)...).stdout; strings.Contains(out, "metadata") || strings.Contains(out, "chunk_count") {
		t.Errorf("run upper (which sets no metadata) printed metadata:\n%s", out)
	}
	out := h.ok(with("run", "tag", id)...).stdout
	if !strings.Contains(out, "\nmetadata set: tagged=true\n") || strings.Contains(out, "chunk_count") {
		t.Errorf("run tag: want \"metadata set: tagged=true\", not the document's other keys:\n%s", out)
	}
	var res struct {
		Document struct {
			Metadata map[string]any `json:"metadata"`
		} `json:"document"`
	}
	if err := json.Unmarshal([]byte(h.ok(with("run", "tag", id, "--json")...).stdout), &res); err != nil ||
		res.Document.Metadata["chunk_count"] != 7.0 || res.Document.Metadata["tagged"] != true {
		t.Errorf("run tag --json: document metadata %v (%v), want all its keys", res.Document.Metadata, err)
	}
}

// TestDeniedInstallSaysNothingOfInstalling: plugin install by a reader,
// or for an unknown tenant, printed "installing ...: checking and
// compiling the module" before its denial. That line is printed only
// when an install takes a while now, and a denial answers at once.
func TestDeniedInstallSaysNothingOfInstalling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	for _, who := range [][]string{
		{"--tenant", "acme", "--user", "rita", "--roles", "reader"},
		{"--tenant", "nosuch", "--user", "ann", "--roles", "admin"},
	} {
		start := time.Now()
		r := h.want(exitDenied, append([]string{"plugin", "install", "../../testplugins/upper"}, who...)...)
		if took := time.Since(start); took >= 400*time.Millisecond {
			// The line is due after 500 ms; a machine this loaded may
			// print it honestly. Not a failure, and not checked.
			t.Logf("denied install (%s) took %v: the line's absence is not checked", strings.Join(who, " "), took)
		} else if strings.Contains(r.stderr, "installing") {
			t.Errorf("denied install (%s) said it was installing:\n%s", strings.Join(who, " "), r.stderr)
		}
	}
}

// TestEngineRefusedInstallNamesSource: a system install the engine
// refused (a module importing a host function that does not exist, a
// manifest whose sha256 does not match) was audited with the target "",
// where docs/json.md says the path given, as for one the CLI refused
// itself (a directory it could not read); a tenant's had {} where the
// CLI's own refusal had {"source"}. Both name the path given now.
func TestEngineRefusedInstallNamesSource(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	const badimport, badhash, missing = "../../testplugins/badimport", "../../testplugins/badhash", "nodir"
	type entry = installEntry
	entries := func(args ...string) []entry { return installEntries(t, h, args...) }
	for _, dir := range []string{badimport, badhash, missing} {
		h.want(exitInvalid, "plugin", "install", dir, "--system")
		h.want(exitInvalid, append([]string{"plugin", "install", dir}, admin...)...)
	}
	if got, want := entries("--system"), []entry{
		{"plugin.install.system", badimport, "error", map[string]any{}},
		{"plugin.install.system", badhash, "error", map[string]any{}},
		{"plugin.install.system", missing, "error", map[string]any{}},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("system audit entries:\n got %+v\nwant %+v", got, want)
	}
	if got, want := entries(admin...), []entry{
		{"plugin.install", "", "error", map[string]any{"source": badimport}},
		{"plugin.install", "", "error", map[string]any{"source": badhash}},
		{"plugin.install", "", "error", map[string]any{"source": missing}},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("tenant audit entries:\n got %+v\nwant %+v", got, want)
	}
}

// TestRefusedBuiltinInstalls: a system install of a built-in step list the
// CLI refused (an unknown step) left no audit entry, where docs/json.md
// says a refused system install is audited with the argument as given;
// builtin: without --system is a usage error, not audited. A module whose
// sha256 does not match its manifest is refused naming the directory, as
// one that does not compile is, and a directory without a manifest says
// so without the system call's name.
func TestRefusedBuiltinInstalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	type entry = installEntry
	entries := func(args ...string) []entry { return installEntries(t, h, args...) }
	for _, spec := range []string{"builtin:bogus", "builtin:stats,bogus", "builtin:"} {
		r := h.want(exitInvalid, "plugin", "install", "--system", spec)
		if !strings.Contains(r.stderr, "no such built-in step") {
			t.Errorf("plugin install --system %s: %s", spec, r.stderr)
		}
	}
	h.want(exitInvalid, append([]string{"plugin", "install", "builtin:stats"}, admin...)...)
	if got, want := entries("--system"), []entry{
		{"plugin.install.system", "builtin:bogus", "error", map[string]any{}},
		{"plugin.install.system", "builtin:stats,bogus", "error", map[string]any{}},
		{"plugin.install.system", "builtin:", "error", map[string]any{}},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("system audit entries:\n got %+v\nwant %+v", got, want)
	}
	if got := entries(admin...); len(got) != 0 {
		t.Errorf("builtin: without --system (a usage error) audited: %+v", got)
	}

	const badhash = "../../testplugins/badhash"
	for _, args := range [][]string{{"--system"}, admin} {
		r := h.want(exitInvalid, append([]string{"plugin", "install", badhash}, args...)...)
		if !strings.Contains(r.stderr, "invalid plugin: "+badhash+": sandbox: module sha256 does not match manifest") {
			t.Errorf("plugin install %s %v does not name the directory: %s", badhash, args, r.stderr)
		}
	}
	empty := filepath.Join(h.dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	r := h.want(exitInvalid, append([]string{"plugin", "install", empty}, admin...)...)
	if want := "read plugin.toml: file does not exist"; !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "statat") {
		t.Errorf("plugin install of an empty directory: %s, want %q", r.stderr, want)
	}
}

// installEntry is an audit entry of a plugin install.
type installEntry struct {
	Operation, Target, Outcome string
	Detail                     map[string]any
}

// installEntries returns the plugin.install and plugin.install.system
// entries audit list prints with args, oldest first.
func installEntries(t *testing.T, h *harness, args ...string) []installEntry {
	t.Helper()
	var got []installEntry
	for _, e := range decode[[]installEntry](t, h.ok(append([]string{"audit", "list", "--json"}, args...)...).stdout) {
		if strings.HasPrefix(e.Operation, "plugin.install") {
			got = append([]installEntry{e}, got...)
		}
	}
	return got
}

// TestRunFailureReport: a docex run that failed once the plugin ran (its
// entry trapping, its docex_validate refusing the parameters) shows what
// the run used: with --json the error object has "ran": true and the
// "report" (a RunReport, as in the audit entry), without it a "report:"
// line on stderr after the error; a run refused before the plugin ran has
// "ran": false and a zero report, and no such line. Before, a failed run
// showed no report, and a docex_validate refusal was not a run.
func TestRunFailureReport(t *testing.T) {
	t.Parallel()
	shapes := parseJSONShapes(t)
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "b")...)
	id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("a.txt", "alpha"), "-q")...).stdout)
	for _, p := range []string{"trap", "validate", "derive"} {
		h.ok(with("plugin", "install", "../../testplugins/"+p)...)
	}
	cases := []struct {
		name string
		code int
		args []string
		ran  bool
	}{
		{"entry traps", exitPlugin, with("run", "trap", id), true},
		{"validate refuses", exitInvalid, with("run", "validate", id, "--param", "mode=refuse"), true},
		{"manifest refuses", exitInvalid, with("run", "derive", id), false},
		{"no document", exitNotFound, with("run", "trap", "0190c1a2-0000-7000-8000-000000000000"), false},
	}
	for _, tc := range cases {
		r := h.want(tc.code, append(tc.args, "--json")...)
		var e struct {
			Error  map[string]any `json:"error"`
			Ran    *bool          `json:"ran"`
			Report map[string]any `json:"report"`
		}
		dec := json.NewDecoder(strings.NewReader(r.stderr))
		if err := dec.Decode(&e); err != nil || dec.More() || e.Ran == nil || e.Report == nil || e.Error["code"] == nil {
			t.Fatalf("%s: stderr %q, want one error object with ran and report", tc.name, r.stderr)
		}
		for _, p := range shapes.shapeMismatches("run error report", "RunReport", e.Report) {
			t.Errorf("%s: %s", tc.name, p)
		}
		if *e.Ran != tc.ran || tc.ran == (e.Report["peak_memory_bytes"] == 0.0) {
			t.Errorf("%s: ran %v, report %v, want ran %v and a report of what it used exactly when it ran", tc.name, *e.Ran, e.Report, tc.ran)
		}
		r = h.want(tc.code, tc.args...)
		if got := regexp.MustCompile(`(?m)^report: [0-9.]+ ms, [0-9]+ instructions, peak memory [1-9][0-9]* bytes, `).MatchString(r.stderr); got != tc.ran {
			t.Errorf("%s: stderr %q: report line %v, want %v", tc.name, r.stderr, got, tc.ran)
		}
	}
	// Other commands' errors keep the four-key error object.
	r := h.want(exitNotFound, with("doc", "get", "0190c1a2-0000-7000-8000-000000000000", "--json")...)
	var other map[string]any
	if err := json.Unmarshal([]byte(r.stderr), &other); err != nil || len(other) != 1 {
		t.Errorf("doc get error %q, want only the error object", r.stderr)
	}
}
