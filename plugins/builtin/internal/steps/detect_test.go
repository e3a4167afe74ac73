package steps

import (
	"os"
	"strings"
	"testing"
)

func TestDetectText(t *testing.T) {
	csv, err := os.ReadFile("../../testdata/files/debian.csv")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{string(csv), "text/csv"},
		{"a;b;c\n1;2;3\n4;5;6\n", "text/csv"},
		{"name\tcity\nAda, Countess\tLondon\nAlan\tWilmslow\n", "text/tab-separated-values"},
		{"a\tb\tc\n1\t2\t3\n", "text/tab-separated-values"},
		{"Hello, world. This is prose.\nIt has, sometimes, commas.\nAnd lines.\n", "text/plain"},
		{"# Title\n\nSome *text* and a [link](http://x).\n\n- item\n- item\n", "text/markdown"},
		{`{"a": [1, 2, {"b": null}]}`, "application/json"},
		{"<!DOCTYPE html><html><body>x</body></html>", "text/html"},
		{"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>", "image/svg+xml"},
		{"plain words only\n", "text/plain"},
		{"", "application/octet-stream"},
		{"\x00\x01\x02binary", "application/octet-stream"},
		{"%PDF-1.7\n", "application/pdf"},
		{"\xff\xfeh\x00i\x00", "text/plain"},
		{"\xfe\xff\x00h\x00i", "text/plain"},
		{"\xff\xfeh\x00i", "application/octet-stream"},
		// Text that is not UTF-8 is Windows-1252, as extract-text reads
		// it; bytes Windows-1252 leaves undefined, or control
		// characters, make it binary data.
		{"name,city\ncaf\xe9,Z\xfcrich\nna\xefve,K\xf6ln\n", "text/csv"},
		{"a\tb\n\x93q\x94\t1\n", "text/tab-separated-values"},
		{"<html><body>caf\xe9 \x80 2</body></html>", "text/html"},
		{"Gr\xfc\xdfe aus K\xf6ln.\r\n\fZweite Seite, caf\xc3\xa9.\n", "text/plain"},
		{"# Caf\xe9\n\n- un\n- deux\n", "text/markdown"},
		{`{"k": "caf\xe9"}`, "text/plain"},
		{"caf\xe9\x81", "application/octet-stream"},
		{"caf\xe9\x01", "application/octet-stream"},
		{"caf\xe9\x7f", "application/octet-stream"},
		{"\xff\xfecaf\xe9!", "application/octet-stream"}, // a UTF-16 BOM, an odd size
	}
	for _, tt := range tests {
		got := Detect(strings.NewReader(tt.in), int64(len(tt.in)))
		if got.MediaType != tt.want {
			t.Errorf("Detect(%.40q) = %s, want %s", tt.in, got.MediaType, tt.want)
		}
	}
}

// TestSniffedCP1252 checks that detect-type and extract-text agree on text
// that is not UTF-8: extract-text, sniffing a document whose type names no
// format, reads what Detect tells (it refused such text as unsupported).
func TestSniffedCP1252(t *testing.T) {
	for _, c := range []struct{ in, format, want string }{
		{"name,city\ncaf\xe9,Z\xfcrich\n", "csv", "name\tcity\ncafé\tZürich\n"},
		{"<html><body>caf\xe9 \x80 2</body></html>", "html", "café € 2\n"},
		{"Gr\xfc\xdfe aus K\xf6ln\n", "text", "Grüße aus Köln\n"},
	} {
		d := Detect(strings.NewReader(c.in), int64(len(c.in)))
		x, err := ExtractFormat(Input{Name: "x", ContentType: "application/octet-stream", Size: int64(len(c.in)), Content: strings.NewReader(c.in)}, "")
		if err != nil {
			t.Errorf("%q: detected %+v, extract-text: %v", c.in, d, err)
			continue
		}
		if d.Format != c.format || x.Format != c.format || x.Text != c.want {
			t.Errorf("%q: detected %+v, extracted as %s: %q, want %s: %q", c.in, d, x.Format, x.Text, c.format, c.want)
		}
	}
}
