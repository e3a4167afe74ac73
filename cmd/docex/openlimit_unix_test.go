//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const envLimitedChild = "DOCEX_TEST_LIMITED_CHILD"

// TestLimitedChild is the process TestVerifyGCOverOpenFileLimit starts:
// docex with the open-file limit (soft and hard) and the arguments it is
// given (the limit first, then the arguments, separated by 0x1f).
func TestLimitedChild(t *testing.T) {
	if os.Getenv(envLimitedChild) == "" {
		t.Skip("run by TestVerifyGCOverOpenFileLimit")
	}
	args := strings.Split(os.Getenv(envLimitedChild), "\x1f")
	limit, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "limit:", err)
		os.Exit(100)
	}
	runLimited(limit, args[1:])
}

// runLimited runs docex with args in this process, under an open-file
// limit (soft and hard) of limit and without the built-in steps, and
// exits with its exit code (100 when the limit cannot be set): the body
// of the child processes that test open-file limits.
func runLimited(limit uint64, args []string) {
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(100)
	}
	err := runEnv(context.Background(), args, os.Stdout, os.Stderr, func(k string) string {
		if k == noBuiltinEnv {
			return "1"
		}
		return os.Getenv(k)
	})
	os.Exit(exitCode(err))
}

// TestVerifyGCOverOpenFileLimit runs docex verify and docex gc --dry-run,
// with the default configuration, over 60 tenants (each with a packed
// and a loose document in filesystem content storage) in a process that
// may hold 256 files open: the tenant databases and the namespace
// directories kept open are sized from the limit (sqlite.
// DefaultMaxOpenTenants: 11 databases; blobstore.MaxOpenNamespaces: 32
// directories). With the fixed bounds of 256 each, the process ran out of
// descriptors at about the 40th tenant ("registered but its database is
// unusable").
func TestVerifyGCOverOpenFileLimit(t *testing.T) {
	t.Parallel()
	const tenants, limit = 60, 256
	h := newHarness(t)
	h.ok("init")
	small := h.file("small.txt", "small")
	large := h.file("large.bin", strings.Repeat("large content, a file of its own\n", 4<<10)) // 132 KiB: not packed
	for i := range tenants {
		u := []string{"--tenant", fmt.Sprintf("t%03d", i), "--user", "alice", "--roles", "admin"}
		h.ok("tenant", "create", u[1])
		h.ok(append([]string{"basket", "create", "b"}, u...)...)
		h.ok(append([]string{"doc", "add", "b", small, large}, u...)...)
	}
	packs, _ := filepath.Glob(filepath.Join(h.dir, "docex-data", "content", "tenants", "t000", "*", "packs", "*"))
	if len(packs) == 0 {
		t.Fatal("no pack file in t000's content: the small document was not packed")
	}
	for _, args := range [][]string{{"verify"}, {"gc", "--dry-run"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLimitedChild$", "-test.count=1")
		full := append([]string{strconv.Itoa(limit), "--config", filepath.Join(h.dir, "docex.yaml")}, args...)
		cmd.Env = append(os.Environ(), envLimitedChild+"="+strings.Join(full, "\x1f"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("docex %s over %d tenants with an open-file limit of %d: %v\n%s", strings.Join(args, " "), tenants, limit, err, out)
		}
	}
}
