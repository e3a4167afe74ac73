package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
)

// stopAfter is a context that is done (context.Canceled) from the
// (k+1)-th call of its Done or Err method on: a signal that comes at an
// exact phase of a command, the k-th look at the context, whatever the
// machine's speed.
type stopAfter struct {
	context.Context // Background: no deadline, no values
	k               int64
	n               atomic.Int64
	once            sync.Once
	done            chan struct{}
}

func newStopAfter(k int64) *stopAfter {
	return &stopAfter{Context: context.Background(), k: k, done: make(chan struct{})}
}

func (c *stopAfter) look() bool {
	if c.n.Add(1) > c.k {
		c.once.Do(func() { close(c.done) })
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *stopAfter) Done() <-chan struct{} {
	c.look()
	return c.done
}

func (c *stopAfter) Err() error {
	if c.look() {
		return context.Canceled
	}
	return nil
}

// TestWorkerStopWhileStarting: a worker whose context is done (SIGINT,
// SIGTERM) at any phase of its start (opening the system database,
// connecting to PostgreSQL, looking up --tenants, the content store's
// claim, listing the tenants, starting the queue) or after exits 0 as a
// running worker stopped so does, with what the stop cut short in a log
// line. Each run stops at the k-th look at the context, k from 0 until
// the worker was serving. Before, it exited 130 (interrupted) when the
// stop met a phase that failed with it.
func TestWorkerStopWhileStarting(t *testing.T) {
	t.Parallel()
	sq := newHarness(t)
	pipelineSetup(t, sq, "acme")
	pg, _ := pgHarness(t, "ws")
	pipelineSetup(t, pg, "acme")
	tests := []struct {
		name string
		h    *harness
		args []string
	}{
		{"sqlite --all", sq, []string{"worker", "--all"}},
		{"sqlite --tenants", sq, []string{"worker", "--tenants", "acme", "--concurrency", "1"}},
		{"postgres --all", pg, []string{"worker", "--all"}},
		{"postgres --tenants", pg, []string{"worker", "--tenants", "acme", "--concurrency", "1"}},
	}
	started := regexp.MustCompile(`"msg":"worker started"`)
	cut := regexp.MustCompile(`"msg":"worker stopped while starting","error":"([^"]*)"`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phases := map[string]bool{}
			for k := int64(0); ; k++ {
				var out, errb bytes.Buffer
				args := append([]string{"--config", filepath.Join(tc.h.dir, "docex.yaml")}, tc.args...)
				err := runEnv(newStopAfter(k), args, &out, &errb, func(k string) string { return tc.h.env[k] })
				if got := exitCode(err); got != 0 {
					t.Fatalf("stopped at look %d: exit %d (%v), want 0; stderr %q", k, got, err, errb.String())
				}
				if m := cut.FindStringSubmatch(errb.String()); m != nil {
					phases[m[1]] = true
				}
				if started.MatchString(errb.String()) {
					t.Logf("%d stops before the worker served; cut short: %v", k, phases)
					break
				}
			}
		})
	}
}
