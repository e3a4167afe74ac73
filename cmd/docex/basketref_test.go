package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNonCanonicalBasketIDsAreInvalid: a basket reference that has the
// form of an id but is not its canonical form (upper case, braces,
// urn:uuid:) is an invalid id (exit 2, code invalid_id) for every command
// that takes a basket, as a malformed document id is for doc get
// (docs/isolation.md), never a name that is not found (exit 3). The
// canonical id and the name still work.
func TestNonCanonicalBasketIDsAreInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	b := decode[struct {
		ID string `json:"id"`
	}](t, h.ok(append([]string{"basket", "create", "inbox", "--json"}, u...)...).stdout)
	h.ok(append([]string{"basket", "show", b.ID}, u...)...)
	h.ok(append([]string{"basket", "show", "inbox"}, u...)...)
	txt := h.file("a.txt", "hello")
	for _, ref := range []string{strings.ToUpper(b.ID), "{" + b.ID + "}", "urn:uuid:" + b.ID} {
		for _, args := range [][]string{
			{"basket", "show", ref},
			{"basket", "delete", ref},
			{"basket", "unbind", ref},
			{"doc", "list", ref},
			{"doc", "find", ref, "--meta", "k=v"},
			{"doc", "add", ref, txt},
			{"job", "list", "--basket", ref},
			{"pipeline", "run", "three", "--basket", ref},
		} {
			r := h.run(append(append(args, u...), "--json")...)
			var e map[string]map[string]string
			if err := json.Unmarshal([]byte(r.stderr), &e); r.code != exitInvalid || err != nil || e["error"]["code"] != "invalid_id" {
				t.Errorf("docex %s: exit %d, stderr %q; want exit 2, code invalid_id", strings.Join(args, " "), r.code, r.stderr)
			}
		}
	}
}
