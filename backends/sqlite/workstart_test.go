package sqlite

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/driver"
)

// TestWorkStoppedBeforeStart: Work whose context is done before it
// listed the tenants to serve returns nil, a stop (driver.JobQueue:
// once ctx is done it returns nil), not the listing's context error.
func TestWorkStoppedBeforeStart(t *testing.T) {
	be := bootstrapped(t)
	must(t, be.CreateTenant(context.Background(), newTenant("acme"), testAudit("tenant.create")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := be.Jobs().Work(ctx, driver.WorkConfig{Concurrency: 1}, func(context.Context, driver.Delivery) driver.Outcome {
		t.Error("a job was handled")
		return driver.Outcome{Kind: driver.Done}
	})
	if err != nil {
		t.Fatalf("Work: %v, want nil (stopped before it started)", err)
	}
}
