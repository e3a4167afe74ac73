package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDedupOutputWritesNoPack: a step output whose content the tenant
// holds already (it deduplicates onto an existing document, or is the
// step's input itself) writes no pack file, on both backends with content
// on the filesystem. The pipeline step made its outputs' content durable
// before the transaction found the duplicate, so every such run left a
// small pack file that only docex gc removed.
func TestDedupOutputWritesNoPack(t *testing.T) {
	t.Parallel()
	onPackBackends(t, "dp", dedupOutputWritesNoPack)
}

// TestDedupUpdateWritesNoPack: doc update to content the tenant holds
// already (another document's, or the document's own) writes no pack
// file either, on both backends with content on the filesystem. The
// update made its content durable before its transaction found the
// content referenced, so each left a pack file only docex gc removed.
func TestDedupUpdateWritesNoPack(t *testing.T) {
	t.Parallel()
	onPackBackends(t, "du", dedupUpdateWritesNoPack)
}

// onPackBackends runs f on SQLite and on PostgreSQL, each with its
// content on the filesystem (in pack files) and tenant acme to create.
func onPackBackends(t *testing.T, tag string, f func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); f(t, newHarness(t)) })
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		h, _ := pgHarness(t, tag)
		// Content on the filesystem (pgHarness keeps it in the database,
		// which has no pack files).
		h.editConfig("storage:\n  documents:\n    type: database\n", "")
		f(t, h)
	})
}

// packLister returns a function that lists tenant acme's pack files (h is
// initialised).
func packLister(t *testing.T, h *harness) func() []string {
	t.Helper()
	sys := decode[struct {
		ContentDir string `json:"content_dir"`
	}](t, h.ok("init", "--json").stdout)
	if sys.ContentDir == "" {
		t.Fatal("init --json: no content_dir")
	}
	return func() []string {
		t.Helper()
		ps, err := filepath.Glob(filepath.Join(sys.ContentDir, "tenants", "acme", "*", "packs", "*.pack"))
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
}

// gcNothing fails t unless gc --dry-run reports nothing to remove.
func gcNothing(t *testing.T, h *harness, after string) {
	t.Helper()
	type report struct {
		ContentFiles int `json:"content_files"`
		Packs        int `json:"packs"`
	}
	if got := decode[report](t, h.ok("gc", "--dry-run", "--grace", "0s", "--json").stdout); got.Packs != 0 || got.ContentFiles != 0 {
		t.Fatalf("gc --dry-run after %s: %+v, want nothing to remove", after, got)
	}
}

func dedupOutputWritesNoPack(t *testing.T, h *harness) {
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	packs := packLister(t, h)
	h.ok(with("pipeline", "create", h.file("up.toml", "name = \"up\"\n[[steps]]\nname = \"up\"\nplugin = \"upper\"\n"))...)
	h.ok(with("basket", "create", "plain")...)
	lower := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "hello dedup"), "-q")...).stdout)
	upper := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("b.txt", "HELLO DEDUP"), "-q")...).stdout)
	before := packs()
	if len(before) == 0 {
		t.Fatal("no pack file after two small adds: is the content packed?")
	}
	// a.txt's output is b.txt's content; b.txt's output is b.txt itself.
	for _, doc := range []string{lower, upper} {
		sum := decode[runSummaryJSON](t, h.ok(with("pipeline", "run", "up", "--doc", doc, "--wait", "--worker=yes", "--json")...).stdout)
		if sum.Succeeded != 1 || sum.StepsRun != 1 {
			t.Fatalf("pipeline run on %s: %+v", doc, sum)
		}
	}
	// A duplicate add writes none either.
	h.ok(with("doc", "add", "plain", h.file("again.txt", "HELLO DEDUP"))...)
	if after := packs(); len(after) != len(before) {
		t.Fatalf("pack files: %d before the runs, %d after (%v): a deduplicated output wrote one", len(before), len(after), after)
	}
	// The lineage is there all the same: b.txt derives from a.txt.
	if lin := h.ok(with("doc", "lineage", lower, "--json")...).stdout; !strings.Contains(lin, upper) {
		t.Fatalf("lineage of %s does not name %s: %s", lower, upper, lin)
	}
	gcNothing(t, h, "the runs")
}

func dedupUpdateWritesNoPack(t *testing.T, h *harness) {
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	packs := packLister(t, h)
	h.ok(with("basket", "create", "plain")...)
	h.ok(with("basket", "create", "other")...)
	a := strings.TrimSpace(h.ok(with("doc", "add", "plain", h.file("a.txt", "hello update"), "-q")...).stdout)
	// b is in another basket (an update to content another document of
	// its basket has is refused); c keeps b's content referenced once b
	// is updated, so the update leaves no pack unreferenced either.
	b := strings.TrimSpace(h.ok(with("doc", "add", "other", h.file("b.txt", "shared"), "-q")...).stdout)
	h.ok(with("doc", "add", "plain", h.file("c.txt", "shared"), "-q")...)
	before := packs()
	if len(before) == 0 {
		t.Fatal("no pack file after small adds: is the content packed?")
	}
	gcNothing(t, h, "the adds")
	// b gets a's content; a gets its own again.
	for _, up := range []struct{ id, file string }{{b, "a2.txt"}, {a, "a3.txt"}} {
		h.ok(with("doc", "update", up.id, h.file(up.file, "hello update"))...)
		if got := h.ok(with("doc", "cat", up.id)...).stdout; got != "hello update" {
			t.Fatalf("doc cat %s after the update: %q", up.id, got)
		}
	}
	if after := packs(); len(after) != len(before) {
		t.Fatalf("pack files: %d before the updates, %d after (%v): an update to content the tenant holds wrote one", len(before), len(after), after)
	}
	gcNothing(t, h, "the updates")
}
