package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/tenancy"
)

// SweepReport lists what Sweep removed.
type SweepReport struct {
	// Storage is backend storage no tenant refers to (tenant files of
	// crashed provisioning or deletion).
	Storage []string `json:"storage"`
	// ContentDirs are content namespaces (directories, object prefixes) of
	// deleted tenants or of old incarnations of a tenant id.
	ContentDirs []string `json:"content_dirs"`
	// ContentFiles is the number of unreferenced content files or objects
	// and stale staging leftovers removed.
	ContentFiles int `json:"content_files"`
	// Packs is the number of pack files (filesystem storage) removed:
	// packs no document refers to (a crash between writing a pack and
	// committing its documents, or all their documents deleted), and
	// packs less than half referenced, whose live content was first
	// rewritten into a new pack.
	Packs int `json:"packs"`
}

// Sweep finds and removes what a crash can leave behind: unregistered
// tenant storage, content of deleted tenants, content no document refers
// to, temporary files. Files younger than grace are left alone, since an
// operation in flight may be about to use them (a grace of an hour is safe;
// 0 is only for a quiet system). It is an operator action, recorded in the
// system audit log.
func (p *TenantProvisioner) Sweep(ctx context.Context, grace time.Duration) (SweepReport, error) {
	rep := SweepReport{Storage: []string{}, ContentDirs: []string{}}
	if p.e.closed.Load() {
		return rep, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return rep, err
	}
	err := p.sweep(ctx, grace, &rep)
	return rep, p.audit(ctx, "system.sweep", fmt.Sprintf("storage=%d dirs=%d files=%d packs=%d", len(rep.Storage), len(rep.ContentDirs), rep.ContentFiles, rep.Packs), err)
}

func (p *TenantProvisioner) sweep(ctx context.Context, grace time.Duration, rep *SweepReport) error {
	e := p.e
	if sw, ok := e.be.(driver.Sweeper); ok {
		removed, err := sw.Sweep(ctx, false)
		if err != nil {
			return err
		}
		rep.Storage = append(rep.Storage, removed...)
	}
	if e.content.InTransaction() {
		return nil // content commits and rolls back with its references
	}
	cutoff := time.Now().Add(-grace)
	if !e.cfg.MultiTenancy {
		st, err := e.be.OpenTenant(ctx, "")
		if err != nil {
			return err
		}
		defer st.Close()
		return p.sweepContent(ctx, st, cutoff, rep)
	}
	tenants, err := e.be.Tenants(ctx)
	if err != nil {
		return err
	}
	live := map[string]string{}
	for _, t := range tenants {
		if !t.IsSystem {
			live[t.ID] = t.Incarnation
		}
	}
	// Content of deleted tenants and old incarnations. An incarnation that
	// is not the registered one never becomes registered again (each
	// provisioning draws a new one), so what the registry does not name is
	// dead; the registry is asked again for tenants created since the
	// listing above.
	err = e.content.Incarnations(ctx, func(si driver.StoredIncarnation) error {
		if live[si.TenantID] == si.Incarnation || si.ModTime.After(cutoff) {
			return nil
		}
		t, err := e.be.Tenant(ctx, si.TenantID)
		if err == nil && t.Incarnation == si.Incarnation {
			return nil
		}
		if err != nil && !errors.Is(err, docex.ErrTenantNotFound) {
			return err
		}
		if e.content.DeleteTenant(ctx, si.TenantID, si.Incarnation) == nil {
			rep.ContentDirs = append(rep.ContentDirs, si.Location)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Unreferenced content of live tenants.
	for _, t := range tenants {
		if t.IsSystem {
			continue
		}
		st, err := e.be.OpenTenant(ctx, t.ID)
		if err != nil {
			if errors.Is(err, docex.ErrTenantNotFound) {
				continue // deleted meanwhile
			}
			return err
		}
		err = p.sweepContent(ctx, st, cutoff, rep)
		st.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// sweepContent removes the tenant's staging leftovers and the content no
// document refers to, both older than cutoff.
func (p *TenantProvisioner) sweepContent(ctx context.Context, st driver.TenantStore, cutoff time.Time, rep *SweepReport) error {
	tc, err := p.e.tenantContent(st.Tenant())
	if err != nil {
		return err
	}
	cleaned, err := tc.Clean(ctx, cutoff, false)
	rep.ContentFiles += len(cleaned)
	if err != nil {
		return err
	}
	if ps, ok := tc.(blobstore.PackSweeper); ok {
		n, err := ps.SweepPacks(ctx, st, cutoff, false)
		rep.Packs += n
		if err != nil {
			return err
		}
	}
	// Listed contents are released releaseBatch at a time.
	var batch []string
	release := func() error {
		n, err := releaseUnreferenced(ctx, st, tc, batch)
		rep.ContentFiles += n
		batch = batch[:0]
		return err
	}
	err = tc.List(ctx, cutoff, func(sum string) error {
		if batch = append(batch, sum); len(batch) < releaseBatch {
			return nil
		}
		return release()
	})
	if err != nil || len(batch) == 0 {
		return err
	}
	return release()
}
