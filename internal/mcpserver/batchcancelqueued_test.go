package mcpserver

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestStdioBatchCancelsQueuedCall: a notifications/cancelled in a batch
// naming a call written before the batch, alone on its line, that waits
// (behind run_pipeline, call 2, which waits up to 60 s for a job no worker
// runs) drops that call at once, as one alone on its line does
// (docs/agents.md, "Order of calls"): create_basket 4 gets no reply, the
// basket is not made, and the call is not audited (it never reached the
// engine). One in the batch naming the running call reaches it at once:
// run_pipeline ends cancelled, audited with outcome error and
// "interrupted: ...". Then the batch's own call runs. Before, the batch's
// cancels waited for the batch's turn, which came after run_pipeline's
// 60 s wait and after call 4 had run: the cancelled basket was created.
func TestStdioBatchCancelsQueuedCall(t *testing.T) {
	cases := []struct {
		name  string
		batch string
		want  string // the replies after the ping's
	}{
		{"a batch with a call", "[" + toolCall(6, "list_baskets", map[string]any{}) + "," + cancelled(4) + "," + cancelled(2) + "]", "2:ok [6:ok]"},
		{"a batch of cancels", "[" + cancelled(4) + "," + cancelled(2) + "]", "2:ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, e := runningPipelineEnv(t, "2025-03-26")
			c.write(toolCall(4, "create_basket", map[string]any{"name": "dropped"}), tc.batch)
			c.in.Close()
			var got []string
			for line := c.next(); line != ""; line = c.next() {
				s, msgs := summary(t, line)
				got = append(got, s)
				if len(msgs) > 0 {
					t.Errorf("errors: %q", msgs)
				}
				if s == "2:ok" && (!strings.Contains(line, "interrupted: ") || !strings.Contains(line, "The call was cancelled.")) {
					t.Errorf("run_pipeline did not end cancelled: %s", line)
				}
				if strings.Contains(line, `\"name\":\"dropped\"`) {
					t.Errorf("the dropped call's basket is listed: %s", line)
				}
			}
			if err := <-c.done; err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Fatalf("replies %s after the ping's, want %s (4 was cancelled before it started)", s, tc.want)
			}
			ctx := context.Background()
			if bs, err := e.admin.Baskets(ctx, docex.Page{Limit: 100}); err != nil {
				t.Fatal(err)
			} else {
				for _, b := range bs {
					if b.Name == "dropped" {
						t.Errorf("basket %q was created by the cancelled call", b.Name)
					}
				}
			}
			log, err := e.admin.Audit(ctx, docex.Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			sys, err := e.be.SystemAudit(ctx, docex.Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			// The cancel may come while run_pipeline queues its job (the
			// ping's reply says it started, not how far it went): its
			// failure is then the run's, else the wait's.
			interrupted := false
			for _, a := range append(log, sys...) {
				switch {
				case a.Operation == "mcp.basket.create":
					t.Errorf("the cancelled create_basket is audited: %+v", a)
				case (a.Operation == "mcp.pipeline.wait" || a.Operation == "mcp.pipeline.run") && a.Outcome == docex.OutcomeError:
					interrupted = true
					if a.UserID != "will" || !strings.HasPrefix(a.Error, "interrupted: ") {
						t.Errorf("entry of the cancelled run_pipeline %+v: want user will, error \"interrupted: ...\"", a)
					}
				}
			}
			if !interrupted {
				t.Errorf("no mcp.pipeline.wait or mcp.pipeline.run entry with outcome error for the cancelled run_pipeline: %+v", log)
			}
		})
	}
}
