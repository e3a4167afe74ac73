package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/postgres"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/pgconfig"
)

// openPostgres opens the PostgreSQL backend. The DSN comes from the
// environment variable the config names; it is never printed (the backend
// masks the password in its errors).
func openPostgres(ctx context.Context, f *config.File, getenv func(string) string) (driver.Backend, error) {
	p := f.Database.Postgres
	dsn, err := f.PostgresDSN(getenv)
	if err != nil {
		// Fixed in the environment, not in docex.yaml.
		return nil, withHint(err, fmt.Sprintf("set %s to the PostgreSQL connection string, e.g. export %s='postgres://USER@HOST:5432/DB' (docex.yaml names the variable, never the password)", p.DSNEnv, p.DSNEnv))
	}
	fromEnv := p.DSNEnv != "" && getenv(p.DSNEnv) != ""
	be, err := postgres.Open(ctx, postgres.Config{
		DSN:                dsn,
		BootstrapSchema:    f.MultiTenancy.BootstrapTenant.Schema,
		MaxConns:           int32(p.MaxConns),
		TenantSchemaPrefix: p.SchemaPrefix,
	})
	if err != nil {
		switch {
		case fromEnv && errors.Is(err, pgconfig.ErrUnparsable):
			err = withHint(err, fmt.Sprintf("fix the connection string in %s: postgres://USER[:PASSWORD]@HOST:PORT/DB or host=HOST dbname=DB user=USER", p.DSNEnv))
		case !fromEnv && errors.Is(err, docex.ErrInvalidConfig):
			// The DSN written in docex.yaml (its pool_* settings: the
			// rest was checked by config).
			err = f.KeyError("database.postgres.dsn", err)
		}
		return nil, err // not a typed nil in the interface
	}
	return be, nil
}
