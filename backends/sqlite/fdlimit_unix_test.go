//go:build unix

package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/fdlimit"
)

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	return len(ents)
}

// TestFilesPerDB counts the descriptors of an open database with every
// connection in use: FilesPerDB, which the default of MaxOpenTenants is
// computed from, is exact.
func TestFilesPerDB(t *testing.T) {
	ctx := context.Background()
	for _, readConns := range []int{1, 4} {
		b, err := Open(ctx, Config{Dir: t.TempDir(), ReadConns: readConns})
		if err != nil {
			t.Fatal(err)
		}
		before := countFDs(t)
		d, err := b.openDB(ctx, filepath.Join(b.cfg.Dir, "x.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.w.ExecContext(ctx, "CREATE TABLE t(x)"); err != nil {
			t.Fatal(err)
		}
		var open []interface{ Close() error }
		for range readConns {
			rows, err := d.r.QueryContext(ctx, "SELECT x FROM t")
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, rows)
		}
		if got := countFDs(t) - before; got != FilesPerDB(readConns) {
			t.Errorf("%d read connections: a database holds %d descriptors, FilesPerDB says %d", readConns, got, FilesPerDB(readConns))
		}
		for _, r := range open {
			r.Close()
		}
		if err := d.close(); err != nil {
			t.Fatal(err)
		}
		if got := countFDs(t); got != before {
			t.Errorf("%d descriptors after closing the database, %d before", got, before)
		}
	}
}

const envFDChild = "DOCEX_TEST_FD_CHILD"

// TestOutOfFilesChild is the process TestOutOfFilesIsNotCorrupt starts:
// with an open-file limit of 48, it opens the tenants of the data
// directory it is given, keeping every one open (MaxOpenTenants 1,000),
// until an open fails, and prints that error's code and message.
func TestOutOfFilesChild(t *testing.T) {
	dir := os.Getenv(envFDChild)
	if dir == "" {
		t.Skip("run by TestOutOfFilesIsNotCorrupt")
	}
	ctx := context.Background()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 48, Max: 48}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(100)
	}
	b, err := Open(ctx, Config{Dir: dir, MaxOpenTenants: 1000})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(100)
	}
	if mode := os.Getenv(envFDChildMode); mode != "" {
		laterRead(ctx, b, mode)
	}
	for i := range 40 {
		s, err := b.OpenTenant(ctx, "t"+strconv.Itoa(i))
		if err != nil {
			fmt.Printf("%s\n%v\n", docex.Code(err), err)
			if !errors.Is(err, docex.ErrTooManyOpenFiles) || docex.KindOf(err) != nil {
				os.Exit(1)
			}
			os.Exit(0)
		}
		s.Close()
	}
	fmt.Println("40 tenants opened with an open-file limit of 48")
	os.Exit(2)
}

// envFDChildMode makes TestOutOfFilesChild run laterRead in that mode.
const envFDChildMode = "DOCEX_TEST_FD_CHILD_MODE"

// laterRead opens tenant t0, keeps its one read connection busy (a query
// whose rows are not read to their end), takes every descriptor left,
// and then, by mode:
//   - "later-read": reads through the store, which needs a new read
//     connection (its connect fails);
//   - "compact": compacts the store on its open write connection:
//     VACUUM fails to open its temporary file (temp_store FILE; the
//     database must be larger than the temporary database's page cache,
//     2 MB, for VACUUM to spill to the file).
//
// It prints the operation's error's code and message and exits (0 when
// it is ErrTooManyOpenFiles of no kind).
func laterRead(ctx context.Context, b *Backend, mode string) {
	st, err := b.OpenTenant(ctx, "t0")
	if err != nil {
		fmt.Println("open t0:", err)
		os.Exit(100)
	}
	rows, err := st.(*store).db.r.QueryContext(ctx, "SELECT key FROM tenant_meta")
	if err != nil || !rows.Next() {
		fmt.Println("busy read:", err)
		os.Exit(100)
	}
	held := fdlimit.TakeAll()
	switch mode {
	case "later-read":
		_, err = st.Baskets(ctx, docex.Page{Limit: 10})
	case "compact":
		_, err = st.(*store).Compact(ctx)
	default:
		fmt.Println("unknown mode", mode)
		os.Exit(100)
	}
	fdlimit.Release(held)
	rows.Close()
	if err == nil {
		fmt.Printf("%s with no descriptor left succeeded\n", mode)
		os.Exit(2)
	}
	fmt.Printf("%s\n%v\n", docex.Code(err), err)
	if !errors.Is(err, docex.ErrTooManyOpenFiles) || docex.KindOf(err) != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// runFDChild runs TestOutOfFilesChild over dir in mode and returns the
// code and message it printed.
func runFDChild(t *testing.T, dir, mode string) (code, msg string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfFilesChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envFDChild+"="+dir, envFDChildMode+"="+mode)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	lines := strings.SplitN(out.String(), "\n", 3)
	if err != nil || len(lines) < 2 {
		t.Fatalf("child (%s): %v\n%s", mode, err, out.String())
	}
	return lines[0], lines[1]
}

