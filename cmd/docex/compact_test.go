package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type compactJSON struct {
	Tenants []struct {
		Tenant      string `json:"tenant"`
		BytesBefore int64  `json:"bytes_before"`
		BytesAfter  int64  `json:"bytes_after"`
	} `json:"tenants"`
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
}

// TestCompact: docex compact shrinks a tenant's file after deletions and
// prints docs/json.md's shape; every tenant without TENANT; bad TENANTs
// get their exit codes; single-file mode compacts the one file.
func TestCompact(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.ok("tenant", "create", "beta")
	u := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	pad := strings.Repeat("p", 32<<10)
	var files []string
	for i := range 60 {
		files = append(files, h.file(fmt.Sprintf("f%d.txt", i), fmt.Sprint("text ", i)))
	}
	args := append(append([]string{"doc", "add", "b"}, files...), "--meta", "pad="+pad, "-q")
	ids := strings.Fields(h.ok(append(args, u...)...).stdout)
	if len(ids) != 60 {
		t.Fatalf("added %d documents", len(ids))
	}
	for _, id := range ids[5:] {
		h.ok(append([]string{"doc", "delete", id}, u...)...)
	}
	var one compactJSON
	out := h.ok("compact", "acme", "--json").stdout
	if err := json.Unmarshal([]byte(out), &one); err != nil {
		t.Fatalf("compact --json: %v: %s", err, out)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal([]byte(out), &keys)
	if len(keys) != 3 || len(one.Tenants) != 1 || one.Tenants[0].Tenant != "acme" || one.BytesBefore-one.BytesAfter < 1<<20 {
		t.Fatalf("compact acme --json: %s", out)
	}
	files2, _ := filepath.Glob(filepath.Join(h.dir, "docex-data", "tenants", "*", "*.db"))
	var sizes []int64
	for _, f := range files2 {
		if fi, err := os.Stat(f); err == nil {
			sizes = append(sizes, fi.Size())
		}
	}
	if !slices.Contains(sizes, one.BytesAfter) {
		t.Errorf("no tenant file is %d bytes after compact: %v", one.BytesAfter, sizes)
	}
	for _, id := range ids[:5] {
		h.ok(append([]string{"doc", "get", id}, u...)...)
	}
	text := strings.Split(h.ok("compact").stdout, "\n")
	if len(text) != 5 || strings.Join(strings.Fields(text[0]), " ") != "TENANT BEFORE AFTER" || !strings.HasPrefix(text[1], "acme ") || !strings.HasPrefix(text[2], "beta ") || !strings.HasPrefix(text[3], "compacted 2 tenant database(s): ") {
		t.Errorf("compact: %q", text)
	}
	h.want(exitNotFound, "compact", "nosuch")
	h.want(exitInvalid, "compact", "Bad!")
	h.want(exitInvalid, "compact", "a", "b")
	h.want(exitInvalid, "compact", "--bogus")

	s := newHarness(t)
	s.ok("init", "--single-file")
	s.want(exitInvalid, "compact", "acme")
	out = s.ok("compact").stdout
	if !strings.HasPrefix(out, "compacted the database: ") {
		t.Errorf("single-file compact: %q", out)
	}
	var local compactJSON
	if err := json.Unmarshal([]byte(s.ok("compact", "--json").stdout), &local); err != nil || len(local.Tenants) != 1 || local.Tenants[0].Tenant != "" {
		t.Errorf("single-file compact --json: %+v %v", local, err)
	}
}
