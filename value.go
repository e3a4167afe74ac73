package docex

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// ValueType is the type of a metadata value.
type ValueType uint8

// Metadata value types. The numeric values are stored; do not renumber.
const (
	TypeString ValueType = 1
	TypeNumber ValueType = 2
	TypeBool   ValueType = 3
)

// String returns "string", "number" or "bool".
func (t ValueType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeNumber:
		return "number"
	case TypeBool:
		return "bool"
	}
	return "invalid"
}

// Value is a typed metadata value: a string, a finite number or a bool. The
// zero Value is invalid.
type Value struct {
	typ ValueType
	s   string
	n   float64
	b   bool
}

// String returns a string value.
func String(s string) Value { return Value{typ: TypeString, s: s} }

// Number returns a number value. NaN and infinities are invalid (Valid
// reports false) since they cannot be compared for equality.
func Number(n float64) Value { return Value{typ: TypeNumber, n: n} }

// Bool returns a bool value.
func Bool(b bool) Value { return Value{typ: TypeBool, b: b} }

// Type returns the value's type, 0 for the zero Value.
func (v Value) Type() ValueType { return v.typ }

// Valid reports whether v is a string, a finite number or a bool.
func (v Value) Valid() bool {
	switch v.typ {
	case TypeString, TypeBool:
		return true
	case TypeNumber:
		return !math.IsNaN(v.n) && !math.IsInf(v.n, 0)
	}
	return false
}

// Str returns the string of a string value ("" otherwise).
func (v Value) Str() string { return v.s }

// Num returns the number of a number value (0 otherwise).
func (v Value) Num() float64 { return v.n }

// Truth returns the bool of a bool value (false otherwise).
func (v Value) Truth() bool { return v.b }

// Any returns the value as a string, float64 or bool (nil when invalid).
func (v Value) Any() any {
	switch v.typ {
	case TypeString:
		return v.s
	case TypeNumber:
		return v.n
	case TypeBool:
		return v.b
	}
	return nil
}

// Canonical returns the canonical text encoding of the value, used for
// storage and equality: two values are equal when their types and canonical
// texts are equal (so 42 and 42.0 are equal numbers).
func (v Value) Canonical() string {
	switch v.typ {
	case TypeString:
		return v.s
	case TypeNumber:
		if v.n == 0 {
			return "0" // folds -0
		}
		return strconv.FormatFloat(v.n, 'g', -1, 64)
	case TypeBool:
		if v.b {
			return "true"
		}
		return "false"
	}
	return ""
}

// Decode returns the value stored as (typ, canonical text). It returns
// ErrCorrupt when the pair cannot have been produced by Canonical.
func Decode(typ ValueType, text string) (Value, error) {
	switch typ {
	case TypeString:
		return String(text), nil
	case TypeNumber:
		n, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return Value{}, Errorf(ErrCorrupt, "stored number %q: %v", text, err)
		}
		if v := Number(n); !v.Valid() || v.Canonical() != text {
			return Value{}, Errorf(ErrCorrupt, "stored number %q is not in canonical form", text)
		}
		return Number(n), nil
	case TypeBool:
		switch text {
		case "true":
			return Bool(true), nil
		case "false":
			return Bool(false), nil
		}
	}
	return Value{}, Errorf(ErrCorrupt, "stored value of type %d: %q", typ, text)
}

// ParseValue interprets text the way the CLI does for key=value arguments:
// "true" and "false" are bools, a decimal number is a number, anything else
// is a string. A leading "s:" forces a string ("s:42" is the string "42").
func ParseValue(text string) Value {
	if rest, ok := strings.CutPrefix(text, "s:"); ok {
		return String(rest)
	}
	switch text {
	case "true":
		return Bool(true)
	case "false":
		return Bool(false)
	}
	if looksNumeric(text) {
		if n, err := strconv.ParseFloat(text, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
			return Number(n)
		}
	}
	return String(text)
}

// looksNumeric accepts JSON-like decimal numbers only (no hex, no "inf", no
// "nan", no leading '+', no surrounding spaces).
func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' {
		i++
	}
	digits := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// MarshalJSON encodes the value as a JSON string, number or bool. It
// leaves "<", ">" and "&" as they are: an encoder that escapes HTML
// (json.Marshal's default) still escapes them in its output.
func (v Value) MarshalJSON() ([]byte, error) {
	if !v.Valid() {
		return []byte("null"), nil
	}
	x := v.Any()
	if s, ok := x.(string); !ok || !strings.ContainsAny(s, "<>&") {
		return json.Marshal(x) // nothing to escape: the common case, cheaper
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes a JSON string, number or bool.
func (v *Value) UnmarshalJSON(b []byte) error {
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	switch t := x.(type) {
	case string:
		*v = String(t)
	case float64:
		*v = Number(t)
	case bool:
		*v = Bool(t)
	default:
		return Errorf(ErrInvalid, "metadata value must be a string, number or bool, got %s", string(b))
	}
	return nil
}
