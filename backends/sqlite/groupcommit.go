package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
// fn's error, or the commit's. A caller whose ctx is done while its write
// still waits for the writer (another batch runs) leaves the queue: fn is
// not run and do returns ctx.Err().
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
		case <-ctx.Done():
			if g.leave(req) {
				return ctx.Err()
			}
			// Taken into a batch, or made to lead the next one.
			select {
			case <-req.done:
				return req.err
			case <-req.lead:
			}
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

// leave takes req out of the queue and reports whether it did: not when
// a batch took it, or when it was made to lead the next batch (its lead
// is closed while it is still queued).
func (g *groupCommitter) leave(req *writeReq) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-req.lead:
		return false
	default:
	}
	i := slices.Index(g.pending, req)
	if i < 0 {
		return false
	}
	g.pending = slices.Delete(g.pending, i, i+1)
	return true
}

// runBatch runs the requests in one transaction and settles each. If the
// shared transaction breaks (a cancelled statement rolls back the whole
// SQLite transaction, or the commit fails), the requests that had succeeded
// run again, each in a transaction of its own: the driver contract allows
// fn to run more than once, and no caller is failed for another's error.
//
// The batch first runs without savepoints: SQLite copies every page a
// savepoint changes into a sub-journal before changing it, which, with
// its allocations, was about half of the writer's CPU in a pipeline run
// (docs/benchmarks.md).
// Only if a write fails does the batch run again, each write in its own
// savepoint, so that its error rolls back only its own changes.
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
	switch g.runShared(w, batch, false) {
	case sharedCommitted:
		return
	case sharedWriteFailed:
		if g.runShared(w, batch, true) == sharedCommitted {
			return
		}
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

// sharedOutcome is how runShared ended.
type sharedOutcome int

const (
	sharedCommitted   sharedOutcome = iota // every request settled, the transaction committed
	sharedWriteFailed                      // without savepoints, a write failed: rolled back, nothing settled
	sharedBroken                           // the transaction broke or its commit failed: rolled back
)

// runShared runs the batch's requests in one transaction, each in a
// savepoint of its own when savepoints is set, and commits it. It sets
// each request's err only when it returns sharedCommitted.
func (g *groupCommitter) runShared(w *sql.DB, batch []*writeReq, savepoints bool) sharedOutcome {
	tx, err := w.BeginTx(context.Background(), nil)
	if err != nil {
		return sharedBroken
	}
	errs := make([]error, len(batch))
	out := sharedCommitted
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !savepoints {
			if errs[i] = call(r.fn, tx); errs[i] != nil {
				out = sharedWriteFailed
				break
			}
			continue
		}
		sp := "docex_w" + strconv.Itoa(i)
		if _, err := tx.Exec("SAVEPOINT " + sp); err != nil {
			out = sharedBroken
			break
		}
		if errs[i] = call(r.fn, tx); errs[i] != nil {
			if _, rerr := tx.Exec("ROLLBACK TO " + sp); rerr != nil {
				out = sharedBroken
				break
			}
		}
		if _, err := tx.Exec("RELEASE " + sp); err != nil {
			out = sharedBroken
			break
		}
	}
	if out == sharedCommitted && g.hook != nil && g.hook("group-commit") != nil {
		out = sharedBroken // as if the shared commit failed
	}
	if out == sharedCommitted {
		if err := tx.Commit(); err != nil {
			return sharedBroken
		}
		for i, r := range batch {
			r.err = errs[i]
		}
		return sharedCommitted
	}
	_ = rollback(tx)
	return out
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
