package config

import (
	"errors"
	"fmt"
	"testing"
)

// TestLineAndErrorKey: Line gives a written key's line (0 for a default),
// and ErrorKey the key of a config error, wrapped or not ("" for others).
func TestLineAndErrorKey(t *testing.T) {
	f, err := Parse([]byte("config_version: 1\ndatabase:\n  sqlite:\n    system_file: my.db\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Line("database.sqlite.system_file"); got != 4 {
		t.Errorf("Line(system_file) = %d, want 4", got)
	}
	if got := f.Line("multi_tenancy.enabled"); got != 0 {
		t.Errorf("Line of a default = %d, want 0", got)
	}
	ke := f.KeyError("multi_tenancy.enabled", errors.New("x"))
	if got := ErrorKey(fmt.Errorf("wrapped: %w", ke)); got != "multi_tenancy.enabled" {
		t.Errorf("ErrorKey = %q", got)
	}
	_, err = Parse([]byte("config_version: 1\nsandbox:\n  pool_size: -1\n"), t.TempDir())
	if got := ErrorKey(err); got != "sandbox.pool_size" {
		t.Errorf("ErrorKey of a Parse error = %q (%v)", got, err)
	}
	if got := ErrorKey(errors.New("x")); got != "" {
		t.Errorf("ErrorKey of another error = %q", got)
	}
}
