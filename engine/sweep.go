package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/tenancy"
)

// SweepReport lists what Sweep removed, or with SweepOptions.DryRun what
// it would remove.
type SweepReport struct {
	// DryRun is set when nothing was removed: the report lists what a
	// sweep would have removed at that moment.
	DryRun bool `json:"dry_run"`
	// Storage is backend storage no tenant refers to (tenant files of
	// crashed provisioning or deletion).
	Storage []string `json:"storage"`
	// ContentDirs are content namespaces (directories, object prefixes) of
	// deleted tenants or of old incarnations of a tenant id.
	ContentDirs []string `json:"content_dirs"`
	// ContentDirsLeft are content namespaces of deleted tenants or old
	// incarnations that the sweep found but could not remove (the content
	// store failed the removal or the listing under them), each with the
	// store's error. They stay dead: the next sweep removes them once the
	// store works. When it is not empty, Sweep returns an error matching
	// docex.ErrStorageUnavailable.
	ContentDirsLeft []SweepLeft `json:"content_dirs_left"`
	// ContentFiles is the number of unreferenced content files or objects
	// and stale staging leftovers removed (what TenantContent.Clean names:
	// staging files; with S3, spool files and aborted multipart uploads),
	// and of content rows no document refers to (database content, and
	// the locators of packed filesystem content).
	ContentFiles int `json:"content_files"`
	// Packs is the number of pack files (filesystem storage) removed:
	// packs no document refers to (a crash between writing a pack and
	// committing its documents, or all their documents deleted), and
	// packs less than half referenced, whose live content was first
	// rewritten into a new pack.
	Packs int `json:"packs"`
	// CompiledModules is the number of modules removed from the plugin
	// compilation cache (sandbox.cache_dir): modules no tenant and no
	// system-wide plugin has installed any more (a deleted tenant's, a
	// replaced or removed plugin's), entries of an older docex or wazero,
	// and compiled code of no known module. It stays 0 without a runtime
	// that keeps such a cache (CachePruner).
	CompiledModules int `json:"compiled_modules"`
}

// SweepLeft is a content namespace a Sweep could not remove.
type SweepLeft struct {
	// Location names it as the content store does (a directory, an
	// s3://BUCKET/PREFIX/).
	Location string `json:"location"`
	// Error is the content store's error.
	Error string `json:"error"`
}

// SweepOptions are the settings of a Sweep.
type SweepOptions struct {
	// Grace is how old a file must be for Sweep to remove it: younger
	// files are left alone, since an operation in flight may be about to
	// use them. An hour is safe; 0 is only for a quiet system. Content rows
	// in the database have no age: they are removed when unreferenced. A
	// backend may keep files longer (driver.Sweeper: SQLite staging files
	// stay until twice its busy timeout) and removes files it proves
	// orphaned under a lock at any age (SQLite's unregistered tenant files).
	Grace time.Duration
	// DryRun removes nothing: no file, pack, object or tenant storage is
	// removed or rewritten, and the report lists what a sweep would
	// remove at that moment.
	DryRun bool
}

// Sweep finds and removes what a crash can leave behind: unregistered
// tenant storage, content of deleted tenants, content no document refers
// to, temporary files. It is an operator action, recorded in the system
// audit log: as system.sweep, or as system.sweep.dry_run for a dry run
// (which lists the counts it would remove). It fails closed: before
// anything, it checks that a content store outside the database carries
// this system's claim marker (driver.Claimer) and removes nothing when
// the marker is absent or the system has no id (docex.ErrNotInitialized:
// run docex init) or names another system (docex.ErrInvalidConfig), since
// another system's tenant namespaces would otherwise look like those of
// deleted tenants. It returns docex.ErrInvalid for a negative grace, docex.ErrClosed after Close, and a partial report
// with the error when the sweep stops half way. A content namespace of a
// deleted tenant or old incarnation that the store fails to remove does
// not stop it: the sweep goes on, lists it in ContentDirsLeft and then
// returns the report with an error matching docex.ErrStorageUnavailable
// that names it (the next sweep removes it).
func (p *TenantProvisioner) Sweep(ctx context.Context, opts SweepOptions) (SweepReport, error) {
	rep := SweepReport{DryRun: opts.DryRun, Storage: []string{}, ContentDirs: []string{}, ContentDirsLeft: []SweepLeft{}}
	if p.e.closed.Load() {
		return rep, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return rep, err
	}
	if opts.Grace < 0 {
		return rep, docex.Errorf(docex.ErrInvalid, "sweep grace %v is negative", opts.Grace)
	}
	sw := sweepRun{p: p, opts: opts, cutoff: time.Now().Add(-opts.Grace), cleaned: map[string]bool{}, keep: map[string]bool{}, rep: &rep}
	err := sw.sweep(ctx)
	if err == nil && len(rep.ContentDirsLeft) > 0 {
		err = leftError(rep.ContentDirsLeft)
	}
	op := "system.sweep"
	if opts.DryRun {
		op = "system.sweep.dry_run"
	}
	target := fmt.Sprintf("storage=%d dirs=%d files=%d packs=%d", len(rep.Storage), len(rep.ContentDirs), rep.ContentFiles, rep.Packs)
	if rep.CompiledModules > 0 {
		target += fmt.Sprintf(" compiled=%d", rep.CompiledModules)
	}
	if len(rep.ContentDirsLeft) > 0 {
		target += fmt.Sprintf(" dirs_left=%d", len(rep.ContentDirsLeft))
	}
	return rep, p.audit(ctx, op, target, err)
}

