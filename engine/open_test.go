package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// faultyBackend is a real SQLite backend whose OpenTenant can be made to
// misbehave: open another tenant's store than asked (a backend bug the
// engine must refuse), or fail with an I/O error.
type faultyBackend struct {
	driver.Backend
	swap   string // open this tenant instead of the one asked for
	system bool   // report the store as a system tenant's
	fail   error  // fail with this error
}

func (b *faultyBackend) OpenTenant(ctx context.Context, id string) (driver.TenantStore, error) {
	if b.fail != nil {
		return nil, b.fail
	}
	if b.swap != "" {
		id = b.swap
	}
	st, err := b.Backend.OpenTenant(ctx, id)
	if err != nil || !b.system {
		return st, err
	}
	return systemStore{st}, nil
}

// systemStore is a tenant store that claims to be the bootstrap tenant's.
type systemStore struct{ driver.TenantStore }

func (s systemStore) Tenant() docex.Tenant {
	t := s.TenantStore.Tenant()
	t.IsSystem = true
	return t
}

// TestOpenRefusesWrongTenantAndAuditsFailures: a store of another tenant
// (or the bootstrap tenant) is refused with docex.ErrWrongTenant, an
// internal error, never a denial; a backend I/O failure is audited as an
// error, not as "denied".
func TestOpenRefusesWrongTenantAndAuditsFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	real, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { real.Close() })
	be := &faultyBackend{Backend: real}
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content")}
	eng := startEngine(t, be, cfg, "acme", "globex")
	s := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	lastSystemOutcome := func() docex.AuditEntry {
		t.Helper()
		log, err := real.SystemAudit(ctx, docex.Page{Limit: 1})
		if err != nil || len(log) != 1 {
			t.Fatalf("system audit: %v %v", log, err)
		}
		return log[0]
	}
	cases := []struct {
		name    string
		swap    string
		system  bool
		fail    error
		want    error
		outcome string
	}{
		{"another tenant's store", "globex", false, nil, docex.ErrWrongTenant, docex.OutcomeError},
		{"a system tenant's store", "", true, nil, docex.ErrWrongTenant, docex.OutcomeError},
		{"an I/O failure", "", false, errors.New("disk on fire"), nil, docex.OutcomeError},
		{"an unknown tenant", "", false, docex.ErrTenantNotFound, docex.ErrTenantUnknown, docex.OutcomeDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be.swap, be.system, be.fail = c.swap, c.system, c.fail
			_, err := s.Baskets(ctx, docex.Page{})
			if err == nil {
				t.Fatal("no error")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.outcome == docex.OutcomeError && errors.Is(err, docex.ErrDenied) {
				t.Fatalf("err = %v: a backend fault is not a denial", err)
			}
			if e := lastSystemOutcome(); e.Outcome != c.outcome || e.Operation != "basket.list" {
				t.Fatalf("system audit %+v, want outcome %s", e, c.outcome)
			}
		})
	}
	if docex.Code(docex.ErrWrongTenant) != "wrong_tenant" || docex.KindOf(docex.ErrWrongTenant) != nil {
		t.Fatal("ErrWrongTenant must be an internal error (no kind)")
	}
}
