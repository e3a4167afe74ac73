package docex_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docex-dev/docex"
)

// same reports whether two values are equal under the documented rule:
// same type and same canonical text.
func same(a, b docex.Value) bool {
	return a.Type() == b.Type() && a.Canonical() == b.Canonical()
}

func TestValueConstructors(t *testing.T) {
	cases := []struct {
		v         docex.Value
		typ       docex.ValueType
		valid     bool
		canonical string
		any       any
	}{
		{docex.String(""), docex.TypeString, true, "", ""},
		{docex.String("héllo"), docex.TypeString, true, "héllo", "héllo"},
		{docex.String("42"), docex.TypeString, true, "42", "42"},
		{docex.Number(42), docex.TypeNumber, true, "42", 42.0},
		{docex.Number(42.5), docex.TypeNumber, true, "42.5", 42.5},
		{docex.Number(-1e-7), docex.TypeNumber, true, "-1e-07", -1e-7},
		{docex.Number(1e21), docex.TypeNumber, true, "1e+21", 1e21},
		{docex.Number(0), docex.TypeNumber, true, "0", 0.0},
		{docex.Number(math.Copysign(0, -1)), docex.TypeNumber, true, "0", math.Copysign(0, -1)},
		{docex.Number(math.MaxFloat64), docex.TypeNumber, true, "1.7976931348623157e+308", math.MaxFloat64},
		{docex.Number(math.SmallestNonzeroFloat64), docex.TypeNumber, true, "5e-324", math.SmallestNonzeroFloat64},
		{docex.Number(math.NaN()), docex.TypeNumber, false, "NaN", nil},
		{docex.Number(math.Inf(1)), docex.TypeNumber, false, "+Inf", nil},
		{docex.Number(math.Inf(-1)), docex.TypeNumber, false, "-Inf", nil},
		{docex.Bool(true), docex.TypeBool, true, "true", true},
		{docex.Bool(false), docex.TypeBool, true, "false", false},
		{docex.Value{}, 0, false, "", nil},
	}
	for _, tc := range cases {
		if tc.v.Type() != tc.typ || tc.v.Valid() != tc.valid || tc.v.Canonical() != tc.canonical {
			t.Errorf("%#v: type %v valid %v canonical %q; want %v %v %q", tc.v, tc.v.Type(), tc.v.Valid(), tc.v.Canonical(), tc.typ, tc.valid, tc.canonical)
		}
		if tc.any != nil {
			got := tc.v.Any()
			if f, ok := tc.any.(float64); ok {
				if g, ok := got.(float64); !ok || g != f {
					t.Errorf("%#v: Any() = %v, want %v", tc.v, got, tc.any)
				}
			} else if got != tc.any {
				t.Errorf("%#v: Any() = %v, want %v", tc.v, got, tc.any)
			}
		}
	}
	if docex.TypeString.String() != "string" || docex.TypeNumber.String() != "number" || docex.TypeBool.String() != "bool" || docex.ValueType(0).String() != "invalid" || docex.ValueType(9).String() != "invalid" {
		t.Error("ValueType.String")
	}
	if !same(docex.Number(42), docex.Number(42.0)) || same(docex.Number(42), docex.String("42")) || same(docex.Bool(true), docex.String("true")) {
		t.Error("equality rule")
	}
}