// leftError is the error of a sweep that could not remove the content
// namespaces left: storage_unavailable, whatever the store's errors (each
// is in the report), naming the first.
func leftError(left []SweepLeft) error {
	more := ""
	if len(left) > 1 {
		more = fmt.Sprintf(" and %d more", len(left)-1)
	}
	return docex.Errorf(docex.ErrStorageUnavailable,
		"could not remove %d stale content directories (of deleted tenants or old incarnations): %s%s: %s; they are left for the next docex gc, which removes them once the content store works",
		len(left), left[0].Location, more, left[0].Error)
}

// sweepRun is one Sweep.
type sweepRun struct {
	p      *TenantProvisioner
	opts   SweepOptions
	cutoff time.Time
	// cleaned are the staging leftovers counted: one shared by
	// namespaces (a spool directory) is counted once.
	cleaned map[string]bool
	// keep are the modules of installed plugins, by sha256.
	keep map[string]bool
	rep  *SweepReport
}

func (sw *sweepRun) sweep(ctx context.Context) error {
	e, rep := sw.p.e, sw.rep
	if err := e.checkClaim(ctx); err != nil {
		return err
	}
	if sc, ok := e.content.(driver.StoreCleaner); ok {
		// The store's own leftovers (S3: a killed docex init's check
		// objects), counted with the staging leftovers.
		names, err := sc.CleanStore(ctx, sw.cutoff, sw.opts.DryRun)
		for _, name := range names {
			if !sw.cleaned[name] {
				sw.cleaned[name] = true
				rep.ContentFiles++
			}
		}
		if err != nil {
			return err
		}
	}
	if bs, ok := e.be.(driver.Sweeper); ok {
		removed, err := bs.Sweep(ctx, sw.opts.Grace, sw.opts.DryRun)
		if err != nil {
			return err
		}
		rep.Storage = append(rep.Storage, removed...)
	}
	if !e.cfg.MultiTenancy {
		st, err := e.be.OpenTenant(ctx, "")
		if err != nil {
			return err
		}
		defer st.Close()
		if err := sw.sweepContent(ctx, st); err != nil {
			return err
		}
		if err := sw.installed(ctx, st); err != nil {
			return err
		}
		return sw.sweepCache(ctx)
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
		if live[si.TenantID] == si.Incarnation || si.ModTime.After(sw.cutoff) {
			return nil
		}
		t, err := e.be.Tenant(ctx, si.TenantID)
		if err == nil && t.Incarnation == si.Incarnation {
			return nil
		}
		if err != nil && !errors.Is(err, docex.ErrTenantNotFound) {
			return err
		}
		if !sw.opts.DryRun {
			if err := e.content.DeleteTenant(ctx, si.TenantID, si.Incarnation); err != nil {
				if ctx.Err() != nil {
					return err
				}
				// Left for the next sweep, and said so.
				rep.ContentDirsLeft = append(rep.ContentDirsLeft, SweepLeft{Location: si.Location, Error: err.Error()})
				return nil
			}
		}
		rep.ContentDirs = append(rep.ContentDirs, si.Location)
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
		err = sw.sweepContent(ctx, st)
		if err == nil {
			err = sw.installed(ctx, st)
		}
		st.Close()
		if err != nil {
			return err
		}
	}
	return sw.sweepCache(ctx)
}

// installed adds the modules of the tenant's plugins to those the
// compilation cache keeps.
func (sw *sweepRun) installed(ctx context.Context, st driver.TenantStore) error {
	if _, ok := sw.p.e.cfg.Sandbox.(CachePruner); !ok {
		return nil
	}
	recs, err := st.Plugins().Plugins(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		sw.keep[r.ModuleSHA256] = true
	}
	return nil
}

