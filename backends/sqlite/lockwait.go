package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex"
)

// ErrLockTimeout marks a tenant suspension whose wait for the tenant's
// write in flight gave up after Config.LockTimeout: the registry change
// committed (the tenant is suspended, operations that start now are
// refused), but a write that began before still held the tenant
// database's write lock (its process stalled or stopped, SIGSTOP) and may
// still commit. Such an error also matches docex.ErrStorageUnavailable
// (exit 1, as the busy timeout's ErrBusy does, which it does not match);
// running the suspension again waits again. A deletion that gave up so
// deletes all the same and reports it with a *driver.DeleteWaitError
// wrapping such an error.
var ErrLockTimeout = errors.New("sqlite: a write in flight held the tenant database's write lock for longer than the lock timeout")

// lockWaitErr is lockWaitError's error. It does not wrap the wait's own
// error, the deadline's (context.DeadlineExceeded): nothing timed out
// that the caller set.
type lockWaitErr struct{ msg string }

func (e *lockWaitErr) Error() string   { return e.msg }
func (e *lockWaitErr) Unwrap() []error { return []error{docex.ErrStorageUnavailable, ErrLockTimeout} }

// DefaultLockTimeout is Config.LockTimeout's default.
const DefaultLockTimeout = 30 * time.Second

// drain returns once no write transaction of the tenant that began before
// the registry changed can still commit: it takes the tenant database's
// write lock once, with an empty transaction (through the group committer
// in this process; SQLite's file lock orders it after other processes'
// writers). Every write re-reads the registry after taking that lock
// (store.Write), so writes that begin later are refused. This makes
// suspension and deletion a barrier for writes.
//
// It waits at most Config.LockTimeout (a process holding the write lock
// may be stopped, SIGSTOP, and hold it until it is continued or killed):
// past it, it returns lockWaitError's error (ErrLockTimeout), naming the
// processes holding the lock where it can. op ("suspend", "delete") and
// the registry change already made are for the message. When ctx ends
// first, its error is returned (an interruption).
func (b *Backend) drain(ctx context.Context, op string, t docex.Tenant) error {
	h, err := b.acquire(ctx, t)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no database: nothing in flight
		}
		return fmt.Errorf("wait for writes in flight: %w", err)
	}
	defer b.release(h)
	wctx, cancel := context.WithTimeout(ctx, b.cfg.LockTimeout)
	defer cancel()
	for {
		err := h.db.group.do(wctx, h.db.w, func(*sql.Tx) error { return nil })
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("wait for writes in flight: %w", err)
		case wctx.Err() != nil:
			return b.lockWaitError(op, t)
		case !isBusy(err):
			return fmt.Errorf("wait for writes in flight: %w", err)
		}
		// The busy timeout passed first: wait again.
	}
}

// lockWaitError is the error of a drain that waited Config.LockTimeout
// for tenant t's write lock, after the
// registry change of op: it matches ErrLockTimeout and
// docex.ErrStorageUnavailable, and says what was done, that a write that
// began before still holds the lock, and which processes hold it
// (lockHolders).
func (b *Backend) lockWaitError(op string, t docex.Tenant) error {
	var done, next string
	switch op {
	case "delete":
		done = fmt.Sprintf("tenant %q is deleted (its registry row is gone, operations that start now are refused), but", t.ID)
		next = "its database file was removed all the same: that write commits nothing any tenant sees, and docex gc removes what it leaves"
	default:
		done = fmt.Sprintf("tenant %q is suspended (operations that start now are refused), but", t.ID)
		next = "that write may still commit once its process goes on; run the command again to wait for it"
	}
	held := "its holder could not be named"
	if path, perr := b.tenantPath(t.ID, t.Incarnation); perr == nil {
		held = lockHolders(path)
	}
	msg := fmt.Sprintf("sqlite: %s tenant %q: %s a write that began before still holds the tenant database's write lock: waited %v for it (the lock timeout, database.sqlite.lock_timeout_ms); %s; %s",
		op, t.ID, done, b.cfg.LockTimeout, held, next)
	return &lockWaitErr{msg: msg}
}

