package mcpserver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTPMaxCalls: over streamable HTTP, the calls that reach the engine
// handled at once are bounded, all sessions together (HTTPOptions.MaxCalls,
// docex mcp --max-calls): past it, a call waits until one ends, and is then
// handled; a call that waits can be cancelled (it is then answered as a
// call cancelled before it started), and a ping is not held. Here the
// bound is 1: list_baskets, in another session, waits while run_pipeline
// waits for its job, and is answered once run_pipeline's client goes
// away. Before, every call ran at once however many were POSTed.
func TestHTTPMaxCalls(t *testing.T) {
	e := newEnv(t)
	const version = "2025-11-25"
	srv, ts := limitedServer(t, e, HTTPOptions{MaxBody: 1 << 20, MaxCalls: 1})
	hold := toolCall(4, "run_pipeline", map[string]any{"pipeline": "shout", "document_ids": []string{e.doc.ID}, "wait_seconds": 60})
	cancel, held := holdCall(t, e, ts, version, httpSession(t, ts.URL, version), hold, 0)
	other := httpSession(t, ts.URL, version)
	type reply struct {
		code int
		body string
	}
	post := func(body string) chan reply {
		c := make(chan reply, 1)
		go func() {
			code, body, _ := postMCP(t, ts.URL, "", version, other, body)
			c <- reply{code, body}
		}()
		return c
	}
	waitFor := func(want int, pending ...chan reply) {
		t.Helper()
		for {
			if _, waiting := srv.calls.state(); waiting == want {
				return
			}
			for _, c := range pending {
				select {
				case r := <-c:
					t.Fatalf("a call answered while the bound of calls was full: %d %s", r.code, r.body)
				default:
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	listed := post(toolCall(5, "list_baskets", map[string]any{}))
	waitFor(1, listed)
	// A protocol request is not held behind the calls.
	if code, body, _ := postMCP(t, ts.URL, "", version, other, `{"jsonrpc":"2.0","id":6,"method":"ping"}`); code != http.StatusOK || !strings.Contains(body, `"id":6,"result"`) {
		t.Fatalf("ping while calls wait: %d %s", code, body)
	}
	// A call that waits can be cancelled: it is answered so.
	found := post(toolCall(7, "find_documents", map[string]any{"basket": "in", "metadata": map[string]string{"k": "v"}}))
	waitFor(2, listed, found)
	if code, body, _ := postMCP(t, ts.URL, "", version, other, cancelled(7)); code != http.StatusAccepted {
		t.Fatalf("notifications/cancelled: %d %s", code, body)
	}
	r := <-found
	if r.code != http.StatusOK || !strings.Contains(r.body, `"id":7,"result"`) || !strings.Contains(r.body, "The call was cancelled.") {
		t.Fatalf("find_documents cancelled while it waited: %d %s", r.code, r.body)
	}
	waitFor(1, listed)
	cancel()
	if err := <-held; err == nil {
		t.Fatal("run_pipeline's POST was answered: want it cut off by its client")
	}
	r = <-listed
	if r.code != http.StatusOK || !strings.Contains(r.body, `"id":5,"result"`) || !strings.Contains(r.body, `\"in\"`) {
		t.Fatalf("list_baskets once run_pipeline ended: %d %s", r.code, r.body)
	}
	if used, waiting := srv.calls.state(); used != 0 || waiting != 0 {
		t.Fatalf("after the calls: %d counted, %d waiting; want none", used, waiting)
	}
}

// TestBudgetFIFO: the wait for room in a budget (the bytes of the bodies
// in flight, the calls) is first come, first served: a small request that
// would fit waits behind a larger one that came before it, which is not
// starved by a stream of small ones; a waiter that gives up lets those
// behind it go. Before, whichever waiter fitted first went first.
func TestBudgetFIFO(t *testing.T) {
	b := &budget{limit: 10}
	ctx := context.Background()
	if err := b.acquire(ctx, ctx, 6); err != nil {
		t.Fatal(err)
	}
	acquired := func(ctx context.Context, n int64) chan error {
		c := make(chan error, 1)
		go func() { c <- b.acquire(ctx, context.Background(), n) }()
		return c
	}
	waitFor := func(want int, pending ...chan error) {
		t.Helper()
		for {
			if _, waiting := b.state(); waiting == want {
				return
			}
			for _, c := range pending {
				select {
				case err := <-c:
					t.Fatalf("a waiter went ahead of an earlier one (%v)", err)
				default:
				}
			}
			time.Sleep(time.Millisecond)
		}
	}
	large := acquired(ctx, 10)
	waitFor(1, large)
	small := acquired(ctx, 1)
	waitFor(2, large, small)
	b.release(6)
	if err := <-large; err != nil {
		t.Fatal(err)
	}
	waitFor(1, small)
	b.release(10)
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	// A waiter that gives up lets those behind it through.
	gone, giveUp := context.WithCancel(ctx)
	large = acquired(gone, 10)
	waitFor(1, large)
	small = acquired(ctx, 1)
	waitFor(2, large, small)
	giveUp()
	if err := <-large; err == nil {
		t.Fatal("a cancelled waiter was counted")
	}
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if used, waiting := b.state(); used != 2 || waiting != 0 {
		t.Fatalf("%d counted, %d waiting; want 2 and none", used, waiting)
	}
}
