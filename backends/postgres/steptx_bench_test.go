package postgres

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/proccpu"
)

// serverCPU returns the CPU time the server process pid has used, read
// from /proc/PID/schedstat (the server must run on this machine), and
// false when it cannot be read.
func serverCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err == nil
}

// stepTxBatch is the number of step runs one benchmark transaction
// commits, as a worker's batch of 32 jobs does.
const stepTxBatch = 32

// BenchmarkStepTx: one pipeline step transaction of a batch of 32 runs,
// each deriving one document with metadata, made through the driver as
// the engine makes it (content locks and lookups, the inputs' metadata,
// the derived documents with their contents and audit entries, the jobs'
// ends, the completion keys, lineage edges, cache entries and audit
// entries), in a tenant whose tables grow as the benchmark runs (1,000
// documents before it starts). Besides the time, it reports the server's
// CPU per transaction (server-us/tx, from /proc when the server runs on
// this machine), which does not depend on the machine's load as the time
// does, and the client's (client-us/tx).
func BenchmarkStepTx(b *testing.B) {
	be := bootstrapped(b, Config{MaxConns: 1}, true)
	st := openStore(b, be, "acme")
	now := time.Now()
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	if err := st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }); err != nil {
		b.Fatal(err)
	}
	seq := 0
	doc := func() docex.Document {
		seq++
		return docex.Document{ID: newID(), BasketID: bk.ID, Name: fmt.Sprintf("d%d.txt", seq), ContentType: "text/plain", Size: 100,
			Checksum: fmt.Sprintf("%064x", seq), CreatedAt: now, UpdatedAt: now,
			Metadata: map[string]docex.Value{"source": docex.String("x"), "step": docex.String("text"), "n": docex.Number(float64(seq)), "lang": docex.String("en")}}
	}
	var inputs []docex.Document
	jobOf := map[string]driver.JobRecord{}
	for range 1000 / stepTxBatch {
		docs := make([]docex.Document, stepTxBatch)
		for i := range docs {
			docs[i] = doc()
		}
		if err := st.Write(bg, func(tx driver.Tx) error { return tx.(driver.BatchTx).InsertDocuments(bg, docs, nil) }); err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, docs...)
	}
	// A job per input document, ended by the transactions.
	exec(b, be, `INSERT INTO docex_t_acme.jobs SELECT id, 'p', 1, id, 'running', 1, 3, now(), '{}', '', '', '{}', now(), now() FROM docex_t_acme.documents`)
	for _, d := range inputs {
		jobOf[d.ID] = driver.JobRecord{ID: d.ID, Pipeline: "p", Version: 1, DocumentID: d.ID, State: driver.JobSucceeded, Attempts: 1, MaxAttempts: 3, RunAt: now, CreatedAt: now, UpdatedAt: now}
	}
	var pid int
	if err := be.pool.QueryRow(bg, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	step := func(k int) error {
		in := inputs[(k*stepTxBatch)%len(inputs):][:stepTxBatch]
		outs := make([]docex.Document, stepTxBatch)
		sums := make([]string, stepTxBatch)
		data := make([][]byte, stepTxBatch)
		for i := range outs {
			outs[i] = doc()
			sums[i], data[i] = outs[i].Checksum, []byte(strings.Repeat("x", 100))
		}
		return st.Write(bg, func(t driver.Tx) error {
			ct := t.(driver.ChecksumTx)
			if err := ct.LockContents(bg, sums); err != nil {
				return err
			}
			if _, err := ct.DocumentsByChecksums(bg, bk.ID, sums); err != nil {
				return err
			}
			if _, err := ct.ContentRefsOf(bg, sums); err != nil {
				return err
			}
			if _, err := t.Basket(bg, bk.ID); err != nil {
				return err
			}
			for _, d := range in {
				if err := t.SetMetadata(bg, d.ID, map[string]docex.Value{"chars": docex.Number(100), "derived": docex.Bool(true)}, now); err != nil {
					return err
				}
			}
			audit := make([]docex.AuditEntry, stepTxBatch)
			for i := range audit {
				audit[i] = testAudit("document.add")
			}
			if err := t.(driver.BatchTx).InsertDocuments(bg, outs, audit); err != nil {
				return err
			}
			if err := t.(driver.BatchTx).ReplaceContents(bg, sums, data); err != nil {
				return err
			}
			var (
				steps []driver.StepRecord
				edges []driver.LineageEdge
				cache []driver.CacheEntry
				ends  []driver.JobRecord
				ids   []string
			)
			for i, d := range in {
				ids = append(ids, d.ID)
				key := fmt.Sprintf("job%d/step/%s", k, d.ID)
				steps = append(steps, driver.StepRecord{Key: key, JobID: d.ID, Step: "text", InputID: d.ID, Outcome: "ran", Outputs: []string{outs[i].ID}, CreatedAt: now})
				edges = append(edges, driver.LineageEdge{SourceID: d.ID, DerivedID: outs[i].ID, JobID: d.ID, Step: "text", Pipeline: "p", Version: 1, Plugin: "extract-text", ModuleSHA256: sums[0], Params: "{}", CreatedAt: now})
				cache = append(cache, driver.CacheEntry{Key: key, Result: []byte(`{"derived":[]}`), CreatedAt: now})
				ends = append(ends, jobOf[d.ID])
			}
			if _, err := t.JobsByID(bg, ids); err != nil {
				return err
			}
			if err := t.(driver.JobsTx).UpdateJobs(bg, ends); err != nil {
				return err
			}
			return t.(driver.StepRowsTx).InsertStepRows(bg, steps, edges, cache, audit)
		})
	}
	if err := step(0); err != nil { // prepares the statements
		b.Fatal(err)
	}
	srv0, ok := serverCPU(pid)
	cli0 := proccpu.Self()
	k := 1
	for b.Loop() {
		if err := step(k); err != nil {
			b.Fatal(err)
		}
		k++
	}
	if srv1, ok1 := serverCPU(pid); ok && ok1 {
		b.ReportMetric(float64((srv1-srv0).Microseconds())/float64(k-1), "server-us/tx")
	}
	b.ReportMetric(float64((proccpu.Self()-cli0).Microseconds())/float64(k-1), "client-us/tx")
}
