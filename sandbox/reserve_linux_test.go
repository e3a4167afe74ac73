package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// With the address space limited (RLIMIT_AS) to what the process maps
// plus 192 MiB, growbomb (memory_pages 4096: 256 MiB) cannot reserve its
// memory: the run fails with ErrPluginMemory and the process lives on.
// Before, the instance fell back to Go memory and its grow to 256 MiB
// killed the process ("fatal error: runtime: out of memory"). Runs in a
// child process (the limit is the whole process's); not under -race,
// whose runtime maps far more.
func TestReservationFailureDoesNotKill(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's mappings do not fit an address-space limit")
	}
	if os.Getenv("DOCEX_TEST_RESERVE_CHILD") == "1" {
		reservationChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReservationFailureDoesNotKill$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "DOCEX_TEST_RESERVE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child: ErrPluginMemory") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func reservationChild(t *testing.T) {
	ctx := context.Background()
	m, mod := readPlugin(t, "growbomb")
	m.Limits.TimeoutMS = 60_000
	p, err := newSandbox(t, Config{}).Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	vm := vmSize(t)
	lim := syscall.Rlimit{Cur: vm + 192<<20, Max: vm + 192<<20}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim.Cur, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(ctx, pluginapi.Call{TenantID: "a"})
	syscall.Setrlimit(syscall.RLIMIT_AS, &old)
	if !errors.Is(err, pluginapi.ErrPluginMemory) {
		t.Fatalf("err = %v, want %v", err, pluginapi.ErrPluginMemory)
	}
	fmt.Println("child: ErrPluginMemory:", err)
}

// vmSize returns the bytes the process maps (VmSize).
func vmSize(t *testing.T) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}
