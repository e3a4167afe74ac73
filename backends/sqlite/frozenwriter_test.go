package sqlite_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
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
	envFrozenDir    = "DOCEX_FROZENCHILD_DIR"
	envFrozenTenant = "DOCEX_FROZENCHILD_TENANT"
)

// TestFrozenWriterChild is the child process of
// TestFrozenWriterBoundsSuspendAndDelete: it opens a tenant, begins a
// write (a basket inserted: the write holds the tenant database's write
// lock), says "holding" on stdout and then blocks, holding the lock, as a
// SIGSTOPped worker does, until its stdin is closed; then the write fails
// and rolls back. It does nothing in a normal run.
func TestFrozenWriterChild(t *testing.T) {
	dir := os.Getenv(envFrozenDir)
	if dir == "" {
		t.Skip("frozen writer child: run by TestFrozenWriterBoundsSuspendAndDelete only")
	}
	be, err := sqlite.Open(bgctx, sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st, err := be.OpenTenant(bgctx, os.Getenv(envFrozenTenant))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Write(bgctx, func(tx driver.Tx) error {
		if err := tx.InsertBasket(bgctx, docex.Basket{ID: uuid.NewString(), Name: "frozen", CreatedAt: time.Now()}); err != nil {
			return err
		}
		fmt.Println("holding")
		io.Copy(io.Discard, os.Stdin) //nolint:errcheck // until the parent closes it
		return errors.New("released by the parent")
	})
	t.Logf("write: %v", err)
}

// startFrozenWriter starts TestFrozenWriterChild over the SQLite data
// directory dir for tenant id and returns once its write holds the
// tenant database's write lock; the child ends at the test's end.
func startFrozenWriter(t *testing.T, dir, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFrozenWriterChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envFrozenDir+"="+dir, envFrozenTenant+"="+id)
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
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
		if sc.Text() == "holding" {
			go io.Copy(io.Discard, stdout) //nolint:errcheck // the rest of its output
			return cmd
		}
	}
	t.Fatalf("frozen writer child ended without holding the lock:\n%s", strings.Join(out, "\n"))
	return nil
}

// within runs fn and returns its error; it fails the test when fn has not
// returned after 2 minutes (before the lock timeout bounded it, a
// suspension behind a frozen writer waited for ever).
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s still waits after 2 minutes behind the frozen writer", what)
		return nil
	}
}

// TestFrozenWriterBoundsSuspendAndDelete: behind another process whose
// write of the tenant holds the tenant database's write lock and does not
// go on (a SIGSTOPped worker or doc add), a suspension waits
// Config.LockTimeout for it and fails with ErrLockTimeout (also
// docex.ErrStorageUnavailable), the tenant suspended all the same and
// the error naming the process (on Linux, from /proc/locks); a deletion
// waits as long and deletes all the same, file included, returning a
// *driver.DeleteWaitError that says so. Before, both waited for ever
// (the deletion's wait was "best effort" without a bound).
func TestFrozenWriterBoundsSuspendAndDelete(t *testing.T) {
	scfg, ecfg := multi(t)
	scfg.LockTimeout = 200 * time.Millisecond // the busy timeout stays 5 s: the wait ends inside it
	r := openRig(t, scfg, ecfg, true)
	r.tenant("acme")
	path := r.tenantFile("acme")
	child := startFrozenWriter(t, scfg.Dir, "acme")
	entry := func(op string) docex.AuditEntry {
		return docex.AuditEntry{ID: uuid.NewString(), Time: time.Now(), UserID: "test", Roles: []string{"operator"}, Operation: op, Outcome: docex.OutcomeOK}
	}
	held := fmt.Sprintf("it is held by pid %d (", child.Process.Pid)
	checkHolder := func(msg string) {
		t.Helper()
		if runtime.GOOS != "linux" {
			if !strings.Contains(msg, "its holder could not be named") {
				t.Errorf("error %q: want it to say that its holder could not be named", msg)
			}
			return
		}
		if !strings.Contains(msg, held) || !strings.Contains(msg, "TestFrozenWriterChild") {
			t.Errorf("error %q: want it to name the child, %q with its command line", msg, held)
		}
	}

	err := within(t, "SetTenantStatus(suspended)", func() error {
		return r.be.SetTenantStatus(bgctx, "acme", docex.TenantSuspended, entry("tenant.suspend"))
	})
	if !errors.Is(err, sqlite.ErrLockTimeout) || !errors.Is(err, docex.ErrStorageUnavailable) || errors.Is(err, sqlite.ErrBusy) {
		t.Fatalf("suspension behind the frozen writer: %v, want sqlite.ErrLockTimeout and docex.ErrStorageUnavailable", err)
	}
	for _, want := range []string{
		`sqlite: suspend tenant "acme": tenant "acme" is suspended (operations that start now are refused), but a write that began before still holds the tenant database's write lock: waited 200ms for it (the lock timeout, database.sqlite.lock_timeout_ms); `,
		"; that write may still commit once its process goes on; run the command again to wait for it",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("suspension's error %q: want %q", err, want)
		}
	}
	checkHolder(err.Error())
	if tn, terr := r.be.Tenant(bgctx, "acme"); terr != nil || tn.Status != docex.TenantSuspended {
		t.Fatalf("after the suspension gave up waiting: %+v, %v; want the tenant suspended", tn, terr)
	}

	err = within(t, "DeleteTenant", func() error { return r.be.DeleteTenant(bgctx, "acme", entry("tenant.delete")) })
	var we *driver.DeleteWaitError
	if !errors.As(err, &we) || !errors.Is(err, sqlite.ErrLockTimeout) {
		t.Fatalf("deletion behind the frozen writer: %v, want a *driver.DeleteWaitError with sqlite.ErrLockTimeout", err)
	}
	for _, want := range []string{
		`sqlite: delete tenant "acme": tenant "acme" is deleted (its registry row is gone, operations that start now are refused), but a write that began before still holds the tenant database's write lock: waited 200ms for it (the lock timeout, database.sqlite.lock_timeout_ms); `,
		"; its database file was removed all the same: that write commits nothing any tenant sees, and docex gc removes what it leaves",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("deletion's error %q: want %q", err, want)
		}
	}
	checkHolder(err.Error())
	if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("tenant file after the deletion: %v, want it removed", serr)
	}
	if _, terr := r.be.Tenant(bgctx, "acme"); !errors.Is(terr, docex.ErrTenantNotFound) {
		t.Errorf("tenant after the deletion: %v, want tenant_not_found", terr)
	}
}
