package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestPostgresZeroTimeoutsDocumented: docex.yaml.example says, in the
// comment above database.postgres.idle_in_transaction_timeout_ms and
// lock_timeout_ms, that 0 (or leaving the key out) means the default and
// does not disable the bound, as in PostgreSQL's own settings 0 would
// (the backend turns 0 into the default). Before, it said nothing about
// 0 (probe P18 F3).
func TestPostgresZeroTimeoutsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docex.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	// The keys of the postgres section only (database.sqlite has a
	// lock_timeout_ms too).
	start := slices.Index(lines, "  postgres:")
	if start < 0 {
		t.Fatal("docex.yaml.example has no database.postgres section")
	}
	end := start + 1
	for end < len(lines) && (lines[end] == "" || strings.HasPrefix(lines[end], "    ") || strings.HasPrefix(strings.TrimSpace(lines[end]), "#")) {
		end++
	}
	lines = lines[start:end]
	for key, def := range map[string]string{"idle_in_transaction_timeout_ms": "300000 (5 min)", "lock_timeout_ms": "30000 (30 s)"} {
		found := false
		for i, l := range lines {
			if !strings.HasPrefix(l, "    "+key+":") {
				continue
			}
			found = true
			var comment []string
			for j := i - 1; j >= 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "#"); j-- {
				comment = append([]string{strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[j]), "#"))}, comment...)
			}
			text := strings.Join(comment, " ")
			if want := "0 or left out means the default, " + def + ": unlike PostgreSQL's own setting, 0 does not disable it."; !strings.Contains(text, want) {
				t.Errorf("the comment above %s does not say %q: %q", key, want, text)
			}
		}
		if !found {
			t.Errorf("docex.yaml.example has no database.postgres.%s", key)
		}
	}
}
