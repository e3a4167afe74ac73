package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallNamesPluginOverCap: a module refused by a cap of the
// sandbox's compile-time checks (block nesting depth; locals, checked when
// the binary is first walked) fails plugin install with plugin_invalid
// (exit 2), and the message names the plugin, its directory and module
// file, the cap, the value, the limit and the function. Before, the locals
// refusal named no function ("section 10: function declares more than
// 4096 locals").
func TestInstallNamesPluginOverCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	for _, c := range []struct {
		name string
		mod  []byte
		want string
	}{
		{"deepnest", nestedBlocks(65537), "function 1: block nesting depth is 65537, the limit is 65536"},
		{"manylocals", manyLocals(4097), "function 1: locals in one function (parameters not counted) is 4097, the limit is 4096"},
	} {
		dir := filepath.Join(t.TempDir(), c.name+"dir")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(c.mod)
		if err := os.WriteFile(filepath.Join(dir, "m.wasm"), c.mod, 0o644); err != nil {
			t.Fatal(err)
		}
		toml := "name = \"" + c.name + "\"\nversion = \"1.0.0\"\nabi_version = 1\nmodule = \"m.wasm\"\nsha256 = \"" + hex.EncodeToString(sum[:]) + "\"\n"
		if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		r := h.want(exitInvalid, "plugin", "install", dir, "--tenant", "acme", "--user", "alice", "--roles", "admin")
		t.Logf("stderr: %s", r.stderr)
		for _, want := range []string{"invalid plugin: " + dir + ": ", `plugin "` + c.name + `", module m.wasm: ` + c.want} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr %q lacks %q", r.stderr, want)
			}
		}
	}
}

// nestedBlocks is a module that imports docex.log and whose docex_run
// (function 1: imports come first in the function index space) nests
// depth empty blocks.
func nestedBlocks(depth int) []byte {
	body := append([]byte{0}, bytes.Repeat([]byte{0x02, 0x40}, depth)...)
	return logAndRun(append(append(body, bytes.Repeat([]byte{0x0b}, depth)...), 0x41, 0, 0x0b))
}

// manyLocals is a module that imports docex.log and whose docex_run
// (function 1) declares n i32 locals.
func manyLocals(n int) []byte {
	return logAndRun(append(binary.AppendUvarint([]byte{1}, uint64(n)), 0x7f, 0x41, 0, 0x0b))
}

// logAndRun is a module that imports docex.log and exports memory and
// docex_run, of the code entry body (locals and instructions).
func logAndRun(body []byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x0c\x02\x60\x00\x01\x7f\x60\x03\x7f\x7f\x7f\x01\x7f" + // types () -> i32, (i32 i32 i32) -> i32
		"\x02\x0d\x01\x05docex\x03log\x00\x01" + // import docex.log: function 0
		"\x03\x02\x01\x00\x05\x03\x01\x00\x01" +
		"\x07\x16\x02\x06memory\x02\x00\x09docex_run\x00\x01")
	b = append(b, 0x0a)
	b = binary.AppendUvarint(b, uint64(len(body)+1+len(binary.AppendUvarint(nil, uint64(len(body))))))
	return append(binary.AppendUvarint(append(b, 1), uint64(len(body))), body...)
}
