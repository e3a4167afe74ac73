package pdk_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/markdown"
)

// TestWritingPluginsWalkthrough follows docs/writing-plugins.md as a
// plugin author would: its main.go, build command, manifest and harness,
// taken from the document verbatim, in a module of their own that points
// at this checkout. The harness's output must be what the document shows
// (the report line aside: its durations vary).
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
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
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
	transcript := blocks(step4, "")
	if len(transcript) == 0 {
		t.Fatal("section 4 shows no transcript")
	}
	var cmd string
	var want []string
	check := func() {
		if cmd == "" {
			return
		}
		cmd = strings.Replace(cmd, "go run ./harness", "go run ./harness 2>&1", 1)
		got := sh(cmd + " || true")
		for _, w := range want {
			if strings.HasPrefix(w, "report=") {
				// Durations and instruction counts vary; the shape does not.
				if !strings.Contains(got, "report={Duration:") {
					t.Errorf("%s: no report line in\n%s", cmd, got)
				}
				continue
			}
			if !strings.Contains(got, w) {
				t.Errorf("%s:\n got %q\nwant a line %q", cmd, got, w)
			}
		}
		cmd, want = "", nil
	}
	for _, line := range strings.Split(strings.TrimSpace(transcript[0]), "\n") {
		if c, ok := strings.CutPrefix(line, "$ "); ok {
			check()
			cmd = c
			continue
		}
		want = append(want, line)
	}
	check()
	if !strings.Contains(transcript[0], "status=ok metadata=map[lines:3]") {
		t.Error("the transcript no longer shows a successful run")
	}
}
