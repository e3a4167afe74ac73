package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

// TenantProvisioner creates and manages tenants. Its operations act as the
// system (the operator), need no UserContext and are recorded in the system
// audit log with the actor given to Engine.Provisioner.
type TenantProvisioner struct {
	e     *Engine
	actor string
}

// Provisioner returns the tenant provisioner; actor is recorded in the
// system audit log ("system" when empty).
func (e *Engine) Provisioner(actor string) *TenantProvisioner {
	if actor == "" {
		actor = "system"
	}
	return &TenantProvisioner{e: e, actor: actor}
}

// MaxDisplayNameLen bounds tenant display names (bytes).
const MaxDisplayNameLen = 256

func (p *TenantProvisioner) check() error {
	if p.e.closed.Load() {
		return docex.ErrClosed
	}
	if !p.e.cfg.MultiTenancy {
		return docex.ErrMultiTenancyOff
	}
	return tenancy.ValidateUserID(p.actor)
}

// entry returns the system audit entry of an operator action with the
// outcome of err (outcomeOf): ok for a nil err, denied for a denial (the
// bootstrap tenant's refusals), error otherwise.
func (p *TenantProvisioner) entry(op, target string, err error) docex.AuditEntry {
	e := docex.AuditEntry{ID: newID(), Time: p.e.now(), UserID: p.actor, Roles: []string{"operator"}, Operation: op, Target: target, Outcome: outcomeOf(err)}
	if err != nil {
		e.Error = err.Error()
	}
	return auditSafe(e)
}

// audit records an operator action in the system audit log, also when
// interrupted (ctx ended: recorded as such, auditedErr, the write bounded
// by auditGrace). It returns err (with ctx's error when interrupted),
// joined with the audit write's error when the entry could not be
// written: an operator action is never left unaudited silently.
func (p *TenantProvisioner) audit(ctx context.Context, op, target string, err error) error {
	return p.auditEntry(ctx, p.entry(op, target, auditedErr(ctx, err)), err)
}

// auditEntry writes e, the system audit entry of an operator action that
// ended with err under ctx (e's error is auditedErr's), as audit does.
func (p *TenantProvisioner) auditEntry(ctx context.Context, e docex.AuditEntry, err error) error {
	if err != nil && ctx.Err() != nil {
		err = interruptedErr(err, ctx.Err())
	}
	actx, cancel := auditContext(ctx)
	defer cancel()
	return withAuditErr(err, p.e.be.AppendSystemAudit(actx, e))
}

