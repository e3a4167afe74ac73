//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docex-dev/docex"
)

const envDocAddChild = "DOCEX_TEST_DOCADD_CHILD"

// TestDocAddChild is the process TestDocAddMoreFilesThanOpenLimit starts:
// docex with an open-file limit of 64, running the arguments it is given.
func TestDocAddChild(t *testing.T) {
	if os.Getenv(envDocAddChild) == "" {
		t.Skip("run by TestDocAddMoreFilesThanOpenLimit")
	}
	runLimited(64, strings.Split(os.Getenv(envDocAddChild), "\x1f"))
}

// TestDocAddMoreFilesThanOpenLimit adds 300 files in one doc add call in a
// process that may hold 64 files open: the files are opened one at a
// time, as the engine reads them.
func TestDocAddMoreFilesThanOpenLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "inbox"}, u...)...)
	const n = 300
	args := []string{"--config", filepath.Join(h.dir, "docex.yaml"), "doc", "add", "inbox"}
	for i := range n {
		args = append(args, h.file(fmt.Sprintf("f%03d.txt", i), fmt.Sprintf("document %d", i)))
	}
	args = append(args, u...)
	cmd := exec.Command(os.Args[0], "-test.run=^TestDocAddChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDocAddChild+"="+strings.Join(args, "\x1f"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("doc add of %d files with an open-file limit of 64: %v\n%s", n, err, out)
	}
	r := h.ok(append([]string{"basket", "show", "inbox", "--json"}, u...)...)
	if got := decode[map[string]any](t, r.stdout)["document_count"]; got != float64(n) {
		t.Fatalf("basket holds %v documents, want %d", got, n)
	}
}

// TestFileArg checks doc add's FILE arguments: checked before anything is
// added, opened only when read, closed at their end, and refused when the
// path names another file by the time it is read.
func TestFileArg(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	openFDs := func() int {
		if runtime.GOOS != "linux" {
			return 0
		}
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.txt"), "cannot read"},
		{"directory", dir, "is not a regular file"},
	} {
		if _, err := checkFileArg(tc.path); !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want ErrInvalid %q", tc.name, err, tc.want)
		}
	}
	before := openFDs()
	var args []*fileArg
	for i := range 3 {
		a, err := checkFileArg(write("a"+strconv.Itoa(i), "content "+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, a)
	}
	if got := openFDs(); got != before {
		t.Fatalf("%d files open after checking 3 arguments, want %d", got, before)
	}
	for i, a := range args {
		b, err := io.ReadAll(a)
		if err != nil || string(b) != "content "+strconv.Itoa(i) {
			t.Fatalf("argument %d: %q, %v", i, b, err)
		}
		if got := openFDs(); got != before {
			t.Fatalf("%d files open after reading argument %d, want %d", got, i, before)
		}
	}
	// Replaced between the check and the read: refused.
	p := write("swap", "checked")
	a, err := checkFileArg(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(write("other", "not checked"), p); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(a); !errors.Is(err, docex.ErrInvalid) || len(b) != 0 {
		t.Fatalf("replaced file: read %q, %v; want ErrInvalid and nothing", b, err)
	}
	a.close()
}

// TestFIFOArgs: a FILE argument or --config naming a FIFO is refused as
// not a regular file, without opening it (opening a FIFO waits for a
// writer: pipeline create, doc update and every command's --config never
// returned).
func TestFIFOArgs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fifo := filepath.Join(h.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err) // the file system has no FIFOs
	}
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	id := strings.TrimSpace(h.ok(append([]string{"doc", "add", "b", h.file("a.txt", "a"), "-q"}, u...)...).stdout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, args := range [][]string{{"pipeline", "create", fifo}, {"doc", "update", id, fifo}, {"doc", "add", "b", fifo}} {
			r := h.want(exitInvalid, append(args, u...)...)
			if !strings.Contains(r.stderr, fifo+" is not a regular file") {
				t.Errorf("docex %s: %q", strings.Join(args, " "), r.stderr)
			}
		}
		var out, errb strings.Builder
		err := runEnv(context.Background(), []string{"--config", fifo, "tenant", "list"}, &out, &errb, func(string) string { return "" })
		if exitCode(err) != exitInvalid || !strings.Contains(errb.String(), fifo+" is not a regular file") {
			t.Errorf("--config FIFO: %v, %q", err, errb.String())
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		// Unblock the opens, so the test ends and says why.
		for range 4 {
			if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
		t.Fatal("a command opened the FIFO and waited for a writer")
	}
}
