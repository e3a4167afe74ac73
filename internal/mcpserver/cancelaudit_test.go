package mcpserver

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestCancelledCallAudited: a run_plugin call the client cancels
// (notifications/cancelled) while the plugin runs is audited, as
// mcp.plugin.run with outcome error and "interrupted: ..."
// (docs/agents.md, "Audit"). Its entry could not be written (the write
// used the cancelled call's context) and the call was in no log. The
// loop plugin spins until its timeout, 60 s here: the cancel, sent once
// a ping written after the call is answered, comes while the call runs.
func TestCancelledCallAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	manifest, module := pluginBytes(t, "loop")
	manifest = []byte(strings.Replace(string(manifest), "timeout_ms = 200", "timeout_ms = 60000", 1))
	if _, err := e.admin.InstallPlugin(ctx, manifest, module); err != nil {
		t.Fatal(err)
	}
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := newStdioClient(t, srv)
	c.write(initLine("2025-11-25"), initialized)
	if s, _ := summary(t, c.next()); s != `"init":ok` {
		t.Fatalf("initialize: %s", s)
	}
	c.write(toolCall(2, "run_plugin", map[string]any{"plugin": "loop", "document_id": e.doc.ID}), ping(3))
	if s, _ := summary(t, c.next()); s != "3:ok" {
		t.Fatalf("the reply after run_plugin and ping is %s, want the ping's", s)
	}
	c.write(cancelled(2))
	c.in.Close()
	replied := false
	for line := c.next(); line != ""; line = c.next() {
		if r := parseReply(t, line); r.ID == float64(2) {
			replied = true
			// As the CLI's run and the docs' table: interrupted, not
			// plugin_failed (which it was before).
			// A call cancelled once the plugin ran ends with its
			// report line (docs/agents.md); the message is before it.
			f := r.failure()
			msg, _, _ := strings.Cut(f, "\nreport: ")
			if strings.Contains(f, "could not be audited") || !strings.HasPrefix(msg, "tool error: interrupted: ") || !strings.HasSuffix(msg, "The call was cancelled.") {
				t.Errorf("cancelled run_plugin: %s", line)
			}
		}
	}
	if !replied {
		t.Error("no reply to the cancelled run_plugin")
	}
	if err := <-c.done; err != nil {
		t.Fatal(err)
	}
	log, err := e.admin.Audit(ctx, docex.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := e.be.SystemAudit(ctx, docex.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append(log, sys...) {
		if a.Operation == "mcp.plugin.run" && a.UserID == "will" {
			if a.Outcome != docex.OutcomeError || !strings.HasPrefix(a.Error, "interrupted: ") {
				t.Errorf("entry of the cancelled call %+v: want outcome error, error \"interrupted: ...\"", a)
			}
			return
		}
	}
	t.Fatal("no mcp.plugin.run entry for the cancelled call")
}
