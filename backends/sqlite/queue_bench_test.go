package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// BenchmarkClaim measures one worker claim of 32 ready jobs (a batch)
// from a tenant whose queue holds a backlog of 1,000, 10,000 or 100,000
// queued jobs, with synchronous=normal so that the statement, not the
// fsync, is measured. The claimed jobs are put back untimed, so every
// claim sees the same backlog. A claim's cost should not grow with the
// backlog: compare the sub-benchmarks (the 1,000 one is the baseline).
func BenchmarkClaim(b *testing.B) {
	for _, backlog := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			ctx := context.Background()
			be, st := queueBench(b, backlog)
			cfg := driver.WorkConfig{WorkerID: "w1"}.WithDefaults()
			s := st.(*store)
			for b.Loop() {
				cs, ids, err := be.queue.claim(ctx, "acme", "", false, cfg, func() int { return 32 })
				if err != nil || len(ids) != 32 {
					b.Fatalf("claimed %d: %v", len(ids), err)
				}
				cs.Close()
				b.StopTimer()
				requeue(b, s, ids)
				b.StartTimer()
			}
		})
	}
}

// queueBench returns a backend with tenant acme holding backlog queued
// jobs, ready now, and a store of acme.
func queueBench(b *testing.B, backlog int) (*Backend, driver.TenantStore) {
	ctx := context.Background()
	be, st := benchTenant(b)
	var err error
	now := time.Now().UTC().Add(-time.Minute)
	uc := docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"writer"}}
	for off := 0; off < backlog; off += 10_000 {
		err = st.Write(ctx, func(tx driver.Tx) error {
			for i := off; i < min(backlog, off+10_000); i++ {
				j := driver.JobRecord{ID: uuid.Must(uuid.NewV7()).String(), Pipeline: "p", Version: 1, DocumentID: uuid.NewString(),
					State: driver.JobQueued, MaxAttempts: 3, RunAt: now.Add(time.Duration(i) * time.Microsecond), User: uc, CreatedAt: now, UpdatedAt: now}
				if err := tx.(driver.PipelineWriter).InsertJob(ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return be, st
}

// requeue puts claimed jobs back in the queue.
func requeue(b *testing.B, s *store, ids []string) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	err := s.db.group.do(context.Background(), s.db.w, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE jobs SET state = 'queued', lease_owner = '', lease_until = 0 WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`, args...)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
