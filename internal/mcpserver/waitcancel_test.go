package mcpserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestRunPipelineWaitCancelled: a run_pipeline cancelled during
// wait_seconds, once its jobs are queued, gets the tool error of a
// cancelled call ("interrupted: ... The call was cancelled.") naming the
// jobs' ids, which go on, and the wait is audited (mcp.pipeline.wait,
// outcome error, "interrupted: ...", detail job_ids). Before, the reply
// said "interrupted: context canceled. The call was cancelled." without
// the ids, and nothing in the log said the wait was cut short.
func TestRunPipelineWaitCancelled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.admin.CreatePipeline(ctx, []byte(shout)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.eng, user("will", "writer"), Config{}) // no worker: the job stays queued
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := newStdioClient(t, srv)
	c.write(initLine("2025-11-25"), initialized)
	if s, _ := summary(t, c.next()); s != `"init":ok` {
		t.Fatalf("initialize: %s", s)
	}
	c.write(toolCall(2, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60}))
	// Cancel once the job is queued (the call then waits for it).
	var jobs []engine.JobInfo
	for range 2000 {
		if jobs, err = e.admin.Jobs(ctx, engine.JobFilter{}, docex.Page{Limit: 10}); err != nil {
			t.Fatal(err)
		}
		if len(jobs) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs queued, want 1", len(jobs))
	}
	c.write(cancelled(2))
	r := parseReply(t, c.next())
	f := r.failure()
	if r.ID != float64(2) || !strings.HasPrefix(f, "tool error: interrupted: ") || !strings.HasSuffix(f, "context canceled. The call was cancelled.") || !strings.Contains(f, jobs[0].ID) {
		t.Fatalf("cancelled run_pipeline: %+v %s; want a tool error naming job %s", r.ID, f, jobs[0].ID)
	}
	c.in.Close()
	if err := <-c.done; err != nil {
		t.Fatal(err)
	}
	log, err := e.admin.Audit(ctx, docex.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, a := range log {
		ops = append(ops, a.Operation+":"+a.Outcome)
		if a.Operation == "mcp.pipeline.wait" {
			ids, _ := a.Detail["job_ids"].([]any)
			if a.Outcome != docex.OutcomeError || !strings.HasPrefix(a.Error, "interrupted: ") || a.Target != "shout" ||
				len(ids) != 1 || ids[0] != jobs[0].ID || !strings.Contains(a.Error, "context canceled") {
				t.Fatalf("entry of the cancelled wait %+v", a)
			}
			return
		}
	}
	t.Fatalf("no mcp.pipeline.wait entry for the cancelled wait: %v", ops)
}
