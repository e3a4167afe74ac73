//go:build unix

package blobstore_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/fdlimit"
)

const envOutOfFilesChild = "DOCEX_TEST_BLOBSTORE_FD_CHILD"

// TestOutOfFilesChild is the process TestFSOutOfFiles starts: over the
// content directory, tenant incarnation and checksum it is given, with
// every descriptor taken, it opens the content and stages new content
// through a new store (open-file limit 128), and prints each error's code and message.
func TestOutOfFilesChild(t *testing.T) {
	env := os.Getenv(envOutOfFilesChild)
	if env == "" {
		t.Skip("run by TestFSOutOfFiles")
	}
	args := strings.Split(env, "\x1f")
	size, _ := strconv.ParseInt(args[3], 10, 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 128, Max: 128}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(100)
	}
	tc, err := blobstore.NewFS(args[0], true).Tenant(docex.Tenant{ID: "acme", Incarnation: args[1]})
	if err != nil {
		fmt.Println("tenant:", err)
		os.Exit(100)
	}
	held := fdlimit.TakeAll()
	_, oerr := tc.Open(bg, nil, args[2], size)
	_, serr := tc.Stage(bg, strings.NewReader("new content"), 1<<20)
	fdlimit.Release(held)
	for _, err := range []error{oerr, serr} {
		fmt.Printf("%s\t%v\n", docex.Code(err), err)
	}
	os.Exit(0)
}

// TestFSOutOfFiles: the filesystem store's open of stored content and
// its staging of new content, in a process that holds as many files as
// it may, fail with docex.ErrTooManyOpenFiles (not an internal error,
// nor missing or corrupt content); the database store's spool file too,
// not a spool directory unavailable.
func TestFSOutOfFiles(t *testing.T) {
	root := contentDir(t)
	tn := docex.Tenant{ID: "acme", Incarnation: "5b0e0a52-2f3b-4c53-9d35-0c6f1f0e6a11"}
	tc, err := blobstore.NewFS(root, true).Tenant(tn)
	if err != nil {
		t.Fatal(err)
	}
	st := stage(t, tc, "stored content")
	if err := tc.Put(bg, nil, []driver.Staged{st}); err != nil {
		t.Fatal(err)
	}
	st.Discard()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfFilesChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOutOfFilesChild+"="+strings.Join([]string{root, tn.Incarnation, st.Checksum(), strconv.FormatInt(st.Size(), 10)}, "\x1f"))
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) < 2 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for i, what := range []string{"open", "stage"} {
		code, msg, _ := strings.Cut(lines[i], "\t")
		if code != "too_many_open_files" || !strings.Contains(msg, "open-file limit") {
			t.Errorf("%s with no descriptor left: %s: %s; want too_many_open_files naming the limit", what, code, msg)
		}
	}

	serr := blobstore.SpoolError("/var/spool", &os.PathError{Op: "open", Path: "/var/spool/x", Err: syscall.EMFILE})
	if !errors.Is(serr, docex.ErrTooManyOpenFiles) || errors.Is(serr, docex.ErrStorageUnavailable) || errors.Is(serr, driver.ErrSpool) {
		t.Errorf("spool file not made for want of a descriptor: %v (code %s), want ErrTooManyOpenFiles only", serr, docex.Code(serr))
	}
}