func TestParseValue(t *testing.T) {
	cases := []struct {
		in   string
		want docex.Value
	}{
		{"true", docex.Bool(true)},
		{"false", docex.Bool(false)},
		{"True", docex.String("True")},
		{"TRUE", docex.String("TRUE")},
		{"s:true", docex.String("true")},
		{"s:42", docex.String("42")},
		{"s:", docex.String("")},
		{"s:s:1", docex.String("s:1")},
		{"", docex.String("")},
		{"42", docex.Number(42)},
		{"-42", docex.Number(-42)},
		{"42.0", docex.Number(42)},
		{"4.25e3", docex.Number(4250)},
		{"4.25E-3", docex.Number(0.00425)},
		{"1e+2", docex.Number(100)},
		{".5", docex.Number(0.5)},
		{"5.", docex.Number(5)},
		{"-0", docex.Number(0)},
		{"007", docex.Number(7)},
		{"+1", docex.String("+1")},
		{" 1", docex.String(" 1")},
		{"1 ", docex.String("1 ")},
		{"0x10", docex.String("0x10")},
		{"0x1p4", docex.String("0x1p4")},
		{"1_000", docex.String("1_000")},
		{"inf", docex.String("inf")},
		{"Inf", docex.String("Inf")},
		{"+Inf", docex.String("+Inf")},
		{"NaN", docex.String("NaN")},
		{"1e", docex.String("1e")},
		{"1e+", docex.String("1e+")},
		{"-", docex.String("-")},
		{".", docex.String(".")},
		{"-.", docex.String("-.")},
		{"1.2.3", docex.String("1.2.3")},
		{"1e400", docex.String("1e400")}, // overflows: not a finite number
		{"-1e400", docex.String("-1e400")},
		{"1e-400", docex.Number(0)}, // underflows to zero
		{"2024-01-02", docex.String("2024-01-02")},
		{"hello", docex.String("hello")},
	}
	for _, tc := range cases {
		got := docex.ParseValue(tc.in)
		if !same(got, tc.want) {
			t.Errorf("ParseValue(%q) = %v %q, want %v %q", tc.in, got.Type(), got.Canonical(), tc.want.Type(), tc.want.Canonical())
		}
		if !got.Valid() {
			t.Errorf("ParseValue(%q) is invalid", tc.in)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, v := range []docex.Value{
		docex.String(""), docex.String("x"), docex.String("\x00\xff"), docex.Number(0), docex.Number(-3.5),
		docex.Number(1e300), docex.Number(math.SmallestNonzeroFloat64), docex.Bool(true), docex.Bool(false),
	} {
		got, err := docex.Decode(v.Type(), v.Canonical())
		if err != nil || !same(got, v) || !got.Valid() {
			t.Errorf("Decode(%v, %q) = %v, %v", v.Type(), v.Canonical(), got.Canonical(), err)
		}
	}
	bad := []struct {
		typ  docex.ValueType
		text string
	}{
		{docex.TypeNumber, ""}, {docex.TypeNumber, "abc"}, {docex.TypeNumber, "1 "},
		{docex.TypeBool, ""}, {docex.TypeBool, "TRUE"}, {docex.TypeBool, "1"}, {docex.TypeBool, "yes"},
		{0, ""}, {0, "x"}, {4, "1"}, {255, "true"},
	}
	for _, tc := range bad {
		if v, err := docex.Decode(tc.typ, tc.text); !errors.Is(err, docex.ErrCorrupt) {
			t.Errorf("Decode(%d, %q) = %v, %v; want ErrCorrupt", tc.typ, tc.text, v.Canonical(), err)
		}
	}
}

func TestValueJSON(t *testing.T) {
	cases := []struct {
		v    docex.Value
		json string
	}{
		{docex.String("a\"b"), `"a\"b"`},
		{docex.String(""), `""`},
		{docex.String("<&>"), `"\u003c\u0026\u003e"`},
		{docex.Number(42), `42`},
		{docex.Number(-0.5), `-0.5`},
		{docex.Number(1e21), `1e+21`},
		{docex.Bool(true), `true`},
		{docex.Bool(false), `false`},
		{docex.Value{}, `null`},
		{docex.Number(math.NaN()), `null`},
		{docex.Number(math.Inf(1)), `null`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.json {
			t.Errorf("Marshal(%v %q) = %s, %v; want %s", tc.v.Type(), tc.v.Canonical(), b, err, tc.json)
		}
		if !tc.v.Valid() {
			continue
		}
		var got docex.Value
		if err := json.Unmarshal(b, &got); err != nil || !same(got, tc.v) {
			t.Errorf("Unmarshal(%s) = %v %q, %v", b, got.Type(), got.Canonical(), err)
		}
	}
	for _, in := range []string{`null`, `{}`, `[]`, `[1]`, `{"a":1}`} {
		var v docex.Value
		err := json.Unmarshal([]byte(in), &v)
		if !errors.Is(err, docex.ErrInvalid) {
			t.Errorf("Unmarshal(%s) = %v, want ErrInvalid", in, err)
		}
	}
	for _, in := range []string{`1e400`, `"abc`, `tru`, ``} {
		var v docex.Value
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("Unmarshal(%s) = %v %q, want an error", in, v.Type(), v.Canonical())
		}
	}
}

func TestDocumentJSONRoundTrip(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	d := docex.Document{
		ID: "d1", BasketID: "b1", Name: "x.txt", ContentType: "text/plain", Size: 3, Checksum: "abc",
		Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now,
		Metadata: map[string]docex.Value{"s": docex.String("v"), "n": docex.Number(1.5), "b": docex.Bool(true), "sn": docex.String("7")},
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var got docex.Document
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Metadata) != len(d.Metadata) {
		t.Fatalf("metadata %v", got.Metadata)
	}
	for k, v := range d.Metadata {
		if !same(got.Metadata[k], v) {
			t.Errorf("metadata %q: %v %q, want %v %q", k, got.Metadata[k].Type(), got.Metadata[k].Canonical(), v.Type(), v.Canonical())
		}
	}
	if !got.CreatedAt.Equal(now) || got.Name != d.Name || got.Size != 3 {
		t.Errorf("got %+v", got)
	}
}

// checkRoundTrip asserts the storage and JSON round trips of a valid value.
func checkRoundTrip(t *testing.T, v docex.Value) {
	t.Helper()
	if !v.Valid() {
		return
	}
	got, err := docex.Decode(v.Type(), v.Canonical())
	if err != nil {
		t.Fatalf("Decode(%v, %q): %v", v.Type(), v.Canonical(), err)
	}
	if !same(got, v) || !got.Valid() {
		t.Fatalf("Decode(%v, %q) = %v %q", v.Type(), v.Canonical(), got.Type(), got.Canonical())
	}
	if v.Type() == docex.TypeNumber && got.Num() != v.Num() {
		t.Fatalf("number %v decoded as %v", v.Num(), got.Num())
	}
	if v.Type() == docex.TypeString && got.Str() != v.Str() {
		t.Fatalf("string %q decoded as %q", v.Str(), got.Str())
	}
	// Canonical text is a fixed point.
	if got.Canonical() != v.Canonical() {
		t.Fatalf("canonical not stable: %q -> %q", v.Canonical(), got.Canonical())
	}
	// The CLI syntax reproduces numbers and bools from their canonical text.
	if v.Type() != docex.TypeString {
		if p := docex.ParseValue(v.Canonical()); !same(p, v) {
			t.Fatalf("ParseValue(%q) = %v %q, want %v", v.Canonical(), p.Type(), p.Canonical(), v.Type())
		}
	} else if p := docex.ParseValue("s:" + v.Str()); !same(p, v) {
		t.Fatalf("ParseValue(s:%q) = %v %q", v.Str(), p.Type(), p.Canonical())
	}
	// JSON round trip (JSON cannot carry invalid UTF-8).
	if v.Type() != docex.TypeString || utf8.ValidString(v.Str()) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var j docex.Value
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !same(j, v) {
			t.Fatalf("JSON %s decoded as %v %q, want %v %q", b, j.Type(), j.Canonical(), v.Type(), v.Canonical())
		}
	}
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"", "true", "false", "s:1", "42", "-0", "4.2e1", "1e400", "1e-400", "0x10", "NaN", "inf", ".5", "5.", "hello", "\xff", "1e+21", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := docex.ParseValue(s)
		if !v.Valid() {
			t.Fatalf("ParseValue(%q) is invalid", s)
		}
		switch v.Type() {
		case docex.TypeString:
			if want, ok := cutS(s); ok {
				if v.Str() != want {
					t.Fatalf("ParseValue(%q) = %q", s, v.Str())
				}
			} else if v.Str() != s {
				t.Fatalf("ParseValue(%q) = string %q", s, v.Str())
			}
		case docex.TypeNumber:
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || n != v.Num() {
				t.Fatalf("ParseValue(%q) = %v, ParseFloat says %v, %v", s, v.Num(), n, err)
			}
		case docex.TypeBool:
			if s != "true" && s != "false" {
				t.Fatalf("ParseValue(%q) = bool", s)
			}
		}
		checkRoundTrip(t, v)
		checkRoundTrip(t, docex.String(s))
	})
}

