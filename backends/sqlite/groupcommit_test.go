package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupCommit: many concurrent writers, some failing, some cancelled:
// exactly the writes that returned nil are in the database, each once.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	d := groupDB(t, Config{Synchronous: "full"}, `CREATE TABLE t (k INTEGER PRIMARY KEY)`)
	errBoom := errors.New("boom")
	const writers, perWriter = 8, 40
	var mu sync.Mutex
	committed := map[int]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				k := w*perWriter + i
				wctx := ctx
				var cancel context.CancelFunc
				if k%7 == 3 {
					wctx, cancel = context.WithTimeout(ctx, time.Duration(k%3)*time.Microsecond)
				}
				err := d.group.do(wctx, d.w, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(wctx, `INSERT INTO t(k) VALUES (?)`, k); err != nil {
						return err
					}
					if k%5 == 0 {
						return errBoom // rolls back this write only
					}
					return nil
				})
				if cancel != nil {
					cancel()
				}
				if err == nil {
					mu.Lock()
					committed[k] = true
					mu.Unlock()
				} else if k%5 != 0 && k%7 != 3 {
					t.Errorf("write %d failed: %v", k, err)
				}
			}
		}()
	}
	wg.Wait()
	rows, err := d.w.Query(`SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[int]bool{}
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		if k%5 == 0 {
			t.Errorf("failed write %d is in the database", k)
		}
		seen[k] = true
	}
	if len(seen) != len(committed) {
		t.Errorf("%d rows, %d acknowledged writes", len(seen), len(committed))
	}
	for k := range committed {
		if !seen[k] {
			t.Errorf("acknowledged write %d is missing", k)
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(len(seen)))
	}
}

// groupDB opens a database of its own in a backend with cfg (its Dir a
// temporary directory) and runs ddl on it.
func groupDB(t *testing.T, cfg Config, ddl string) *db {
	t.Helper()
	ctx := context.Background()
	cfg.Dir = t.TempDir()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	d, err := b.openDB(ctx, filepath.Join(b.cfg.Dir, "g.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	if _, err := d.w.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGroupCommitFailedWriteRollsBackAlone: three writes queued into one
// batch, the first, the middle, the last or none of them failing after
// its changes. The batch first runs without savepoints; a failure sends
// it through the savepoint path, where only the failed write's changes
// are rolled back. The others commit once each, and a batch without a
// failure runs each write once.
func TestGroupCommitFailedWriteRollsBackAlone(t *testing.T) {
	ctx := context.Background()
	d := groupDB(t, Config{}, `CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)`)
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		fail   int // the write that fails, -1 for none
		commit []int
	}{
		{"middle fails", 1, []int{0, 2}},
		{"first fails", 0, []int{1, 2}},
		{"last fails", 2, []int{0, 1}},
		{"none fails", -1, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.w.Exec(`DELETE FROM t`); err != nil {
				t.Fatal(err)
			}
			pending := func() int { d.group.mu.Lock(); defer d.group.mu.Unlock(); return len(d.group.pending) }
			holding, release := make(chan struct{}), make(chan struct{})
			held := make(chan error, 1)
			go func() {
				held <- d.group.do(ctx, d.w, func(*sql.Tx) error { close(holding); <-release; return nil })
			}()
			<-holding
			var runs [3]atomic.Int32
			errs := make([]chan error, 3)
			for i := range 3 {
				errs[i] = make(chan error, 1)
				go func() {
					errs[i] <- d.group.do(ctx, d.w, func(tx *sql.Tx) error {
						runs[i].Add(1)
						// Two statements, so a failure leaves a change behind
						// unless something rolls it back.
						if _, err := tx.Exec(`INSERT INTO t(k, n) VALUES (?, 0)`, i); err != nil {
							return err
						}
						if _, err := tx.Exec(`UPDATE t SET n = n + 1 WHERE k = ?`, i); err != nil {
							return err
						}
						if i == tc.fail {
							return errBoom
						}
						return nil
					})
				}()
				for pending() < i+1 { // queued in order
					time.Sleep(time.Millisecond)
				}
			}
			close(release)
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := <-errs[i]; (i == tc.fail) != errors.Is(err, errBoom) || (i != tc.fail && err != nil) {
					t.Errorf("write %d: %v", i, err)
				}
			}
			rows, err := d.w.Query(`SELECT k, n FROM t ORDER BY k`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []int
			for rows.Next() {
				var k, n int
				if err := rows.Scan(&k, &n); err != nil {
					t.Fatal(err)
				}
				if n != 1 {
					t.Errorf("row %d updated %d times", k, n)
				}
				got = append(got, k)
			}
			if !slices.Equal(got, tc.commit) {
				t.Errorf("committed %v, want %v", got, tc.commit)
			}
			if tc.fail < 0 {
				for i := range runs {
					if n := runs[i].Load(); n != 1 {
						t.Errorf("write %d ran %d times in a batch without failures", i, n)
					}
				}
			}
		})
	}
}

// TestCancelledWriteSaysSo: database/sql rolls back a transaction whose
// context ends, and a statement run after that fails with "sql: statement
// is closed" or sql.ErrTxDone; a write interrupted so returned that error
// alone, which the engine and the front ends could not tell from a
// failure (an MCP call cancelled by its client answered "internal: append
// audit: sql: statement is closed"). It holds the context's error now.
func TestCancelledWriteSaysSo(t *testing.T) {
	d := groupDB(t, Config{}, `CREATE TABLE t (k INTEGER PRIMARY KEY)`)
	for _, alone := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		err := d.group.run(ctx, d.w, func(tx *sql.Tx) error {
			stmt, err := tx.Prepare(`INSERT OR REPLACE INTO t(k) VALUES (?)`)
			if err != nil {
				return err
			}
			cancel()
			// Until the rollback of the cancelled transaction closes the
			// statement (not a statement's own context: that would say
			// context canceled itself).
			for i := range 1_000_000 {
				if _, err := stmt.Exec(i % 10); err != nil {
					return err
				}
				runtime.Gosched()
			}
			return errors.New("the transaction outlived its context")
		}, alone)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("alone=%v: a write whose context was cancelled: %v, want it to hold context.Canceled", alone, err)
		}
	}
}

// TestCancelledReadSaysSo: a read snapshot whose context ends is rolled
// back by database/sql the same way (TestCancelledWriteSaysSo).
func TestCancelledReadSaysSo(t *testing.T) {
	d := groupDB(t, Config{}, `CREATE TABLE t (k INTEGER PRIMARY KEY)`)
	ctx, cancel := context.WithCancel(context.Background())
	r := reader{q: cachedPool{db: d.r, c: d.rc}}
	err := r.snap(ctx, func(r reader) error {
		cancel()
		for range 1_000_000 {
			var n int
			if err := r.q.QueryRowContext(context.Background(), `SELECT count(*) FROM t`).Scan(&n); err != nil {
				return err
			}
			runtime.Gosched()
		}
		return errors.New("the snapshot outlived its context")
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a read whose context was cancelled: %v, want it to hold context.Canceled", err)
	}
}
