package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStorageTypeChangedToDatabase: content stored while
// storage.documents.type was filesystem (small content is packed: the
// database holds its pack locator) read with type database is missing
// from the database, with a message naming storage.documents.type (doc
// cat: exit 1, as for any document whose content is missing; docex
// verify: problem "missing"), not damaged ("stored content is longer than
// its recorded size": the locator read as the content).
func TestStorageTypeChangedToDatabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "inbox"}, u...)...)
	f := h.file("a.txt", "hello world this is a test of the storage 123\n")
	id := strings.TrimSpace(h.ok(append([]string{"doc", "add", "inbox", f, "-q"}, u...)...).stdout)
	p := filepath.Join(h.dir, "docex.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "type: filesystem", "type: database", 1)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.want(exitInternal, append([]string{"doc", "cat", id, "--json"}, u...)...)
	e := decode[jsonErr](t, r.stderr)
	if !strings.Contains(e.Error.Message, "is missing from the database") || !strings.Contains(e.Error.Message, "storage.documents.type") {
		t.Errorf("doc cat: %s", r.stderr)
	}
	r = h.want(exitInternal, "verify", "--user", "ops", "--json")
	if !strings.Contains(r.stdout, `"problem": "missing"`) {
		t.Errorf("verify: %s", r.stdout)
	}
}
