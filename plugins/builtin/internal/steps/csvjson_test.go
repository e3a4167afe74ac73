package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
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
