package main

import (
	"context"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
)

// openPostgres opens the PostgreSQL backend.
func openPostgres(ctx context.Context, f *config.File, getenv func(string) string) (driver.Backend, error) {
	return nil, docex.Errorf(docex.ErrInvalidConfig, "the postgres backend is not wired into this build yet")
}
