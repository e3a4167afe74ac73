package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStdioMaxCalls: over stdio, the calls of a batch that reach the
// engine run at most Config.MaxCalls (docex mcp --max-calls) at once; the
// rest wait, in order, and a call that waits is cancelled as any other
// (it is answered as a call cancelled before it started, and nothing of
// it runs). Here four run_pipeline calls waiting for jobs no worker runs,
// with a bound of 2: two queue their job, two wait. Before, every call of
// a batch (up to 1,024) ran at once: 96 get_document calls of a
// document whose metadata then fell back to a full read took 1.34 GB
// (P16; the fallback reads in bounded rounds since 2026-12-08).
func TestStdioMaxCalls(t *testing.T) {
	e := newEnv(t)
	if _, err := e.admin.CreatePipeline(context.Background(), []byte(shout)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.eng, user("will", "writer"), Config{MaxCalls: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := newStdioClient(t, srv)
	c.write(initLine("2025-03-26"), initialized)
	if s, _ := summary(t, c.next()); s != `"init":ok` {
		t.Fatalf("initialize: %s", s)
	}
	var calls []string
	for id := 11; id <= 14; id++ {
		calls = append(calls, toolCall(id, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60}))
	}
	c.write("[" + strings.Join(calls, ",") + "]")
	for {
		jobs := jobCount(t, e)
		if jobs > 2 {
			t.Fatalf("%d of the batch's run_pipeline calls queued a job, more than the bound of 2 running at once", jobs)
		}
		if _, waiting := srv.calls.state(); jobs == 2 && waiting == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if used, _ := srv.calls.state(); used != 2 {
		t.Fatalf("%d calls counted, want 2", used)
	}
	// Cancel the two that wait first, then the two that run.
	c.write(cancelled(13), cancelled(14), cancelled(11), cancelled(12))
	line := c.next()
	var replies []json.RawMessage
	if err := json.Unmarshal([]byte(line), &replies); err != nil || len(replies) != 4 {
		t.Fatalf("the batch's replies: %s (%v), want an array of 4", line, err)
	}
	for i, r := range replies {
		if f := parseReply(t, string(r)).failure(); !strings.Contains(f, "interrupted: ") || !strings.HasSuffix(f, "The call was cancelled.") {
			t.Errorf("reply %d: %s, want the call cancelled", 11+i, r)
		}
	}
	if jobs := jobCount(t, e); jobs != 2 {
		t.Fatalf("%d jobs once the batch ended, want 2: a call cancelled while it waited ran", jobs)
	}
	if used, waiting := srv.calls.state(); used != 0 || waiting != 0 {
		t.Fatalf("%d calls counted, %d waiting once the batch ended; want none", used, waiting)
	}
}
