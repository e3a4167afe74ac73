//go:build unix

package fdlimit

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// TestIsExhaustion: EMFILE and ENFILE, also wrapped, are exhaustion;
// another errno is not.
func TestIsExhaustion(t *testing.T) {
	for err, want := range map[error]bool{
		syscall.EMFILE: true, syscall.ENFILE: true, &os.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}: true,
		fmt.Errorf("w: %w", syscall.ENFILE): true, syscall.ENOENT: false, syscall.EACCES: false,
	} {
		if got := IsExhaustion(err); got != want {
			t.Errorf("IsExhaustion(%v) = %v, want %v", err, got, want)
		}
	}
}
