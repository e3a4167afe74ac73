package tenancy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/tenancy"
)

var allActions = []tenancy.Action{
	tenancy.ActionRead, tenancy.ActionWrite, tenancy.ActionDeleteBasket,
	tenancy.ActionReadAudit, tenancy.ActionManagePlugins, tenancy.ActionRunPlugin,
	tenancy.ActionManagePipelines, tenancy.ActionRunPipeline, tenancy.ActionPruneAudit,
}

func TestRolePolicyMatrix(t *testing.T) {
	type allow map[tenancy.Action]bool
	cases := []struct {
		name  string
		roles []string
		want  allow
	}{
		{"no roles", nil, allow{}},
		{"empty roles", []string{}, allow{}},
		{"reader", []string{"reader"}, allow{tenancy.ActionRead: true}},
		{"writer", []string{"writer"}, allow{tenancy.ActionRead: true, tenancy.ActionWrite: true, tenancy.ActionRunPlugin: true, tenancy.ActionRunPipeline: true}},
		{"admin", []string{"admin"}, allow{
			tenancy.ActionRead: true, tenancy.ActionWrite: true, tenancy.ActionRunPlugin: true,
			tenancy.ActionDeleteBasket: true, tenancy.ActionReadAudit: true, tenancy.ActionManagePlugins: true,
			tenancy.ActionRunPipeline: true, tenancy.ActionManagePipelines: true, tenancy.ActionPruneAudit: true,
		}},
		{"reader+writer", []string{"reader", "writer"}, allow{tenancy.ActionRead: true, tenancy.ActionWrite: true, tenancy.ActionRunPlugin: true, tenancy.ActionRunPipeline: true}},
		{"unknown", []string{"superuser"}, allow{}},
		{"unknown+reader", []string{"superuser", "reader"}, allow{tenancy.ActionRead: true}},
		{"case matters", []string{"Admin", "WRITER", "Reader"}, allow{}},
		{"whitespace matters", []string{" admin", "admin "}, allow{}},
		{"empty role", []string{""}, allow{}},
		{"operator is not a tenant role", []string{"operator"}, allow{}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			uc := docex.UserContext{UserID: "u1", TenantID: "acme", Roles: tc.roles}
			for _, a := range allActions {
				err := tenancy.RolePolicy{}.Authorize(ctx, uc, a)
				if tc.want[a] {
					if err != nil {
						t.Errorf("%v may %s: got %v", tc.roles, a, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%v may not %s: got nil", tc.roles, a)
					continue
				}
				if !errors.Is(err, docex.ErrForbidden) || !errors.Is(err, docex.ErrDenied) {
					t.Errorf("%v %s: error %v does not match ErrForbidden and ErrDenied", tc.roles, a, err)
				}
				if docex.Code(err) != "forbidden" || docex.KindOf(err) != docex.ErrDenied {
					t.Errorf("%v %s: code %q kind %v", tc.roles, a, docex.Code(err), docex.KindOf(err))
				}
			}
		})
	}
}

func TestRolePolicyUnknownAction(t *testing.T) {
	uc := docex.UserContext{UserID: "u1", TenantID: "acme", Roles: []string{"admin", "writer", "reader"}}
	for _, a := range []tenancy.Action{"", "tenant.create", "READ", "read ", "*"} {
		if err := (tenancy.RolePolicy{}).Authorize(context.Background(), uc, a); !errors.Is(err, docex.ErrForbidden) {
			t.Errorf("action %q: got %v, want ErrForbidden", a, err)
		}
	}
}

// The policy ignores the user and tenant: those are the engine's checks.
func TestRolePolicyDependsOnRolesOnly(t *testing.T) {
	for _, uc := range []docex.UserContext{
		{Roles: []string{"reader"}},
		{UserID: "x", Roles: []string{"reader"}},
		{UserID: "x", TenantID: "other", Roles: []string{"reader"}},
	} {
		if err := (tenancy.RolePolicy{}).Authorize(context.Background(), uc, tenancy.ActionRead); err != nil {
			t.Errorf("%+v: %v", uc, err)
		}
		if err := (tenancy.RolePolicy{}).Authorize(context.Background(), uc, tenancy.ActionWrite); err == nil {
			t.Errorf("%+v: reader may write", uc)
		}
	}
}

func TestRolePolicyErrorNamesRoles(t *testing.T) {
	err := tenancy.RolePolicy{}.Authorize(context.Background(), docex.UserContext{UserID: "bob", Roles: []string{"reader"}}, tenancy.ActionDeleteBasket)
	if err == nil {
		t.Fatal("reader may delete baskets")
	}
	for _, want := range []string{"basket.delete", "admin", "bob"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// RolePolicy satisfies the Policy interface.
var _ tenancy.Policy = tenancy.RolePolicy{}
