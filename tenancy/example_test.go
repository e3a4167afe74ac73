package tenancy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/tenancy"
)

func ExampleValidateTenantID() {
	for _, id := range []string{"acme", "acme-eu_2", "Acme", "../etc", "public", "pg_catalog"} {
		err := tenancy.ValidateTenantID(id)
		fmt.Printf("%-12q valid=%t invalid_id=%t\n", id, err == nil, errors.Is(err, docex.ErrInvalidID))
	}
	// Output:
	// "acme"       valid=true invalid_id=false
	// "acme-eu_2"  valid=true invalid_id=false
	// "Acme"       valid=false invalid_id=true
	// "../etc"     valid=false invalid_id=true
	// "public"     valid=false invalid_id=true
	// "pg_catalog" valid=false invalid_id=true
}

func ExampleRolePolicy() {
	p := tenancy.RolePolicy{}
	uc := docex.UserContext{UserID: "rita", TenantID: "acme", Roles: []string{"reader"}}
	fmt.Println(p.Authorize(context.Background(), uc, tenancy.ActionRead) == nil)
	err := p.Authorize(context.Background(), uc, tenancy.ActionWrite)
	fmt.Println(errors.Is(err, docex.ErrForbidden), errors.Is(err, docex.ErrDenied))
	// Output:
	// true
	// true true
}
