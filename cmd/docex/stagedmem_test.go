package main

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestStagedMemoryKey: storage.documents.max_staged_memory reaches the
// engine: an add of 40 files of 8 KiB with a 64 KiB bound writes its
// content in several packs (one per bound's worth), where the default
// bound (16 MiB) writes one.
func TestStagedMemoryKey(t *testing.T) {
	t.Parallel()
	packs := func(bound string) int {
		h := newHarness(t)
		h.ok("init")
		if bound != "" {
			h.editConfig("    tenant_scoped: true\n", "    tenant_scoped: true\n    max_staged_memory: "+bound+"\n")
		}
		h.ok("tenant", "create", "acme")
		u := []string{"--tenant", "acme", "--user", "ann", "--roles", "writer"}
		h.ok(append([]string{"basket", "create", "b"}, u...)...)
		args := []string{"doc", "add", "b"}
		for i := range 40 {
			args = append(args, h.file(strings.Repeat("x", 3)+string(rune('a'+i%26))+string(rune('a'+i/26))+".txt", strings.Repeat(string(rune('A'+i%26))+string(rune('a'+i/26)), 4<<10)))
		}
		h.ok(append(args, u...)...)
		n := 0
		filepath.WalkDir(h.dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".pack") {
				n++
			}
			return nil
		})
		return n
	}
	if def, small := packs(""), packs("65536"); def != 1 || small < 4 {
		t.Fatalf("packs written: %d with the default bound (want 1), %d with a 64 KiB bound (want at least 4)", def, small)
	}
}
