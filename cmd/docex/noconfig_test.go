package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNoConfigFirst: without docex.yaml, pipeline create of a file it
// could not read reported both errors in one message, joined by a newline
// printed as a literal \n, with code invalid (too_large for a big file);
// doc add reported the file's error alone. Now every command that reads
// a file argument reports the missing configuration alone, code
// not_initialized, whatever the file: nothing can be done without it.
func TestNoConfigFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	missing := filepath.Join(h.dir, "nonexist.toml")
	big := h.file("big.toml", strings.Repeat("# padding\n", 7000))
	id := "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b"
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	for _, args := range [][]string{
		{"pipeline", "create", missing},
		{"pipeline", "create", big},
		{"plugin", "install", filepath.Join(h.dir, "nosuchdir")},
		{"plugin", "install", filepath.Join(h.dir, "nosuchdir"), "--system"},
		{"doc", "add", "b", missing},
		{"doc", "update", id, missing},
	} {
		args = append(args, u...)
		r := h.want(exitInvalid, args...)
		if strings.Count(r.stderr, "docex: ") != 1 || strings.Contains(r.stderr, `\n`) || !strings.Contains(r.stderr, "no config file at") || strings.Contains(r.stderr, "nonexist") || strings.Contains(r.stderr, "nosuchdir") || strings.Contains(r.stderr, "big.toml") {
			t.Errorf("docex %s: stderr %q, want the missing configuration alone", strings.Join(args, " "), r.stderr)
		}
		e := decode[map[string]map[string]string](t, h.want(exitInvalid, append(args, "--json")...).stderr)
		if e["error"]["code"] != "not_initialized" || strings.Contains(e["error"]["message"], "\n") {
			t.Errorf("docex %s --json: %+v, want code not_initialized and a message of one line", strings.Join(args, " "), e)
		}
	}
}
