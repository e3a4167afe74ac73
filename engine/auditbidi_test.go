package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

// TestAuditLabelsEscapeBidi: a refused label holding a bidirectional
// control (a basket name, a user id, a role, a tenant id) is
// recorded with each such control written out as its escape, the six
// characters \u202e, in the label fields of the entry (target, user,
// roles); the error text is stored as given. Before, they were stored
// raw and reached audit list --json, reordering what followed them
// (probe P18 F2b).
func TestAuditLabelsEscapeBidi(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content"), Sandbox: testSandbox(t)}
	eng := startEngine(t, be, cfg, "acme")
	admin := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	noBidi := func(what, s string) {
		t.Helper()
		for _, r := range s {
			if r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' {
				t.Errorf("%s %q holds %U", what, s, r)
			}
		}
	}

	// The target: a basket name refused.
	if _, err := admin.CreateBasket(ctx, "in\u202etxt.exe"); !errors.Is(err, docex.ErrInvalid) {
		t.Fatalf("create: %v", err)
	}
	log, err := admin.Audit(ctx, docex.Page{Limit: 1})
	if err != nil || len(log) != 1 {
		t.Fatal(log, err)
	}
	if e := log[0]; e.Operation != "basket.create" || e.Target != `in\u202etxt.exe` || e.Outcome != "error" {
		t.Errorf("entry %+v, want target in\\u202etxt.exe", e)
	}

	// A role refused (not one the policy knows): the tenant's log.
	odd := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"adm\u2067in"}})
	if _, err := odd.CreateBasket(ctx, "x"); err == nil {
		t.Fatal("a role with a bidi control was allowed to write")
	}
	log, err = admin.Audit(ctx, docex.Page{Limit: 1})
	if err != nil || len(log) != 1 {
		t.Fatal(log, err)
	}
	if e := log[0]; !slices.Equal(e.Roles, []string{`adm\u2067in`}) {
		t.Errorf("entry %+v, want role adm\\u2067in", e)
	}

	// A user id refused: the system log.
	if _, err := eng.As(docex.UserContext{UserID: "al\u202eice", TenantID: "acme", Roles: []string{"admin"}}).Baskets(ctx, docex.Page{}); !errors.Is(err, docex.ErrInvalidID) {
		t.Fatalf("bad user: %v", err)
	}
	// A tenant id refused: the system log too, as the target.
	if _, err := eng.Provisioner("ops").Create(ctx, "be\u2066ta", ""); err == nil {
		t.Fatal("a tenant id with a bidi control was created")
	}
	sys, err := be.SystemAudit(ctx, docex.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	users, targets := map[string]bool{}, map[string]bool{}
	for _, e := range sys {
		users[e.UserID], targets[e.Target] = true, true
		noBidi("system entry user", e.UserID)
		noBidi("system entry target", e.Target)
		noBidi("system entry tenant", e.TenantID)
	}
	if !users[`al\u202eice`] {
		t.Errorf("no system entry of user al\\u202eice: %v", users)
	}
	if !targets[`be\u2066ta`] {
		t.Errorf("no system entry of target be\\u2066ta: %v", targets)
	}
	for _, e := range append(log, sys...) {
		for _, r := range e.Roles {
			noBidi("role", r)
		}
		if strings.ContainsRune(e.Target, '\u202e') {
			t.Errorf("target %q", e.Target)
		}
	}
}
