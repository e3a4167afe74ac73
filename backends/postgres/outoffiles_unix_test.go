//go:build unix

package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
)

const envOutOfFilesChild = "DOCEX_TEST_PG_FD_CHILD"

// TestOutOfFilesChild is the process TestConnectOutOfFiles starts: with
// an open-file limit of 64, every descriptor taken, it opens the backend
// (which connects) and prints the error's code and message.
func TestOutOfFilesChild(t *testing.T) {
	if os.Getenv(envOutOfFilesChild) == "" {
		t.Skip("run by TestConnectOutOfFiles")
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(100)
	}
	held := fdlimit.TakeAll()
	b, err := Open(context.Background(), Config{DSN: os.Getenv(envOutOfFilesChild)})
	fdlimit.Release(held)
	if err == nil {
		b.Close()
		fmt.Println("connected with no descriptor left")
		os.Exit(2)
	}
	fmt.Printf("%s\n%v\n", docex.Code(err), err)
	if !errors.Is(err, docex.ErrTooManyOpenFiles) {
		os.Exit(1)
	}
	os.Exit(0)
}

// TestConnectOutOfFiles: a connection to PostgreSQL not made because the
// process holds as many files as it may ("dial tcp: socket: too many
// open files") is docex.ErrTooManyOpenFiles naming the limit, not an
// internal error, and masks the password as every connection error does.
func TestConnectOutOfFiles(t *testing.T) {
	dsn := testDSN(t)
	cmd := osexec.Command(os.Args[0], "-test.run=^TestOutOfFilesChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOutOfFilesChild+"="+dsn)
	out, err := cmd.CombinedOutput()
	lines := strings.SplitN(string(out), "\n", 3)
	if err != nil || len(lines) < 2 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child: %s: %s", lines[0], lines[1])
	if lines[0] != "too_many_open_files" || !strings.Contains(lines[1], "open-file limit 64") || !strings.Contains(lines[1], "postgres: connect to") {
		t.Fatalf("connect with no descriptor left: %s: %s; want too_many_open_files naming the limit", lines[0], lines[1])
	}
}
