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
	}
	for _, tt := range tests {
		got := Detect(strings.NewReader(tt.in), int64(len(tt.in)))
		if got.MediaType != tt.want {
			t.Errorf("Detect(%.40q) = %s, want %s", tt.in, got.MediaType, tt.want)
		}
	}
}
