package tenancy

import (
	"context"
	"slices"

	"github.com/docex-dev/docex"
)

// Action is something a user asks to do inside a tenant.
type Action string

// Actions checked by the engine.
const (
	ActionRead          Action = "read"          // get/list/find/read documents, baskets, metadata
	ActionWrite         Action = "write"         // create baskets; add/update/delete documents; set/delete metadata
	ActionDeleteBasket  Action = "basket.delete" // delete a basket
	ActionReadAudit     Action = "audit.read"    // read the tenant's audit log
	ActionPruneAudit    Action = "audit.prune"   // delete the tenant's oldest audit entries
	ActionManagePlugins Action = "plugin.manage" // install and remove plugins
	ActionRunPlugin     Action = "plugin.run"    // run a plugin on a document
	// ActionManagePipelines: define, delete, bind and unbind pipelines;
	// prune finished jobs.
	ActionManagePipelines Action = "pipeline.manage"
	// ActionRunPipeline: run pipelines; retry and cancel jobs.
	ActionRunPipeline Action = "pipeline.run"
)

// Built-in roles.
const (
	RoleReader = "reader"
	RoleWriter = "writer"
	RoleAdmin  = "admin"
)

// Policy decides whether a user may perform an action. Host applications
// may supply their own; the engine calls it for every runtime operation
// after it has validated the user context and the tenant.
type Policy interface {
	// Authorize returns nil when uc may perform action, and an error
	// matching docex.ErrForbidden (or another docex.ErrDenied error)
	// otherwise.
	Authorize(ctx context.Context, uc docex.UserContext, action Action) error
}

// RolePolicy is the built-in policy:
//
//	reader: read
//	writer: read, write, plugin.run, pipeline.run
//	admin:  everything in the tenant (also basket.delete, audit.read, audit.prune, plugin.manage, pipeline.manage)
//
// Unknown roles grant nothing.
type RolePolicy struct{}

var grants = map[string][]Action{
	RoleReader: {ActionRead},
	RoleWriter: {ActionRead, ActionWrite, ActionRunPlugin, ActionRunPipeline},
	RoleAdmin:  {ActionRead, ActionWrite, ActionRunPlugin, ActionRunPipeline, ActionDeleteBasket, ActionReadAudit, ActionPruneAudit, ActionManagePlugins, ActionManagePipelines},
}

// Authorize implements Policy.
func (RolePolicy) Authorize(_ context.Context, uc docex.UserContext, action Action) error {
	for _, r := range uc.Roles {
		if slices.Contains(grants[r], action) {
			return nil
		}
	}
	return docex.Errorf(docex.ErrForbidden, "forbidden: %s requires one of the roles %v (user %q has %v)", action, rolesFor(action), uc.UserID, uc.Roles)
}

func rolesFor(a Action) []string {
	var out []string
	for _, r := range []string{RoleReader, RoleWriter, RoleAdmin} {
		if slices.Contains(grants[r], a) {
			out = append(out, r)
		}
	}
	return out
}
