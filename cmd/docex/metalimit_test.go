package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex/engine"
)

// TestMetadataTotalLimit: doc meta set that would leave a document with
// more than engine.MaxDocumentMetaKeys keys is refused, exit code 2
// (invalid), with an error (code invalid under --json) naming the
// document, the total and the limit, and sets nothing. Before, each call
// was bounded (256 keys) and the calls added up without bound.
func TestMetadataTotalLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	acme := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, acme...)...)
	docs := documents(decode[[]added](t, h.ok(append([]string{"doc", "add", "b", h.file("a.txt", "a"), "--json"}, acme...)...).stdout))
	id := docs[0].ID
	for c := range engine.MaxDocumentMetaKeys / engine.MaxMetaKeys {
		args := []string{"doc", "meta", "set", id}
		for i := range engine.MaxMetaKeys {
			args = append(args, fmt.Sprintf("k%04d=%d", c*engine.MaxMetaKeys+i, i))
		}
		h.ok(append(args, acme...)...)
	}
	r := h.want(exitInvalid, append([]string{"doc", "meta", "set", id, "one=more", "--json"}, acme...)...)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stderr), &e); err != nil {
		t.Fatalf("stderr is not JSON: %q", r.stderr)
	}
	if e.Error.Code != "invalid" || e.Error.Kind != "invalid" || !strings.Contains(e.Error.Message, id) ||
		!strings.Contains(e.Error.Message, fmt.Sprint(engine.MaxDocumentMetaKeys+1)) || !strings.Contains(e.Error.Message, fmt.Sprint(engine.MaxDocumentMetaKeys)) {
		t.Fatalf("error = %+v", e.Error)
	}
	meta := decode[map[string]any](t, h.ok(append([]string{"doc", "meta", "get", id, "--json"}, acme...)...).stdout)
	if _, ok := meta["one"]; ok || len(meta) != engine.MaxDocumentMetaKeys {
		t.Fatalf("a refused doc meta set changed the document: %d keys", len(meta))
	}
}
