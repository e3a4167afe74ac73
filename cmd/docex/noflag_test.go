package main

import (
	"strings"
	"testing"
)

// TestUnknownFlagWithoutCommand: a command line with an unknown flag and
// no command names the flag (exit 2). Before, it said only "no command
// given".
func TestUnknownFlagWithoutCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag --bogus, and no command given"},
		{[]string{"--tenant", "acme", "--bogus=1"}, "unknown flag --bogus, and no command given"},
		{[]string{"--tenant", "--json"}, "no command given"}, // --json is --tenant's value here
		{[]string{"--json"}, "no command given"},
	} {
		r := h.want(exitInvalid, c.args...)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("docex %v: stderr %q, want %q", c.args, r.stderr, c.want)
		}
	}
}
