package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

const (
	envSQLiteFrozenDir    = "DOCEX_SQLITE_FROZEN_DIR"
	envSQLiteFrozenTenant = "DOCEX_SQLITE_FROZEN_TENANT"
)

// TestSQLiteFrozenWriterChild is the child process of
// TestSQLiteSuspendBoundedWait: over the SQLite data directory it is
// given, it begins a write of the tenant (a basket inserted: the write
// holds the tenant database's write lock), says "holding" on stdout and
// blocks there, as a SIGSTOPped worker or doc add does, until its stdin
// is closed. It does nothing in a normal run.
func TestSQLiteFrozenWriterChild(t *testing.T) {
	dir := os.Getenv(envSQLiteFrozenDir)
	if dir == "" {
		t.Skip("frozen writer child: run by TestSQLiteSuspendBoundedWait only")
	}
	ctx := t.Context()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st, err := be.OpenTenant(ctx, os.Getenv(envSQLiteFrozenTenant))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Write(ctx, func(tx driver.Tx) error {
		if err := tx.InsertBasket(ctx, docex.Basket{ID: uuid.NewString(), Name: "frozen", CreatedAt: time.Now()}); err != nil {
			return err
		}
		fmt.Println("holding")
		io.Copy(io.Discard, os.Stdin) //nolint:errcheck // until the parent closes it
		return errors.New("released by the parent")
	})
	t.Logf("write: %v", err)
}

// TestSQLiteSuspendBoundedWait: on SQLite, behind another process whose
// write of the tenant holds the tenant database's write lock and does not
// go on (a stopped worker or doc add), docex tenant suspend waits
// database.sqlite.lock_timeout_ms and exits 1 with storage_unavailable,
// saying that the tenant is suspended, that the write still holds the
// lock and may commit, naming the process (Linux), with the hint; the
// tenant is suspended (its operations refused), and the system audit
// log has the suspension and then the failed attempt. docex tenant delete
// waits as long, then deletes all the same, exit 0, with a warning line
// on stderr naming the process. Before, both waited for ever.
func TestSQLiteSuspendBoundedWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.editConfig("    synchronous: full\n", "    synchronous: full\n    lock_timeout_ms: 200\n")
	h.ok("tenant", "create", "acme")

	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteFrozenWriterChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envSQLiteFrozenDir+"="+filepath.Join(h.dir, "docex-data"), envSQLiteFrozenTenant+"=acme")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }() //nolint:errcheck // its output was read
		select {
		case <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "holding" {
		t.Fatalf("frozen writer child: %q, %v", sc.Text(), sc.Err())
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck // the rest of its output

	// run runs docex, failing the test when it still runs after 2
	// minutes (before, it waited for ever behind the child).
	run := func(code int, args ...string) result {
		t.Helper()
		done := make(chan result, 1)
		go func() { done <- h.run(args...) }()
		select {
		case r := <-done:
			if r.code != code {
				t.Fatalf("docex %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
			}
			return r
		case <-time.After(2 * time.Minute):
			t.Fatalf("docex %s still waits after 2 minutes behind the frozen writer", strings.Join(args, " "))
			return result{}
		}
	}
	holder := func(msg string) {
		t.Helper()
		if runtime.GOOS != "linux" {
			if !strings.Contains(msg, "its holder could not be named") {
				t.Errorf("%q: want it to say that its holder could not be named", msg)
			}
			return
		}
		if want := fmt.Sprintf("it is held by pid %d (", cmd.Process.Pid); !strings.Contains(msg, want) || !strings.Contains(msg, "TestSQLiteFrozenWriterChild") {
			t.Errorf("%q: want it to name the child, %q with its command line", msg, want)
		}
	}

	r := run(exitInternal, "tenant", "suspend", "acme", "--json")
	var out struct {
		Error struct{ Code, Kind, Message, Hint string }
	}
	if err := json.Unmarshal([]byte(r.stderr), &out); err != nil {
		t.Fatalf("stderr %q: %v", r.stderr, err)
	}
	e := out.Error
	if e.Code != "storage_unavailable" || e.Kind != "internal" ||
		!strings.Contains(e.Message, `sqlite: suspend tenant "acme": tenant "acme" is suspended (operations that start now are refused), but a write that began before still holds the tenant database's write lock: waited 200ms for it (the lock timeout, database.sqlite.lock_timeout_ms); `) ||
		!strings.HasSuffix(e.Message, "; that write may still commit once its process goes on; run the command again to wait for it") ||
		!strings.HasPrefix(e.Hint, "the tenant is suspended already: run the command again to wait for the write named, or raise database.sqlite.lock_timeout_ms in docex.yaml") {
		t.Fatalf("tenant suspend --json behind the frozen writer: %+v", e)
	}
	holder(e.Message)
	// Audited: the suspension, then the attempt's error.
	var log []map[string]any
	for _, e := range decode[[]map[string]any](t, h.ok("audit", "list", "--system", "--json").stdout) {
		if e["operation"] != "system.audit.list" { // the listing's own
			log = append(log, e)
		}
	}
	if len(log) < 2 || log[0]["operation"] != "tenant.suspend" || log[0]["outcome"] != "error" || log[0]["error"] != e.Message ||
		log[1]["operation"] != "tenant.suspend" || log[1]["outcome"] != "ok" {
		t.Fatalf("system audit log, newest first: %v", log[:min(len(log), 2)])
	}
	if r := h.ok("tenant", "show", "acme", "--json"); !strings.Contains(r.stdout, `"status": "suspended"`) {
		t.Fatalf("after the suspension gave up waiting: %s", r.stdout)
	}
	h.want(exitDenied, "basket", "list", "--tenant", "acme", "--user", "u", "--roles", "reader")

	// Again, without --json: it waits again, and says the same.
	r = run(exitInternal, "tenant", "suspend", "acme")
	if !strings.HasPrefix(r.stderr, `docex: sqlite: suspend tenant "acme": tenant "acme" is suspended (operations that start now are refused)`) ||
		!strings.Contains(r.stderr, "\nhint: the tenant is suspended already: ") {
		t.Fatalf("tenant suspend again: stderr %q", r.stderr)
	}

	r = run(exitOK, "tenant", "delete", "acme", "--yes")
	if r.stdout != "deleted tenant acme\n" ||
		!strings.HasPrefix(r.stderr, `docex: warning: sqlite: delete tenant "acme": tenant "acme" is deleted (its registry row is gone, operations that start now are refused), but a write that began before still holds the tenant database's write lock: waited 200ms for it (the lock timeout, database.sqlite.lock_timeout_ms); `) ||
		!strings.HasSuffix(r.stderr, "; its database file was removed all the same: that write commits nothing any tenant sees, and docex gc removes what it leaves\n") ||
		strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("tenant delete behind the frozen writer: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	holder(r.stderr)
	h.want(exitNotFound, "tenant", "show", "acme")
	if m, _ := filepath.Glob(filepath.Join(h.dir, "docex-data", "tenants", "acme", "*.db")); len(m) != 0 {
		t.Fatalf("tenant files left: %v", m)
	}
}
