package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInterruptedRunAudited: an interrupted docex run (Ctrl-C while the
// plugin ran) left no plugin.run entry: "plugin failed: run: context
// canceled (and this could not be audited: begin: context canceled)",
// though every run's resource report is said to be in the audit log. Now
// the run is audited, outcome error, "interrupted: ...". The interrupt
// comes after a delay that doubles until it lands while the plugin runs
// (the loop plugin spins until its 60 s timeout): no latency is assumed.
func TestInterruptedRunAudited(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "runint", func(t *testing.T, h *harness) {
		h.ok("init")
		h.ok("tenant", "create", "acme")
		u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
		with := func(args ...string) []string { return append(args, u...) }
		dir := loopPlugin(t, 60000)
		h.ok(with("plugin", "install", dir)...)
		h.ok(with("basket", "create", "b")...)
		id := strings.TrimSpace(h.ok(with("doc", "add", "b", h.file("s.txt", "spin"), "-q")...).stdout)

		for delay := 200 * time.Millisecond; ; delay *= 2 {
			ctx, cancel := context.WithCancel(context.Background())
			timer := time.AfterFunc(delay, cancel)
			var out, errb bytes.Buffer
			args := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "run", "loop", id}, u...)
			err := runEnv(ctx, args, &out, &errb, func(k string) string { return h.env[k] })
			timer.Stop()
			cancel()
			if got := exitCode(err); got != exitInterrupted {
				t.Fatalf("exit %d (%v), want %d; stderr %s", got, err, exitInterrupted, errb.String())
			}
			if strings.Contains(errb.String(), "could not be audited") {
				t.Fatalf("interrupted run: %s", errb.String())
			}
			if !strings.Contains(errb.String(), "plugin failed") {
				if delay > time.Minute {
					t.Fatalf("the interrupt never came while the plugin ran: %s", errb.String())
				}
				continue // it came before the run: later next time
			}
			log := decode[[]map[string]any](t, h.ok(with("audit", "list", "--json")...).stdout)
			for _, e := range log { // newest first
				if e["operation"] != "plugin.run" {
					continue
				}
				d, _ := e["detail"].(map[string]any)
				if e["outcome"] != "error" || !strings.HasPrefix(e["error"].(string), "interrupted: ") || d["document_id"] != id || d["report"] == nil {
					t.Errorf("plugin.run entry %v: want outcome error, error \"interrupted: ...\", the document and a report", e)
				}
				return
			}
			t.Fatalf("no plugin.run entry for the interrupted run; stderr %s", errb.String())
		}
	})
}
