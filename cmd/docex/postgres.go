package main

import (
	"context"

	"github.com/docex-dev/docex/backends/postgres"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
)

// openPostgres opens the PostgreSQL backend. The DSN comes from the
// environment variable the config names; it is never printed (the backend
// masks the password in its errors).
func openPostgres(ctx context.Context, f *config.File, getenv func(string) string) (driver.Backend, error) {
	dsn, err := f.PostgresDSN(getenv)
	if err != nil {
		return nil, err
	}
	p := f.Database.Postgres
	be, err := postgres.Open(ctx, postgres.Config{
		DSN:                dsn,
		BootstrapSchema:    f.MultiTenancy.BootstrapTenant.Schema,
		MaxConns:           int32(p.MaxConns),
		TenantSchemaPrefix: p.SchemaPrefix,
	})
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return be, nil
}
