//go:build unix

package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// TestSecondSignalEnds: after the first SIGTERM has cancelled the CLI's
// context, a second one ends the process with exit 130 even when the
// command does not return (wazero's compilation of one function ignores
// cancellation). The child sets up the signals as main does. Before, the
// second signal was caught and ignored, and the child below never ended.
func TestSecondSignalEnds(t *testing.T) {
	if os.Getenv("DOCEX_TEST_SIGNAL_CHILD") == "1" {
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		ctx, _ := watchSignals(sigs, io.Discard, false, os.Exit)
		os.Stdout.WriteString("ready\n")
		<-ctx.Done()
		os.Stdout.WriteString("cancelled\n")
		select {} // a command that never returns
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalEnds$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DOCEX_TEST_SIGNAL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	for _, want := range []string{"ready", "cancelled"} {
		if want == "cancelled" {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("child said %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("child ended with %v, want exit %d", err, exitInterrupted)
	}
}
