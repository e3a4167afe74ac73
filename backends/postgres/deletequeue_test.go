package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// TestDeleteTenantDropsItsDeliveries: deleting a tenant removes the River
// deliveries of its jobs that no worker holds. They were left available
// in the tenant's queue for ever: a worker started after the delete
// serves no queue of a tenant that is gone, so nothing ever took them.
func TestDeleteTenantDropsItsDeliveries(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t, Config{}, true)
	for _, id := range []string{"acme", "globex"} {
		if err := b.CreateTenant(ctx, docex.Tenant{ID: id, DisplayName: id, CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
			t.Fatal(err)
		}
		st, err := b.OpenTenant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for i, runAt := range []time.Time{now, now.Add(time.Hour)} { // available, scheduled
			err = st.Write(ctx, func(tx driver.Tx) error {
				return tx.InsertJob(ctx, driver.JobRecord{ID: uuid.Must(uuid.NewV7()).String(), Pipeline: "p", Version: 1,
					DocumentID: uuid.Must(uuid.NewV7()).String(), State: driver.JobQueued, MaxAttempts: 3, RunAt: runAt,
					User: docex.UserContext{UserID: "u", TenantID: id, Roles: []string{"writer"}}, CreatedAt: now, UpdatedAt: now})
			})
			if err != nil {
				t.Fatalf("job %d of %s: %v", i, id, err)
			}
		}
		st.Close()
	}
	pending := func(queue string) int {
		t.Helper()
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM `+quote(b.queue.schema)+`.river_job WHERE queue = $1 AND finalized_at IS NULL`, queue).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if pending("t_acme") != 2 || pending("t_globex") != 2 {
		t.Fatalf("before: %d and %d deliveries, want 2 and 2", pending("t_acme"), pending("t_globex"))
	}
	if err := b.DeleteTenant(ctx, "acme", testAudit("tenant.delete")); err != nil {
		t.Fatal(err)
	}
	if n := pending("t_acme"); n != 0 {
		t.Errorf("deleted tenant: %d deliveries left in its queue, want 0", n)
	}
	if n := pending("t_globex"); n != 2 {
		t.Errorf("other tenant: %d deliveries, want 2 (untouched)", n)
	}
}
