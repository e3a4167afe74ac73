package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/jackc/pgx/v5"
)

// ErrBusy marks a suspension, resumption or deletion of a tenant that
// gave up after waiting Config.LockTimeout for the tenant's transactions
// still open (a write holds the tenant's registry row FOR SHARE until it
// ends; a deletion's DROP SCHEMA waits for reads too). Such an error
// also matches docex.ErrStorageUnavailable (exit 1), as SQLite's busy
// timeout does; nothing was changed.
var ErrBusy = errors.New("postgres: the tenant's transactions still open held it for longer than the lock timeout")

type busyErr struct {
	msg string
	err error
}

func (e *busyErr) Error() string   { return e.msg }
func (e *busyErr) Unwrap() []error { return []error{docex.ErrStorageUnavailable, ErrBusy, e.err} }

// tenantAdmin runs fn, an operator's change of tenant id (op: "suspend",
// "resume", "delete"), in a transaction whose every lock wait is bounded
// by Config.LockTimeout (lock_timeout, transaction-local). A wait that
// reaches it rolls the transaction back and returns lockWaitError's
// error; any other error is fn's.
func (b *Backend) tenantAdmin(ctx context.Context, op, id string, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, b.lockMS); err != nil {
			return b.wrap(err, "%s tenant %q", op, id)
		}
		return fn(tx)
	})
	if code, _ := pgError(err); code == codeLockNotAvailable {
		return b.lockWaitError(ctx, op, id, err)
	}
	return err
}

// sqlTenantHolders lists the sessions whose transaction holds a lock on
// a relation of schema $1 (every tenant transaction does: its check
// reads the schema's meta table), oldest transaction first, at most 5;
// with $2, only those also holding the registry ($3, the system
// schema's tenants table) in ROW SHARE mode, which a SELECT ... FOR
// SHARE takes: the tenant's write transactions.
const sqlTenantHolders = `SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr) || ':' || a.client_port, ''), coalesce(a.state, ''),
	coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8, coalesce(extract(epoch FROM now() - a.state_change), 0)::float8
	FROM pg_catalog.pg_stat_activity a
	WHERE a.pid <> pg_backend_pid()
	AND a.pid IN (SELECT l.pid FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND l.granted)
	AND (NOT $2 OR a.pid IN (SELECT l.pid FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $3 AND c.relname = 'tenants' AND l.mode = 'RowShareLock' AND l.granted))
	ORDER BY a.xact_start NULLS LAST LIMIT 5`

// lockWaitError is the error of tenantAdmin's transaction that reached
// the lock timeout (err): it matches ErrBusy and
// docex.ErrStorageUnavailable and names the transactions of the tenant
// open now (sqlTenantHolders: for a suspension or resumption its write
// transactions, for a deletion all of them), with their process id,
// application_name, client address, state and age, so that an operator
// can tell a frozen client (idle in transaction) from a long write, and
// end it (pg_terminate_backend) if need be. With none open, it names the
// sessions that are not transactions of the tenant but hold its registry
// row (registryBlockers), each marked so.
func (b *Backend) lockWaitError(ctx context.Context, op, id string, err error) error {
	msg := fmt.Sprintf("postgres: %s tenant %q: waited %v (the lock timeout, database.postgres.lock_timeout_ms) for the tenant's transactions still open and gave up; nothing was changed", op, id, b.cfg.LockTimeout)
	var holders []string
	listed := false
	if schema, serr := b.tenantSchema(id); serr == nil {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var qerr error
		holders, qerr = b.sessions(qctx, sqlTenantHolders, "", schema, op != "delete", b.cfg.BootstrapSchema)
		if listed = qerr == nil; !listed {
			msg += "; the transactions could not be listed: " + b.wrap(qerr, "list them").Error()
		}
	}
	if listed && len(holders) == 0 {
		// No transaction of the tenant: a session that is not one may
		// hold its registry row (an operator's psql, a backup tool,
		// another operator's suspension).
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var qerr error
		if holders, qerr = b.registryBlockers(qctx, op, id); qerr != nil {
			listed = false
			msg += "; the transactions could not be listed: " + b.wrap(qerr, "list them").Error()
		}
	}
	switch {
	case !listed:
	case len(holders) > 0:
		msg += ": it waited for " + strings.Join(holders, "; ")
	default:
		msg += ": none is open any more, run it again"
	}
	return &busyErr{msg: msg, err: err}
}

