package pluginapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/tenancy"
)

// TestManifestBidiRefused: a bidirectional control in a manifest's text
// (its description, a parameter's description, a value of values, the
// version) is refused with an error naming the field and the code point,
// as a pipeline's description is: it would reorder the text shown after
// it in plugin show and MCP's list_plugins. Before, printable accepted
// them and plugin install stored them (probe P18 F2).
func TestManifestBidiRefused(t *testing.T) {
	valid := validManifest + "\n[parameters.mode]\ntype = \"string\"\nvalues = [\"fast\", \"slow\"]\n"
	tests := []struct {
		name, replace, with, want string
	}{
		{"description", `description = "Counts words."`, `description = "Counts \u202ewords."`, "description contains a bidirectional control character U+202E"},
		{"parameter description", `description = "Language."`, `description = "Lang\u2067uage."`, `parameter "lang": description contains a bidirectional control character U+2067`},
		{"value", `values = ["fast", "slow"]`, `values = ["fast", "sl\u202aow"]`, `parameter "mode": values[1] contains a bidirectional control character U+202A`},
		{"version", `version = "1.2.3"`, `version = "1.2\u20693"`, "version contains a bidirectional control character U+2069"},
	}
	if _, err := ParseManifest([]byte(valid)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(valid, tt.replace) {
				t.Fatalf("%q not in the manifest", tt.replace)
			}
			_, err := ParseManifest([]byte(strings.Replace(valid, tt.replace, tt.with, 1)))
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestBidiControlIsTheHostRule: bidiControl is tenancy.IsBidiControl,
// for every rune (pluginapi imports nothing of the module).
func TestBidiControlIsTheHostRule(t *testing.T) {
	for r := rune(0); r <= 0x10ffff; r++ {
		if bidiControl(r) != tenancy.IsBidiControl(r) {
			t.Fatalf("%U: bidiControl %v, tenancy.IsBidiControl %v", r, bidiControl(r), tenancy.IsBidiControl(r))
		}
	}
}
