package mcpserver

import (
	"testing"
)

// TestNoPrompts: the server has no prompts and advertises no prompts
// capability, so prompts/list and prompts/get are methods it does not
// have: -32601 (docs/agents.md), once initialize is answered (before
// it, -32600 as every call but ping and logging/setLevel). Before, the SDK
// answered prompts/list with {"prompts":[]} and prompts/get with -32602.
func TestNoPrompts(t *testing.T) {
	e := newEnv(t)
	srv, err := New(e.eng, user("rita", "reader"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	got := serveLines(t, srv,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/list"}`,
		initLine("2025-11-25"), initialized,
		`{"jsonrpc":"2.0","id":2,"method":"prompts/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"x"}}`)
	want := []string{
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"method \"prompts/list\" is invalid during session initialization"}}`,
		"",
		`{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"method not found: \"prompts/list\""}}`,
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"method not found: \"prompts/get\""}}`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d replies, want %d: %q", len(got), len(want), got)
	}
	for i, w := range want {
		if w != "" && got[i] != w {
			t.Errorf("reply %d: %s, want %s", i, got[i], w)
		}
	}
	if s, _ := summary(t, got[1]); s != `"init":ok` {
		t.Errorf("initialize: %s", got[1])
	}
}
