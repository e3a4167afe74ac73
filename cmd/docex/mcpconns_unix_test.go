//go:build unix

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMCPMaxConnsFromOpenFileLimit: the default of docex mcp
// --max-connections is a quarter of the open-file limit, at most 256
// (mcpMaxConns): under a limit of 150 (soft and hard), docex mcp --help
// gives 37. Before, it was 256 whatever the limit, more connections than
// such a process can open.
func TestMCPMaxConnsFromOpenFileLimit(t *testing.T) {
	for _, c := range []struct {
		limit string
		want  string
	}{{"150", "(default 37)"}, {"4096", "(default 256)"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLimitedChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envLimitedChild+"="+strings.Join([]string{c.limit, "mcp", "--help"}, "\x1f"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docex mcp --help with an open-file limit of %s: %v\n%s", c.limit, err, out)
		}
		line := ""
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "--max-connections") {
				line = l
			}
		}
		if !strings.HasSuffix(line, c.want) {
			t.Errorf("docex mcp --help with an open-file limit of %s: %q, want it to end %s", c.limit, line, c.want)
		}
	}
}

func TestMCPMaxConns(t *testing.T) {
	for limit, want := range map[int]int{0: 256, 1: 1, 3: 1, 150: 37, 1024: 256, 1 << 20: 256} {
		if got := mcpMaxConns(limit); got != want {
			t.Errorf("mcpMaxConns(%d) = %d, want %d", limit, got, want)
		}
	}
}
