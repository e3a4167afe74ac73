package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
)

// roundBoundDocs adds n documents of size bytes of pseudo-random lowercase
// letters (each its own; halves differ) to a new basket of s, and returns
// their ids.
func roundBoundDocs(t *testing.T, s *Session, n, size int) []string {
	t.Helper()
	ctx := context.Background()
	bk, err := s.CreateBasket(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		b := make([]byte, size)
		for k := range b {
			b[k] = byte('a' + rng.IntN(26))
		}
		d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: fmt.Sprintf("d%02d.txt", i), Content: strings.NewReader(string(b))})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = d.Document.ID
	}
	return ids
}

// runRounds runs the jobs ids of tenant on e as one batch, directly, with
// the round bounds bytes and docs (0: the defaults), and returns what each
// transaction of every round's commit was handed (onCommit).
func runRounds(t *testing.T, e *Engine, tenant string, ids []string, bytes int64, docs int) (rounds, txs []heldCount) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	r := &jobRunner{e: e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(2),
		roundBytes: bytes, roundDocs: docs,
		onCommit: func(round, tx heldCount) {
			mu.Lock()
			rounds, txs = append(rounds, round), append(txs, tx)
			mu.Unlock()
		}}
	batch := make([]*pending, len(ids))
	for i, id := range ids {
		batch[i] = &pending{ctx: ctx, d: driver.Delivery{TenantID: tenant, JobID: id}, done: make(chan struct{})}
	}
	for i, out := range r.handleBatch(ctx, tenant, batch) {
		if out.Kind != driver.Done {
			t.Fatalf("job %d: outcome %+v", i, out)
		}
	}
	return rounds, txs
}

// derivedOf returns, sorted, one line per document derived from the
// documents ids (transitively): its depth, name, checksum, source's name
// and step; and fails t unless every job of jobs succeeded with the
// progress of the pipeline "three" on one input (5 runs, 4 derived).
func derivedOf(t *testing.T, s *Session, ids, jobs []string) []string {
	t.Helper()
	ctx := context.Background()
	for _, id := range jobs {
		j, err := s.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != driver.JobSucceeded || j.Progress.StepsRun+j.Progress.StepsCached != 5 || j.Progress.Derived != 4 {
			t.Fatalf("job %s: state %s, progress %+v; want succeeded, 5 runs, 4 derived", id, j.State, j.Progress)
		}
	}
	var out []string
	for _, id := range ids {
		l, err := s.Lineage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Descendants) != 4 {
			t.Fatalf("document %s: %d descendants, want 4", l.Name, len(l.Descendants))
		}
		for _, edge := range l.Descendants {
			d, err := s.Document(ctx, edge.DerivedID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %d %s %s <- %s by %s", l.Name, edge.Depth, d.Name, d.Checksum, edge.SourceName, edge.Step))
		}
	}
	slices.Sort(out)
	return out
}

// TestRoundHeldBound: a batch's step round stops taking runs once those
// it made hold more than the round's byte or document bound, and the
// rest go on in further rounds, each committed in transactions of its
// own: what a round holds until it commits stays within the bound plus
// one run per goroutine of the batch (GOMAXPROCS), here 2. The jobs'
// derived documents and lineage are those of the same jobs run with the
// default bounds (one round a step), each derived once.
func TestRoundHeldBound(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const (
		n    = 16
		size = 512 << 10 // split derives 512 KiB a run, upper 256 KiB
	)
	ctx := context.Background()
	run := func(t *testing.T, bytes int64, docs int) (lines []string, rounds, txs []heldCount) {
		e := acmeSession(t, newTestSandbox(t)).e
		s := threeStepSession(t, e, "acme")
		ids := roundBoundDocs(t, s, n, size)
		jobs, err := s.RunPipeline(ctx, "three", RunTarget{DocumentIDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		rounds, txs = runRounds(t, e, "acme", jobs, bytes, docs)
		return derivedOf(t, s, ids, jobs), rounds, txs
	}
	want, rounds, _ := run(t, 0, 0)
	if len(rounds) != 3 {
		t.Errorf("default bounds: %d transactions, want 3 (one a step)", len(rounds))
	}
	if len(want) != 4*n {
		t.Fatalf("%d derived documents, want %d", len(want), 4*n)
	}
	for _, tc := range []struct {
		name      string
		bytes     int64
		docs      int
		maxBytes  int64 // the bound plus 2 runs
		maxDocs   int
		minCommit int
	}{
		// One split run holds 512 KiB and names, types and metadata.
		{"bytes", 1 << 20, 0, 1<<20 + 2*(size+4096), maxRoundDocs + 2*2, 9},
		{"docs", 0, 4, maxRoundBytes + 2*(size+4096), 4 + 2*2, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rounds, txs := run(t, tc.bytes, tc.docs)
			if !slices.Equal(got, want) {
				t.Errorf("derived documents differ from the default bounds' run:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(txs) < tc.minCommit {
				t.Errorf("%d transactions, want at least %d", len(txs), tc.minCommit)
			}
			var peak heldCount
			runs := 0
			for i, r := range rounds {
				peak.bytes, peak.docs = max(peak.bytes, r.bytes), max(peak.docs, r.docs)
				if txs[i].bytes > tc.maxBytes || txs[i].docs > tc.maxDocs {
					t.Errorf("transaction %d commits %+v, more than %d bytes or %d documents", i, txs[i], tc.maxBytes, tc.maxDocs)
				}
				runs += txs[i].runs
			}
			t.Logf("%d transactions, %d runs, peak held %d bytes, %d documents", len(txs), runs, peak.bytes, peak.docs)
			if peak.bytes > tc.maxBytes || peak.docs > tc.maxDocs {
				t.Errorf("a round held %d bytes and %d documents; want at most %d and %d", peak.bytes, peak.docs, tc.maxBytes, tc.maxDocs)
			}
			if runs != 5*n {
				t.Errorf("%d runs committed, want %d", runs, 5*n)
			}
		})
	}
}
