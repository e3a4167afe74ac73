package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// TestAuditWriteFailureFailsTheOperation: a registry change whose system
// audit entry cannot be written fails and changes nothing; a denial whose
// entry cannot be written says so (issue 8: audit errors were discarded).
// A trigger makes PostgreSQL refuse the audit insert.
func TestAuditWriteFailureFailsTheOperation(t *testing.T) {
	ctx := context.Background()
	b := openBackend(t, Config{})
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}
	_, err := engine.Bootstrap(ctx, b, cfg)
	must(t, err)
	eng, err := engine.New(ctx, b, cfg)
	must(t, err)
	defer eng.Close()
	p := eng.Provisioner("ops")
	_, err = p.Create(ctx, "beta", "")
	must(t, err)
	exec(t, b, `CREATE FUNCTION public.fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$`)
	exec(t, b, `CREATE TRIGGER fail_audit BEFORE INSERT ON docex_system.system_audit FOR EACH ROW EXECUTE FUNCTION public.fail_audit()`)

	if _, err := p.Create(ctx, "gamma", ""); err == nil || !strings.Contains(err.Error(), "audit log unavailable") {
		t.Fatalf("create with a broken system audit: %v", err)
	}
	if _, err := p.Get(ctx, "gamma"); !errors.Is(err, docex.ErrTenantNotFound) {
		t.Fatalf("tenant created without its audit entry: %v", err)
	}
	if n := queryInt(t, b, `SELECT count(*) FROM pg_namespace WHERE nspname = 'docex_t_gamma'`); n != 0 {
		t.Fatal("schema left behind")
	}
	if err := p.Suspend(ctx, "beta"); err == nil {
		t.Fatal("suspend with a broken system audit succeeded")
	}
	if tn, _ := p.Get(ctx, "beta"); tn.Status != docex.TenantActive {
		t.Fatalf("status changed without its audit entry: %s", tn.Status)
	}
	if err := p.Delete(ctx, "beta"); err == nil {
		t.Fatal("delete with a broken system audit succeeded")
	}
	if _, err := eng.As(docex.UserContext{UserID: "u", TenantID: "beta", Roles: []string{"reader"}}).Baskets(ctx, docex.Page{}); err != nil {
		t.Fatalf("tenant unusable after a refused delete: %v", err)
	}
	_, err = eng.As(docex.UserContext{UserID: "u", TenantID: "nope", Roles: []string{"admin"}}).Baskets(ctx, docex.Page{})
	if !errors.Is(err, docex.ErrTenantUnknown) || !strings.Contains(err.Error(), "audit log unavailable") {
		t.Fatalf("denial with a broken system audit: %v", err)
	}
}