// RecordInit writes the system audit entry of an initialisation that
// created the system (docex init: operation "system.init", by the
// provisioner's actor), its last step: on a driver.InitTracker backend it
// marks the initialisation BeginInit started finished, in the same
// transaction. It returns the audit write's error; the initialisation
// then stays unfinished.
func (p *TenantProvisioner) RecordInit(ctx context.Context) error {
	if p.e.closed.Load() {
		return docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return err // also in single-file mode, which has a system log but no tenants
	}
	tr, ok := p.e.be.(driver.InitTracker)
	if !ok {
		return p.audit(ctx, "system.init", "", nil)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tr.FinishInit(ctx, p.entry("system.init", "", nil)); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// change runs a registry change that commits its own audit entry (the
// backend writes it in the change's transaction); a failed change is
// recorded as such afterwards.
func (p *TenantProvisioner) change(ctx context.Context, op, target string, fn func(e docex.AuditEntry) error) error {
	if err := fn(p.entry(op, target, nil)); err != nil {
		return p.audit(ctx, op, target, err)
	}
	return nil
}

// Create provisions a tenant: its isolation boundary and its registry
// entry, all or nothing. It returns docex.ErrInvalidID for an invalid id,
// docex.ErrInvalid for a bad display name, docex.ErrTenantExists when the id
// is taken (including the bootstrap tenant's id). Every refusal and failure
// is recorded in the system audit log, as the creation is.
func (p *TenantProvisioner) Create(ctx context.Context, id, displayName string) (docex.Tenant, error) {
	if err := p.check(); err != nil {
		return docex.Tenant{}, err
	}
	if displayName == "" {
		displayName = id
	}
	// A refused create is audited like a failed one (tenant_exists for
	// the bootstrap tenant's id: outcome error).
	if err := p.checkNew(id, displayName); err != nil {
		return docex.Tenant{}, p.audit(ctx, "tenant.create", id, err)
	}
	t := docex.Tenant{
		ID: id, DisplayName: displayName, Status: docex.TenantActive,
		CreatedAt: p.e.now(), Incarnation: uuid.NewString(),
	}
	err := p.change(ctx, "tenant.create", id, func(e docex.AuditEntry) error { return p.e.be.CreateTenant(ctx, t, e) })
	if err != nil {
		return docex.Tenant{}, err
	}
	return p.e.be.Tenant(ctx, id)
}

// checkNew returns the error of creating tenant id with displayName
// before the registry is asked: docex.ErrTenantExists for the bootstrap
// tenant's id, docex.ErrInvalidID, docex.ErrInvalid.
func (p *TenantProvisioner) checkNew(id, displayName string) error {
	if id == p.e.cfg.BootstrapTenantID {
		return docex.Errorf(docex.ErrTenantExists, "tenant %q is the bootstrap tenant", id)
	}
	if err := tenancy.ValidateTenantID(id); err != nil {
		return err
	}
	return validateText("display name", displayName, MaxDisplayNameLen)
}

// checkExisting returns the error of changing the status of tenant id, or
// deleting it, before the registry is asked: docex.ErrBootstrapTenant (a
// denial) for the bootstrap tenant, docex.ErrInvalidID for an id no
// tenant can have.
func (p *TenantProvisioner) checkExisting(id, what string) error {
	if id == p.e.cfg.BootstrapTenantID {
		return docex.Errorf(docex.ErrBootstrapTenant, "the bootstrap tenant cannot be %s", what)
	}
	return tenancy.ValidateSyntax(id)
}

// Get returns a tenant (the bootstrap tenant too), or docex.ErrTenantNotFound.
func (p *TenantProvisioner) Get(ctx context.Context, id string) (docex.Tenant, error) {
	if err := p.check(); err != nil {
		return docex.Tenant{}, err
	}
	if id != p.e.cfg.BootstrapTenantID {
		if err := tenancy.ValidateSyntax(id); err != nil {
			return docex.Tenant{}, err
		}
	}
	return p.e.be.Tenant(ctx, id)
}

// List returns all tenants, the bootstrap tenant included, ordered by id.
func (p *TenantProvisioner) List(ctx context.Context) ([]docex.Tenant, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return p.e.be.Tenants(ctx)
}

// Suspend makes every runtime operation of the tenant fail with
// docex.ErrTenantSuspended until Resume. It returns docex.ErrTenantNotFound
// for an unknown tenant, docex.ErrInvalidID for a malformed id and
// docex.ErrBootstrapTenant (a docex.ErrDenied) for the bootstrap tenant;
// each is recorded in the system audit log (the last with outcome denied),
// as the suspension is. It waits for the tenant's writes in flight, as
// long as the backend's lock timeout: past it, an error matching
// docex.ErrStorageUnavailable (on PostgreSQL nothing changed; on SQLite,
// sqlite.ErrLockTimeout, the tenant is suspended all the same, and the
// write in flight may still commit).
func (p *TenantProvisioner) Suspend(ctx context.Context, id string) error {
	return p.setStatus(ctx, "tenant.suspend", id, docex.TenantSuspended)
}

// Resume reactivates a suspended tenant. Errors as for Suspend.
func (p *TenantProvisioner) Resume(ctx context.Context, id string) error {
	return p.setStatus(ctx, "tenant.resume", id, docex.TenantActive)
}

func (p *TenantProvisioner) setStatus(ctx context.Context, op, id string, st docex.TenantStatus) error {
	if err := p.check(); err != nil {
		return err
	}
	// Refused, audited (the bootstrap tenant: outcome denied).
	if err := p.checkExisting(id, "suspended, resumed or deleted"); err != nil {
		return p.audit(ctx, op, id, err)
	}
	err := p.change(ctx, op, id, func(e docex.AuditEntry) error { return p.e.be.SetTenantStatus(ctx, id, st, e) })
	// Suspended all the same when the backend gave up waiting for a
	// write in flight (SQLite's lock timeout: storage_unavailable).
	if st != docex.TenantActive && (err == nil || errors.Is(err, docex.ErrStorageUnavailable)) {
		if t, terr := p.e.be.Tenant(ctx, id); terr == nil {
			p.e.releaseTenantPlugins(ctx, t) // no idle instance outlives the suspension
		}
	}
	return err
}

// Delete removes a tenant, its database and its content. The id can be
// provisioned again afterwards, cleanly. Errors as for Suspend, and the
// content store's error, having deleted nothing, when the store cannot
// remove content now (S3 unreachable: driver.ContentProber). A failure
// to remove the content once the tenant is removed is not Delete's
// error (Sweep removes what it left); DeleteReport returns it.
func (p *TenantProvisioner) Delete(ctx context.Context, id string) error {
	_, err := p.DeleteReport(ctx, id)
	return err
}

// TenantDeletion is what DeleteReport did beyond removing the tenant.
type TenantDeletion struct {
	// ContentError is the content store's error when removing the
	// tenant's content failed after the tenant was removed (the store
	// failing partway through, S3 going away), nil when it all went: the
	// deletion stands, and Sweep (docex gc) removes what is left.
	ContentError error
	// WaitError is the backend's error when it gave up waiting for the
	// tenant's write in flight and deleted the tenant all the same
	// (driver.DeleteWaitError: on SQLite, a process held the tenant
	// database's write lock for longer than Config.LockTimeout, an error
	// matching sqlite.ErrLockTimeout that names it), nil otherwise.
	WaitError error
}

// DeleteReport is Delete, and reports a failure to remove the tenant's
// content after the tenant was removed (TenantDeletion.ContentError) and
// a deletion that did not wait for the tenant's write in flight
// (TenantDeletion.WaitError), which Delete does not.
func (p *TenantProvisioner) DeleteReport(ctx context.Context, id string) (TenantDeletion, error) {
	if err := p.check(); err != nil {
		return TenantDeletion{}, err
	}
	if err := p.checkExisting(id, "deleted"); err != nil {
		return TenantDeletion{}, p.audit(ctx, "tenant.delete", id, err)
	}
	t, err := p.e.be.Tenant(ctx, id)
	if err != nil {
		return TenantDeletion{}, p.audit(ctx, "tenant.delete", id, err)
	}
	if err := p.e.probeContent(ctx); err != nil {
		return TenantDeletion{}, p.audit(ctx, "tenant.delete", id, err)
	}
	var waitErr error
	if err := p.change(ctx, "tenant.delete", id, func(e docex.AuditEntry) error {
		err := p.e.be.DeleteTenant(ctx, id, e)
		if we := (*driver.DeleteWaitError)(nil); errors.As(err, &we) {
			waitErr, err = we.Err, nil // deleted all the same
		}
		return err
	}); err != nil {
		return TenantDeletion{}, err
	}
	p.e.forgetTenant(id)
	p.e.releaseTenantPlugins(ctx, t)
	// Only this incarnation's content: a tenant provisioned again with the
	// same id meanwhile has a namespace of its own. A crash or a failure
	// here leaves content that Sweep removes.
	return TenantDeletion{ContentError: p.e.content.DeleteTenant(ctx, id, t.Incarnation), WaitError: waitErr}, nil
}

// SystemAudit lists the system audit log, newest first. Reading it is an
// operator action, recorded in that log itself (system.audit.list) before
// the read, in single-tenant mode too. It returns docex.ErrInvalid for a
// bad page, and the audit write's error, with no entries, when the read
// could not be recorded.
func (p *TenantProvisioner) SystemAudit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error) {
	if p.e.closed.Load() {
		return nil, docex.ErrClosed
	}
	if err := tenancy.ValidateUserID(p.actor); err != nil {
		return nil, err
	}
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	e := p.entry("system.audit.list", "", nil)
	e.Detail = map[string]any{"limit": page.Limit, "offset": page.Offset}
	if err := p.e.be.AppendSystemAudit(ctx, e); err != nil {
		return nil, withAuditErr(nil, err)
	}
	return p.e.be.SystemAudit(ctx, page)
}

// validateText checks a user-supplied label (tenancy.ValidateLabel): valid
// UTF-8, no control characters, 1..max bytes. It returns docex.ErrInvalid.
func validateText(what, s string, max int) error { return tenancy.ValidateLabel(what, s, max) }
