package proccpu

import (
	"runtime"
	"testing"
	"time"
)

// TestSelfGrowsWithWork spins for CPU and checks that Self counts it (on
// the systems where it reads the process's CPU time).
func TestSelfGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		if Self() != 0 {
			t.Fatal("Self is documented as 0 here")
		}
		return
	}
	before := Self()
	if before <= 0 {
		t.Fatalf("Self() = %v before any work, want > 0 (the test binary has started)", before)
	}
	x := 0
	for start := time.Now(); Self()-before < 20*time.Millisecond; {
		for i := range 1_000_000 {
			x += i
		}
		if time.Since(start) > 5*time.Minute {
			t.Fatal("5 minutes of spinning did not add 20 ms of CPU time")
		}
	}
	if x == 0 {
		t.Fatal("unreachable")
	}
}
