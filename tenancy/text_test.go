package tenancy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/docex-dev/docex"
)

// TestValidateUserID: issue 8 defect 3 (user ids were never validated, and
// one with invalid UTF-8 made PostgreSQL's audit insert fail).
func TestValidateUserID(t *testing.T) {
	for _, c := range []struct {
		name, id string
		ok       bool
	}{
		{"plain", "alice", true},
		{"email", "alice@example.com", true},
		{"uuid", "0b6f3a3e-58b1-4bde-9a5c-0c1f7c7e8f11", true},
		{"ldap", "cn=Alice Smith,ou=people,dc=example,dc=com", true},
		{"unicode", "zoë", true},
		{"max length", strings.Repeat("a", MaxUserIDLen), true},
		{"empty", "", false},
		{"spaces only", "   ", false},
		{"too long", strings.Repeat("a", MaxUserIDLen+1), false},
		{"invalid utf-8", "al\xffice", false},
		{"newline", "alice\nforged line", false},
		{"escape", "alice\x1b[31m", false},
		{"nul", "alice\x00", false},
		{"del", "alice\x7f", false},
		{"c1", "alice\u0085", false},
		{"line separator", "alice\u2028", false},
		{"right-to-left override", "alice\u202egnp.exe", false},
		{"left-to-right embedding", "\u202aalice", false},
		{"pop directional formatting", "alice\u202c", false},
		{"first strong isolate", "alice\u2068", false},
		{"pop directional isolate", "alice\u2069", false},
		{"right-to-left mark", "alice\u200f", true},
		{"arabic", "مرحبا", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateUserID(c.id)
			if c.ok != (err == nil) {
				t.Fatalf("ValidateUserID(%q) = %v, want ok=%v", c.id, err, c.ok)
			}
			if err != nil {
				if !errors.Is(err, docex.ErrInvalidID) {
					t.Fatalf("error %v does not match ErrInvalidID", err)
				}
				if msg := err.Error(); strings.ContainsAny(msg, "\n\x1b\x00") || !utf8.ValidString(msg) {
					t.Fatalf("error message carries the raw bytes: %q", err.Error())
				}
			}
		})
	}
}

// ValidateLabel refuses the bidirectional controls (embeddings,
// overrides, isolates and their pops) with ErrInvalid, naming what and
// the character, the label quoted with it escaped; the characters around
// them pass.
func TestValidateLabelBidi(t *testing.T) {
	for r := rune(0x2000); r < 0x2100; r++ {
		err := ValidateLabel("basket name", "in"+string(r)+"voice", 256)
		bidi := r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
		if bidi != IsBidiControl(r) {
			t.Fatalf("IsBidiControl(%U) = %v", r, !bidi)
		}
		if r == 0x2028 || r == 0x2029 {
			continue // control characters
		}
		if !bidi {
			if err != nil {
				t.Errorf("%U refused: %v", r, err)
			}
			continue
		}
		want := fmt.Sprintf(`basket name "in\u%04xvoice" contains a bidirectional control character %U`, r, r)
		if !errors.Is(err, docex.ErrInvalid) || err.Error() != want {
			t.Errorf("%U: %v, want %v: %s", r, err, docex.ErrInvalid, want)
		}
	}
}