func cutS(s string) (string, bool) {
	if len(s) >= 2 && s[:2] == "s:" {
		return s[2:], true
	}
	return "", false
}

func FuzzNumberRoundTrip(f *testing.F) {
	for _, x := range []float64{0, 1, -1, 0.1, 1e21, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.123456789} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		v := docex.Number(x)
		if v.Valid() != (!math.IsNaN(x) && !math.IsInf(x, 0)) {
			t.Fatalf("Number(%v).Valid() = %v", x, v.Valid())
		}
		checkRoundTrip(t, v)
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(1), "x")
	f.Add(uint8(2), "1.5")
	f.Add(uint8(2), "NaN")
	f.Add(uint8(3), "true")
	f.Add(uint8(0), "")
	f.Fuzz(func(t *testing.T, typ uint8, text string) {
		v, err := docex.Decode(docex.ValueType(typ), text)
		if err != nil {
			if !errors.Is(err, docex.ErrCorrupt) {
				t.Fatalf("Decode(%d, %q) error %v is not ErrCorrupt", typ, text, err)
			}
			return
		}
		if v.Type() != docex.ValueType(typ) {
			t.Fatalf("Decode(%d, %q) has type %v", typ, text, v.Type())
		}
		if v.Valid() {
			checkRoundTrip(t, v)
		}
	})
}
