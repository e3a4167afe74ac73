package main

import (
	"os"
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
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); dedupOutputWritesNoPack(t, newHarness(t)) })
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		h, _ := pgHarness(t, "dp")
		// Content on the filesystem (pgHarness keeps it in the database,
		// which has no pack files).
		cfg, err := os.ReadFile(filepath.Join(h.dir, "docex.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		fsCfg := strings.Replace(string(cfg), "storage:\n  documents:\n    type: database\n", "", 1)
		if fsCfg == string(cfg) {
			t.Fatalf("pgHarness's configuration has no database storage:\n%s", cfg)
		}
		h.file("docex.yaml", fsCfg)
		dedupOutputWritesNoPack(t, h)
	})
}

func dedupOutputWritesNoPack(t *testing.T, h *harness) {
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	sys := decode[struct {
		ContentDir string `json:"content_dir"`
	}](t, h.ok("init", "--json").stdout)
	if sys.ContentDir == "" {
		t.Fatal("init --json: no content_dir")
	}
	packs := func() []string {
		t.Helper()
		ps, err := filepath.Glob(filepath.Join(sys.ContentDir, "tenants", "acme", "*", "packs", "*.pack"))
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
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
	type report struct {
		ContentFiles int `json:"content_files"`
		Packs        int `json:"packs"`
	}
	if got := decode[report](t, h.ok("gc", "--dry-run", "--grace", "0s", "--json").stdout); got.Packs != 0 || got.ContentFiles != 0 {
		t.Fatalf("gc --dry-run after the runs: %+v, want nothing to remove", got)
	}
}
