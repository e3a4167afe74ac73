//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex/internal/fdlimit"
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

const envSpareChild = "DOCEX_TEST_SPARE_CHILD"

// TestSpareChild is the process TestOutOfFilesAnywhere starts: docex
// with an open-file limit of 256 of which all but a given number of
// descriptors are taken (by opens of /dev/null) before it runs (the
// number first, then the arguments, separated by 0x1f).
func TestSpareChild(t *testing.T) {
	if os.Getenv(envSpareChild) == "" {
		t.Skip("run by TestOutOfFilesAnywhere")
	}
	args := strings.Split(os.Getenv(envSpareChild), "\x1f")
	spare, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "spare:", err)
		os.Exit(100)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 256, Max: 256}); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(100)
	}
	// TakeAll makes the runtime's poller first: made at the first
	// os.Open, a process that cannot make it stops (netpollinit failed).
	held := fdlimit.TakeAll()
	fdlimit.Release(held[:min(spare, len(held))])
	runLimited(256, args[1:])
}

// TestOutOfFilesAnywhere runs doc add (a small and a large file, in
// filesystem content storage), doc cat and verify with 0, 1, 2, ...
// descriptors left to them, until each succeeds: wherever the process
// runs out (the config, the system or tenant database, a new read
// connection, the content store's directories, packs and temporary
// files, a FILE argument), the error is too_many_open_files (exit 1,
// kind internal, the hint naming ulimit), never corrupt, unusable or
// invalid input.
func TestOutOfFilesAnywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	large := strings.Repeat("large content, a file of its own\n", 4<<10) // 132 KiB: not packed
	r := h.ok(append([]string{"doc", "add", "b", h.file("s0.txt", "small 0"), h.file("l0.bin", large+"0"), "--json"}, u...)...)
	as := decode[[]added](t, r.stdout)
	if len(as) != 2 {
		t.Fatalf("doc add --json: %s", r.stdout)
	}
	small1, large1 := h.file("s1.txt", "small 1"), h.file("l1.bin", large+"1")
	for _, args := range [][]string{
		append([]string{"doc", "add", "b", small1, large1}, u...),
		append([]string{"doc", "cat", as[0].Document.ID}, u...),
		append([]string{"doc", "cat", as[1].Document.ID}, u...),
		{"verify"},
	} {
		name := strings.Join(args[:min(len(args), 3)], " ")
		failed := 0
		for spare := 0; ; spare++ {
			if spare == 200 {
				t.Fatalf("%s: still failing with 200 descriptors left", name)
			}
			full := append([]string{strconv.Itoa(spare), "--config", filepath.Join(h.dir, "docex.yaml"), "--json"}, args...)
			cmd := exec.Command(os.Args[0], "-test.run=^TestSpareChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envSpareChild+"="+strings.Join(full, "\x1f"))
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil {
				break
			}
			failed++
			var e errorJSON
			jerr := json.Unmarshal([]byte(stderr.String()), &e)
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if jerr != nil || code != exitInternal || e.Error.Code != "too_many_open_files" || e.Error.Kind != "internal" ||
				!strings.Contains(e.Error.Hint, "ulimit -n") || strings.Contains(e.Error.Message, "corrupt") || strings.Contains(e.Error.Message, "unusable") {
				t.Fatalf("%s with %d descriptors left: exit %d, %s%s", name, spare, code, stderr.String(), stdout.String())
			}
		}
		t.Logf("%s: failed with 0 to %d descriptors left, as too_many_open_files", name, failed-1)
	}
}
