package pdk_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/markdown"
)

// TestWritingPluginsWalkthrough follows docs/writing-plugins.md as a
// plugin author would: its main.go, build command, manifest and harness,
// taken from the document verbatim, in a module of their own that points
// at this checkout. The harness's output must be what the document shows
// (the report line aside: its durations vary). Then "Checking parameters":
// its parameter, validate.go and run, rebuilt; the harness shows the
// plugin's refusal, and so does docex pipeline create (docex built from
// this checkout, the plugin installed in single-file mode).
func TestWritingPluginsWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go plugin and a harness (-short)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "writing-plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	section := func(heading string) string {
		i := strings.Index(text, heading)
		if i < 0 {
			t.Fatalf("docs/writing-plugins.md: no %q", heading)
		}
		rest := text[i+len(heading):]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	blocks := markdown.FencedBlocks
	one := func(heading, lang string) string {
		b := blocks(section(heading), lang)
		if len(b) == 0 {
			t.Fatalf("docs/writing-plugins.md %s: no ```%s block", heading, lang)
		}
		return b[0]
	}

	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sh := func(script string) string {
		t.Helper()
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off",
			// docex as built below, with the user context step 5 takes
			// for granted (README.md, Quick start).
			"PATH="+filepath.Join(dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
			"DOCEX_USER=me", "DOCEX_ROLES=admin")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}

	write("go.mod", "module example.com/linecount\n\ngo 1.26\n\nrequire github.com/docex-dev/docex v0.0.0\n\nreplace github.com/docex-dev/docex => "+root+"\n")
	write("main.go", one("## 1. Write it", "go"))
	sh(one("## 2. Build it", "sh"))
	module, err := os.ReadFile(filepath.Join(dir, "linecount.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(module)
	manifest := one("## 3. Write the manifest", "toml")
	const placeholder = `"<output of sha256sum>"`
	if !strings.Contains(manifest, placeholder) {
		t.Fatalf("the manifest has no %s to fill in", placeholder)
	}
	write("plugin.toml", strings.Replace(manifest, placeholder, `"`+hex.EncodeToString(sum[:])+`"`, 1))

	step4 := section("## 4. Try it locally")
	write("harness/main.go", one("## 4. Try it locally", "go"))
	sh("go mod tidy")
	sh("go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./...") // the checklist

	// The transcript: "$ command" lines, each followed by what it prints.
	exactUnits := goModToolchain(t, root)
	transcript := blocks(step4, "")
	if len(transcript) == 0 {
		t.Fatal("section 4 shows no transcript")
	}
	replay(t, sh, exactUnits, transcript[0])
	if !strings.Contains(transcript[0], "status=ok metadata=map[lines:3]") {
		t.Error("the transcript no longer shows a successful run")
	}

	// Checking parameters: the manifest's new parameter, validate.go and
	// the new run in main.go, rebuilt as in step 2; then the harness and
	// docex pipeline create, on the plugin installed as in step 5.
	const checking = "## Checking parameters"
	write("validate.go", one(checking, "go"))
	newRun := blocks(section(checking), "go")
	if len(newRun) != 2 || !strings.HasPrefix(newRun[1], "func run() error {\n") {
		t.Fatalf("%s: want validate.go and then func run in ```go blocks, got %d blocks", checking, len(newRun))
	}
	mainGo := one("## 1. Write it", "go")
	i := strings.Index(mainGo, "func run() error {\n")
	j := strings.Index(mainGo[i:], "\n}\n")
	if i < 0 || j < 0 {
		t.Fatal("main.go of step 1 has no func run to replace")
	}
	write("main.go", mainGo[:i]+newRun[1]+mainGo[i+j+3:])
	sh(one("## 2. Build it", "sh"))
	if module, err = os.ReadFile(filepath.Join(dir, "linecount.wasm")); err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256(module)
	write("plugin.toml", strings.Replace(manifest, placeholder, `"`+hex.EncodeToString(sum[:])+`"`, 1)+"\n"+one(checking, "toml"))
	sh("go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./...")
	shown := blocks(section(checking), "")
	if len(shown) != 2 {
		t.Fatalf("%s: want two transcripts (the harness, docex), got %d", checking, len(shown))
	}
	replay(t, sh, exactUnits, shown[0])
	for _, w := range []string{"status=ok metadata=map[lines:2]", `refused them: pattern: error parsing regexp`} {
		if !strings.Contains(shown[0], w) {
			t.Errorf("%s: the harness transcript no longer shows %q", checking, w)
		}
	}

	// docex itself, built from this checkout, in single-file mode.
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "docex"), "./cmd/docex")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/docex: %v\n%s", err, out)
	}
	sh("docex init --single-file >/dev/null && docex plugin install . >/dev/null")
	pipelines := blocks(section(checking), "toml")
	if len(pipelines) != 2 {
		t.Fatalf("%s: want the parameter and lines.toml in ```toml blocks, got %d", checking, len(pipelines))
	}
	write("lines.toml", pipelines[1])
	replay(t, sh, exactUnits, shown[1])
	if !strings.Contains(shown[1], `refused its parameters: pattern:`) {
		t.Errorf("%s: the docex transcript no longer shows the refusal", checking)
	}
}

// replay runs each "$ command" line of a transcript with sh and checks
// that its output has each line shown after it. A report line's duration
// varies and is not compared; with exact, the rest of it (instruction
// units, memory, host calls, up to the "...") is, since a guest's units
// are the same on every run of the same module and input (docs/sandbox.md,
// "Determinism"); without, only its shape.
func replay(t *testing.T, sh func(string) string, exact bool, transcript string) {
	t.Helper()
	var cmd string
	var want []string
	check := func() {
		if cmd == "" {
			return
		}
		got := sh(cmd + " 2>&1 || true") // a refusal is on stderr
		for _, w := range want {
			if strings.HasPrefix(w, "report=") {
				if !strings.Contains(got, "report={Duration:") {
					t.Errorf("%s: no report line in\n%s", cmd, got)
				} else if shown := strings.TrimSuffix(anyDuration.ReplaceAllString(w, "Duration:D "), "...}"); exact && !strings.Contains(anyDuration.ReplaceAllString(got, "Duration:D "), shown) {
					t.Errorf("%s: the report is not the one shown (durations aside):\n got %s\nwant %s", cmd, got, w)
				}
				continue
			}
			if !strings.Contains(got, w) {
				t.Errorf("%s:\n got %q\nwant a line %q", cmd, got, w)
			}
		}
		cmd, want = "", nil
	}
	for _, line := range strings.Split(strings.TrimSpace(transcript), "\n") {
		if c, ok := strings.CutPrefix(line, "$ "); ok {
			check()
			cmd = c
			continue
		}
		want = append(want, line)
	}
	check()
}

var anyDuration = regexp.MustCompile(`Duration:[^ ]+ `)

// goModToolchain reports whether this test runs on the Go release go.mod
// names (its "go" line): the units in the document were measured with it,
// and another compiler makes other code.
func goModToolchain(t *testing.T, root string) bool {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			return runtime.Version() == "go"+strings.TrimSpace(v)
		}
	}
	return false
}
