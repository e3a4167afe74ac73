package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
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