// maxHolders bounds the processes a lock wait's error names.
const maxHolders = 5

// lockHolders says which other processes hold the write lock of the
// SQLite database at path (WAL mode): "it is held by pid 4242 (docex
// worker)", "it is held by pids ...", "no other process holds it any
// more", or "its holder could not be named (...)". Only Linux lists file
// locks with their process (/proc/locks).
func lockHolders(path string) string {
	pids, unseen, err := writeLockHolders(path)
	if err != nil {
		return "its holder could not be named (" + err.Error() + ")"
	}
	const hidden = "a process that /proc/locks does not name (in another PID namespace: a container)"
	switch {
	case len(pids) == 0 && unseen:
		return "it is held by " + hidden
	case len(pids) == 0:
		return "no other process holds it any more"
	}
	var names []string
	for i, pid := range pids {
		if i == maxHolders {
			names = append(names, fmt.Sprintf("and %d more", len(pids)-maxHolders))
			break
		}
		names = append(names, fmt.Sprintf("%d (%s)", pid, processCommand(pid)))
	}
	s := "pid "
	if len(pids) > 1 {
		s = "pids "
	}
	s = "it is held by " + s + strings.Join(names, ", ")
	if unseen {
		s += ", and by " + hidden
	}
	return s
}

// processCommand returns pid's command line from /proc/PID/cmdline,
// quoted and at most 200 bytes, or "command unknown".
func processCommand(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	cmd := strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
	if err != nil || cmd == "" {
		return "command unknown"
	}
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	return strconv.Quote(cmd)
}

// walWriteLock is the byte of the -shm file that SQLite's WAL write lock
// locks (WAL_WRITE_LOCK: 120 + 0): a write transaction holds it, with a
// POSIX (fcntl) write lock, from its BEGIN IMMEDIATE to its end. Readers
// hold read locks on other bytes of the -shm file and on the database
// file, which do not make a write wait.
const walWriteLock = 120

// fileID is a file's device (major, minor) and inode, as /proc/locks
// names it.
type fileID struct {
	major, minor uint64
	ino          uint64
}

// lockHoldersIn returns the processes other than self that hold, in
// procLocks (the text of /proc/locks), a write lock covering byte
// walWriteLock of shm (the -shm file) or any byte of db (the database
// file: a rollback-journal writer, or a connection in exclusive mode), in
// the order listed, each once, and whether such a lock is listed with
// pid 0 (its process is not visible in this process's PID namespace).
// Waiters ("->" lines) hold nothing.
func lockHoldersIn(procLocks io.Reader, self int, shm, db fileID) (pids []int, unseen bool, err error) {
	seen := map[int]bool{}
	sc := bufio.NewScanner(procLocks)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// "1: POSIX  ADVISORY  WRITE 17216 fe:00:10002983 120 120"
		if len(f) != 8 || f[1] == "->" || f[3] != "WRITE" {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid < 0 || pid == self || seen[pid] {
			continue
		}
		id, ok := parseLockFile(f[5])
		if !ok {
			continue
		}
		switch id {
		case db:
		case shm:
			start, err1 := strconv.ParseUint(f[6], 10, 64)
			end, err2 := strconv.ParseUint(f[7], 10, 64)
			if f[7] == "EOF" {
				end, err2 = ^uint64(0), nil
			}
			if err1 != nil || err2 != nil || start > walWriteLock || end < walWriteLock {
				continue
			}
		default:
			continue
		}
		if pid == 0 {
			unseen = true
			continue
		}
		seen[pid] = true
		pids = append(pids, pid)
	}
	return pids, unseen, sc.Err()
}

// parseLockFile parses /proc/locks' "MAJOR:MINOR:INODE" (major and minor
// in hexadecimal, the inode in decimal).
func parseLockFile(s string) (fileID, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return fileID{}, false
	}
	major, err1 := strconv.ParseUint(parts[0], 16, 64)
	minor, err2 := strconv.ParseUint(parts[1], 16, 64)
	ino, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return fileID{}, false
	}
	return fileID{major: major, minor: minor, ino: ino}, true
}
