package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/plugins/builtin"
)

// TestInitResumes: a docex init that fails after it created the system
// (here: the plugin sandbox's compilation cache cannot be made, so the
// built-in steps are not installed) leaves the system marked unfinished,
// and the next init completes it: the built-in steps, the system.init
// audit entry (once), and created in its result; the init after that
// changes nothing. Before, the next init saw the system and said
// "already initialised; nothing changed": the built-in steps and the
// init's audit entry were never there.
func TestInitResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the built-in steps' module")
	}
	onBothBackends(t, "ires", func(t *testing.T, h *harness) {
		delete(h.env, noBuiltinEnv)
		base := string(config.Generate(config.GenerateOptions{}))
		if data, err := os.ReadFile(filepath.Join(h.dir, "docex.yaml")); err == nil {
			base = string(data) // PostgreSQL's, with its schemas
		}
		blocker := h.file("blocker", "a file where the compilation cache should be")
		h.file("docex.yaml", base+"\nsandbox:\n  cache_dir: "+strconv.Quote(blocker)+"\n")
		if r := h.run("init", "--user", "ops"); r.code == 0 {
			t.Fatalf("init with a file for its cache: exit 0\n%s", r.stdout)
		}
		// The system was created: the failure came after.
		if r := h.run("tenant", "list", "--json"); r.code != 0 {
			t.Fatalf("no system after the failed init: %s", r.stderr)
		}

		h.file("docex.yaml", base+"\nsandbox:\n  cache_dir: "+strconv.Quote(builtin.TestCacheDir())+"\n")
		res := decode[initResult](t, h.ok("init", "--user", "ops", "--json").stdout)
		if !res.Created || !slices.Equal(res.BuiltinSteps, builtin.Names()) {
			t.Fatalf("second init: created %v, installed %v; want it to finish the first: created, %v", res.Created, res.BuiltinSteps, builtin.Names())
		}
		type plugin struct {
			Name   string `json:"name"`
			System bool   `json:"system"`
		}
		var names []string
		for _, p := range decode[[]plugin](t, h.ok("plugin", "list", "--system", "--json").stdout) {
			names = append(names, p.Name)
		}
		slices.Sort(names)
		want := slices.Sorted(slices.Values(builtin.Names()))
		if !slices.Equal(names, want) {
			t.Fatalf("system plugins %v, want %v", names, want)
		}

		// Finished: the next init changes nothing.
		r := h.ok("init", "--user", "ops")
		if !strings.Contains(r.stdout, "already initialised; nothing changed") || strings.Contains(r.stdout, "installed") {
			t.Fatalf("third init: %s", r.stdout)
		}
		inits := 0
		for _, e := range decode[[]map[string]any](t, h.ok("audit", "list", "--system", "--json").stdout) {
			if e["operation"] == "system.init" {
				inits++
			}
		}
		if inits != 1 {
			t.Fatalf("%d system.init entries, want 1", inits)
		}
	})
}
