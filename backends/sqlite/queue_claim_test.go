package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
)

// TestClaimOrder checks what a claim leases: jobs queued and due, and
// running jobs whose lease expired (their worker died), the first n of
// both by (run_at, id); never a job due later, a running job whose lease
// holds, or a final one.
func TestClaimOrder(t *testing.T) {
	ctx := context.Background()
	be := bootstrapped(t)
	must(t, be.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")))
	st, err := be.OpenTenant(ctx, "acme")
	must(t, err)
	defer st.Close()
	now := time.Now().UTC()
	at := func(s int) int64 { return micros(now.Add(time.Duration(s) * time.Second)) }
	// id, state, run_at (s from now), lease_until (s from now; 0: none)
	jobs := []struct {
		id, state string
		runAt     int
		lease     int
	}{
		{"j01", driver.JobQueued, -50, 0},
		{"j02", driver.JobRunning, -45, -1},   // lease expired: ready
		{"j03", driver.JobRunning, -40, 3600}, // lease holds
		{"j04", driver.JobSucceeded, -35, 0},  // final
		{"j05", driver.JobQueued, -30, 0},
		{"j06", driver.JobFailed, -25, 0},    // final
		{"j07", driver.JobRunning, -20, -5},  // lease expired: ready
		{"j08", driver.JobQueued, -20, 0},    // same run_at as j07: after it by id
		{"j09", driver.JobQueued, 3600, 0},   // not due
		{"j10", driver.JobCancelled, -60, 0}, // final
		{"j11", driver.JobQueued, -10, 0},
	}
	s := st.(*store)
	err = s.db.group.do(ctx, s.db.w, func(tx *sql.Tx) error {
		for _, j := range jobs {
			lease := int64(0)
			if j.lease != 0 {
				lease = at(j.lease)
			}
			if _, err := tx.Exec(`INSERT INTO jobs(`+jobCols+`, lease_owner, lease_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
				j.id, "p", 1, "doc", j.state, 0, 3, at(j.runAt), `{}`, "", "", []byte("{}"), at(-100), at(-100), "old", lease); err != nil {
				return err
			}
		}
		return nil
	})
	must(t, err)
	cfg := driver.WorkConfig{WorkerID: "w1"}.WithDefaults()
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{2, []string{"j01", "j02"}},
		{3, []string{"j05", "j07", "j08"}},
		{10, []string{"j11"}},
		{10, nil},
	} {
		cs, ids, err := be.queue.claim(ctx, "acme", "", false, cfg, func() int { return tc.n })
		must(t, err)
		if cs != nil {
			cs.Close()
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tc.want) {
			t.Fatalf("claim %d: got %v, want %v", tc.n, ids, tc.want)
		}
		for _, id := range ids {
			var state, owner string
			must(t, s.db.r.QueryRow(`SELECT state, lease_owner FROM jobs WHERE id = ?`, id).Scan(&state, &owner))
			if state != driver.JobRunning || owner != "w1" {
				t.Fatalf("%s after the claim: %s, owner %q", id, state, owner)
			}
		}
	}
}

// TestStopWhileClaimWaits: a worker stopped while its claim of a tenant
// waits behind that tenant's writer (a long write transaction) stops
// without waiting for the writer, and the claim leases nothing: the job
// stays queued, for the next worker. Before, the claim waited for the
// writer whatever its context, and Work with it.
func TestStopWhileClaimWaits(t *testing.T) {
	ctx := context.Background()
	be := bootstrapped(t)
	must(t, be.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")))
	st, err := be.OpenTenant(ctx, "acme")
	must(t, err)
	defer st.Close()
	s := st.(*store)
	now := micros(time.Now())
	must(t, s.db.group.do(ctx, s.db.w, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO jobs(`+jobCols+`, lease_owner, lease_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			"j1", "p", 1, "doc", driver.JobQueued, 0, 3, now, `{}`, "", "", []byte("{}"), now, now, "", 0)
		return err
	}))
	entered, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		held <- s.db.group.do(ctx, s.db.w, func(*sql.Tx) error { close(entered); <-release; return nil })
	}()
	<-entered
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- be.Jobs().Work(wctx, driver.WorkConfig{Tenants: []string{"acme"}, Concurrency: 1}, func(context.Context, driver.Delivery) driver.Outcome {
			t.Error("a job was handled while its tenant's writer was held")
			return driver.Outcome{Kind: driver.Done}
		})
	}()
	// Wait until the worker's claim is queued behind the held write.
	for {
		s.db.group.mu.Lock()
		n := len(s.db.group.pending)
		s.db.group.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(3 * time.Minute): // a bound, not a measurement
		close(release)
		<-done
		t.Fatal("Work did not return within 3 min of its stop while its claim waited for the held writer")
	}
	close(release)
	must(t, <-held)
	var state, owner string
	must(t, s.db.r.QueryRow(`SELECT state, lease_owner FROM jobs WHERE id = 'j1'`).Scan(&state, &owner))
	if state != driver.JobQueued || owner != "" {
		t.Fatalf("job after the stop: %s, owner %q; want queued, no owner", state, owner)
	}
}
