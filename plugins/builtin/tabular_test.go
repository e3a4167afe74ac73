package builtin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestCSVToJSONColumns checks csv_columns: the header's width, or the widest
// row when a row (or, with header=false, any row) has more fields.
func TestCSVToJSONColumns(t *testing.T) {
	for _, tc := range []struct {
		name, csv, header string
		want              float64
	}{
		{"header", "a,b,c\n1,2,3\n", "true", 3},
		{"no header", "1,2,3\n4,5\n", "false", 3},
		{"no header wider later", "1\n2,3,4,5\n6,7\n", "false", 4},
		{"row wider than header", "a,b\n1,2,3,4\n", "true", 4},
		{"row narrower than header", "a,b,c\n1\n", "true", 3},
		{"header only", "a,b\n", "true", 2},
		{"empty", "", "false", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, "csv-to-json", bytesDoc("d.csv", "text/csv", []byte(tc.csv)), map[string]string{"header": tc.header})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Metadata["csv_columns"]; got != tc.want {
				t.Errorf("csv_columns = %v, want %v", got, tc.want)
			}
			if got := res.Derived[0].Metadata["csv_columns"]; got != tc.want {
				t.Errorf("derived csv_columns = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCSVToJSONHeaderKeys checks that every object's keys are distinct:
// repeated, empty and column_N header names, and extra fields past the
// header, each get their own key and no value is lost.
func TestCSVToJSONHeaderKeys(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		want      []string
	}{
		{"repeated", "a,a,a\n1,2,3\n", []string{"a", "a_2", "a_3"}},
		{"repeat of a suffixed name", "a,a,a_2\n1,2,3\n", []string{"a", "a_2", "a_2_2"}},
		{"suffixed name first", "a_2,a,a\n1,2,3\n", []string{"a_2", "a", "a_3"}},
		{"empty header cells", "x,,\n1,2,3\n", []string{"x", "column_2", "column_3"}},
		{"empty cell named like another", "column_2,\n1,2\n", []string{"column_2", "column_2_2"}},
		{"extra fields", "a,b\n1,2,3\n", []string{"a", "b", "column_3"}},
		{"extra field named like a header", "column_3,b\n1,2,3\n", []string{"column_3", "b", "column_3_2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, "csv-to-json", bytesDoc("d.csv", "text/csv", []byte(tc.csv)), nil)
			if err != nil {
				t.Fatal(err)
			}
			// Decode keeping the order and every duplicate key.
			dec := json.NewDecoder(bytes.NewReader(res.Derived[0].Content))
			var keys []string
			depth := 0
			for {
				tok, err := dec.Token()
				if err != nil {
					break
				}
				switch v := tok.(type) {
				case json.Delim:
					if v == '{' || v == '[' {
						depth++
					} else {
						depth--
					}
				case string:
					if depth == 2 {
						keys = append(keys, v)
						if _, err := dec.Token(); err != nil { // the value
							t.Fatal(err)
						}
					}
				}
			}
			if len(keys) != len(tc.want) {
				t.Fatalf("keys %q, want %q\n%s", keys, tc.want, res.Derived[0].Content)
			}
			for i := range keys {
				if keys[i] != tc.want[i] {
					t.Fatalf("keys %q, want %q", keys, tc.want)
				}
			}
		})
	}
}

// TestTSVSniffed checks that a tab-separated file declared with a type that
// names no format is detected as TSV and extracted with tabs as separators
// (a comma inside a field stays in it).
func TestTSVSniffed(t *testing.T) {
	tsv := []byte("name\tcity\nAda, Countess\tLondon\nAlan\tWilmslow\n")
	res, err := run(t, "detect-type", bytesDoc("people", "application/octet-stream", tsv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["detected_type"] != "text/tab-separated-values" || res.Metadata["detected_format"] != "tsv" {
		t.Fatalf("detect-type: %v", res.Metadata)
	}
	res, err = run(t, "extract-text", bytesDoc("people", "application/octet-stream", tsv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Derived[0].Content); got != string(tsv) || res.Derived[0].Metadata["source_format"] != "tsv" {
		t.Fatalf("extract-text: %q %v", got, res.Derived[0].Metadata)
	}
}

// TestCSVToJSONTSV checks that a document declared tab-separated is split
// on tabs unless a delimiter is given, and that the output's name drops a
// .csv or .tsv extension in any case.
func TestCSVToJSONTSV(t *testing.T) {
	tsv := []byte("name\tcity\nAda, Countess\tLondon\n")
	for _, tc := range []struct {
		name, ct, delimiter, wantJSON, wantName string
	}{
		{"people.tsv", "text/tab-separated-values", "", `{"name":"Ada, Countess","city":"London"}`, "people.json"},
		{"people.TSV", "text/tab-separated-values; charset=utf-8", "", `{"name":"Ada, Countess","city":"London"}`, "people.json"},
		{"people.tsv", "text/tab-separated-values", ",", `{"name\tcity":"Ada","column_2":" Countess\tLondon"}`, "people.json"},
		{"people.txt", "text/plain", "", `{"name\tcity":"Ada","column_2":" Countess\tLondon"}`, "people.txt.json"},
		{"Data.CSV", "text/csv", "tab", `{"name":"Ada, Countess","city":"London"}`, "Data.json"},
		{".csv", "text/csv", "tab", `{"name":"Ada, Countess","city":"London"}`, ".csv.json"},
	} {
		params := map[string]string{}
		if tc.delimiter != "" {
			params["delimiter"] = tc.delimiter
		}
		res, err := run(t, "csv-to-json", bytesDoc(tc.name, tc.ct, tsv), params)
		if err != nil {
			t.Fatal(err)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(res.Derived[0].Content, &got); err != nil || len(got) != 1 {
			t.Fatalf("%s: %v %s", tc.name, err, res.Derived[0].Content)
		}
		if string(got[0]) != tc.wantJSON || res.Derived[0].Name != tc.wantName {
			t.Errorf("%s %s delimiter %q: %s named %s, want %s named %s", tc.name, tc.ct, tc.delimiter, got[0], res.Derived[0].Name, tc.wantJSON, tc.wantName)
		}
	}
}

// TestUTF16Sniffed checks that UTF-16 text with a byte order mark, declared
// with a type that names no format, is detected as text and extracted.
func TestUTF16Sniffed(t *testing.T) {
	le := []byte{0xff, 0xfe}
	for _, r := range "Café, 20 €\n" {
		le = append(le, byte(r), byte(r>>8))
	}
	res, err := run(t, "detect-type", bytesDoc("notes", "application/octet-stream", le), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["detected_type"] != "text/plain" || res.Metadata["detected_format"] != "text" {
		t.Fatalf("detect-type: %v", res.Metadata)
	}
	res, err = run(t, "extract-text", bytesDoc("notes", "application/octet-stream", le), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Derived[0].Content); got != "Café, 20 €\n" {
		t.Fatalf("extract-text: %q", got)
	}
}

// TestCP1252Sniffed checks that text that is not UTF-8 (Windows-1252),
// declared with a type that names no format, is what detect-type and
// extract-text agree it is: detect-type called it application/octet-stream
// and extract-text refused it, though it reads the same bytes declared
// text/csv as Windows-1252.
func TestCP1252Sniffed(t *testing.T) {
	csv := []byte("name,city\ncaf\xe9,Z\xfcrich\n")
	res, err := run(t, "detect-type", bytesDoc("people", "application/octet-stream", csv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["detected_type"] != "text/csv" || res.Metadata["detected_format"] != "csv" {
		t.Fatalf("detect-type: %v", res.Metadata)
	}
	res, err = run(t, "extract-text", bytesDoc("people", "application/octet-stream", csv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Derived[0].Content); got != "name\tcity\ncafé\tZürich\n" || res.Derived[0].Metadata["source_format"] != "csv" {
		t.Fatalf("extract-text: %q %v", got, res.Derived[0].Metadata)
	}
}

// TestCSVUnterminatedQuote: through the sandbox, CSV ending inside a
// quoted field fails csv-to-json and extract-text with malformed input
// naming the line the field opens on (the field took the rest of the
// document silently).
func TestCSVUnterminatedQuote(t *testing.T) {
	in := []byte("name,note\nAda,\"first\nAlan,second\nGrace,third\n")
	for _, step := range []string{"csv-to-json", "extract-text"} {
		_, err := run(t, step, bytesDoc("people.csv", "text/csv", in), nil)
		want := `malformed input: csv: the quoted field opening on line 2 is never closed (a " is missing)`
		if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s", step, err, want)
		}
	}
}
