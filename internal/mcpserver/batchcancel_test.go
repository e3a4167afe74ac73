package mcpserver

import (
	"fmt"
	"strings"
	"testing"
)

// TestStdioCancelSameBatch: a notifications/cancelled in the same batch
// as the call it names, after it or before it, is ignored, as
// docs/agents.md says of a cancel for a batch's call that has not
// started: the call runs with its batch and gets its result. Before, the SDK
// took the cancel with the call and answered tools/call and
// resources/read with -32603 "context canceled" (neither a tool error
// nor audited).
func TestStdioCancelSameBatch(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("will", "writer"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	lines := []string{initLine("2025-03-26"), initialized}
	var want []string
	for i := range 10 {
		call, read := 100+2*i, 101+2*i
		tool := toolCall(call, "list_documents", map[string]any{"basket": "in"})
		res := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"resources/read","params":{"uri":%q}}`, read, documentURI(e.doc.ID))
		lines = append(lines, "["+tool+","+cancelled(call)+","+cancelled(read)+","+res+"]")
		want = append(want, fmt.Sprintf("[%d:ok %d:ok]", call, read))
	}
	got := serveLines(t, srv, lines...)
	if len(got) != len(want)+1 {
		t.Fatalf("%d replies, want %d: %q", len(got), len(want)+1, got)
	}
	for i, line := range got[1:] {
		s, msgs := summary(t, line)
		if s != want[i] || strings.Contains(line, `"isError":true`) {
			t.Errorf("batch %d: %s %q, want %s without an error: %s", i, s, msgs, want[i], line)
		}
	}
}
