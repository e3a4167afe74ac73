package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the prepared statements kept per pool; queries
// beyond it (e.g. IN lists of unusual lengths) run unprepared.
const maxCachedStmts = 256

// stmtCache prepares each distinct query once per pool, so that SQLite does
// not parse it again on every call (a third of the CPU of a small write).
//
// Preparing on a pool needs a free connection, and the write pool has only
// one, held by the transaction that meets a new query. So a miss inside a
// transaction is only recorded; prepareMissed prepares the recorded queries
// later, when the caller holds no connection (Write calls it before BEGIN,
// snapOn before the BEGIN of its read transaction).
type stmtCache struct {
	pool   *sql.DB
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	missed map[string]bool
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, stmts: map[string]*sql.Stmt{}, missed: map[string]bool{}}
}

// lookup returns the prepared statement for query, or nil (recording the
// miss unless the cache is full).
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		return s
	}
	if len(c.stmts)+len(c.missed) < maxCachedStmts {
		c.missed[query] = true
	}
	return nil
}

// prepareMissed prepares the queries recorded as misses. The caller must
// not hold a connection of the pool. Queries that fail to prepare are
// dropped (running them unprepared reports the real error).
func (c *stmtCache) prepareMissed(ctx context.Context) {
	c.mu.Lock()
	if len(c.missed) == 0 {
		c.mu.Unlock()
		return
	}
	var todo []string
	for q := range c.missed {
		todo = append(todo, q)
	}
	clear(c.missed)
	c.mu.Unlock()
	for _, q := range todo {
		s, err := c.pool.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.stmts[q]; dup {
			s.Close()
		} else {
			c.stmts[q] = s
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if s := c.lookup(query); s != nil {
		return s
	}
	c.prepareMissed(ctx)
	return c.lookup(query)
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.stmts {
		s.Close()
		delete(c.stmts, q)
	}
}

// cachedPool is a querier over a pool that uses prepared statements.
type cachedPool struct {
	db *sql.DB
	c  *stmtCache
}

func (p cachedPool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := p.c.get(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, q, args...)
}

func (p cachedPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := p.c.get(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, q, args...)
}

func (p cachedPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := p.c.get(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, q, args...)
}

// maxTxStmts bounds the statements a transaction prepares for itself.
const maxTxStmts = 64

// cachedTx is a querier over a transaction that uses the pool's prepared
// statements (database/sql reuses the statement already prepared on the
// transaction's connection). A query the pool has not prepared yet is
// prepared on the transaction itself the second time the transaction runs
// it, and reused until the transaction ends: a one-shot process (the CLI)
// whose only transaction inserts 2,000 documents parses each statement
// once, not once per document. database/sql closes these statements when
// the transaction ends.
type cachedTx struct {
	tx *sql.Tx
	c  *stmtCache
	// local: statements of this transaction; seen: queries run once.
	local map[string]*sql.Stmt
	seen  map[string]bool
}

func newCachedTx(tx *sql.Tx, c *stmtCache) *cachedTx {
	return &cachedTx{tx: tx, c: c, local: map[string]*sql.Stmt{}, seen: map[string]bool{}}
}

// stmt returns a statement for q on the transaction, or nil to run q
// unprepared.
func (t *cachedTx) stmt(ctx context.Context, q string) *sql.Stmt {
	if s, ok := t.local[q]; ok {
		return s
	}
	if s := t.c.lookup(q); s != nil {
		ts := t.tx.StmtContext(ctx, s)
		if len(t.local) < maxTxStmts {
			t.local[q] = ts
		}
		return ts
	}
	if !t.seen[q] {
		if len(t.seen) < maxTxStmts {
			t.seen[q] = true
		}
		return nil
	}
	if len(t.local) >= maxTxStmts {
		return nil
	}
	s, err := t.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil // running it unprepared reports the real error
	}
	t.local[q] = s
	return s
}

func (t *cachedTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *cachedTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *cachedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}
