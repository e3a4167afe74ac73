package postgres

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// TestStaleDeliveries: tx.StaleDeliveries (driver.DeliveryTx) finds a
// River job stale when it was marked superseded, or when another River
// job of the same docex job, not superseded, is running with a lease
// renewed within the delivery's lease (its worker alive: the job is not
// to be taken over); not when that other one's lease ran out (its worker
// stopped renewing: the attempt is lost) or it is superseded, and never
// because of the delivery's own River job (a rescued job is delivered
// again as itself).
func TestStaleDeliveries(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t, Config{}, true)
	if err := b.CreateTenant(ctx, docex.Tenant{ID: "acme", DisplayName: "acme", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	st, err := b.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	job := driver.JobRecord{ID: uuid.Must(uuid.NewV7()).String(), Pipeline: "p", Version: 1, DocumentID: uuid.Must(uuid.NewV7()).String(),
		State: driver.JobQueued, MaxAttempts: 3, RunAt: now, User: docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"writer"}},
		CreatedAt: now, UpdatedAt: now}
	// Two River jobs of the one docex job (the second as a retry enqueues one).
	if err := st.Write(ctx, func(tx driver.Tx) error { return tx.InsertJob(ctx, job) }); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, func(tx driver.Tx) error { return tx.RequeueJob(ctx, job) }); err != nil {
		t.Fatal(err)
	}
	rj := quote(b.queue.schema) + `.river_job`
	var ids []int64
	rows, err := b.pool.Query(ctx, `SELECT id FROM `+rj+` WHERE queue = 't_acme' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != 2 {
		t.Fatalf("River jobs %v (%v), want 2", ids, rows.Err())
	}
	held, mine := ids[0], ids[1]
	lease := time.Minute
	stale := func() string {
		t.Helper()
		var got map[string]string
		err := st.Write(ctx, func(tx driver.Tx) error {
			var err error
			got, err = tx.(driver.DeliveryTx).StaleDeliveries(ctx, []driver.Delivery{{TenantID: "acme", JobID: job.ID, Lease: lease, ID: strconv.FormatInt(mine, 10)}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got[job.ID]
	}
	for _, c := range []struct {
		name, held, mine string // SET clauses of the two River jobs
		want             string // the reason, "" for not stale
	}{
		{"both waiting", "state = 'available'", "state = 'running', attempted_at = now()", ""},
		{"the other held, renewed", "state = 'running', attempted_at = now()", "state = 'running', attempted_at = now()", driver.StaleHeldElsewhere},
		{"the other held, its lease run out", "state = 'running', attempted_at = now() - interval '2 minutes'", "state = 'running', attempted_at = now()", ""},
		{"the other held, superseded", "state = 'running', attempted_at = now(), metadata = '{\"docex_superseded\": true}'", "state = 'running', attempted_at = now()", ""},
		{"mine superseded", "state = 'available', metadata = '{}'", "state = 'running', attempted_at = now(), metadata = '{\"docex_superseded\": true}'", driver.StaleSuperseded},
		{"mine superseded, the other held, renewed", "state = 'running', attempted_at = now(), metadata = '{}'", "state = 'running', attempted_at = now(), metadata = '{\"docex_superseded\": true}'", driver.StaleSuperseded},
	} {
		exec(t, b, `UPDATE `+rj+` SET `+c.held+` WHERE id = $1`, held)
		exec(t, b, `UPDATE `+rj+` SET `+c.mine+` WHERE id = $1`, mine)
		if got := stale(); got != c.want {
			t.Errorf("%s: stale %q, want %q", c.name, got, c.want)
		}
	}
}
