package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit: many concurrent writers, some failing, some cancelled:
// exactly the writes that returned nil are in the database, each once.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{Dir: t.TempDir(), Synchronous: "full"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := b.openDB(ctx, filepath.Join(b.cfg.Dir, "g.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if _, err := d.w.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
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
