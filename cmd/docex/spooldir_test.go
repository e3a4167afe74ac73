package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/s3test"
)

// TestSpoolDirKey: storage.documents.spool_dir reaches the database
// store: an add that spills (40 files of 8 KiB with a 64 KiB bound) into
// a spool directory that does not exist fails with storage_unavailable
// naming that directory and the key, and adds nothing; once the
// directory exists, the same add succeeds.
func TestSpoolDirKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	spool := filepath.Join(h.dir, "spool")
	h.editConfig("    type: filesystem\n", "    type: database\n    max_staged_memory: 65536\n    spool_dir: '"+spool+"'\n")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "ann", "--roles", "writer"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	args := []string{"doc", "add", "b"}
	for i := range 40 {
		args = append(args, h.file("f"+string(rune('a'+i%26))+string(rune('a'+i/26))+".txt", strings.Repeat(string(rune('A'+i%26))+string(rune('a'+i/26)), 4<<10)))
	}
	args = append(args, u...)

	e := decode[jsonErr](t, h.want(exitInternal, append(args, "--json")...).stderr)
	if e.Error.Code != "storage_unavailable" || !strings.Contains(e.Error.Message, spool) ||
		!strings.Contains(e.Error.Message, "storage.documents.spool_dir") || !strings.Contains(e.Error.Hint, "storage.documents.spool_dir") {
		t.Fatalf("doc add with the spool directory missing: %+v; want storage_unavailable naming %s and storage.documents.spool_dir", e.Error, spool)
	}
	if n := len(decode[[]doc](t, h.ok(append([]string{"doc", "list", "b", "--json"}, u...)...).stdout)); n != 0 {
		t.Fatalf("%d documents after the failed add, want none", n)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("the spool directory was created: %v", err)
	}

	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	h.ok(args...)
	if n := len(decode[[]doc](t, h.ok(append([]string{"doc", "list", "b", "--json"}, u...)...).stdout)); n != 40 {
		t.Fatalf("%d documents after the add, want 40", n)
	}
	if ents, err := os.ReadDir(spool); err != nil || len(ents) != 0 {
		t.Fatalf("the spool directory holds %d entries (%v) after the add, want none", len(ents), err)
	}
}

// TestS3SpoolDirKey: with type: s3, an add of a file over 1 MiB (staged in
// a spool file) with storage.documents.s3.spool_dir a regular file fails
// with storage_unavailable naming the path and the key (the hint too) and
// adds nothing; with the path a directory, the same add succeeds. Before,
// the failure was an untyped internal error ("s3 spool: mkdir ...").
func TestS3SpoolDirKey(t *testing.T) {
	srv := s3test.Start(t)
	h := newHarness(t)
	h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
	spool := h.file("spool", "a regular file")
	h.file("docex.yaml", s3Config("", srv.Bucket(t), srv.Endpoint)+"      spool_dir: '"+spool+"'\n")
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "ann", "--roles", "writer"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	args := append([]string{"doc", "add", "b", h.file("small.txt", "small"), h.file("big.bin", strings.Repeat("0123456789abcdef", 1<<17))}, u...)

	e := decode[jsonErr](t, h.want(exitInternal, append(args, "--json")...).stderr)
	if e.Error.Code != "storage_unavailable" || !strings.Contains(e.Error.Message, spool) ||
		!strings.Contains(e.Error.Message, "storage.documents.s3.spool_dir") || !strings.Contains(e.Error.Hint, "storage.documents.s3.spool_dir") {
		t.Fatalf("doc add with the spool directory a regular file: %+v; want storage_unavailable naming %s and storage.documents.s3.spool_dir", e.Error, spool)
	}
	if n := len(decode[[]doc](t, h.ok(append([]string{"doc", "list", "b", "--json"}, u...)...).stdout)); n != 0 {
		t.Fatalf("%d documents after the failed add, want none", n)
	}

	if err := os.Remove(spool); err != nil {
		t.Fatal(err)
	}
	h.ok(args...)
	if n := len(decode[[]doc](t, h.ok(append([]string{"doc", "list", "b", "--json"}, u...)...).stdout)); n != 2 {
		t.Fatalf("%d documents after the add, want 2", n)
	}
}
