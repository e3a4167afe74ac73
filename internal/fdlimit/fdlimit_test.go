package fdlimit

import (
	"runtime"
	"testing"
)

func TestShare(t *testing.T) {
	for _, tc := range []struct{ limit, div, per, ceiling, want int }{
		{0, 2, 11, 256, 256}, {1024, 2, 11, 256, 46}, {1024, 8, 1, 256, 128}, {10, 2, 11, 256, 1}, {1 << 20, 2, 11, 256, 256},
	} {
		if got := Share(tc.limit, tc.div, tc.per, tc.ceiling); got != tc.want {
			t.Errorf("Share(%d, %d, %d, %d) = %d, want %d", tc.limit, tc.div, tc.per, tc.ceiling, got, tc.want)
		}
	}
}

// TestLimit: the limit is read where the system has one, and a process
// far from it is not exhausted.
func TestLimit(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		if Limit() != 0 || Exhausted(3) {
			t.Fatal("Limit and Exhausted are documented as 0 and false here")
		}
		return
	}
	if Limit() <= 0 {
		t.Fatalf("Limit() = %d", Limit())
	}
	if Exhausted(3) {
		t.Fatal("Exhausted(3) in a process far from its limit")
	}
}
