package docex_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/docex-dev/docex"

// imports returns, for every package directory of the module, the module
// packages its non-test Go files import (as paths relative to the module:
// "" for the root, "engine", ...).
func moduleImports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			pkg = ""
		}
		if out[pkg] == nil {
			out[pkg] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == module {
				out[pkg][""] = true
			} else if rest, ok := strings.CutPrefix(p, module+"/"); ok {
				out[pkg][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestArchitectureRules checks the dependency rules docs/architecture.md
// states: arrows point inward.
func TestArchitectureRules(t *testing.T) {
	if _, err := os.Stat("docs/architecture.md"); err != nil {
		t.Fatal(err)
	}
	deps := moduleImports(t)
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	for pkg, imps := range deps {
		for imp := range imps {
			switch {
			case pkg == "":
				t.Errorf("the root package docex imports %s: it must depend on nothing", imp)
			case pkg == "driver" && imp != "":
				t.Errorf("driver imports %s: it declares what a backend implements, over docex only", imp)
			case under(imp, "cmd"):
				t.Errorf("%s imports %s: nothing imports cmd/", pkg, imp)
			case under(pkg, "engine") && under(imp, "backends"):
				t.Errorf("%s imports %s: the engine never imports a backend", pkg, imp)
			case under(pkg, "backends") && !under(pkg, "backends/backendtest") && !under(pkg, "backends/contenttest") && under(imp, "engine"):
				t.Errorf("%s imports %s: backends never import the engine (only the conformance suites do)", pkg, imp)
			case pkg == "config" && (under(imp, "backends") || under(imp, "engine") || under(imp, "sandbox")):
				t.Errorf("config imports %s: config reads docex.yaml and knows no backend, engine or sandbox", imp)
			case under(pkg, "engine") && imp == "sandbox":
				t.Errorf("%s imports sandbox: the engine sees plugins through engine.PluginRuntime and sandbox/pluginapi", pkg)
			case pkg == "sandbox/pluginapi" && imp != "":
				t.Errorf("sandbox/pluginapi imports %s: the plugin contract depends on nothing of the module", imp)
			case pkg == "tenancy" && imp != "":
				t.Errorf("tenancy imports %s: it depends on docex only", imp)
			}
		}
	}
	// Neither the engine nor the plugin contract links wazero.
	for _, pkg := range []string{"./engine", "./sandbox/pluginapi"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		if strings.Contains(string(out), "tetratelabs/wazero") {
			t.Errorf("%s depends on wazero: it must see the sandbox only through engine.PluginRuntime and sandbox/pluginapi", pkg)
		}
	}
	// The walk itself works: edges the documentation names are found.
	if len(deps) < 8 || !deps["engine"]["driver"] || !deps["backends/sqlite"]["driver"] || !deps["cmd/docex"]["config"] {
		t.Fatalf("import graph looks incomplete (%d packages): is the test running at the module root?", len(deps))
	}
}
