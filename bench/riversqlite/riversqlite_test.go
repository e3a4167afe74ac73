package riversqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite"
)

// jobs is the number of jobs enqueued (one transaction each, as a
// document add enqueues its job) and then worked (concurrency 8).
const jobs = 1000

type noopArgs struct {
	Tenant string `json:"tenant"`
	Job    string `json:"job"`
}

func (noopArgs) Kind() string { return "docex_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(ctx context.Context, j *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

// riverSQLite enqueues and works the jobs with River on one SQLite file
// (WAL, synchronous=full, one connection as its driver recommends).
func riverSQLite(b *testing.B) (enqueue, work time.Duration) {
	ctx := context.Background()
	dsn := "file:" + filepath.Join(b.TempDir(), "river.db") + "?_pragma=journal_mode(WAL)&_pragma=synchronous(full)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	drv := riversqlite.New(db)
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{done: &done})
	client, err := river.NewClient(drv, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 8}},
		Workers:           workers,
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := range jobs {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.InsertTx(ctx, tx, noopArgs{Tenant: "t", Job: fmt.Sprint(i)}, nil); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	enqueue = time.Since(start)
	start = time.Now()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for done.Load() < jobs {
		time.Sleep(5 * time.Millisecond)
	}
	// Completion is written by River's completer after Work returns:
	// wait until every job row is completed.
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == jobs {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	work = time.Since(start)
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = client.Stop(stopCtx)
	return enqueue, work
}

// tenantTable enqueues and works the jobs with docex's SQLite queue: the
// jobs table of a tenant file, each job marked succeeded by its handler
// (as the engine's last write of a job does).
func tenantTable(b *testing.B) (enqueue, work time.Duration) {
	ctx := context.Background()
	dir := b.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	cfg := engine.Config{MultiTenancy: true, BootstrapTenantID: "system", ContentDir: filepath.Join(dir, "content")}
	if _, err := engine.Bootstrap(ctx, be, cfg); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(ctx, be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.Provisioner("bench").Create(ctx, "t", "t"); err != nil {
		b.Fatal(err)
	}
	st, err := be.OpenTenant(ctx, "t")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	user := docex.UserContext{UserID: "u", TenantID: "t", Roles: []string{"writer"}}
	start := time.Now()
	for i := range jobs {
		now := time.Now()
		j := driver.JobRecord{ID: uuid.NewString(), Pipeline: "p", Version: 1, DocumentID: fmt.Sprint(i), State: driver.JobQueued,
			MaxAttempts: 3, RunAt: now, User: user, CreatedAt: now, UpdatedAt: now}
		if err := st.Write(ctx, func(tx driver.Tx) error { return tx.InsertJob(ctx, j) }); err != nil {
			b.Fatal(err)
		}
	}
	enqueue = time.Since(start)
	var done atomic.Int64
	wctx, stop := context.WithCancel(ctx)
	finished := make(chan error, 1)
	start = time.Now()
	go func() {
		finished <- be.Jobs().Work(wctx, driver.WorkConfig{Tenants: []string{"t"}, Concurrency: 8, TenantConcurrency: 8, Poll: 20 * time.Millisecond},
			func(ctx context.Context, d driver.Delivery) driver.Outcome {
				err := st.Write(ctx, func(tx driver.Tx) error {
					j, err := tx.Job(ctx, d.JobID)
					if err != nil {
						return err
					}
					j.State, j.UpdatedAt = driver.JobSucceeded, time.Now()
					return tx.UpdateJob(ctx, j)
				})
				if err != nil {
					return driver.Outcome{Kind: driver.Again}
				}
				done.Add(1)
				return driver.Outcome{Kind: driver.Done}
			})
	}()
	for done.Load() < jobs {
		time.Sleep(5 * time.Millisecond)
	}
	work = time.Since(start)
	stop()
	if err := <-finished; err != nil {
		b.Fatal(err)
	}
	return enqueue, work
}

// BenchmarkRiverSQLiteVsTenantTable: 1,000 jobs enqueued one per
// transaction, then worked by 8 concurrent no-op handlers, with River's
// SQLite driver and with the tenant-file jobs table, in one run.
func BenchmarkRiverSQLiteVsTenantTable(b *testing.B) {
	for range b.N {
		rEnq, rWork := riverSQLite(b)
		tEnq, tWork := tenantTable(b)
		b.ReportMetric(jobs/rEnq.Seconds(), "river-enqueue/s")
		b.ReportMetric(jobs/tEnq.Seconds(), "table-enqueue/s")
		b.ReportMetric(jobs/rWork.Seconds(), "river-work/s")
		b.ReportMetric(jobs/tWork.Seconds(), "table-work/s")
		if la, err := os.ReadFile("/proc/loadavg"); err == nil {
			b.Logf("load average %s", strings.Join(strings.Fields(string(la))[:3], " "))
		}
	}
}
