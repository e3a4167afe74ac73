package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/internal/markdown"
	"github.com/docex-dev/docex/plugins/builtin"
)

// fencedBlocks returns the fenced blocks of the markdown file tagged lang.
func fencedBlocks(t *testing.T, path, lang string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return markdown.FencedBlocks(string(data), lang)
}

// TestDocsPipelines: the pipelines docs/jobs.md and docs/steps.md show are
// accepted by pipeline create as written, the showcase pipeline
// docs/steps.md quotes is examples/showcase/showcase.toml, and the
// definition errors docs/jobs.md quotes are what pipeline create prints.
func TestDocsPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the built-in steps")
	}
	h := newHarness(t)
	delete(h.env, noBuiltinEnv)
	h.file("docex.yaml", string(config.Generate(config.GenerateOptions{}))+"\nsandbox:\n  cache_dir: "+strconv.Quote(builtin.TestCacheDir())+"\n")
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}

	for _, path := range []string{"../../docs/jobs.md", "../../docs/steps.md"} {
		blocks := fencedBlocks(t, path, "toml")
		if len(blocks) == 0 {
			t.Fatalf("%s shows no pipeline", path)
		}
		for i, b := range blocks {
			f := h.file("doc-pipeline.toml", b)
			if r := h.run(append([]string{"pipeline", "create", f}, admin...)...); r.code != 0 {
				t.Errorf("%s, pipeline %d: exit %d: %s", path, i+1, r.code, r.stderr)
			}
		}
	}

	showcase, err := os.ReadFile("../../examples/showcase/showcase.toml")
	if err != nil {
		t.Fatal(err)
	}
	if quoted := fencedBlocks(t, "../../docs/steps.md", "toml")[0]; !strings.HasSuffix(string(showcase), quoted) {
		t.Errorf("docs/steps.md quotes a showcase pipeline that is not examples/showcase/showcase.toml:\n%s", quoted)
	}

	// The definition errors docs/jobs.md gives as examples.
	var quoted string
	for _, b := range fencedBlocks(t, "../../docs/jobs.md", "") {
		if strings.Contains(b, "docex: pipeline line") {
			quoted = b
		}
	}
	for _, tc := range []struct{ pipeline, line string }{
		{"name = \"p\"\n[[steps]]\nname = \"a\"\nplugin = \"nope\"\n",
			`docex: pipeline line 4, key steps[0].plugin: unknown plugin "nope" (install it first: docex plugin install; docex plugin list shows those installed)`},
		{"name = \"p\"\n[[steps]]\nname = \"a\"\nplugin = \"extract_text\"\n",
			`docex: pipeline line 4, key steps[0].plugin: unknown plugin "extract_text" (did you mean "extract-text"?)`},
		{"name = \"p\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\nparams = { foo = 1 }\n",
			`docex: pipeline line 5, key steps[0].params.foo: plugin "chunk" has no parameter "foo" (its parameters: overlap, separators, size, strategy)`},
		{"name = \"p\"\nmax_attempt = 3\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n",
			`docex: pipeline line 2, key max_attempt: unknown key "max_attempt" (did you mean "max_attempts"?)`},
		{"name = \"p\"\nmax_attempts = 3\nmax_derived = 0\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n",
			`docex: pipeline line 3, key max_derived: max_derived 0: want 1 to 1000000, the most documents one job may derive, all steps together (leave it out for the default, 100000)`},
		// The plugin's own check (docex_validate).
		{"name = \"p\"\n[[steps]]\nname = \"a\"\nplugin = \"redact-pii\"\nparams = { kinds = \"emial\" }\n",
			`docex: pipeline line 5, key steps[0].params.kinds: plugin "redact-pii" refused its parameters: kinds: unknown kind "emial" (want email, phone, card, iban, ipv4, ipv6, ssn)`},
		{"name = \"p\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\nparams = { overlap = 600 }\n",
			`docex: pipeline line 5, key steps[0].params.overlap: plugin "chunk" refused its parameters: overlap: 600 must be smaller than size 512`},
	} {
		if !strings.Contains(quoted, tc.line+"\n") {
			t.Errorf("docs/jobs.md no longer quotes %s", tc.line)
		}
		r := h.want(exitInvalid, append([]string{"pipeline", "create", h.file("bad.toml", tc.pipeline)}, admin...)...)
		if got := strings.SplitN(r.stderr, "\n", 2)[0]; got != tc.line {
			t.Errorf("pipeline create:\n got %s\nwant %s", got, tc.line)
		}
	}
	h.want(exitNotFound, append([]string{"pipeline", "show", "p"}, admin...)...) // nothing was stored
}

// TestDocsWorkerLogLines: every line the worker logs itself (engine's
// Worker, each backend's queue) is a row of docs/jobs.md's "Worker log
// lines" table with its level, and every row is a line some code logs.
// Before, the claim-marker warning was logged and not listed (P11's H3).
func TestDocsWorkerLogLines(t *testing.T) {
	doc, err := os.ReadFile("../../docs/jobs.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "### Worker log lines")
	if !ok {
		t.Fatal("docs/jobs.md has no Worker log lines section")
	}
	table, _, _ = strings.Cut(table, "\n### ")
	rowRE := regexp.MustCompile("(?m)^\\| (INFO|WARN|ERROR) \\| `([^`]+)` \\|")
	rows := map[string]string{} // msg -> level
	for _, m := range rowRE.FindAllStringSubmatch(table, -1) {
		rows[m[2]] = m[1]
	}
	callRE := regexp.MustCompile(`(?:log|Logger|logger|\))\.(Info|Warn|Error)\(\s*"((?:[^"\\]|\\.)*)"`)
	logged := map[string]bool{}
	// A message may be a constant of the file: Info(staleDropMsg, ...).
	constCallRE := regexp.MustCompile(`(?:log|Logger|logger|\))\.(Info|Warn|Error)\(\s*([A-Za-z_]\w*)\s*,`)
	for _, path := range []string{"../../engine/pipelines.go", "../../engine/jobs.go", "../../backends/postgres/queue.go", "../../backends/sqlite/queue.go", "pipeline.go"} {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		calls := callRE.FindAllStringSubmatch(string(src), -1)
		for _, m := range constCallRE.FindAllStringSubmatch(string(src), -1) {
			def := regexp.MustCompile(`(?m)^\s*(?:const\s+)?` + m[2] + `\s*=\s*"((?:[^"\\]|\\.)*)"`).FindStringSubmatch(string(src))
			if def == nil {
				t.Errorf("%s logs the constant %s, not defined in that file", path, m[2])
				continue
			}
			calls = append(calls, []string{m[0], m[1], def[1]})
		}
		for _, m := range calls {
			msg, err := strconv.Unquote(`"` + m[2] + `"`)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, m[2], err)
			}
			logged[msg] = true
			if lvl, ok := rows[msg]; !ok {
				t.Errorf("%s logs %q, which docs/jobs.md's Worker log lines table does not list", path, msg)
			} else if lvl != strings.ToUpper(m[1]) {
				t.Errorf("%s logs %q at %s, docs/jobs.md says %s", path, msg, strings.ToUpper(m[1]), lvl)
			}
		}
	}
	for msg := range rows {
		if !logged[msg] {
			t.Errorf("docs/jobs.md lists %q, which no worker code logs", msg)
		}
	}
	if len(logged) < 10 {
		t.Fatalf("found only %d logged lines: the pattern no longer matches the code", len(logged))
	}
}
