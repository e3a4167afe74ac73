package builtin_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/docex-dev/docex/plugins/builtin"
)

// TestModuleReproducible rebuilds the guest exactly as build.sh does and
// requires the committed steps.wasm: a change to the guest code without
// `make builtin` fails here (and in CI).
func TestModuleReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out := filepath.Join(t.TempDir(), "steps.wasm")
	cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, "./guest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got, want := hex.EncodeToString(sum[:]), builtin.ModuleSHA256(); got != want {
		t.Fatalf("rebuilt module %s, committed %s: run `make builtin` and commit plugins/builtin", got, want)
	}
}
