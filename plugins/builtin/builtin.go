package builtin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

//go:generate ./build.sh
//go:embed steps.wasm manifests/*.toml
var files embed.FS

// ModuleFile is the shared module's file name.
const ModuleFile = "steps.wasm"

// Step is one built-in step as shipped: its manifest as written and the
// shared module.
type Step struct {
	Name     string
	Manifest []byte
	Module   []byte
}

// Names lists the built-in steps in a stable order.
func Names() []string {
	return []string{"extract-text", "chunk", "redact-pii", "csv-to-json", "json-extract", "stats", "detect-type"}
}

// Steps returns every built-in step, its manifest parsed and checked
// against the module's hash. It returns an error (wrapping
// pluginapi.ErrInvalidManifest or pluginapi.ErrHashMismatch) only if the
// embedded files are inconsistent, which TestSteps prevents.
func Steps() ([]Step, error) {
	module, err := files.ReadFile(ModuleFile)
	if err != nil {
		return nil, fmt.Errorf("builtin: %w", err)
	}
	var out []Step
	for _, n := range Names() {
		raw, err := files.ReadFile(path.Join("manifests", n+".toml"))
		if err != nil {
			return nil, fmt.Errorf("builtin: %w", err)
		}
		m, err := pluginapi.ParseManifest(raw)
		if err != nil {
			return nil, fmt.Errorf("builtin: %s: %w", n, err)
		}
		if m.Name != n || m.Module != ModuleFile {
			return nil, fmt.Errorf("builtin: %s: %w: manifest names %q with module %q", n, pluginapi.ErrInvalidManifest, m.Name, m.Module)
		}
		if err := m.VerifyModule(module); err != nil {
			return nil, fmt.Errorf("builtin: %w (rebuild with plugins/builtin/build.sh)", err)
		}
		out = append(out, Step{Name: n, Manifest: raw, Module: module})
	}
	return out, nil
}

// ModuleSHA256 returns the hex sha256 of the shared module.
func ModuleSHA256() string {
	module, _ := files.ReadFile(ModuleFile)
	sum := sha256.Sum256(module)
	return hex.EncodeToString(sum[:])
}

// TestCacheDir is the compilation cache tests of the built-in steps share
// across runs and packages (in os.TempDir, mode 0700): without it every
// test binary compiles the module again, minutes under the race detector.
// Not for production: the cache holds executable code.
func TestCacheDir() string {
	return filepath.Join(os.TempDir(), "docex-test-wasm-cache")
}

// IsBuiltin reports whether name is a built-in step's name.
func IsBuiltin(name string) bool { return slices.Contains(Names(), strings.TrimSpace(name)) }