// sqlBlockers lists the sessions that block process $1's lock wait
// (pg_blocking_pids: those holding a lock it waits for, and those
// queued before it for one), in sqlTenantHolders' columns and order.
const sqlBlockers = `SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr) || ':' || a.client_port, ''), coalesce(a.state, ''),
	coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8, coalesce(extract(epoch FROM now() - a.state_change), 0)::float8
	FROM pg_catalog.pg_stat_activity a
	WHERE a.pid = ANY (pg_catalog.pg_blocking_pids($1))
	ORDER BY a.xact_start NULLS LAST LIMIT 5`

// notTenant marks a session registryBlockers names.
const notTenant = "; not a transaction of the tenant: it holds or awaits a lock on the tenant's registry row"

// registryBlockers names the sessions that hold (or are queued for) a
// lock on tenant id's registry row that op's change of it waits for,
// when no transaction of the tenant is open: it takes that row lock
// again (FOR NO KEY UPDATE, an UPDATE's, for a suspension or
// resumption; FOR UPDATE, a DELETE's, for a deletion) on a connection
// of its own, bounded by Config.LockTimeout, and reads
// pg_blocking_pids of that connection's process while it waits: exact,
// where the locks in pg_locks would name every write of every tenant
// (each holds some registry row). It returns none when the lock is
// free. The wait is always cancelled (pg_cancel_backend: a server
// process waiting on a lock does not notice its client gone), and it
// changes nothing.
func (b *Backend) registryBlockers(ctx context.Context, op, id string) ([]string, error) {
	conn, err := pgx.ConnectConfig(ctx, b.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pid := conn.PgConn().PID()
	lock := "FOR NO KEY UPDATE"
	if op == "delete" {
		lock = "FOR UPDATE"
	}
	done := make(chan error, 1)
	go func() {
		done <- pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, b.lockMS); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT 1 FROM `+b.sys+`.tenants WHERE id = $1 `+lock, id)
			return err // rolled back: BeginFunc commits only a nil
		})
	}()
	waiting := true
	defer func() {
		if waiting {
			_, _ = b.pool.Exec(context.WithoutCancel(ctx), `SELECT pg_catalog.pg_cancel_backend($1)`, pid)
			<-done
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			waiting = false
			if code, _ := pgError(err); err == nil || code == codeLockNotAvailable {
				return nil, nil // the row is free (or was never seen held)
			}
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		holders, err := b.sessions(ctx, sqlBlockers, notTenant, pid)
		if err != nil || len(holders) > 0 {
			return holders, err
		}
	}
}

// sessions runs query (sqlTenantHolders' columns) with args and returns
// each session it lists as lockWaitError names it, note (if any) after
// its ages.
func (b *Backend) sessions(ctx context.Context, query, note string, args ...any) ([]string, error) {
	rows, err := b.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var holders []string
	for rows.Next() {
		var (
			pid                int32
			app, client, state string
			xactAge, stateAge  float64
		)
		if err := rows.Scan(&pid, &app, &client, &state, &xactAge, &stateAge); err != nil {
			return nil, err
		}
		if client == "" {
			client = "a local socket"
		}
		holders = append(holders, fmt.Sprintf("pid %d (application_name %q, client %s, %s for %v, its transaction open for %v%s)",
			pid, app, client, state, seconds(stateAge), seconds(xactAge), note))
	}
	return holders, rows.Err()
}

// seconds returns s seconds as a duration, rounded to the second (to
// the millisecond below one).
func seconds(s float64) time.Duration {
	d := time.Duration(s * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
