//go:build unix

package s3store_test

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
)

// TestClassifyOutOfFiles: a request whose socket could not be made for
// want of a descriptor ("dial tcp: socket: too many open files") is
// docex.ErrTooManyOpenFiles, not an unreachable server
// (docex.ErrStorageUnavailable); a refused connection still is one.
func TestClassifyOutOfFiles(t *testing.T) {
	s, err := s3store.New(bg, s3store.Config{Bucket: "bucket", Endpoint: "http://127.0.0.1:1", PathStyle: true, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", errno)}
	}
	got := s.Classify("get object", dial(syscall.EMFILE))
	if !errors.Is(got, docex.ErrTooManyOpenFiles) || errors.Is(got, docex.ErrStorageUnavailable) || docex.Code(got) != "too_many_open_files" {
		t.Errorf("socket not made (EMFILE): %v (code %s), want too_many_open_files", got, docex.Code(got))
	}
	if got := s.Classify("get object", dial(syscall.ECONNREFUSED)); !errors.Is(got, docex.ErrStorageUnavailable) || errors.Is(got, docex.ErrTooManyOpenFiles) {
		t.Errorf("connection refused: %v, want storage_unavailable", got)
	}
}
