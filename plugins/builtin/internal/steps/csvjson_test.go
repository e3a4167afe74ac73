package steps

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// FuzzCSVToJSON checks that csv-to-json either fails with a malformed-input
// or limit error, or writes valid JSON: an array of one element per data
// row, each object's keys distinct, no row wider than csv_columns.
func FuzzCSVToJSON(f *testing.F) {
	f.Add("a,a,a_2\n1,2,3,4\n", true, false)
	f.Add("column_2,\n\"x\"\"y\",2\n", true, true)
	f.Add("1;2\n3\n", false, true)
	f.Fuzz(func(t *testing.T, in string, header, infer bool) {
		p := map[string]string{"header": "false", "infer_types": "false"}
		if header {
			p["header"] = "true"
		}
		if infer {
			p["infer_types"] = "true"
		}
		e := newEnv("d.csv", "text/csv", in, p)
		if err := CSVToJSON(e); err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if len(e.derived) != 1 {
			t.Fatalf("%d derived", len(e.derived))
		}
		out := e.derived[0].data
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		cols, _ := e.meta["csv_columns"].(int)
		rows, _ := e.meta["csv_rows"].(int)
		dec := json.NewDecoder(bytes.NewReader(out))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			t.Fatalf("not an array: %v %v", tok, err)
		}
		n := 0
		for dec.More() {
			n++
			if header {
				var kv []string
				if tok, _ := dec.Token(); tok != json.Delim('{') {
					t.Fatalf("row %d: %v, want an object", n, tok)
				}
				seen := map[string]bool{}
				for dec.More() {
					k, _ := dec.Token()
					key := k.(string)
					if seen[key] {
						t.Fatalf("row %d: key %q twice in %s", n, key, out)
					}
					seen[key] = true
					kv = append(kv, key)
					var v any
					if err := dec.Decode(&v); err != nil {
						t.Fatal(err)
					}
				}
				dec.Token()
				if len(kv) > cols {
					t.Fatalf("row %d has %d keys, csv_columns %d", n, len(kv), cols)
				}
				continue
			}
			var row []any
			if err := dec.Decode(&row); err != nil {
				t.Fatalf("row %d: %v", n, err)
			}
			if len(row) > cols {
				t.Fatalf("row %d has %d fields, csv_columns %d", n, len(row), cols)
			}
		}
		if n != rows {
			t.Fatalf("%d rows in the JSON, csv_rows %d", n, rows)
		}
	})
}