// sweepCache removes from the plugin compilation cache what no installed
// plugin needs (CachePruner): the tenants' plugins were listed by
// installed, the system-wide ones are listed here. A plugin installed
// meanwhile is younger than the cutoff, or finds its module compiled
// again on its next load.
func (sw *sweepRun) sweepCache(ctx context.Context) error {
	cp, ok := sw.p.e.cfg.Sandbox.(CachePruner)
	if !ok {
		return nil
	}
	recs, err := sw.p.e.be.SystemPlugins().Plugins(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		sw.keep[r.ModuleSHA256] = true
	}
	n, err := cp.PruneCache(ctx, func(sum string) bool { return sw.keep[sum] }, sw.cutoff, sw.opts.DryRun)
	sw.rep.CompiledModules += n
	return err
}

// sweepContent removes the tenant's staging leftovers and the content no
// document refers to, both older than the cutoff (in a dry run: counts
// them).
func (sw *sweepRun) sweepContent(ctx context.Context, st driver.TenantStore) error {
	rep, dry := sw.rep, sw.opts.DryRun
	tc, err := sw.p.e.tenantContent(st.Tenant())
	if err != nil {
		return err
	}
	cleaned, err := tc.Clean(ctx, sw.cutoff, dry)
	for _, name := range cleaned {
		if !sw.cleaned[name] {
			sw.cleaned[name] = true
			rep.ContentFiles++
		}
	}
	if err != nil {
		return err
	}
	// Listed contents are released (in a dry run: counted) releaseBatch
	// at a time.
	var batch []string
	release := func() error {
		var n int
		var err error
		if dry {
			n, err = countUnreferenced(ctx, st, batch)
		} else {
			n, err = releaseUnreferenced(ctx, st, tc, batch)
		}
		rep.ContentFiles += n
		batch = batch[:0]
		return err
	}
	if ps, ok := tc.(blobstore.PackSweeper); ok {
		// The locator rows no document refers to (a delete killed between
		// its commit and the release of its content) go first, so that a
		// pack is removed after the rows that name it, never before.
		if err := sw.sweepContentRows(ctx, st, release, &batch); err != nil {
			return err
		}
		n, err := ps.SweepPacks(ctx, st, sw.cutoff, dry)
		rep.Packs += n
		if err != nil {
			return err
		}
	}
	err = tc.List(ctx, sw.cutoff, func(sum string) error {
		if batch = append(batch, sum); len(batch) < releaseBatch {
			return nil
		}
		return release()
	})
	if err == nil && len(batch) > 0 {
		err = release()
	}
	if err != nil || !sw.p.e.content.InTransaction() {
		return err
	}
	return sw.sweepContentRows(ctx, st, release, &batch)
}

// sweepContentRows releases (in a dry run: counts) the content rows in the
// tenant's database that no document refers to, whatever their age: a row
// (content stored in the database, or the locator of packed content on
// the filesystem) commits with the document that refers to it, so none is
// ever in flight, and it is released under its content lock once no
// document refers to it, as a delete releases it; an add in flight decides
// by the references under that lock, never by the row, and puts the row
// again. Such rows are left by a delete killed between its commit and the
// release of its content (docex doc delete --cascade, a basket's deletion),
// by older versions (before stop 37, two concurrent content updates on
// PostgreSQL could leave one) or by a write outside docex. A row whose
// name is not a checksum is left alone.
func (sw *sweepRun) sweepContentRows(ctx context.Context, st driver.TenantStore, release func() error, batch *[]string) error {
	l, ok := st.(driver.UnreferencedContentLister)
	if !ok {
		return nil
	}
	for after := ""; ; {
		sums, err := l.UnreferencedContents(ctx, after, releaseBatch)
		if err != nil || len(sums) == 0 {
			return err
		}
		after = sums[len(sums)-1]
		for _, sum := range sums {
			if contentkey.ValidChecksum(sum) {
				*batch = append(*batch, sum)
			}
		}
		if len(*batch) > 0 {
			if err := release(); err != nil {
				return err
			}
		}
		if len(sums) < releaseBatch {
			return nil
		}
	}
}

// countUnreferenced returns how many of the contents sums no document of
// the tenant refers to: those releaseUnreferenced would remove. It reads
// committed state and takes no lock, so it writes nothing.
func countUnreferenced(ctx context.Context, r driver.Reader, sums []string) (int, error) {
	n := 0
	for _, sum := range sums {
		refs, err := r.ContentRefs(ctx, sum)
		if err != nil {
			return n, err
		}
		if refs == 0 {
			n++
		}
	}
	return n, nil
}
