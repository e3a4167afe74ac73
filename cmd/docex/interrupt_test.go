package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterruptedExit130: a command whose context main cancelled (SIGINT,
// SIGTERM) exits 130 with kind "interrupted", whatever error the cut-short
// command returned, and changes nothing it had not committed.
func TestInterruptedExit130(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	id := strings.TrimSpace(h.ok(append([]string{"doc", "add", "inbox", h.file("a.txt", "kept"), "-q"}, u...)...).stdout)
	before := h.ok(append([]string{"doc", "list", "inbox", "--json"}, u...)...).stdout
	tests := []struct {
		name string
		args []string
		want string // stderr's start; default: the generic message
	}{
		{"doc add", append([]string{"doc", "add", "inbox", h.file("b.txt", "not kept"), h.file("c.txt", "nor this")}, u...), ""},
		{"doc list", append([]string{"doc", "list", "inbox"}, u...), ""},
		{"doc meta set", append([]string{"doc", "meta", "set", id, "k=v"}, u...), ""},
		{"verify", []string{"verify", "acme"}, ""},
		{"tenant create", []string{"tenant", "create", "beta"}, ""},
		// The interrupt may come after the jobs' commit: the error says so.
		{"pipeline run", append([]string{"pipeline", "run", "three", "--doc", id}, u...), "docex: interrupted while queuing the run: its jobs may have been queued (docex job list --pipeline three shows them)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, json := range []bool{false, true} {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml")}, tc.args...)
				if json {
					args = append(args, "--json")
				}
				var out, errb bytes.Buffer
				err := runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
				if got := exitCode(err); got != 130 {
					t.Fatalf("json=%v: exit %d (%v), want 130; stderr %q", json, got, err, errb.String())
				}
				if json {
					if e := decode[map[string]map[string]string](t, errb.String())["error"]; e["kind"] != "interrupted" || e["code"] != "interrupted" {
						t.Errorf("JSON error %+v, want kind and code interrupted", e)
					}
					continue
				}
				want := tc.want
				if want == "" {
					want = "docex: interrupted (Ctrl-C or SIGTERM) before docex " + tc.name + " finished"
				}
				if !strings.HasPrefix(errb.String(), want) {
					t.Errorf("stderr %q, want it to start %q", errb.String(), want)
				}
			}
		})
	}
	// Nothing the interrupted commands had not committed was kept.
	if after := h.ok(append([]string{"doc", "list", "inbox", "--json"}, u...)...).stdout; after != before {
		t.Errorf("documents changed by interrupted commands:\nbefore %s\nafter  %s", before, after)
	}
	h.want(3, append([]string{"doc", "meta", "get", id, "k"}, u...)...)
	h.want(3, "tenant", "show", "beta")
}
