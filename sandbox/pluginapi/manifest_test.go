package pluginapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const validManifest = `
name = "word-count_2"
version = "1.2.3"
description = "Counts words."
abi_version = 1
module = "wc.wasm"
sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
capabilities = ["log", "content.read", "metadata.write"]
accepted_content_types = ["text/*", "application/json"]

[limits]
memory_pages = 100
timeout_ms = 1500
max_output_bytes = 1000
max_host_calls = 50
max_log_bytes = 10

[parameters.lang]
type = "string"
required = true
description = "Language."

[parameters.min]
type = "int"
`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Entry != DefaultEntry {
		t.Fatalf("default entry = %q", m.Entry)
	}
	if m.Name != "word-count_2" || m.SHA256 != strings.ToLower(m.SHA256) || !m.Has(CapLog) || m.Has(CapDocumentsLookup) ||
		!m.Parameters["lang"].Required || m.Parameters["min"].Type != "int" {
		t.Fatalf("manifest = %+v", m)
	}
	for ct, want := range map[string]bool{"text/plain": true, "TEXT/Markdown; charset=utf-8": true,
		"application/json": true, "application/pdf": false, "": false} {
		if m.Accepts(ct) != want {
			t.Errorf("Accepts(%q) = %v", ct, !want)
		}
	}
	l, err := m.Resolve(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if l.MemoryPages != 100 || l.Timeout != 1500*time.Millisecond || l.MaxOutputBytes != 1000 || l.MaxHostCalls != 50 || l.MaxLogBytes != 10 {
		t.Fatalf("limits = %+v", l)
	}
	if _, err := m.Resolve(Limits{MemoryPages: 99}); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "memory_pages") {
		t.Fatalf("over ceiling: %v", err)
	}
	m.Limits = ManifestLimits{}
	l, _ = m.Resolve(Limits{Timeout: time.Second})
	if l.Timeout != time.Second || l.MemoryPages != DefaultLimits().MemoryPages {
		t.Fatalf("defaults under a low ceiling = %+v", l)
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, replace, with, want string
	}{
		{"unknown top key", `abi_version = 1`, "abi_version = 1\nnetwork = true", `unknown key "network"`},
		{"unknown limits key", `max_log_bytes = 10`, "max_log_bytes = 10\ncpu = 3", `"limits.cpu"`},
		{"unknown param key", `type = "int"`, "type = \"int\"\ndefault = 3", `"parameters.min.default"`},
		{"uppercase name", `"word-count_2"`, `"Word"`, "name"},
		{"name starts with digit", `"word-count_2"`, `"2word"`, "name"},
		{"long name", `"word-count_2"`, `"` + strings.Repeat("a", 65) + `"`, "name"},
		{"abi", `abi_version = 1`, `abi_version = 2`, "abi_version 2"},
		{"traversal", `"wc.wasm"`, `"../wc.wasm"`, "module"},
		{"absolute", `"wc.wasm"`, `"/etc/passwd"`, "module"},
		{"backslash", `"wc.wasm"`, `"..\\wc.wasm"`, "module"},
		{"short hash", `"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"`, `"abc"`, "sha256"},
		{"non-hex hash", `"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"`, `"` + strings.Repeat("zz", 32) + `"`, "sha256"},
		{"unknown capability", `"metadata.write"`, `"network"`, `unknown capability "network"`},
		{"duplicate capability", `"metadata.write"`, `"log"`, "duplicate"},
		{"bad glob", `"text/*"`, `"text/["`, "accepted_content_types"},
		{"negative limit", `max_host_calls = 50`, `max_host_calls = -1`, "negative"},
		{"wrong type", `memory_pages = 100`, `memory_pages = "lots"`, "memory_pages"},
		{"bad param type", `type = "int"`, `type = "blob"`, "unknown type"},
		{"no version", `version = "1.2.3"`, `version = ""`, "version"},
		{"syntax", `[limits]`, `[limits`, ""},
		{"entry not docex_run*", `module = "wc.wasm"`, "module = \"wc.wasm\"\nentry = \"_initialize\"", "entry"},
		{"entry bad char", `module = "wc.wasm"`, "module = \"wc.wasm\"\nentry = \"docex_run_X\"", "entry"},
		{"entry empty suffix", `module = "wc.wasm"`, "module = \"wc.wasm\"\nentry = \"docex_run_\"", "entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validManifest, tt.replace, tt.with, 1)
			if src == validManifest {
				t.Fatal("replacement did not apply")
			}
			_, err := ParseManifest([]byte(src))
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidManifest mentioning %q", err, tt.want)
			}
		})
	}
}

func TestReadPluginDir(t *testing.T) {
	dir := t.TempDir()
	module := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(module)
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	manifest := func(module string) string {
		return "name = \"p\"\nversion = \"1\"\nabi_version = 1\nmodule = \"" + module + "\"\nsha256 = \"" + hex.EncodeToString(sum[:]) + "\"\n"
	}
	write("m.wasm", string(module))
	write(ManifestFile, manifest("m.wasm"))
	raw, mod, err := ReadPluginDir(dir)
	if err != nil || string(raw) != manifest("m.wasm") || string(mod) != string(module) {
		t.Fatalf("ReadPluginDir = %q, %q, %v", raw, mod, err)
	}
	// A symlink out of the plugin directory is refused.
	outside := filepath.Join(t.TempDir(), "secret.wasm")
	if err := os.WriteFile(outside, module, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.wasm")); err != nil {
		t.Fatal(err)
	}
	write(ManifestFile, manifest("link.wasm"))
	if _, _, err := ReadPluginDir(dir); err == nil {
		t.Fatal("symlink escape was followed")
	}
	write(ManifestFile, manifest("../m.wasm"))
	if _, _, err := ReadPluginDir(dir); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("'..' in module: %v", err)
	}
	if _, _, err := ReadPluginDir(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte("name = \"x\"\n[limits]\nmemory_pages = 1e99"))
	f.Add([]byte("[parameters]\nx = 1"))
	f.Add([]byte("capabilities = [1, \"log\"]\n"))
	f.Add([]byte("module = \"a/../../b\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error does not wrap ErrInvalidManifest: %v", err)
			}
			return
		}
		// Anything accepted must satisfy the invariants.
		if !validName(m.Name) || m.ABIVersion != ABIVersion || len(m.SHA256) != 64 ||
			!fs.ValidPath(m.Module) || strings.Contains(m.Module, "\\") {
			t.Fatalf("accepted invalid manifest %+v", m)
		}
		for _, c := range m.Capabilities {
			if !slices.Contains(Capabilities(), Capability(c)) {
				t.Fatalf("accepted unknown capability %q", c)
			}
		}
		m.Resolve(Limits{})
	})
}
