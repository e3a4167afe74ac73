package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/plugins/builtin"
)

// TestBuiltinSteps: docex init installs the built-in steps as system
// plugins, compiled once; every tenant lists and runs them (extract-text ->
// chunk -> redact-pii on a real PDF); an operator removes one, a second
// init does not bring it back, and builtin:NAME reinstalls it.
func TestBuiltinSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the built-in steps' module")
	}
	h := newHarness(t)
	delete(h.env, noBuiltinEnv)
	// The compilation cache the built-in steps' tests share (compiling the
	// module takes minutes under the race detector).
	cfg := string(config.Generate(config.GenerateOptions{})) + "\nsandbox:\n  cache_dir: " + strconv.Quote(builtin.TestCacheDir()) + "\n"
	h.file("docex.yaml", cfg)
	init := decode[initResult](t, h.ok("init", "--json").stdout)
	if !slices.Equal(init.BuiltinSteps, builtin.Names()) {
		t.Fatalf("init installed %v", init.BuiltinSteps)
	}
	t.Logf("docex init installed the built-in steps in %.0f ms (one compile of the shared module)", init.BuiltinInstallMS)
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(append(args, u...), "--json") }

	type plugin struct {
		Name         string `json:"name"`
		Version      string `json:"version"`
		System       bool   `json:"system"`
		ModuleSHA256 string `json:"module_sha256"`
	}
	list := decode[[]plugin](t, h.ok(with("plugin", "list")...).stdout)
	if len(list) != len(builtin.Names()) {
		t.Fatalf("plugin list: %+v", list)
	}
	for _, p := range list {
		if !p.System || p.Version == "" || p.ModuleSHA256 != builtin.ModuleSHA256() {
			t.Fatalf("plugin list entry %+v", p)
		}
	}

	// plugin show lists the parameters with their declared bounds.
	type param struct {
		Name     string   `json:"name"`
		Type     string   `json:"type"`
		Required bool     `json:"required"`
		Min      string   `json:"min"`
		Max      string   `json:"max"`
		Values   []string `json:"values"`
	}
	type shown struct {
		AcceptedContentTypes []string `json:"accepted_content_types"`
		Parameters           []param  `json:"parameters"`
	}
	chunk := decode[shown](t, h.ok(with("plugin", "show", "chunk")...).stdout)
	names := []string{}
	for _, p := range chunk.Parameters {
		names = append(names, p.Name)
		switch p.Name {
		case "size":
			if p.Type != "int" || p.Min != "1" || p.Max != "1048576" || p.Values == nil {
				t.Fatalf("chunk size: %+v", p)
			}
		case "strategy":
			if p.Type != "string" || p.Min != "" || p.Max != "" || !slices.Equal(p.Values, []string{"recursive", "fixed", "structure", "sentence"}) {
				t.Fatalf("chunk strategy: %+v", p)
			}
		}
	}
	if !slices.Equal(names, []string{"overlap", "separators", "size", "strategy"}) || !slices.Contains(chunk.AcceptedContentTypes, "text/*") {
		t.Fatalf("plugin show chunk: %+v", chunk)
	}
	txt := h.ok("plugin", "show", "chunk", "--tenant", "acme", "--user", "alice", "--roles", "reader").stdout
	for _, want := range []string{"accepts: text/*, application/json", "PARAMETER", "1..1048576", "recursive|fixed|structure|sentence"} {
		if !strings.Contains(txt, want) {
			t.Fatalf("plugin show chunk (text) lacks %q:\n%s", want, txt)
		}
	}

	h.ok(with("basket", "create", "papers")...)
	pdf := "../../plugins/builtin/testdata/quality/pdf/refcard-a4.pdf"
	d := documents(decode[[]added](t, h.ok(with("doc", "add", "papers", pdf)...).stdout))[0]
	type runResult struct {
		Derived []doc `json:"derived"`
	}
	text := decode[runResult](t, h.ok(with("run", "extract-text", d.ID)...).stdout).Derived
	if len(text) != 1 || text[0].Metadata["source_pages"] != 3.0 || text[0].Metadata["derived_from"] != d.ID {
		t.Fatalf("extract-text: %+v", text)
	}
	chunks := decode[runResult](t, h.ok(with("run", "chunk", text[0].ID, "--param", "size=400")...).stdout).Derived
	if len(chunks) < 5 || chunks[1].Metadata["chunk_index"] != 1.0 {
		t.Fatalf("chunk: %d chunks, %+v", len(chunks), chunks[:min(2, len(chunks))])
	}
	// A value outside the declared range is refused before the step runs.
	if r := h.run(with("run", "chunk", text[0].ID, "--param", "size=0")...); r.code != 2 || !strings.Contains(r.stderr, `size\": 0 is less than the minimum 1`) {
		t.Fatalf("run chunk size=0: %+v", r)
	}
	red := decode[runResult](t, h.ok(with("run", "redact-pii", chunks[0].ID)...).stdout).Derived
	if len(red) != 1 || red[0].Metadata["pii_total"] == nil {
		t.Fatalf("redact-pii: %+v", red)
	}

	// An operator disables a step; init does not reinstall it; builtin:
	// does.
	h.ok("plugin", "remove", "--system", "chunk")
	if r := h.run(with("run", "chunk", text[0].ID)...); r.code == 0 {
		t.Fatal("a removed built-in step still runs")
	}
	if r := h.ok("init"); !strings.Contains(r.stdout, "already initialised") {
		t.Fatalf("second init: %s", r.stdout)
	}
	if l := decode[[]plugin](t, h.ok(with("plugin", "list")...).stdout); len(l) != len(builtin.Names())-1 {
		t.Fatalf("after remove and init: %+v", l)
	}
	h.ok("plugin", "install", "--system", "builtin:chunk")
	h.ok(with("run", "chunk", text[0].ID)...)
	if r := h.run("plugin", "install", "--system", "builtin:nope"); r.code == 0 || !strings.Contains(r.stderr, "no such built-in step") {
		t.Fatalf("builtin:nope: %+v", r)
	}

	// A built-in step installed by another docex version (another
	// module): init says so, and builtin: updates it.
	type initOutdated struct {
		Created  bool     `json:"created"`
		Outdated []string `json:"builtin_steps_outdated"`
	}
	if r := decode[initOutdated](t, h.ok("init", "--json").stdout); r.Created || r.Outdated == nil || len(r.Outdated) != 0 {
		t.Fatalf("init on an up-to-date system: %+v", r)
	}
	old := copyFiles(t, filepath.Join(t.TempDir(), "stats"), map[string]string{"tag.wasm": "testplugins/tag/tag.wasm", "plugin.toml": "testplugins/tag/plugin.toml"},
		func(name string, b []byte) []byte {
			return bytes.Replace(b, []byte(`name = "tag"`), []byte(`name = "stats"`), 1)
		})
	h.ok("plugin", "install", "--system", old)
	if r := decode[initOutdated](t, h.ok("init", "--json").stdout); !slices.Equal(r.Outdated, []string{"stats"}) {
		t.Fatalf("init with an older stats: %+v", r)
	}
	if out := h.ok("init").stdout; !strings.Contains(out, "the built-in step stats was installed by another docex version; docex plugin install --system builtin:all updates it") {
		t.Fatalf("init text:\n%s", out)
	}
	h.ok("plugin", "install", "--system", "builtin:stats")
	if r := decode[initOutdated](t, h.ok("init", "--json").stdout); len(r.Outdated) != 0 {
		t.Fatalf("init after builtin:stats: %+v", r)
	}
	// The same module with another manifest (a docex version that
	// declared a parameter differently) is outdated too.
	edited := false
	oldChunk := copyFiles(t, filepath.Join(t.TempDir(), "chunk"), map[string]string{"steps.wasm": "plugins/builtin/steps.wasm", "plugin.toml": "plugins/builtin/manifests/chunk.toml"},
		func(name string, b []byte) []byte {
			if name != "plugin.toml" {
				return b
			}
			older := bytes.Replace(b, []byte("less_than = \"size\"\n"), nil, 1)
			edited = !bytes.Equal(older, b)
			return older
		})
	if !edited {
		t.Fatal("chunk.toml no longer declares overlap less_than size: change the edit above")
	}
	h.ok("plugin", "install", "--system", oldChunk)
	if r := decode[initOutdated](t, h.ok("init", "--json").stdout); !slices.Equal(r.Outdated, []string{"chunk"}) {
		t.Fatalf("init with an older chunk manifest: %+v", r)
	}
	h.ok("plugin", "install", "--system", "builtin:all")
	if r := decode[initOutdated](t, h.ok("init", "--json").stdout); len(r.Outdated) != 0 {
		t.Fatalf("init after builtin:all: %+v", r)
	}
}
