//go:build unix

package pluginapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadPluginDirNotRegular: a plugin.toml or module that is a FIFO was
// opened, which waits for a writer (plugin install never returned); one
// that is a directory failed with the file system's error. Both are
// refused as not a regular file, without opening them.
func TestReadPluginDirNotRegular(t *testing.T) {
	module := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(module)
	manifest := "name = \"p\"\nversion = \"1\"\nabi_version = 1\nmodule = \"m.wasm\"\nsha256 = \"" + hex.EncodeToString(sum[:]) + "\"\n"
	for _, c := range []struct {
		name   string
		make   func(dir string) error
		target error
		want   string
	}{
		{"manifest FIFO", func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, ManifestFile), 0o644) }, ErrInvalidManifest, "plugin.toml is not a regular file"},
		{"module FIFO", func(dir string) error {
			if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o600); err != nil {
				return err
			}
			return syscall.Mkfifo(filepath.Join(dir, "m.wasm"), 0o644)
		}, ErrInvalidModule, "m.wasm is not a regular file"},
		{"module directory", func(dir string) error {
			if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o600); err != nil {
				return err
			}
			return os.Mkdir(filepath.Join(dir, "m.wasm"), 0o755)
		}, ErrInvalidModule, "m.wasm is not a regular file"},
	} {
		dir := t.TempDir()
		if err := c.make(dir); err != nil {
			t.Skipf("%s: %v", c.name, err)
		}
		done := make(chan error, 1)
		go func() { _, _, err := ReadPluginDir(dir); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %v with %q", c.name, err, c.target, c.want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s: ReadPluginDir opened a FIFO and waited for a writer", c.name)
		}
	}
}
