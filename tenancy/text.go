package tenancy

import (
	"strings"
	"unicode/utf8"

	"github.com/docex-dev/docex"
)

// MaxUserIDLen is the longest user id (bytes).
const MaxUserIDLen = 256

// ValidateUserID checks a user id: 1 to MaxUserIDLen bytes of valid UTF-8,
// not only spaces, no control characters (C0, DEL, C1, U+2028, U+2029)
// nor bidirectional controls (IsBidiControl).
// User ids are opaque labels otherwise (an e-mail address, a UUID, an
// LDAP name all pass). It returns an error matching docex.ErrInvalidID.
func ValidateUserID(id string) error {
	if err := ValidateLabel("user id", id, MaxUserIDLen); err != nil {
		return docex.Errorf(docex.ErrInvalidID, "%v", err)
	}
	return nil
}

// ValidateLabel checks a user-supplied label (a name, a user id, a
// metadata key): 1 to max bytes of valid UTF-8, not only spaces, no
// control characters (C0, DEL, C1, U+2028, U+2029), so that it prints on
// one line and stores the same on every backend, and no bidirectional
// controls (IsBidiControl), so that it reads the same in JSON, through
// MCP and in an embedder's output as it is stored (a name with U+202E
// shows its end reversed: "Trojan Source" confusion). It returns an error matching docex.ErrInvalid that
// names what and never contains the label's invalid bytes.
func ValidateLabel(what, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return docex.Errorf(docex.ErrInvalid, "%s is empty", what)
	}
	if len(s) > max {
		return docex.Errorf(docex.ErrInvalid, "%s is %d bytes, longer than %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return docex.Errorf(docex.ErrInvalid, "%s %q is not valid UTF-8", what, printable(s))
	}
	for _, r := range s {
		if IsControl(r) {
			return docex.Errorf(docex.ErrInvalid, "%s %q contains a control character %U", what, printable(s), r)
		}
		if IsBidiControl(r) {
			return docex.Errorf(docex.ErrInvalid, "%s %q contains a bidirectional control character %U", what, printable(s), r)
		}
	}
	return nil
}

// IsControl reports whether r is a control character that labels may not
// contain: C0 (tab and newline included), DEL, C1, and the Unicode line
// and paragraph separators.
func IsControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029'
}

// IsBidiControl reports whether r is a bidirectional control that labels
// may not contain: the embeddings, overrides and their pop (U+202A to
// U+202E) and the isolates and their pop (U+2066 to U+2069), which
// reorder the text that follows them when shown. Metadata values and
// document content may hold them.
func IsBidiControl(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}
