package ooxml

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func docx(t testing.TB, parts map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, body := range parts {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(body))
	}
	w.Close()
	return b.Bytes()
}

const w = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`

func TestDocxText(t *testing.T) {
	doc := docx(t, map[string]string{
		"word/document.xml": `<w:document ` + w + `><w:body>
<w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve"> world</w:t></w:r></w:p>
<w:p><w:r><w:delText>gone</w:delText><w:instrText>PAGE</w:instrText><w:t>kept</w:t><w:br/><w:t>next</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>b</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
</w:body></w:document>`,
		"word/footnotes.xml": `<w:footnotes ` + w + `><w:footnote w:type="separator"><w:p><w:r><w:t>sep</w:t></w:r></w:p></w:footnote>
<w:footnote w:id="1"><w:p><w:r><w:t>A note</w:t></w:r></w:p></w:footnote></w:footnotes>`,
	})
	got, err := DocxText(doc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello\t world\nkept\nnext\na\tb\nA note\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if _, err := DocxText(docx(t, map[string]string{"x.xml": "<a/>"}), Options{}); !errors.Is(err, ErrFormat) {
		t.Fatalf("not a docx: %v", err)
	}
	big := docx(t, map[string]string{"word/document.xml": "<w:document " + w + ">" + strings.Repeat(" ", 3<<20) + "</w:document>"})
	if _, err := DocxText(big, Options{MaxRatio: 100}); !errors.Is(err, ErrLimit) {
		t.Fatalf("ratio: %v", err)
	}
	if _, err := DocxText(big, Options{MaxEntry: 1 << 20}); !errors.Is(err, ErrLimit) {
		t.Fatalf("entry size: %v", err)
	}
}

func TestXlsxText(t *testing.T) {
	b, err := os.ReadFile("../../testdata/files/sheet.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	text, sheets, err := XlsxText(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sheets != 2 || !strings.HasPrefix(text, "debian\nversion\tcodename\t") || !strings.Contains(text, "\nubuntu\n") {
		t.Fatalf("%d sheets: %.300q", sheets, text)
	}
	if column("C7") != 2 || column("AA1") != 26 {
		t.Fatal("column")
	}
}

func FuzzDocx(f *testing.F) {
	f.Add(docx(f, map[string]string{"word/document.xml": `<w:document ` + w + `><w:p><w:r><w:t>x</w:t></w:r></w:p></w:document>`}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := DocxText(b, Options{MaxEntry: 1 << 20, MaxTotal: 4 << 20})
		if err != nil && !errors.Is(err, ErrFormat) && !errors.Is(err, ErrLimit) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
