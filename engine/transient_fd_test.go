//go:build unix

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/fdlimit"
)

// TestTransientOutOfFiles: a job failing because the process ran out of
// file descriptors is retried, whatever error it made on the way (an
// input's content store read, a step's error, one of a kind), and is
// recorded as too_many_open_files.
func TestTransientOutOfFiles(t *testing.T) {
	emfile := &os.PathError{Op: "openat", Path: "x.pack", Err: syscall.EMFILE}
	for _, err := range []error{
		docex.ErrTooManyOpenFiles,
		fmt.Errorf("%w: %w", docex.ErrCorrupt, emfile),
		fmt.Errorf("%w: %w", docex.ErrInvalid, emfile),
		&contentError{docID: "d", err: fmt.Errorf("content store: %w", syscall.ENFILE)},
	} {
		if !transient(err, false) {
			t.Errorf("transient(%v) = false, want true", err)
		}
	}
	if code := docex.Code(fdlimit.Wrap(fmt.Errorf("%w: %w", docex.ErrCorrupt, emfile))); code != "too_many_open_files" {
		t.Errorf("recorded code %q, want too_many_open_files", code)
	}
	if transient(fmt.Errorf("%w: %w", docex.ErrCorrupt, errors.New("bad bytes")), false) {
		t.Error("a corrupt read is transient")
	}
}

// TestSettleOutOfFiles: an attempt that failed because the process ran
// out of file descriptors, even under an error of another code (a
// corrupt read), is recorded as too_many_open_files and queued again.
func TestSettleOutOfFiles(t *testing.T) {
	r := &jobRunner{e: &Engine{cfg: Config{Now: time.Now}}, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second}
	job := &driver.JobRecord{State: driver.JobRunning, Attempts: 1, MaxAttempts: 3}
	det := &jobDetail{Attempts: []JobAttempt{{N: 1}}}
	err := &stepError{step: "s", err: fmt.Errorf("%w: %w", docex.ErrCorrupt, &os.PathError{Op: "openat", Path: "p.pack", Err: syscall.EMFILE})}
	op, out := r.settle(context.Background(), job, det, nil, err, time.Now())
	if op != "job.retry" || out.Kind != driver.Again || job.State != driver.JobQueued || job.ErrorCode != "too_many_open_files" ||
		det.Attempts[0].ErrorCode != "too_many_open_files" || !det.Attempts[0].Transient {
		t.Fatalf("op %q, outcome %v, job %s %q, attempt %+v; want a retry recorded as too_many_open_files", op, out.Kind, job.State, job.ErrorCode, det.Attempts[0])
	}
}
