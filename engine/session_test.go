package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
)

func TestSessionOriginAndReadAudit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content")}
	eng := startEngine(t, be, cfg, "acme")
	admin := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})

	for _, bad := range []string{"MCP", "1mcp", "m.cp", "m cp", strings.Repeat("a", 33), "mcp/x"} {
		if _, err := eng.AsWith(admin.UserContext(), engine.SessionOptions{Origin: bad}); !errors.Is(err, docex.ErrInvalid) {
			t.Errorf("origin %q: got %v, want ErrInvalid", bad, err)
		}
	}

	tagged := func(uc docex.UserContext, reads bool) *engine.Session {
		s, err := eng.AsWith(uc, engine.SessionOptions{Origin: "mcp", AuditReads: reads})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w := tagged(docex.UserContext{UserID: "will", TenantID: "acme", Roles: []string{"writer"}}, true)
	b, err := w.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.AddDocument(ctx, b.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("hello"),
		Metadata: map[string]docex.Value{"k": docex.String("v")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Document(ctx, a.Document.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Document(ctx, "00000000-0000-7000-8000-000000000000"); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, _, err := w.FindDocuments(ctx, b.ID, []docex.MetaFilter{{Key: "k", Value: docex.String("v")}}, docex.Page{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadContent(ctx, a.Document.ID); err != nil {
		t.Fatal(err)
	}
	// Without AuditReads only mutations and denials are recorded.
	quiet := tagged(docex.UserContext{UserID: "quiet", TenantID: "acme", Roles: []string{"reader"}}, false)
	if _, err := quiet.Baskets(ctx, docex.Page{}); err != nil {
		t.Fatal(err)
	}
	if _, err := quiet.CreateBasket(ctx, "nope"); !errors.Is(err, docex.ErrForbidden) {
		t.Fatalf("reader create: %v", err)
	}
	// A denial before the tenant is known goes to the system log, tagged too.
	if _, err := tagged(docex.UserContext{UserID: "x", TenantID: "ghost", Roles: []string{"admin"}}, true).Baskets(ctx, docex.Page{}); !errors.Is(err, docex.ErrTenantUnknown) {
		t.Fatalf("unknown tenant: %v", err)
	}

	log, err := admin.Audit(ctx, docex.Page{Limit: 100, Order: docex.OrderCreated})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, e := range log {
		got[e.UserID] = append(got[e.UserID], e.Operation+":"+e.Outcome)
	}
	want := map[string][]string{
		// newest first
		"will":  {"mcp.document.read:ok", "mcp.document.find:ok", "mcp.document.get:error", "mcp.document.get:ok", "mcp.document.add:ok", "mcp.basket.create:ok"},
		"quiet": {"mcp.basket.create:denied"},
	}
	for user, ops := range want {
		if strings.Join(got[user], " ") != strings.Join(ops, " ") {
			t.Errorf("audit of %s:\n got %v\nwant %v", user, got[user], ops)
		}
	}
	for _, e := range log {
		if !strings.HasPrefix(e.Operation, "mcp.") && e.UserID != "ann" {
			t.Errorf("untagged entry %+v", e)
		}
	}
	sys, err := be.SystemAudit(ctx, docex.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(sys) == 0 || sys[0].Operation != "mcp.basket.list" || sys[0].Outcome != docex.OutcomeDenied {
		t.Errorf("system audit: %+v", sys)
	}
}
