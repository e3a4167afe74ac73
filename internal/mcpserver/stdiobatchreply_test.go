package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestStdioBatchReplyBounded: the line of a batch's replies is bounded
// (maxBatchReplyBytes): once the replies held would pass it, a call's
// reply is replaced with a short -32000 error saying so (the call was
// handled); every call gets its reply, the first ones answered their
// results. Before, a batch of 12 list_documents of a 1 MiB listing was
// one line of 24.7 MB.
func TestStdioBatchReplyBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.admin.CreateBasket(ctx, "fat")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 18 {
		if _, err := e.admin.AddDocument(ctx, b.ID, engine.NewDocument{Name: fmt.Sprintf("d%02d.txt", i), Content: strings.NewReader(fmt.Sprint("doc ", i)),
			Metadata: map[string]docex.Value{"big": docex.String(strings.Repeat("v", 60000))}}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const calls = 12
	var members []string
	for k := range calls {
		members = append(members, toolCall(k, "list_documents", map[string]any{"basket": b.ID, "limit": 100}))
	}
	members = append(members, ping("p"))
	lines := serveLines(t, srv, initLine("2025-03-26"), initialized, "["+strings.Join(members, ",")+"]")
	var line string
	for _, l := range lines {
		if strings.HasPrefix(l, "[") {
			line = l
		}
	}
	var rs []rpcReply
	if err := json.Unmarshal([]byte(line), &rs); err != nil || len(rs) != calls+1 {
		t.Fatalf("the batch's reply: %d replies (%v), want %d", len(rs), err, calls+1)
	}
	ok, cut := 0, 0
	for i, r := range rs {
		switch {
		case r.Error == nil:
			ok++
		case r.Error.Code == codeReplyTooLarge && strings.Contains(r.Error.Message, "Reply too large: this call was handled, but its reply (") &&
			strings.Contains(r.Error.Message, fmt.Sprintf("past %d bytes", maxBatchReplyBytes)):
			cut++
		default:
			t.Fatalf("reply %d: error %d %s", i, r.Error.Code, r.Error.Message)
		}
		if want := fmt.Sprint(i); i == calls && r.ID != "p" || i < calls && fmt.Sprint(r.ID) != want {
			t.Fatalf("reply %d has id %v", i, r.ID)
		}
	}
	t.Logf("%d replies kept, %d cut, a line of %d bytes", ok, cut, len(line))
	// The errors count past the bound: each under 512 bytes.
	if ok < 2 || cut == 0 || len(line)+1 > maxBatchReplyBytes+cut*512 {
		t.Fatalf("%d replies kept, %d cut, a line of %d bytes: want some of each, at most %d bytes and the errors", ok, cut, len(line)+1, maxBatchReplyBytes)
	}
}
