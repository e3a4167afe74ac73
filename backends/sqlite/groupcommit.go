package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
)

// maxGroup bounds the writes that share one transaction.
const maxGroup = 64

// groupCommitter batches concurrent writes to one database into one
// transaction (group commit): each write runs inside its own savepoint, so
// its error rolls back only its own changes, and all of them share one
// commit, one WAL append and, with synchronous=full, one fsync. A lone
// writer gets a transaction of its own with no added latency.
//
// The first writer to arrive leads: it runs a batch of everything queued,
// then hands leadership to the next queued writer, so no goroutine serves
// others indefinitely.
type groupCommitter struct {
	mu      sync.Mutex
	pending []*writeReq
	leading bool
	hook    func(point string) error // failure injection (tests); nil otherwise
}

type writeReq struct {
	ctx   context.Context
	alone bool // runs in a transaction of its own (see store.WriteIsolated)
	fn    func(*sql.Tx) error
	err   error
	done  chan struct{} // closed when err is final
	lead  chan struct{} // closed when this writer must lead the next batch
}

// do runs fn in a transaction shared with concurrent callers and returns
// fn's error, or the commit's.
func (g *groupCommitter) do(ctx context.Context, w *sql.DB, fn func(*sql.Tx) error) error {
	return g.run(ctx, w, fn, false)
}

// run is do; with alone, the write gets a transaction of its own: it
// sees only what other writes committed.
func (g *groupCommitter) run(ctx context.Context, w *sql.DB, fn func(*sql.Tx) error, alone bool) error {
	req := &writeReq{ctx: ctx, fn: fn, alone: alone, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if g.leading {
		g.mu.Unlock()
		select {
		case <-req.done:
			return req.err
		case <-req.lead:
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	// Lead one batch: everything queued, this request included.
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	for i, r := range g.pending[:n] {
		if r.alone { // a batch of its own; the batch before it stops short
			n = max(i, 1)
			break
		}
	}
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	g.runBatch(w, batch)
	g.mu.Lock()
	if len(g.pending) > 0 {
		close(g.pending[0].lead)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	<-req.done
	return req.err
}

// runBatch runs the requests in one transaction and settles each. If the
// shared transaction breaks (a cancelled statement rolls back the whole
// SQLite transaction, or the commit fails), the requests that had succeeded
// run again, each in a transaction of its own: the driver contract allows
// fn to run more than once, and no caller is failed for another's error.
func (g *groupCommitter) runBatch(w *sql.DB, batch []*writeReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if len(batch) == 1 {
		r := batch[0]
		fn := r.fn
		if g.hook != nil {
			fn = func(tx *sql.Tx) error {
				if err := r.fn(tx); err != nil {
					return err
				}
				return g.hook("group-commit") // as if the commit failed
			}
		}
		r.err = withTx(r.ctx, w, fn)
		return
	}
	broken := false
	tx, err := w.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			r.err = withTx(r.ctx, w, r.fn)
		}
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		sp := "docex_w" + strconv.Itoa(i)
		if _, err := tx.Exec("SAVEPOINT " + sp); err != nil {
			broken = true
			break
		}
		if err := call(r.fn, tx); err != nil {
			r.err = err
			if _, rerr := tx.Exec("ROLLBACK TO " + sp); rerr != nil {
				broken = true
				break
			}
		}
		if _, err := tx.Exec("RELEASE " + sp); err != nil {
			broken = true
			break
		}
	}
	if !broken && g.hook != nil && g.hook("group-commit") != nil {
		broken = true // as if the shared commit failed
	}
	if !broken {
		if err := tx.Commit(); err == nil {
			return
		}
	} else {
		_ = rollback(tx)
	}
	// The shared transaction is gone, and with it every change made in it:
	// each request whose caller still waits runs again, alone, so that no
	// caller fails because of another's cancellation or error.
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		r.err = withTx(r.ctx, w, r.fn)
	}
}

// call runs fn, turning a panic into an error so that one broken write
// cannot strand the writers queued behind it.
func call(fn func(*sql.Tx) error, tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
