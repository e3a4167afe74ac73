package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/google/uuid"
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

// TestS3StagedMemoryKey: with type: s3, storage.documents.max_staged_memory
// is the S3 store's memory budget (store-wide; default 16 MiB): files of
// 600 KiB staged with a 1 MiB bound hold one in memory and spool the rest
// into s3.spool_dir, where the default bound holds 20 of them in memory.
// Before, the key did not reach the store, whose budget stayed 64 MiB.
func TestS3StagedMemoryKey(t *testing.T) {
	dir := t.TempDir()
	files := make([]string, 20)
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprint("f", i))
		if err := os.WriteFile(files[i], bytes.Repeat([]byte{byte(i)}, 600<<10), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spooled := func(bound string) int {
		spool := t.TempDir()
		yaml := s3Config("", "docex-b", "http://127.0.0.1:1") + "      spool_dir: '" + spool + "'\n"
		if bound != "" {
			yaml = strings.Replace(yaml, "    type: s3\n", "    type: s3\n    max_staged_memory: "+bound+"\n", 1)
		}
		f, err := config.Parse([]byte(yaml), dir)
		if err != nil {
			t.Fatal(err)
		}
		store, err := openS3(context.Background(), f, func(k string) string { return "x" })
		if err != nil {
			t.Fatal(err)
		}
		tc, err := store.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range files {
			r, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tc.Stage(context.Background(), r, 1<<30)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Discard()
		}
		ents, err := os.ReadDir(spool)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	if def, small := spooled(""), spooled("1048576"); def != 0 || small != 19 {
		t.Fatalf("of 20 files of 600 KiB staged, %d spooled with the default bound (want 0), %d with a 1 MiB bound (want 19)", def, small)
	}
}