// TestOutOfFilesIsNotCorrupt: a tenant database that cannot be opened
// because the process ran out of file descriptors is ErrTooManyOpenFiles
// (of no kind: exit 1, a job failing with it is retried), naming the
// limit, not a registered tenant whose database is unusable; a database
// that cannot be opened for another reason (SQLite's same "unable to
// open database file") still is.
func TestOutOfFilesIsNotCorrupt(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	for i := range 40 {
		if err := b.CreateTenant(ctx, newTenant("t"+strconv.Itoa(i)), testAudit("tenant.create")); err != nil {
			t.Fatal(err)
		}
	}
	// Another cause: the file is a directory.
	tn, err := b.Tenant(ctx, "t39")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.tenantPath(tn.ID, tn.Incarnation)
	if err := os.Rename(p, p+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = b.OpenTenant(ctx, "t39")
	if err == nil || errors.Is(err, docex.ErrTooManyOpenFiles) || !strings.Contains(err.Error(), "registered but its database is unusable") {
		t.Fatalf("tenant database replaced by a directory: %v, want unusable, not ErrTooManyOpenFiles", err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".moved", p); err != nil {
		t.Fatal(err)
	}
	dir := b.cfg.Dir
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	code, msg := runFDChild(t, dir, "")
	t.Logf("child: %s: %s", code, msg)
	if code != "too_many_open_files" || !strings.HasPrefix(msg, `open tenant "t`) || !strings.Contains(msg, "open-file limit 48") ||
		!strings.Contains(msg, "the process ran out of file descriptors") || strings.Contains(msg, "unusable") {
		t.Fatalf("out of descriptors: code %q, message %q; want too_many_open_files naming the tenant and the limit", code, msg)
	}
}

// TestOutOfFilesLaterRead: a read of an open tenant database that needs
// a new read connection (database/sql connects when every open one is
// busy) while the process holds as many files as it may is
// ErrTooManyOpenFiles naming the limit, not SQLite's "unable to open
// database file (14)" (code internal on the old code).
func TestOutOfFilesLaterRead(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	if err := b.CreateTenant(ctx, newTenant("t0"), testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	dir := b.cfg.Dir
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	code, msg := runFDChild(t, dir, "later-read")
	t.Logf("child: %s: %s", code, msg)
	if code != "too_many_open_files" || !strings.Contains(msg, "open-file limit 48") || !strings.Contains(msg, ".db") {
		t.Fatalf("out of descriptors at a later read: code %q, message %q; want too_many_open_files naming the database and the limit", code, msg)
	}
}

// TestOutOfFilesAfterOpen: an operation on an open tenant database whose
// connection, already connected, must open a new file (VACUUM's
// temporary file) while the process holds as many files as it may is
// ErrTooManyOpenFiles naming the database and the limit, not SQLite's
// "unable to open database file (14)" (code internal on the old code).
func TestOutOfFilesAfterOpen(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	if err := b.CreateTenant(ctx, newTenant("t0"), testAudit("tenant.create")); err != nil {
		t.Fatal(err)
	}
	st, err := b.OpenTenant(ctx, "t0")
	if err != nil {
		t.Fatal(err)
	}
	// 6 MB of content: VACUUM's copy outgrows its page cache.
	err = st.Write(ctx, func(tx driver.Tx) error {
		for i := range 6 {
			if err := tx.PutContent(ctx, fmt.Sprintf("sum%d", i), bytes.Repeat([]byte{byte(i)}, 1<<20)); err != nil {
				return err
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := b.cfg.Dir
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	code, msg := runFDChild(t, dir, "compact")
	t.Logf("child: %s: %s", code, msg)
	if code != "too_many_open_files" || !strings.Contains(msg, "open-file limit 48") || !strings.Contains(msg, ".db") {
		t.Fatalf("compact out of descriptors: code %q, message %q; want too_many_open_files naming the database and the limit", code, msg)
	}
}
