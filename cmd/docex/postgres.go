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
// environment variable the config names, or from init's --dsn (fromFlag);
// it is never printed (the backend masks the password in its errors), and
// neither is a dsn_env value that may be a DSN pasted in place of a name.
func openPostgres(ctx context.Context, f *config.File, getenv func(string) string, fromFlag bool) (driver.Backend, error) {
	p := f.Database.Postgres
	dsn, err := f.PostgresDSN(getenv)
	if err != nil {
		// Fixed in the environment, not in docex.yaml.
		name := config.PostgresEnvName(p.DSNEnv)
		if name != p.DSNEnv {
			return nil, withHint(err, "database.postgres.dsn_env holds the name of an environment variable (e.g. DOCEX_POSTGRES_DSN), not the connection string: write the name there and export the variable")
		}
		return nil, withHint(err, fmt.Sprintf("set %s to the PostgreSQL connection string, e.g. export %s='postgres://USER@HOST:5432/DB' (docex.yaml names the variable, never the password)", name, name))
	}
	fromEnv := p.DSNEnv != "" && getenv(p.DSNEnv) != ""
	source := config.PostgresEnvName(p.DSNEnv)
	if fromFlag {
		source = "--dsn"
	}
	be, err := postgres.Open(ctx, postgres.Config{
		DSN:                dsn,
		BootstrapSchema:    f.MultiTenancy.BootstrapTenant.Schema,
		MaxConns:           int32(p.MaxConns),
		TenantSchemaPrefix: p.SchemaPrefix,
		// 0: the backend's defaults.
		IdleInTransactionTimeout: ms(p.IdleInTransactionTimeoutMS),
		LockTimeout:              ms(p.LockTimeoutMS),
	})
	if err != nil {
		switch {
		case fromEnv && errors.Is(err, pgconfig.ErrUnparsable):
			err = withHint(err, fmt.Sprintf("fix the connection string in %s: postgres://USER[:PASSWORD]@HOST:PORT/DB or host=HOST dbname=DB user=USER", source))
		case !fromEnv && errors.Is(err, docex.ErrInvalidConfig):
			// The DSN written in docex.yaml (its pool_* settings: the
			// rest was checked by config).
			err = f.KeyError("database.postgres.dsn", err)
		}
		return nil, err // not a typed nil in the interface
	}
	return be, nil
}
