package backendtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
)

// BenchPrune measures Session.PruneJobs deleting n finished jobs, each
// with 3 step records (completion keys), against recording the same jobs
// and step records through the driver in the same run (InsertJobs and
// InsertStepRows, 1,000 jobs per transaction, as the prune deletes them:
// on PostgreSQL InsertJobs also enqueues each job's River job). It
// reports prune_jobs/s, record_jobs/s and prune/record, the ratio of the
// prune's time to the recording's (run with -benchtime=1x or a few x).
func BenchPrune(b *testing.B, h BenchHarness, n int) {
	e := newBenchEnv(b, h)
	s := e.tenant("bench", benchThreeSteps, "split", "upper", "tag")
	st, err := e.be.OpenTenant(bg, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const steps, chunk = 3, engine.DefaultPruneChunk
	uc := docex.UserContext{UserID: "u-bench", TenantID: "bench", Roles: []string{"admin"}}
	var record, prune time.Duration
	for i := 0; i < b.N; i++ {
		ended := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		start := time.Now()
		for from := 0; from < n; from += chunk {
			jobs := make([]driver.JobRecord, 0, chunk)
			var recs []driver.StepRecord
			for range min(chunk, n-from) {
				id, doc := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
				jobs = append(jobs, driver.JobRecord{ID: id, Pipeline: "three", Version: 1, DocumentID: doc, State: driver.JobSucceeded,
					Attempts: 1, MaxAttempts: 3, RunAt: ended, User: uc, Detail: []byte(`{}`), CreatedAt: ended, UpdatedAt: ended})
				for k := range steps {
					in := uuid.Must(uuid.NewV7()).String()
					step := fmt.Sprintf("s%d", k)
					recs = append(recs, driver.StepRecord{Key: id + "/" + step + "/" + in, JobID: id, Step: step, InputID: in,
						Outcome: "ran", Outputs: []string{uuid.Must(uuid.NewV7()).String()}, Detail: []byte(`{}`), CreatedAt: ended})
				}
			}
			err := st.Write(bg, func(tx driver.Tx) error {
				jt, ok := tx.(driver.JobsTx)
				rt, ok2 := tx.(driver.StepRowsTx)
				if !ok || !ok2 {
					return fmt.Errorf("the backend's Tx is not a driver.JobsTx and driver.StepRowsTx")
				}
				if err := jt.InsertJobs(bg, jobs); err != nil {
					return err
				}
				return rt.InsertStepRows(bg, recs, nil, nil, nil)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		record += time.Since(start)
		start = time.Now()
		res, err := s.PruneJobs(bg, engine.PruneJobsOptions{Before: time.Now()})
		prune += time.Since(start)
		if err != nil || res.Jobs != n || res.Steps != n*steps {
			b.Fatalf("prune: %+v, %v; want %d jobs, %d steps", res, err, n, n*steps)
		}
	}
	total := float64(n * b.N)
	b.ReportMetric(total/prune.Seconds(), "prune_jobs/s")
	b.ReportMetric(total/record.Seconds(), "record_jobs/s")
	b.ReportMetric(prune.Seconds()/record.Seconds(), "prune/record")
}
