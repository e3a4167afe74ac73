package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// noJSONForm lists the commands whose output is not JSON: raw content, the
// MCP protocol (mcp_test.go), and the worker, which runs until a signal and
// writes JSON log lines on stderr (TestWorkerKill9 runs it).
var noJSONForm = map[string]bool{"doc cat": true, "mcp": true, "worker": true}

// TestJSONConvention runs every command with --json and checks its output
// against docs/json.md: one JSON value, snake_case keys, no null, [] for
// empty lists, durations as *_ms. A command added to the registry without
// a case here fails the test: add one.
func TestJSONConvention(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.ok("tenant", "create", "gone")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(append(args, u...), "--json") }
	h.ok(with("basket", "create", "docs")...)
	h.ok(with("basket", "create", "empty")...)
	h.ok(with("basket", "create", "scratch")...)
	docs := documents(decode[[]added](t, h.ok(with("doc", "add", "docs", h.file("a.txt", "alpha"), h.file("b.txt", "beta"), "--meta", "k=v")...).stdout))
	id, other := docs[0].ID, docs[1].ID
	h.ok(with("plugin", "install", "../../testplugins/derive")...)
	h.ok(with("plugin", "install", "../../testplugins/tag")...)
	pipelineFile := h.file("tagger.toml", "name = \"tagger\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n")

	// Each case runs once, in order; cases may depend on earlier ones.
	cases := []struct {
		path string
		args []string
	}{
		{"version", []string{"version", "--json"}},
		{"init", []string{"init", "--json"}},
		{"tenant list", []string{"tenant", "list", "--json"}},
		{"tenant show", []string{"tenant", "show", "acme", "--json"}},
		{"tenant create", []string{"tenant", "create", "beta", "--json"}},
		{"tenant suspend", []string{"tenant", "suspend", "beta", "--json"}},
		{"tenant resume", []string{"tenant", "resume", "beta", "--json"}},
		{"tenant delete", []string{"tenant", "delete", "gone", "--yes", "--json"}},
		{"basket create", with("basket", "create", "more")},
		{"basket list", with("basket", "list")},
		{"basket show", with("basket", "show", "docs")},
		{"basket delete", with("basket", "delete", "scratch")},
		{"doc add", with("doc", "add", "docs", h.file("c.txt", "alpha"))}, // a duplicate of a.txt
		{"doc get", with("doc", "get", id)},
		{"doc list", with("doc", "list", "docs")},
		{"doc list", with("doc", "list", "empty")},
		{"doc find", with("doc", "find", "docs", "--meta", "k=v")},
		{"doc find", with("doc", "find", "docs", "--meta", "k=nothing")},
		{"doc update", with("doc", "update", other, h.file("d.txt", "gamma"))},
		{"doc meta set", with("doc", "meta", "set", id, "n=1", "flag=true")},
		{"doc meta get", with("doc", "meta", "get", id)},
		{"doc meta get", with("doc", "meta", "get", id, "n")},
		{"doc meta delete", with("doc", "meta", "delete", id, "flag")},
		{"run", with("run", "derive", id, "--param", "title=Summary")},
		{"plugin list", with("plugin", "list")},
		{"plugin list", []string{"plugin", "list", "--system", "--json"}},
		{"plugin show", with("plugin", "show", "derive")},
		{"plugin install", []string{"plugin", "install", "../../testplugins/derive", "--system", "--json"}},
		{"plugin remove", []string{"plugin", "remove", "derive", "--system", "--json"}},
		{"audit list", with("audit", "list")},
		{"audit list", []string{"audit", "list", "--system", "--json"}},
		{"audit prune", with("audit", "prune", "--older-than", "1d", "--dry-run")},
		{"audit prune", with("audit", "prune", "--older-than", "30d")},
		{"audit prune", []string{"audit", "prune", "--system", "--older-than", "30d", "--json"}},
		{"pipeline create", with("pipeline", "create", pipelineFile)},
		{"pipeline list", with("pipeline", "list")},
		{"pipeline show", with("pipeline", "show", "tagger")},
		{"basket bind", with("basket", "bind", "docs", "tagger")},
		{"pipeline run", with("pipeline", "run", "tagger", "--doc", id)},
		{"job list", with("job", "list")},
		{"pipeline run", with("pipeline", "run", "tagger", "--doc", id, "--wait")},
		{"basket unbind", with("basket", "unbind", "docs")},
		{"doc lineage", with("doc", "lineage", id)},
		{"pipeline delete", with("pipeline", "delete", "tagger")},
		{"doc delete", with("doc", "delete", other)},
		{"gc", []string{"gc", "--grace", "0s", "--json"}},
		{"verify", []string{"verify", "--json"}},
		{"compact", []string{"compact", "--json"}},
		{"compact", []string{"compact", "acme", "--json"}},
	}
	// Each output has exactly the keys docs/json.md's shape for its
	// command lists.
	shapes := parseJSONShapes(t)
	check := func(path string, r result) {
		t.Helper()
		v := checkJSON(t, path, r)
		if name, ok := shapes.byCommand[path]; ok {
			for _, m := range shapes.shapeMismatches(path, name, v) {
				t.Error(m)
			}
		}
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.path] = true
		check(c.path, h.ok(c.args...))
	}
	// Job commands need a queued job.
	h.ok(with("pipeline", "create", h.file("tagger2.toml", "name = \"tagger2\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n"))...)
	var queued struct {
		Jobs []string `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(h.ok(with("pipeline", "run", "tagger2", "--doc", id)...).stdout), &queued); err != nil || len(queued.Jobs) != 1 {
		t.Fatalf("pipeline run: %v %+v", err, queued)
	}
	var done []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(h.ok(with("job", "list", "--state", "succeeded", "--limit", "1")...).stdout), &done); err != nil || len(done) != 1 {
		t.Fatalf("job list --state succeeded: %v %+v", err, done)
	}
	for _, c := range []struct {
		path string
		args []string
	}{
		{"job show", with("job", "show", done[0].ID)}, // with steps and their reports
		{"job show", with("job", "show", queued.Jobs[0])},
		{"job cancel", with("job", "cancel", queued.Jobs[0])},
		{"job retry", with("job", "retry", queued.Jobs[0])},
		{"job prune", with("job", "prune", "--older-than", "1ns", "--dry-run")},
		{"job prune", with("job", "prune", "--older-than", "30d")},
	} {
		covered[c.path] = true
		check(c.path, h.ok(c.args...))
	}
	var missing []string
	for path := range commands().byPath {
		if !covered[path] && !noJSONForm[path] {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("commands without a case in TestJSONConvention (add one): %v", missing)
	}
}

// checkJSON checks one command's --json output against docs/json.md's
// rules and returns it decoded.
func checkJSON(t *testing.T, path string, r result) any {
	t.Helper()
	c := struct{ path string }{path}
	var v any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: stdout is not JSON: %v\n%s", c.path, err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value on stdout:\n%s", c.path, r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("%s --json wrote to stderr: %q", c.path, r.stderr)
	}
	switch v.(type) {
	case map[string]any, []any:
	default:
		t.Errorf("%s: top level is %T, want an object or an array", c.path, v)
	}
	for _, p := range conventionViolations("", v) {
		t.Errorf("%s: %s", c.path, p)
	}
	return v
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// userKeyed are objects whose keys are user data (metadata keys), exempt
// from the key rules.
var userKeyed = []string{"metadata"}

// conventionViolations returns what in v breaks docs/json.md.
func conventionViolations(path string, v any) []string {
	var out []string
	switch x := v.(type) {
	case nil:
		out = append(out, fmt.Sprintf("%s is null (lists are [], objects {}, strings \"\")", path))
	case map[string]any:
		last := path[strings.LastIndex(path, ".")+1:]
		for k, child := range x {
			if !slices.Contains(userKeyed, last) {
				if !snakeCase.MatchString(k) {
					out = append(out, fmt.Sprintf("key %s.%s is not snake_case", path, k))
				}
				if strings.Contains(k, "duration") && !strings.HasSuffix(k, "_ms") {
					out = append(out, fmt.Sprintf("duration key %s.%s does not end in _ms", path, k))
				}
			}
			out = append(out, conventionViolations(path+"."+k, child)...)
		}
	case []any:
		for i, child := range x {
			out = append(out, conventionViolations(fmt.Sprintf("%s[%d]", path, i), child)...)
		}
	case string:
		if (strings.HasPrefix(x, "{") && strings.HasSuffix(x, "}")) || (strings.HasPrefix(x, "[{") && strings.HasSuffix(x, "}]")) {
			if json.Valid([]byte(x)) {
				out = append(out, fmt.Sprintf("%s holds JSON inside a string: nest it as an object", path))
			}
		}
	}
	return out
}

func TestJSONConventionCheckerCatches(t *testing.T) {
	t.Parallel()
	bad := map[string]any{
		"Duration":      1,
		"capabilities":  nil,
		"detail":        `{"a":1}`,
		"run_duration":  2,
		"metadata":      map[string]any{"Free Key": "ok"},
		"nested_object": map[string]any{"camelCase": []any{}},
	}
	got := conventionViolations("", bad)
	if len(got) != 5 {
		t.Fatalf("violations %d, want 5:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// TestJSONErrorShape: every --json error is one object with code, kind,
// message and hint.
func TestJSONErrorShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.want(exitInvalid, "tenant", "list", "--json")
	var e map[string]map[string]string
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil {
		t.Fatalf("stderr is not JSON: %q", r.stderr)
	}
	got := e["error"]
	if got["code"] != "not_initialized" || got["kind"] != "invalid" || got["message"] == "" || !strings.Contains(got["hint"], "docex init") {
		t.Fatalf("error = %v", got)
	}
	if r.stdout != "" {
		t.Fatalf("stdout: %q", r.stdout)
	}
}

// TestNoOmitEmpty: the types the CLI prints (root package docex, engine,
// cmd/docex) keep every key (docs/json.md): no omitempty or omitzero in
// their json tags.
func TestNoOmitEmpty(t *testing.T) {
	t.Parallel()
	tag := regexp.MustCompile("json:\"[^\"]*,(omitempty|omitzero)")
	for _, dir := range []string{"../..", "../../engine", "."} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v (%d files)", dir, err, len(files))
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if tag.MatchString(line) {
					t.Errorf("%s:%d: %s (keys are always present: docs/json.md)", f, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
}

// errorSentinels are docex's error sentinels: every code a --json error
// can carry besides "internal" (TestJSONErrorKinds checks that the list
// is errors.go's).
var errorSentinels = []*docex.Error{
	docex.ErrInvalid, docex.ErrNotFound, docex.ErrDenied, docex.ErrConflict,
	docex.ErrInvalidID, docex.ErrInvalidConfig, docex.ErrTooLarge, docex.ErrNotInitialized, docex.ErrMultiTenancyOff,
	docex.ErrTenantNotFound, docex.ErrUserRequired, docex.ErrTenantRequired, docex.ErrTenantUnknown,
	docex.ErrTenantSuspended, docex.ErrBootstrapTenant, docex.ErrForbidden, docex.ErrTenantExists, docex.ErrExists,
	docex.ErrBasketNotEmpty, docex.ErrDuplicateContent, docex.ErrHasDerived, docex.ErrPluginInvalid, docex.ErrPluginDenied,
	docex.ErrPluginFailed, docex.ErrNoSandbox, docex.ErrSchemaVersion, docex.ErrClosed, docex.ErrCorrupt,
	docex.ErrInterrupted, docex.ErrWrongTenant, docex.ErrStorageDenied, docex.ErrStorageUnavailable,
	docex.ErrTooManyOpenFiles, docex.ErrHostCapacity,
}

// kindNumber matches "`kind` (N)" in docs/json.md.
var kindNumber = regexp.MustCompile("`([a-z_]+)` \\((\\d+)\\)")

// TestJSONErrorKinds: the kinds a --json error can have (exitcodes.go's
// exitKinds) are those docs/json.md's errors table lists, each with its
// exit code; and every error code is listed under its kind in
// docs/json.md's table of codes, which lists no other.
func TestJSONErrorKinds(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	var kindRow, codeRows []string
	for line := range strings.SplitSeq(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "| `kind` |"):
			kindRow = append(kindRow, line)
		case kindNumber.MatchString(line) && strings.HasPrefix(line, "| `"):
			codeRows = append(codeRows, line)
		}
	}
	if len(kindRow) != 1 {
		t.Fatalf("docs/json.md: %d rows for the error's kind, want 1", len(kindRow))
	}
	documented := map[int]string{}
	for _, m := range kindNumber.FindAllStringSubmatch(kindRow[0], -1) {
		n, _ := strconv.Atoi(m[2])
		documented[n] = m[1]
	}
	if !maps.Equal(documented, exitKinds) {
		t.Errorf("docs/json.md documents the kinds %v, exitcodes.go has %v", documented, exitKinds)
	}
	// The exit table's sentinels are the kinds of their codes.
	for _, e := range exitTable {
		if got := exitKinds[e.code]; got != docex.Code(e.kind) {
			t.Errorf("exit %d: kind %q, its sentinel's code is %q", e.code, got, docex.Code(e.kind))
		}
	}

	// Every code, under its kind.
	src, err := os.ReadFile("../../errors.go")
	if err != nil {
		t.Fatal(err)
	}
	var inSource []string
	for _, m := range regexp.MustCompile(`(?:newKind\(|newErr\(\w+, |code: )"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		inSource = append(inSource, m[1])
	}
	want := map[string]string{"internal": "internal"} // code: kind
	var listed []string
	for _, e := range errorSentinels {
		want[e.Code()] = exitKinds[exitCode(e)]
		listed = append(listed, e.Code())
	}
	if !slices.Equal(slices.Sorted(slices.Values(listed)), slices.Sorted(slices.Values(inSource))) {
		t.Fatalf("errorSentinels %v, errors.go defines %v: add the new sentinel to errorSentinels", listed, inSource)
	}
	got := map[string]string{}
	if len(codeRows) != len(exitKinds) {
		t.Errorf("docs/json.md: %d rows of codes, want one per kind (%d)", len(codeRows), len(exitKinds))
	}
	for _, row := range codeRows {
		cells := strings.Split(row, " | ")
		if len(cells) != 2 {
			t.Errorf("docs/json.md: codes row %q: want 2 cells", row)
			continue
		}
		m := kindNumber.FindStringSubmatch(cells[0])
		if n, _ := strconv.Atoi(m[2]); exitKinds[n] != m[1] {
			t.Errorf("docs/json.md: codes row %q: kind %s is not exit code %d's (%s)", row, m[1], n, exitKinds[n])
		}
		for _, c := range backticks.FindAllStringSubmatch(cells[1], -1) {
			got[c[1]] = m[1]
		}
	}
	if !maps.Equal(got, want) {
		for code, kind := range want {
			if got[code] != kind {
				t.Errorf("code %s: kind %s, docs/json.md lists it under %q", code, kind, got[code])
			}
		}
		for code := range got {
			if _, ok := want[code]; !ok {
				t.Errorf("docs/json.md lists code %s, which docex does not have", code)
			}
		}
	}
}

// TestExitCodesDocumented: the README's exit-code table has a row per exit
// code of exitcodes.go, with its --json kind, and a meaning that begins
// as docex help's exit-code line says it; the codes a row names are of
// its exit code.
func TestExitCodesDocumented(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// docex help's line: "Exit codes: 0 ok, 1 internal error, ..., 130 interrupted (...)".
	h := newHarness(t)
	help := h.ok("help").stdout
	i := strings.Index(help, "Exit codes: ")
	if i < 0 {
		t.Fatal("docex help has no exit-code line")
	}
	line := strings.Join(strings.Fields(strings.TrimSuffix(strings.SplitN(help[i+len("Exit codes: "):], ".\n", 2)[0], ".")), " ")
	helpMeaning := map[int]string{}
	for item := range strings.SplitSeq(line, ", ") {
		n, meaning, ok := strings.Cut(item, " ")
		code, err := strconv.Atoi(n)
		if !ok || err != nil {
			continue // "SIGTERM)" of "(Ctrl-C, SIGTERM)"
		}
		meaning, _, _ = strings.Cut(meaning, " (")
		helpMeaning[code] = meaning
	}
	codes := map[int]string{exitOK: ""}
	maps.Copy(codes, exitKinds)
	if !slices.Equal(slices.Sorted(maps.Keys(helpMeaning)), slices.Sorted(maps.Keys(codes))) {
		t.Errorf("docex help lists the exit codes %v, exitcodes.go has %v", slices.Sorted(maps.Keys(helpMeaning)), slices.Sorted(maps.Keys(codes)))
	}

	kindOf := map[string]string{"internal": "internal"} // code: kind
	for _, e := range errorSentinels {
		kindOf[e.Code()] = exitKinds[exitCode(e)]
	}
	rows := map[int]bool{}
	inTable := false
	for l := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(l, "| exit code |") {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(l, "|---") {
			continue
		}
		if !strings.HasPrefix(l, "| ") {
			break
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 3 {
			t.Errorf("README exit table row %q: want 3 cells (exit code, kind, meaning)", l)
			continue
		}
		code, err := strconv.Atoi(cells[0])
		kind, ok := codes[code]
		if err != nil || !ok {
			t.Errorf("README exit table row %q: %s is not an exit code of exitcodes.go", l, cells[0])
			continue
		}
		rows[code] = true
		if want := "`" + kind + "`"; kind != "" && cells[1] != want || kind == "" && cells[1] != "" {
			t.Errorf("README exit code %d: kind %q, exitcodes.go says %q", code, cells[1], kind)
		}
		if m := helpMeaning[code]; !strings.HasPrefix(cells[2], m) {
			t.Errorf("README exit code %d: %q, docex help says %q", code, cells[2], m)
		}
		for _, m := range backticks.FindAllStringSubmatch(cells[2], -1) {
			if _, known := kindOf[m[1]]; !known && (!snakeCase.MatchString(m[1]) || !strings.Contains(m[1], "_")) {
				continue // a command: `mcp --http`, `worker`
			}
			if k, ok := kindOf[m[1]]; !ok || k != kind {
				t.Errorf("README exit code %d names code %s, whose kind is %q", code, m[1], k)
			}
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(rows)), slices.Sorted(maps.Keys(codes))) {
		t.Errorf("README's exit table has rows for %v, exitcodes.go has %v", slices.Sorted(maps.Keys(rows)), slices.Sorted(maps.Keys(codes)))
	}
}
