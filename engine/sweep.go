package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// SweepReport lists what Sweep removed.
type SweepReport struct {
	// Storage is backend storage no tenant refers to (tenant files of
	// crashed provisioning or deletion).
	Storage []string `json:"storage"`
	// ContentDirs are content directories of deleted tenants or of old
	// incarnations of a tenant id.
	ContentDirs []string `json:"content_dirs"`
	// ContentFiles is the number of unreferenced content files and stale
	// temporary files removed.
	ContentFiles int `json:"content_files"`
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
	err := p.sweep(ctx, grace, &rep)
	p.audit(ctx, "system.sweep", fmt.Sprintf("storage=%d dirs=%d files=%d", len(rep.Storage), len(rep.ContentDirs), rep.ContentFiles), err)
	return rep, err
}

func (p *TenantProvisioner) sweep(ctx context.Context, grace time.Duration, rep *SweepReport) error {
	e := p.e
	if sw, ok := e.be.(driver.Sweeper); ok {
		removed, err := sw.Sweep(ctx)
		if err != nil {
			return err
		}
		rep.Storage = append(rep.Storage, removed...)
	}
	if e.cfg.ContentStorage != ContentFilesystem {
		return nil
	}
	if !e.cfg.MultiTenancy {
		st, err := e.be.OpenTenant(ctx, "")
		if err != nil {
			return err
		}
		defer st.Close()
		return p.sweepContent(ctx, st, grace, rep)
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
	// Content directories of deleted tenants and old incarnations: only
	// directories named as the engine names them (see contentDir), never
	// anything else found there.
	root := e.tenantsContentDir()
	ids, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cutoff := time.Now().Add(-grace)
	for _, idEnt := range ids {
		id := idEnt.Name()
		if !idEnt.IsDir() || tenancy.ValidateSyntax(id) != nil {
			continue
		}
		incs, _ := os.ReadDir(filepath.Join(root, id))
		for _, inc := range incs {
			if inc.Name() == live[id] || !inc.IsDir() || !validIncarnation(inc.Name()) {
				continue
			}
			if info, err := inc.Info(); err != nil || info.ModTime().After(cutoff) {
				continue
			}
			dir, err := e.contentDir(docex.Tenant{ID: id, Incarnation: inc.Name()})
			if err != nil {
				continue
			}
			if err := os.RemoveAll(dir); err == nil {
				rep.ContentDirs = append(rep.ContentDirs, dir)
			}
		}
		os.Remove(filepath.Join(root, id)) // only if empty
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
		err = p.sweepContent(ctx, st, grace, rep)
		st.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *TenantProvisioner) sweepContent(ctx context.Context, st driver.TenantStore, grace time.Duration, rep *SweepReport) error {
	bs, err := p.e.blobStore(st.Tenant())
	if err != nil {
		return err
	}
	n, err := bs.Sweep(ctx, grace, func(sum string) (bool, error) {
		return releaseIfUnreferenced(ctx, st, bs, sum)
	})
	rep.ContentFiles += n
	return err
}
