package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// VerifyReport is what TenantProvisioner.Verify checked and found damaged.
type VerifyReport struct {
	Tenants []string        `json:"tenants"` // the tenants scrubbed ("" is the local store)
	Objects int64           `json:"objects"` // stored contents read back
	Bytes   int64           `json:"bytes"`   // bytes read back
	Damaged []DamagedObject `json:"damaged"` // empty when everything matched
}

// DamagedObject is stored content that does not match what the documents
// referring to it recorded.
type DamagedObject struct {
	Tenant    string   `json:"tenant"`
	Checksum  string   `json:"checksum"`
	Size      int64    `json:"size"`      // the size the documents recorded
	Problem   string   `json:"problem"`   // "missing" or "corrupt"
	Error     string   `json:"error"`     // what the store said
	Documents []string `json:"documents"` // ids of the documents referring to it
}

// verifyPage is how many document references Verify reads per query.
const verifyPage = 1000

// Verify scrubs stored content: every content object that a document of
// the tenant (tenantID, or every tenant when it is "", or the local store
// without multi-tenancy) refers to is read back in full through the
// content store, which checks its size and SHA-256 (the store's Open
// contract, so every store, S3 included, is verified the same way). It is
// the answer to bit rot, to tampering, and to fsync: false after a power
// loss. Damaged objects are listed in the report; the error is for
// failures to verify at all (ctx, I/O on the database, and, as with
// Sweep, a content store not claimed by this system: docex.ErrNotInitialized
// or docex.ErrInvalidConfig). Suspended tenants
// are verified too. It is an operator action, recorded in the system audit
// log (system.verify), also when interrupted (outcome error).
func (p *TenantProvisioner) Verify(ctx context.Context, tenantID string) (VerifyReport, error) {
	rep := VerifyReport{Tenants: []string{}, Damaged: []DamagedObject{}}
	if p.e.closed.Load() {
		return rep, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return rep, err
	}
	err := p.verify(ctx, tenantID, &rep)
	if ctx.Err() != nil { // interrupted, even if what it was doing ended
		err = interruptedErr(err, ctx.Err())
	}
	detail := map[string]any{"tenants": len(rep.Tenants), "objects": rep.Objects, "bytes": rep.Bytes, "damaged": len(rep.Damaged)}
	e := p.entry("system.verify", tenantID, auditedErr(ctx, err))
	e.Detail = detail
	return rep, p.auditEntry(ctx, e, err)
}

// operandTenants returns the stores an operator command over TENANT
// works on: tenantID alone, every registered tenant but the bootstrap one
// when it is "", or the local store ("") without multi-tenancy. It returns
// docex.ErrMultiTenancyOff for a tenant given in single-tenant mode,
// docex.ErrBootstrapTenant for the bootstrap tenant, docex.ErrInvalidID
// for an invalid id, or the registry's error.
func (p *TenantProvisioner) operandTenants(ctx context.Context, tenantID string) ([]string, error) {
	switch {
	case !p.e.cfg.MultiTenancy:
		if tenantID != "" {
			return nil, docex.Errorf(docex.ErrMultiTenancyOff, "tenant %q given, but multi-tenancy is disabled", tenantID)
		}
		return []string{""}, nil
	case tenantID != "":
		if tenantID == p.e.cfg.BootstrapTenantID {
			return nil, docex.Errorf(docex.ErrBootstrapTenant, "the bootstrap tenant stores no documents")
		}
		if err := tenancy.ValidateSyntax(tenantID); err != nil {
			return nil, err
		}
		return []string{tenantID}, nil
	}
	tenants, err := p.e.be.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, t := range tenants {
		if !t.IsSystem {
			ids = append(ids, t.ID)
		}
	}
	return ids, nil
}

func (p *TenantProvisioner) verify(ctx context.Context, tenantID string, rep *VerifyReport) error {
	ids, err := p.operandTenants(ctx, tenantID)
	if err != nil {
		return err
	}
	// A content store that is not this system's (storage.documents
	// changed after init) would list every document as missing.
	if err := p.e.checkClaim(ctx); err != nil {
		return err
	}
	return p.eachTenant(ctx, ids, tenantID == "", "verify", func(id string, st driver.TenantStore) error {
		if err := p.verifyTenant(ctx, st, rep); err != nil {
			return err
		}
		rep.Tenants = append(rep.Tenants, id)
		return nil
	})
}

// eachTenant runs fn on the store of each tenant of ids, one after
// another, and closes it after fn. With all (the command named no
// tenant), a tenant deleted since ids were read is skipped. It returns
// the error of opening a store, or fn's wrapped as "<verb> tenant ID",
// and stops there.
func (p *TenantProvisioner) eachTenant(ctx context.Context, ids []string, all bool, verb string, fn func(id string, st driver.TenantStore) error) error {
	for _, id := range ids {
		st, err := p.e.be.OpenTenant(ctx, id)
		if errors.Is(err, docex.ErrTenantNotFound) && all {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		err = fn(id, st)
		st.Close()
		if err != nil {
			return fmt.Errorf("%s tenant %q: %w", verb, id, err)
		}
	}
	return nil
}

// verifyTenant reads back every distinct content the tenant's documents
// refer to, once.
func (p *TenantProvisioner) verifyTenant(ctx context.Context, st driver.TenantStore, rep *VerifyReport) error {
	tc, err := p.e.tenantContent(st.Tenant())
	if err != nil {
		return err
	}
	var cur *DamagedObject // the object being gathered: its documents
	check := func(d *DamagedObject) error {
		if d == nil {
			return nil
		}
		rc, err := tc.Open(ctx, st, d.Checksum, d.Size)
		var n int64
		if err == nil {
			n, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		rep.Objects++
		rep.Bytes += n
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, docex.ErrNotFound):
			d.Problem = "missing"
		case errors.Is(err, docex.ErrCorrupt):
			d.Problem = "corrupt"
		default:
			return err // could not read: not a verdict on the content
		}
		d.Error = err.Error()
		rep.Damaged = append(rep.Damaged, *d)
		return nil
	}
	afterSum, afterID := "", ""
	for {
		refs, err := st.ContentRefsAfter(ctx, afterSum, afterID, verifyPage)
		if err != nil {
			return err
		}
		for _, r := range refs {
			if cur != nil && r.Checksum == cur.Checksum && r.Size == cur.Size {
				cur.Documents = append(cur.Documents, r.DocumentID)
				continue
			}
			if err := check(cur); err != nil {
				return err
			}
			cur = &DamagedObject{Tenant: st.Tenant().ID, Checksum: r.Checksum, Size: r.Size, Documents: []string{r.DocumentID}}
		}
		if len(refs) < verifyPage {
			return check(cur)
		}
		afterSum, afterID = refs[len(refs)-1].Checksum, refs[len(refs)-1].DocumentID
	}
}
