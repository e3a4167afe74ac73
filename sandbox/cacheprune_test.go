package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// cacheFiles lists the files under dir/metered, as paths relative to it.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	root := filepath.Join(dir, "metered")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// PruneCache removes the instrumented copy and the compiled code of a
// module no one keeps, and keeps both of one kept: its compiled code is
// recognised by the name wazero files it under (a wrong derivation would
// remove it as code of no known module, and the count would be 3).
func TestPruneCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	echoM, echoMod := readPlugin(t, "echo")
	_, upperMod := readPlugin(t, "upper")
	load := func(sb *Sandbox) {
		t.Helper()
		for _, p := range []struct {
			m   string
			mod []byte
		}{{"echo", echoMod}, {"upper", upperMod}} {
			m, _ := readPlugin(t, p.m)
			pl, err := sb.Load(ctx, m, p.mod)
			if err != nil {
				t.Fatal(err)
			}
			pl.Close(ctx)
		}
	}
	sb, err := New(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	load(sb)
	before := cacheFiles(t, dir)
	compiled := func(names []string) int {
		n := 0
		for _, name := range names {
			if filepath.Dir(name) != "." {
				n++
			}
		}
		return n
	}
	if compiled(before) != 2 {
		t.Fatalf("cache before: %v, want two compiled modules", before)
	}
	// Leftovers of an older instrumentation, an older wazero and a crash.
	stale := filepath.Join(dir, "metered", echoM.SHA256+"-v0")
	for _, f := range []string{stale + ".wasm", stale + ".json", filepath.Join(dir, "metered", "wazero-v0.0.1-x-y", "0123"), filepath.Join(dir, "metered", "x.wasm.tmp")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keepEcho := func(sum string) bool { return sum == echoM.SHA256 }

	// Nothing older than the cutoff: nothing goes.
	if n, err := sb.PruneCache(ctx, keepEcho, time.Now().Add(-time.Hour), false); err != nil || n != 0 {
		t.Fatalf("young files: pruned %d, %v", n, err)
	}
	later := time.Now().Add(time.Hour)
	n, err := sb.PruneCache(ctx, keepEcho, later, true)
	if err != nil || n != 3 {
		t.Fatalf("dry run: %d, %v; want 3 (upper, the stale entry, the old wazero's code)", n, err)
	}
	if got := cacheFiles(t, dir); len(got) != len(before)+4 {
		t.Fatalf("a dry run removed files: %v", got)
	}
	n, err = sb.PruneCache(ctx, keepEcho, later, false)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	after := cacheFiles(t, dir)
	for _, f := range after {
		if filepath.Dir(f) == "." && f != meteredName(echoM.SHA256)+".wasm" && f != meteredName(echoM.SHA256)+".json" {
			t.Errorf("left %s", f)
		}
	}
	if compiled(after) != 1 {
		t.Fatalf("after: %v, want echo's compiled code only", after)
	}
	// What is left is echo's: loading it in a new sandbox compiles nothing.
	sb2, err := New(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sb2.Close(ctx)
	pl, err := sb2.Load(ctx, echoM, echoMod)
	if err != nil {
		t.Fatal(err)
	}
	pl.Close(ctx)
	if got := cacheFiles(t, dir); !slices.Equal(got, after) {
		t.Fatalf("echo was compiled again: %v, was %v", got, after)
	}
	// Without a cache directory there is nothing to prune.
	sb3, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb3.Close(ctx)
	if n, err := sb3.PruneCache(ctx, keepEcho, later, false); err != nil || n != 0 {
		t.Fatalf("no cache dir: %d, %v", n, err)
	}
}
