package sandbox

import (
	"testing"
	"unicode/utf8"

	"github.com/docex-dev/docex/tenancy"
)

// validKey, the host's check of a metadata key or derived name (EINVAL
// at the call), is the engine's (tenancy.ValidateLabel) for every
// character: a key the engine would refuse when the run's output is
// stored is refused at the call, so the guest can tell. Before,
// bidirectional controls (U+202A-U+202E, U+2066-U+2069) passed both.
func TestValidKeyIsTheEnginesRule(t *testing.T) {
	for r := rune(0); r < 0x30000; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		k := "a" + string(r) + "b"
		engine := tenancy.ValidateLabel("metadata key", k, maxKeyLen) == nil
		if got := validKey(k); got != engine {
			t.Errorf("validKey(%+q) = %v, the engine's rule says %v", k, got, engine)
		}
	}
	for _, r := range []rune{'\u202a', '\u202e', '\u2066', '\u2069'} {
		if validKey("a" + string(r)) {
			t.Errorf("validKey accepts %U", r)
		}
	}
}
