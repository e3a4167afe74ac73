package testplugins_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/docex-dev/docex/testplugins"
)

// TestGoPluginsReproducible rebuilds the test plugins written in Go the way
// build.sh does, with the toolchain go.mod names, and fails when a
// committed module (or the sha256 its manifest pins) differs: a stale
// module, or flags that make the build depend on the machine.
func TestGoPluginsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm modules")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command: the test plugins cannot be rebuilt")
	}
	sha := regexp.MustCompile(`(?m)^sha256 = "([0-9a-f]{64})"`)
	for _, c := range []struct{ dir, pkg string }{
		{"wordcount", "../plugins/examples/wordcount"},
		{"lookup", "./lookup"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), c.dir+".wasm")
			cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false",
				"-ldflags=-s -w -buildid=", "-o", out, c.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=wasip1", "GOARCH=wasm")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, b)
			}
			built, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			dir, err := testplugins.Dir(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := fs.ReadFile(dir, c.dir+".wasm")
			if err != nil {
				t.Fatal(err)
			}
			manifest, err := fs.ReadFile(dir, "plugin.toml")
			if err != nil {
				t.Fatal(err)
			}
			sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
			if got, want := sum(built), sum(committed); got != want {
				t.Fatalf("rebuilt %s.wasm %s, committed %s: run testplugins/build.sh and commit testplugins", c.dir, got, want)
			}
			m := sha.FindSubmatch(manifest)
			if m == nil || string(m[1]) != sum(committed) {
				t.Fatalf("testplugins/%s/plugin.toml pins %q, the module is %s", c.dir, m, sum(committed))
			}
		})
	}
	// The example's own manifest pins the same module.
	example, err := os.ReadFile("../plugins/examples/wordcount/plugin.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := testplugins.Dir("wordcount")
	manifest, _ := fs.ReadFile(dir, "plugin.toml")
	if a, b := sha.FindSubmatch(example), sha.FindSubmatch(manifest); a == nil || b == nil || string(a[1]) != string(b[1]) {
		t.Fatalf("plugins/examples/wordcount/plugin.toml and testplugins/wordcount/plugin.toml pin different modules")
	}
}
