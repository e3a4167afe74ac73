package mcpserver

import (
	"encoding/json"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/quote"
)

// argBytes bounds one argument of a call: its name and value as sent
// (`"name":value`, JSON), but for add_document's text and base64 given
// as strings (bounded by the call's bound, argsBytes), and for a
// metadata object, whose members (`"key":value`) are bounded each. No
// valid argument comes near it (a metadata value is at most 64 KiB, six
// times that escaped; 1,024 keys of get_document, 256 bytes each). The
// SDK validates the arguments against the schema before a tool runs, and
// its error for a bad argument holds the argument several times over: a
// 15 MiB one made a peak of 280 MB.
const argBytes = 1 << 20

// argsBytes is the bound of a call's arguments as sent (JSON): that of
// an HTTP request body, twice the inline content plus 1 MiB.
func (s *Server) argsBytes() int {
	return int(2*s.cfg.MaxInlineBytes + 1<<20)
}

// checkArguments refuses (too_large) the raw arguments of a call of tool
// when they are larger than argsBytes, or an argument of them larger
// than argBytes (see there), without decoding them. Arguments that are
// not valid JSON, or not an object, are left to the SDK when small.
func (s *Server) checkArguments(tool string, raw json.RawMessage) error {
	if n := len(raw); n > s.argsBytes() {
		return docex.Errorf(docex.ErrTooLarge, "the arguments are %d bytes of JSON, more than the %d a call may have", n, s.argsBytes())
	}
	if len(raw) <= argBytes {
		return nil // no argument can pass argBytes
	}
	if !json.Valid(raw) {
		return nil // the SDK refuses it
	}
	i := skipSpace(raw, 0)
	if raw[i] != '{' {
		return docex.Errorf(docex.ErrTooLarge, "the arguments are %d bytes of JSON and not an object, more than the %d an argument may have", len(raw), argBytes)
	}
	return eachMember(raw, i, func(ks, ke, vs, ve int) error {
		name := rawString(raw[ks:ke])
		switch {
		case tool == "add_document" && (name == "text" || name == "base64") && raw[vs] == '"':
			return nil
		case name == "metadata" && raw[vs] == '{':
			return eachMember(raw, vs, func(mks, mke, mvs, mve int) error {
				if n := mve - mks; n > argBytes {
					return docex.Errorf(docex.ErrTooLarge, "metadata key %s is %d bytes of JSON with its value, more than the %d a metadata entry may have", quote.Short(rawString(raw[mks:mke])), n, argBytes)
				}
				return nil
			})
		}
		if n := ve - ks; n > argBytes {
			return docex.Errorf(docex.ErrTooLarge, "argument %s is %d bytes of JSON with its value, more than the %d an argument may have", quote.Short(name), n, argBytes)
		}
		return nil
	})
}

// rawString decodes the JSON string s (with its quotes).
func rawString(s []byte) string {
	var v string
	_ = json.Unmarshal(s, &v)
	return v
}

// eachMember calls f with the bounds of each member of the JSON object
// (valid JSON) starting at b[i]: its key [ks, ke), with quotes, and its
// value [vs, ve); it stops at f's first error.
func eachMember(b []byte, i int, f func(ks, ke, vs, ve int) error) error {
	i = skipSpace(b, i+1) // past {
	for i < len(b) && b[i] != '}' {
		ks := i
		ke := skipValue(b, ks)
		vs := skipSpace(b, skipSpace(b, ke)+1) // past :
		ve := skipValue(b, vs)
		if err := f(ks, ke, vs, ve); err != nil {
			return err
		}
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}
