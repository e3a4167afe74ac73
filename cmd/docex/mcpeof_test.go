package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestMCPStdioAnswersBeforeEOF: a client that writes its requests and
// closes stdin at once (printf ... | docex mcp) gets a reply to each
// before the server exits 0. Before, the end of stdin ended the session
// at once, and the calls still running were never answered.
func TestMCPStdioAnswersBeforeEOF(t *testing.T) {
	t.Parallel()
	h := mcpHarness(t)
	h.ok("basket", "create", "inbox", "--tenant", "acme", "--user", "a", "--roles", "admin")
	var in strings.Builder
	in.WriteString(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}` + "\n")
	in.WriteString(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")
	const calls = 20
	for i := range calls {
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"list_baskets","arguments":{}}}`+"\n", i+2)
	}
	in.WriteString("not json\n") // answered too, with an error
	var out, stderr bytes.Buffer
	err := runIO(context.Background(), []string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--tenant", "acme", "--user", "a", "--roles", "reader"},
		strings.NewReader(in.String()), &out, &stderr, func(string) string { return "" })
	if err != nil {
		t.Fatalf("docex mcp: %v; stderr %s", err, stderr.String())
	}
	got := map[string]bool{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			ID     any             `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("reply %q: %v", sc.Text(), err)
		}
		if r.ID != nil && !strings.Contains(string(r.Result), "inbox") && r.ID != 1.0 {
			t.Errorf("reply %d: %s, want the basket listed", r.ID, sc.Text())
		}
		got[fmt.Sprint(r.ID)] = true
	}
	for i := 1; i <= calls+1; i++ {
		if !got[fmt.Sprint(i)] {
			t.Errorf("request %d was not answered before the server exited (answered: %v)", i, got)
		}
	}
	if !got["<nil>"] {
		t.Errorf("the bad line was not answered: %v", got)
	}
}
