package docex_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
			case pkg == "sandbox/pluginapi" && imp != "" && imp != "internal/spell":
				t.Errorf("sandbox/pluginapi imports %s: the plugin contract depends on nothing of the module (but the spelling suggestions of its errors)", imp)
			case pkg == "tenancy" && imp != "":
				t.Errorf("tenancy imports %s: it depends on docex only", imp)
			case under(pkg, "sandbox") && imp != "" && !under(imp, "sandbox/internal") && imp != "sandbox/pluginapi" && imp != "internal/spell":
				t.Errorf("%s imports %s: the sandbox knows no tenant, engine or backend", pkg, imp)
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

// buildGraph returns the import graph, as module-relative paths ("docex"
// for the root), of the packages the non-test build of root reaches,
// with the build constraints of this platform (go/build, as go build
// itself sees them).
func buildGraph(t *testing.T, root string) map[string][]string {
	t.Helper()
	rel := func(p string) (string, bool) {
		if p == module {
			return "docex", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	graph := map[string][]string{}
	var visit func(pkg string)
	visit = func(pkg string) {
		if _, done := graph[pkg]; done {
			return
		}
		dir := pkg
		if pkg == "docex" {
			dir = "."
		}
		bp, err := build.Default.ImportDir(filepath.FromSlash(dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		graph[pkg] = []string{}
		for _, imp := range bp.Imports {
			if r, ok := rel(imp); ok {
				graph[pkg] = append(graph[pkg], r)
			}
		}
		for _, imp := range graph[pkg] {
			visit(imp)
		}
	}
	visit(root)
	return graph
}

// diagramEdges parses the first code block of docs/architecture.md: lines
// "A, B ──► C, D" (A and B import C and D); a line starting with a space
// continues the previous line's list; "(...)" is a comment.
func diagramEdges(t *testing.T) map[[2]string]bool {
	t.Helper()
	data, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/architecture.md has no code block")
	}
	comment := regexp.MustCompile(`\([^)]*\)`)
	pkgName := regexp.MustCompile(`^[a-z][a-z0-9/]*$`)
	list := func(s string) []string {
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				if !pkgName.MatchString(f) {
					t.Errorf("diagram: %q is not a package path", f)
				}
				out = append(out, f)
			}
		}
		return out
	}
	edges := map[[2]string]bool{}
	var from []string
	for _, line := range strings.Split(block, "\n") {
		line = comment.ReplaceAllString(line, "")
		if strings.TrimSpace(line) == "" {
			continue
		}
		var to string
		if l, r, ok := strings.Cut(line, "──►"); ok {
			from, to = list(l), r
		} else if strings.HasPrefix(line, " ") && from != nil {
			to = line
		} else {
			t.Fatalf("diagram: cannot read line %q", line)
		}
		for _, a := range from {
			for _, b := range list(to) {
				edges[[2]string{a, b}] = true
			}
		}
	}
	return edges
}

// TestArchitectureDiagram checks that the picture in docs/architecture.md
// is the import graph of the docex binary's packages: every arrow drawn
// is an import, and every import between module packages (but those of
// the root package docex, which the picture may leave out) is drawn.
func TestArchitectureDiagram(t *testing.T) {
	graph := buildGraph(t, "cmd/docex")
	drawn := diagramEdges(t)
	for e := range drawn {
		imps, ok := graph[e[0]]
		if !ok {
			t.Errorf("diagram: %s is not a package of the docex binary", e[0])
			continue
		}
		if !slices.Contains(imps, e[1]) {
			t.Errorf("diagram: %s ──► %s, but %s does not import %s", e[0], e[1], e[0], e[1])
		}
	}
	for pkg, imps := range graph {
		for _, imp := range imps {
			if imp != "docex" && !drawn[[2]string{pkg, imp}] {
				t.Errorf("diagram: %s imports %s, which docs/architecture.md does not draw", pkg, imp)
			}
		}
	}
	if len(graph) < 10 || len(drawn) < 10 {
		t.Fatalf("graph of %d packages, %d arrows drawn: is the test running at the module root?", len(graph), len(drawn))
	}
}
