package backendtest

import (
	"fmt"
	"testing"

	"github.com/docex-dev/docex"
)

// testRegistryRefusalsAudited: every refusal of a registry change is in
// the system audit log, the bootstrap tenant's too (docs/isolation.md):
// suspend, resume and delete of it are denials (outcome denied), a create
// of its id a conflict (outcome error), as a create of an existing
// tenant is. They wrote nothing before.
func (f *fixture) testRegistryRefusalsAudited(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	p := e.eng.Provisioner("ops")
	_, cerr := p.Create(bg, "system", "")
	_, aerr := p.Create(bg, "acme", "")
	_, berr := p.Create(bg, "Bad!", "")
	tests := []struct {
		op, target, outcome string
		err                 error
		want                error
	}{
		{"tenant.suspend", "system", docex.OutcomeDenied, p.Suspend(bg, "system"), docex.ErrBootstrapTenant},
		{"tenant.resume", "system", docex.OutcomeDenied, p.Resume(bg, "system"), docex.ErrBootstrapTenant},
		{"tenant.delete", "system", docex.OutcomeDenied, p.Delete(bg, "system"), docex.ErrBootstrapTenant},
		{"tenant.create", "system", docex.OutcomeError, cerr, docex.ErrTenantExists},
		{"tenant.create", "acme", docex.OutcomeError, aerr, docex.ErrTenantExists},
		{"tenant.create", "Bad!", docex.OutcomeError, berr, docex.ErrInvalidID},
		{"tenant.suspend", "Bad!", docex.OutcomeError, p.Suspend(bg, "Bad!"), docex.ErrInvalidID},
		{"tenant.suspend", "nope", docex.OutcomeError, p.Suspend(bg, "nope"), docex.ErrTenantNotFound},
	}
	sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 100})
	must(t, err)
	for _, c := range tests {
		t.Run(fmt.Sprintf("%s %s", c.op, c.target), func(t *testing.T) {
			wantErr(t, c.err, c.want)
			for _, a := range sys {
				if a.Operation == c.op && a.Target == c.target && a.Outcome != docex.OutcomeOK {
					if a.Outcome != c.outcome || a.Error != c.err.Error() || a.UserID != "ops" {
						t.Errorf("entry %+v; want outcome %s, error %q, user ops", a, c.outcome, c.err)
					}
					return
				}
			}
			t.Errorf("refusal %q not in the system audit log", c.err)
		})
	}
}
