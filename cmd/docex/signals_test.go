package main

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the watcher's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecondSignalExits: the first SIGINT or SIGTERM cancels the
// command's context (it stops as it documents); the second exits 130 at
// once with an interrupted error on stderr (JSON with --json), not
// waiting for that stop. Before, main's signal.NotifyContext took the
// second signal and did nothing with it: a worker waiting up to
// --shutdown-timeout for its running jobs could not be hurried.
func TestSecondSignalExits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		signals []os.Signal
		json    bool
		want    string // stderr's start; "" with one signal: nothing
	}{
		{"none", nil, false, ""},
		{"one SIGTERM", []os.Signal{syscall.SIGTERM}, false, ""},
		{"one SIGINT", []os.Signal{os.Interrupt}, false, ""},
		{"SIGTERM twice", []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, false, "docex: second SIGTERM: exiting at once, not waiting for the stop the first one began"},
		{"SIGTERM then SIGINT", []os.Signal{syscall.SIGTERM, os.Interrupt}, false, "docex: second SIGINT (Ctrl-C): exiting at once"},
		{"SIGINT twice --json", []os.Signal{os.Interrupt, os.Interrupt}, true, `{"error":{"code":"interrupted","kind":"interrupted","message":"second SIGINT (Ctrl-C): exiting at once`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sigs := make(chan os.Signal, 2)
			var errb lockedBuffer
			exited := make(chan int, 1)
			ctx, stop := watchSignals(sigs, &errb, tc.json, func(code int) { exited <- code })
			for _, s := range tc.signals {
				sigs <- s
			}
			if len(tc.signals) >= 1 {
				<-ctx.Done() // the first
			}
			if len(tc.signals) >= 2 {
				if code := <-exited; code != 130 {
					t.Errorf("exit(%d), want exit(130)", code)
				}
			}
			stop() // the watcher has returned
			if ctx.Err() == nil {
				t.Error("context not done after stop")
			}
			select {
			case code := <-exited:
				t.Errorf("exit(%d) after %d signal(s)", code, len(tc.signals))
			default:
			}
			got := errb.String()
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("stderr %q, want it to start %q", got, tc.want)
			}
		})
	}
}
