package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Installs the CLI refuses before the engine sees the plugin (a module
// path escaping the plugin directory, a symlink out of it, a bad name) are
// audited like any other refused install (issue 7, defect 6).
func TestRefusedInstallsAreAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	admin := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	outside := h.file("secret.wasm", "\x00asm\x01\x00\x00\x00")
	plugin := func(name, module string) string {
		dir := filepath.Join(h.dir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		toml := "name = \"" + name + "\"\nversion = \"1\"\nabi_version = 1\nmodule = \"" + module + "\"\nsha256 = \"" + strings.Repeat("0", 64) + "\"\n"
		if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	link := plugin("link", "link.wasm")
	if err := os.Symlink(outside, filepath.Join(link, "link.wasm")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{plugin("traversal", "../secret.wasm"), link, plugin("Bad-Name", "m.wasm")} {
		h.want(exitInvalid, append([]string{"plugin", "install", dir}, admin...)...)
	}
	log := h.ok(append([]string{"audit", "list", "--json"}, admin...)...).stdout
	if n := strings.Count(log, `"plugin.install"`); n != 3 {
		t.Fatalf("%d plugin.install entries, want 3 refusals:\n%s", n, log)
	}
	for _, src := range []string{"traversal", "link", "Bad-Name"} {
		if !strings.Contains(log, filepath.Join(h.dir, src)) {
			t.Errorf("no audit entry names %s:\n%s", src, log)
		}
	}
}
