package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// minimal builds a one-page PDF showing content with font F1 (Helvetica,
// WinAnsi); xref offsets are computed, so the file is well formed.
func minimal(content string) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(s string) { offs = append(offs, b.Len()); b.WriteString(s) }
	b.WriteString("%PDF-1.4\n")
	obj("1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n")
	obj("2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /Font << /F1 5 0 R >> >> >> endobj\n")
	obj("3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n")
	obj(fmt.Sprintf("4 0 obj << /Length %d >> stream\n%s\nendstream endobj\n", len(content), content))
	obj("5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >> endobj\n")
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 6\n0000000000 65535 f \n")
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer << /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", x)
	return b.Bytes()
}

func TestExtract(t *testing.T) {
	tests := []struct{ content, want string }{
		{"BT /F1 12 Tf 72 700 Td (Hello World) Tj ET", "Hello World\n"},
		{"BT /F1 12 Tf 72 700 Td [(Hel) -20 (lo) -400 (World)] TJ ET", "Hello World\n"},
		{"BT /F1 12 Tf 72 700 Td (Line one) Tj 0 -14 Td (Line two) Tj ET", "Line one\nLine two\n"},
		{"BT /F1 12 Tf 72 700 Td (caf\\351 \\(x\\)) Tj ET", "café (x)\n"},
		{"BT /F1 10 Tf 14 TL 72 700 Td (a) Tj T* (b) ' ET", "a\nb\n"},
		{"q 2 0 0 2 0 0 cm BT /F1 6 Tf 10 10 Td (big) Tj ET Q", "big\n"},
	}
	for _, tt := range tests {
		got, err := Extract(minimal(tt.content), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != tt.want || got.Pages != 1 {
			t.Errorf("%s: %q (%d pages), want %q", tt.content, got.Text, got.Pages, tt.want)
		}
	}
	// A broken xref is rebuilt by scanning for objects.
	b := minimal("BT /F1 12 Tf (Recovered) Tj ET")
	b = bytes.Replace(b, []byte("startxref\n"), []byte("startxref\n9"), 1)
	if got, err := Extract(b, Options{}); err != nil || got.Text != "Recovered\n" {
		t.Fatalf("broken xref: %v %+v", err, got)
	}
	enc := bytes.Replace(minimal("BT ET"), []byte("/Root 1 0 R"), []byte("/Root 1 0 R /Encrypt << /V 1 >>"), 1)
	if _, err := Extract(enc, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("encrypted: %v", err)
	}
}

func TestGlyphText(t *testing.T) {
	for name, want := range map[string]string{"fi": "fi", "a": "a", "uni00E9": "é", "u1F600": "😀", "T_h": "Th",
		"quoteright": "’", "alpha": "α", "a.sc": "a", "g123": ""} {
		if got := glyphText(name); got != want {
			t.Errorf("glyphText(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCMap(t *testing.T) {
	m, n := parseCMap([]byte(`1 begincodespacerange <0000> <FFFF> endcodespacerange
2 beginbfchar <0003> <0020> <0011> <00660069> endbfchar
1 beginbfrange <0024> <0026> <0041> endbfrange
1 beginbfrange <0030> <0031> [<0078> <0079>] endbfrange`), 1)
	if n != 2 || m[3] != " " || m[0x11] != "fi" || m[0x25] != "B" || m[0x31] != "y" {
		t.Fatalf("%d %v", n, m)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(minimal("BT /F1 12 Tf 72 700 Td [(Hel) -20 (lo)] TJ ET"))
	f.Add(minimal("q BI /W 1 /H 1 ID \x00\x01 EI Q BT (x) Tj ET"))
	if b, err := os.ReadFile("../../testdata/quality/pdf/gropdf-apt-get.8.pdf"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Extract(b, Options{MaxStream: 1 << 20, MaxDecoded: 8 << 20, MaxText: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			if strings.Contains(err.Error(), "runtime error") {
				t.Fatalf("parser panic: %v", err)
			}
			return
		}
		if len(got.Text) > 1<<20+1<<16 {
			t.Fatalf("text of %d bytes past MaxText", len(got.Text))
		}
	})
}

// shared builds an n-page PDF whose pages all draw one content stream,
// content, with font F1 (Helvetica, WinAnsi).
func shared(content string, n int) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(format string, args ...any) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj ", len(offs))
		fmt.Fprintf(&b, format, args...)
		b.WriteString(" endobj\n")
	}
	b.WriteString("%PDF-1.4\n")
	var kids strings.Builder
	for i := range n {
		fmt.Fprintf(&kids, "%d 0 R ", 5+i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [%s] /Count %d /Resources << /Font << /F1 3 0 R >> >> >>", kids.String(), n)
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	obj("<< /Length %d >> stream\n%s\nendstream", len(content), content)
	for range n {
		obj("<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>")
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, x)
	return b.Bytes()
}

// TestWorkLimits checks the per-page and per-file bounds on the work of
// content streams with crafted PDFs: a page of too many content-stream
// objects, pages of too many objects and glyphs together, a page of too
// many glyphs (one string or many) each fail with ErrLimit naming the
// page; work up to each limit passes. At the defaults, a page of more than
// 4 million objects ran (up to 20 million, most of the sandbox's time),
// the file was not bounded, and a page's glyphs were not bounded at all
// (a string of a few MiB held more than the sandbox's memory).
func TestWorkLimits(t *testing.T) {
	qq := func(n int) string { return strings.Repeat("q Q ", n/2) }                                      // n objects
	tj := func(n int) string { return "BT /F1 1 Tf " + strings.Repeat("(xxxxxxxxxx) Tj ", n/10) + "ET" } // n glyphs, 5 + n/5 objects
	small := Options{MaxPageOps: 1000, MaxOps: 4500, MaxPageGlyphs: 500}
	for _, c := range []struct {
		name string
		pdf  []byte
		opt  Options
		want string // "" for no error
	}{
		{"a page at the page limit", minimal(qq(1000)), small, ""},
		{"a page over the page limit", minimal(qq(1002)), small, "page 1 runs more than 1000 content-stream objects (operators and operands)"},
		{"pages at the file limit", shared(qq(900), 5), small, ""},
		{"pages over the file limit", shared(qq(900), 6), small, "the pages run more than 4500 content-stream objects and glyphs in all, past it on page 6"},
		{"glyphs at the limit", minimal(tj(500)), small, ""},
		{"strings of too many glyphs", minimal(tj(510)), small, "page 1 shows more than 500 glyphs"},
		{"a string of too many glyphs", minimal("BT /F1 1 Tf (" + strings.Repeat("x", 501) + ") Tj ET"), small, "page 1 shows more than 500 glyphs"},
		{"the last string of too many glyphs", minimal("BT /F1 1 Tf (" + strings.Repeat("x", 501) + ") Tj"), small, "page 1 shows more than 500 glyphs"},
		// Glyphs count towards the file: a page of 101 objects and 480
		// glyphs is 581, 7 pages 4067, 8 pages 4648.
		{"pages of glyphs at the file limit", shared(tj(480), 7), small, ""},
		{"pages of glyphs over the file limit", shared(tj(480), 8), small, "past it on page 8"},
		// The defaults.
		{"a page over 4 million objects", minimal(qq(4_000_002)), Options{}, "page 1 runs more than 4000000 content-stream objects"},
		{"a string of 8 MiB", minimal("BT /F1 1 Tf (" + strings.Repeat("x", 8<<20) + ") Tj ET"), Options{}, "page 1 shows more than 200000 glyphs"},
	} {
		got, err := Extract(c.pdf, c.opt)
		if c.want == "" {
			if err != nil || got.Pages == 0 {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrLimit: %s", c.name, err, c.want)
		}
	}
	if o := (Options{}).withDefaults(); o.MaxPageOps != 4_000_000 || o.MaxOps != 20_000_000 || o.MaxPageGlyphs != 200_000 {
		t.Errorf("defaults %+v, docs/steps.md says 4 000 000 objects a page, 20 000 000 objects and glyphs a file, 200 000 glyphs a page", o)
	}
}