// TestCSVUnterminatedQuote checks that CSV ending inside a quoted field
// fails with malformed input naming the line the field opens on, in
// csv-to-json and extract-text alike (the field took the rest of the input
// silently), and that quoted fields encoding/csv closes stay accepted.
func TestCSVUnterminatedQuote(t *testing.T) {
	for _, c := range []struct {
		in, delimiter string
		line          int // the open field's line; 0: no error
	}{
		{"a,b\n\"unterminated,1\n2,3\n", ",", 2},
		{"a,b\n1,\"x\"\"\n", ",", 2},           // an escaped quote, then the end
		{"a,b\n1,\"multi\nline\n\n", ",", 2},   // line breaks inside
		{"a,b\n1,2\n3,\"x\"y\n4,5\n", ",", 3},  // a quote that is text (y follows), then no closing one
		{"a,b\n1,\"x\"\r\ny,\"z\r\nw", ",", 3}, // \r\n closes the first field
		{"a,b\n1,\"x\"\ry\n", ",", 2},          // a lone \r does not
		{"a,\"\"\"", ",", 1},                   // an escaped quote in an empty field
		{"a\t\"b\n", "\t", 1},
		{"a;\"b\"é\"c\n", "é", 1},            // a delimiter of two bytes
		{"a,b\n1,\"x\"", ",", 0},             // closed at the end
		{"a,b\n1,\"x\"\r", ",", 0},           // a last \r is dropped
		{"a,b\n1,\"x\"\r\n\r\n\n", ",", 0},   // blank lines after
		{"a,b\n1,\"multi\nline\"\n", ",", 0}, // line breaks inside
		{"a,b\n1,x \"y\n", ",", 0},           // a quote in an unquoted field is text
		{"a,b\n1,\"x\"y,\"z\"\n", ",", 0},    // lazy quotes: one field x"y,"z
		{"a,\"\"", ",", 0},                   // an empty quoted field
		{"a,\"\"\"\"", ",", 0},               // a field holding a quote
		{"a;\"b\"é\"c\"\n", "é", 0},
		{"a;\"b\"éx\n", "é", 0},
		{"\"bé\"\n", "é", 0},   // a delimiter inside a quoted field is text
		{"a;\"bé\"\n", "é", 1}, // a;"b, then a field opening with a quote
	} {
		e := newEnv("d.csv", "text/csv", c.in, map[string]string{"delimiter": c.delimiter, "header": "false"})
		err := CSVToJSON(e)
		comma, _ := utf8.DecodeRuneInString(c.delimiter)
		_, xerr := csvText(newCP1252Reader(strings.NewReader(c.in)), comma)
		if c.line == 0 {
			if err != nil || xerr != nil {
				t.Errorf("%q: csv-to-json %v, extract-text %v", c.in, err, xerr)
			}
			continue
		}
		want := fmt.Sprintf(`malformed input: csv: the quoted field opening on line %d is never closed (a " is missing)`, c.line)
		for _, err := range []error{err, xerr} {
			if !errors.Is(err, ErrMalformed) || err.Error() != want {
				t.Errorf("%q: %v, want %s", c.in, err, want)
			}
		}
	}
}

// FuzzCSVQuoting checks csvInput's quoting against encoding/csv itself:
// the input ends inside a quoted field exactly when a line break and a
// marker appended to it land inside a field, not in a record of their own.
func FuzzCSVQuoting(f *testing.F) {
	for _, s := range []string{"a,\"b\n", "a,\"b\"\r", "\"x\"\"\n", "a;\"b\"é\"c\n", "\"x\"\ry\n", "x \"y\n\"z\"w"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, in string, d uint8) {
		if !utf8.ValidString(in) || strings.ContainsRune(in, 0) {
			return
		}
		comma := []rune{',', ';', '\t', 'é'}[d%4]
		_, err := csvText(strings.NewReader(in), comma)
		open := errors.Is(err, ErrMalformed) && strings.Contains(err.Error(), "is never closed")
		if err != nil && !open {
			t.Fatalf("%q: %v", in, err)
		}
		cr := csv.NewReader(strings.NewReader(in + "\n\x00M"))
		cr.Comma, cr.FieldsPerRecord, cr.LazyQuotes = comma, -1, true
		recs, err := cr.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1]
		if inside := len(last) != 1 || last[0] != "\x00M"; inside != open {
			t.Fatalf("%q (delimiter %q): open at the end %v, encoding/csv's last record %q", in, comma, open, last)
		}
	})
}

// TestCSVLineLimit checks the bound on one line, whatever the reads: a
// line of MaxCSVLine bytes is read, one more byte is ErrLimit, and many
// lines below it are read.
func TestCSVLineLimit(t *testing.T) {
	line := strings.Repeat("x", MaxCSVLine)
	for _, c := range []struct {
		in   string
		fail bool
	}{
		{line + "\n" + line, false},
		{line + "x\n", true},
		{"a,b\n" + line + "x", true},
		{"\"" + line + "\"\n", true}, // a quoted field's line counts too
		{strings.Repeat(line[:MaxCSVLine/4]+"\n", 16), false},
	} {
		for _, r := range []io.Reader{strings.NewReader(c.in), iotest.HalfReader(strings.NewReader(c.in))} {
			_, err := csvText(r, ',')
			if c.fail != errors.Is(err, ErrLimit) || !c.fail && err != nil {
				t.Errorf("%d bytes: %v, want a limit error: %v", len(c.in), err, c.fail)
			}
		}
	}
}
