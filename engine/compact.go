package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// CompactReport is what TenantProvisioner.Compact did: the databases it
// rewrote and their sizes.
type CompactReport struct {
	Tenants     []CompactedTenant `json:"tenants"`      // in id order ("" is the local store)
	BytesBefore int64             `json:"bytes_before"` // the sum over Tenants
	BytesAfter  int64             `json:"bytes_after"`  // the sum over Tenants
}

// CompactedTenant is one tenant's database compacted: its size in bytes
// before and after (SQLite: the file's pages; PostgreSQL: the schema's
// tables with their TOAST and indexes).
type CompactedTenant struct {
	Tenant      string `json:"tenant"`
	BytesBefore int64  `json:"bytes_before"`
	BytesAfter  int64  `json:"bytes_after"`
}

// Compact gives the space that deletions freed in tenant databases back
// to the file system (docs/jobs.md, "Retention"): SQLite runs VACUUM on
// the tenant's file, PostgreSQL VACUUM (FULL) on the tables of its schema.
// It works on tenantID, or on every tenant when it is "" (suspended ones
// too; the local store without multi-tenancy), one after another; while a
// tenant is compacted its writes wait (on PostgreSQL its reads too).
// Document content in files or S3 is not touched; content stored in the
// database is. It is an operator action, recorded in the system audit log
// (system.compact) with the sizes, also when interrupted (outcome error,
// the sizes of the tenants compacted before). It returns docex.ErrMultiTenancyOff,
// docex.ErrBootstrapTenant, docex.ErrInvalidID or docex.ErrTenantNotFound
// for a TENANT it cannot compact, and the database's error; the report
// then lists the tenants compacted before it.
func (p *TenantProvisioner) Compact(ctx context.Context, tenantID string) (CompactReport, error) {
	rep := CompactReport{Tenants: []CompactedTenant{}}
	if p.e.closed.Load() {
		return rep, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return rep, err
	}
	err := p.compact(ctx, tenantID, &rep)
	if ctx.Err() != nil { // interrupted, even if what it was doing ended
		err = interruptedErr(err, ctx.Err())
	}
	// Interrupted too: the tenants compacted before stay compacted, and
	// the entry says which sizes changed.
	e := p.entry("system.compact", tenantID, auditedErr(ctx, err))
	e.Detail = map[string]any{"tenants": len(rep.Tenants), "bytes_before": rep.BytesBefore, "bytes_after": rep.BytesAfter}
	return rep, p.auditEntry(ctx, e, err)
}

func (p *TenantProvisioner) compact(ctx context.Context, tenantID string, rep *CompactReport) error {
	ids, err := p.operandTenants(ctx, tenantID)
	if err != nil {
		return err
	}
	return p.eachTenant(ctx, ids, tenantID == "", "compact", func(id string, st driver.TenantStore) error {
		cp, ok := st.(driver.Compactor)
		if !ok {
			return fmt.Errorf("the %T store cannot compact", st)
		}
		c, err := cp.Compact(ctx)
		if errors.Is(err, docex.ErrTenantUnknown) && tenantID == "" {
			return nil // deleted while being compacted
		}
		if err != nil {
			return err
		}
		rep.Tenants = append(rep.Tenants, CompactedTenant{Tenant: id, BytesBefore: c.Before, BytesAfter: c.After})
		rep.BytesBefore += c.Before
		rep.BytesAfter += c.After
		return nil
	})
}
