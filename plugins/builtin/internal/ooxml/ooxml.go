package ooxml

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Errors: ErrLimit for a size, ratio or count limit (zip bombs), ErrFormat
// for anything that is not a well-formed document.
var (
	ErrLimit  = errors.New("ooxml: limit")
	ErrFormat = errors.New("ooxml: malformed document")
)

// Options bounds extraction; zero fields take the defaults.
type Options struct {
	// MaxText bounds the extracted text (default 48 MiB).
	MaxText int
	// MaxEntry bounds one decompressed entry (default 64 MiB).
	MaxEntry int64
	// MaxTotal bounds all decompressed entries together (default 256 MiB).
	MaxTotal int64
	// MaxRatio bounds an entry's decompressed/compressed size ratio once it
	// is larger than 1 MiB (default 200; Office XML compresses about 10x).
	MaxRatio int64
}

func (o Options) withDefaults() Options {
	if o.MaxText <= 0 {
		o.MaxText = 48 << 20
	}
	if o.MaxEntry <= 0 {
		o.MaxEntry = 64 << 20
	}
	if o.MaxTotal <= 0 {
		o.MaxTotal = 256 << 20
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = 200
	}
	return o
}

// pkg is an opened OOXML package.
type pkg struct {
	zr    *zip.Reader
	opt   Options
	total int64
	files map[string]*zip.File
}

func open(data []byte, opt Options) (*pkg, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: zip: %v", ErrFormat, err)
	}
	if len(zr.File) > 10000 {
		return nil, fmt.Errorf("%w: %d zip entries (at most 10000)", ErrLimit, len(zr.File))
	}
	p := &pkg{zr: zr, opt: opt.withDefaults(), files: map[string]*zip.File{}}
	for _, f := range zr.File {
		p.files[strings.TrimPrefix(f.Name, "/")] = f
	}
	return p, nil
}

// countingReader enforces the entry, total and ratio limits as it reads.
type countingReader struct {
	r    io.Reader
	p    *pkg
	f    *zip.File
	n    int64
	fail error
}

func (c *countingReader) Read(b []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.total += int64(n)
	switch {
	case c.n > c.p.opt.MaxEntry:
		c.fail = fmt.Errorf("%w: %s expands to more than %d bytes", ErrLimit, c.f.Name, c.p.opt.MaxEntry)
	case c.p.total > c.p.opt.MaxTotal:
		c.fail = fmt.Errorf("%w: entries expand to more than %d bytes", ErrLimit, c.p.opt.MaxTotal)
	case c.n > 1<<20 && c.n > int64(c.f.CompressedSize64+1)*c.p.opt.MaxRatio:
		c.fail = fmt.Errorf("%w: %s expands more than %dx (a zip bomb?)", ErrLimit, c.f.Name, c.p.opt.MaxRatio)
	}
	if c.fail != nil {
		return n, c.fail
	}
	return n, err
}

// entry opens a part for streaming; (nil, nil) if absent.
func (p *pkg) entry(name string) (io.ReadCloser, error) {
	f := p.files[name]
	if f == nil {
		return nil, nil
	}
	if f.UncompressedSize64 > uint64(p.opt.MaxEntry) {
		return nil, fmt.Errorf("%w: %s declares %d bytes (at most %d)", ErrLimit, name, f.UncompressedSize64, p.opt.MaxEntry)
	}
	if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64 > (f.CompressedSize64+1)*uint64(p.opt.MaxRatio) {
		return nil, fmt.Errorf("%w: %s declares a %dx expansion (a zip bomb?)", ErrLimit, name, f.UncompressedSize64/(f.CompressedSize64+1))
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{&countingReader{r: rc, p: p, f: f}, rc}, nil
}

// decoder returns a streaming XML decoder over a part.
func (p *pkg) decoder(name string) (*xml.Decoder, io.Closer, error) {
	rc, err := p.entry(name)
	if err != nil || rc == nil {
		return nil, nil, err
	}
	d := xml.NewDecoder(rc)
	d.Strict = false
	return d, rc, nil
}

func xmlErr(name string, err error) error {
	if errors.Is(err, ErrLimit) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
}

// textBuilder is a strings.Builder with a size limit.
type textBuilder struct {
	strings.Builder
	max int
}

func (b *textBuilder) check() error {
	if b.Len() > b.max {
		return fmt.Errorf("%w: text exceeds %d bytes", ErrLimit, b.max)
	}
	return nil
}

// DocxText returns the text of a DOCX document: body paragraphs one per
// line (table cells separated by tabs, rows by lines), then footnotes and
// endnotes. Deleted text of tracked changes, field codes and the fallback
// copies of text boxes are left out, as pandoc does.
func DocxText(data []byte, opt Options) (string, error) {
	p, err := open(data, opt)
	if err != nil {
		return "", err
	}
	main := "word/document.xml"
	if p.files[main] == nil {
		return "", fmt.Errorf("%w: no word/document.xml (not a DOCX?)", ErrFormat)
	}
	b := &textBuilder{max: p.opt.MaxText}
	for _, part := range []string{main, "word/footnotes.xml", "word/endnotes.xml"} {
		if err := p.docxPart(part, b); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func (p *pkg) docxPart(name string, b *textBuilder) error {
	d, c, err := p.decoder(name)
	if err != nil || d == nil {
		return err
	}
	defer c.Close()
	skip := 0 // inside w:delText, w:instrText, mc:Fallback, separators
	inText := false
	cells, firstCell := 0, false // open table cells; no cell yet in this row
	pending := false             // a paragraph ended inside a cell: space before more text
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return xmlErr(name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				continue
			}
			switch t.Name.Local {
			case "delText", "instrText", "Fallback", "delInstrText":
				skip = 1
			case "footnote", "endnote":
				for _, a := range t.Attr {
					if a.Name.Local == "type" && a.Value != "normal" {
						skip = 1
					}
				}
			case "t":
				inText = true
			case "tab":
				if cells == 0 {
					b.WriteByte('\t')
				} else {
					b.WriteByte(' ')
				}
			case "br", "cr":
				b.WriteByte('\n')
			case "noBreakHyphen":
				b.WriteByte('-')
			case "tc":
				pending = false
				if !firstCell {
					b.WriteByte('\t')
				}
				firstCell = false
				cells++
			case "tr":
				firstCell = true
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				if cells == 0 {
					b.WriteByte('\n')
				} else {
					pending = true
				}
			case "tc":
				cells--
			case "tr":
				pending = false
				b.WriteByte('\n')
			}
		case xml.CharData:
			if inText && skip == 0 {
				if pending {
					b.WriteByte(' ')
					pending = false
				}
				b.Write(t)
			}
		}
		if err := b.check(); err != nil {
			return err
		}
	}
}

// XlsxText returns the cell values of every sheet of an XLSX workbook, one
// row per line with cells separated by tabs, each sheet preceded by its
// name; and the number of sheets. Numbers are written as stored (dates are
// day serial numbers).
func XlsxText(data []byte, opt Options) (string, int, error) {
	p, err := open(data, opt)
	if err != nil {
		return "", 0, err
	}
	if p.files["xl/workbook.xml"] == nil {
		return "", 0, fmt.Errorf("%w: no xl/workbook.xml (not an XLSX?)", ErrFormat)
	}
	shared, err := p.sharedStrings()
	if err != nil {
		return "", 0, err
	}
	sheets, err := p.sheets()
	if err != nil {
		return "", 0, err
	}
	b := &textBuilder{max: p.opt.MaxText}
	for i, s := range sheets {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s.name + "\n")
		if err := p.sheetText(s.path, shared, b); err != nil {
			return "", 0, err
		}
	}
	return b.String(), len(sheets), nil
}

func (p *pkg) sharedStrings() ([]string, error) {
	const name = "xl/sharedStrings.xml"
	d, c, err := p.decoder(name)
	if err != nil || d == nil {
		return nil, err
	}
	defer c.Close()
	var out []string
	var cur strings.Builder
	size := 0
	inT, inPh := false, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, xmlErr(name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "si":
				cur.Reset()
			case "t":
				inT = true
			case "rPh":
				inPh++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "si":
				out = append(out, cur.String())
				size += cur.Len() + 16
				if size > p.opt.MaxText {
					return nil, fmt.Errorf("%w: shared strings exceed %d bytes", ErrLimit, p.opt.MaxText)
				}
			case "t":
				inT = false
			case "rPh":
				inPh--
			}
		case xml.CharData:
			if inT && inPh == 0 {
				cur.Write(t)
			}
		}
	}
}

type sheet struct{ name, path string }

func (p *pkg) sheets() ([]sheet, error) {
	rels := map[string]string{}
	if d, c, err := p.decoder("xl/_rels/workbook.xml.rels"); err != nil {
		return nil, err
	} else if d != nil {
		defer c.Close()
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, xmlErr("workbook.xml.rels", err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Relationship" {
				id, target := attr(se, "Id"), attr(se, "Target")
				if strings.HasPrefix(target, "/") {
					target = strings.TrimPrefix(target, "/")
				} else {
					target = path.Join("xl", target)
				}
				rels[id] = target
			}
		}
	}
	d, c, err := p.decoder("xl/workbook.xml")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []sheet
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, xmlErr("workbook.xml", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "sheet" {
			target := rels[attr(se, "id")]
			if target == "" {
				target = "xl/worksheets/sheet" + strconv.Itoa(len(out)+1) + ".xml"
			}
			out = append(out, sheet{attr(se, "name"), target})
			if len(out) > 1000 {
				return nil, fmt.Errorf("%w: more than 1000 sheets", ErrLimit)
			}
		}
	}
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// column returns the 0-based column of a cell reference ("C7" -> 2).
func column(ref string) int {
	col := 0
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c < 'A' || c > 'Z' {
			break
		}
		col = col*26 + int(c-'A'+1)
	}
	return col - 1
}

func (p *pkg) sheetText(name string, shared []string, b *textBuilder) error {
	d, c, err := p.decoder(name)
	if err != nil || d == nil {
		return err
	}
	defer c.Close()
	cellSpace := strings.NewReplacer("\t", " ", "\n", " ", "\r", "") // once per sheet: building one is costly
	var (
		row       []string
		cellType  string
		cellCol   int
		val       strings.Builder
		inV, inIs bool
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return xmlErr(name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "row":
				row = row[:0]
			case "c":
				cellType = attr(t, "t")
				cellCol = column(attr(t, "r"))
				if cellCol < 0 {
					cellCol = len(row)
				}
				if cellCol > 16383 {
					return fmt.Errorf("%w: column beyond XFD", ErrFormat)
				}
				val.Reset()
			case "v":
				inV = true
			case "t":
				inIs = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "v":
				inV = false
			case "t":
				inIs = false
			case "c":
				v := val.String()
				switch cellType {
				case "s":
					if i, err := strconv.Atoi(v); err == nil && i >= 0 && i < len(shared) {
						v = shared[i]
					}
				case "b":
					v = map[string]string{"0": "FALSE", "1": "TRUE"}[v]
				}
				for len(row) < cellCol {
					row = append(row, "")
				}
				if strings.ContainsAny(v, "\t\n\r") {
					v = cellSpace.Replace(v)
				}
				row = append(row, v)
			case "row":
				for len(row) > 0 && row[len(row)-1] == "" {
					row = row[:len(row)-1]
				}
				if len(row) > 0 {
					b.WriteString(strings.Join(row, "\t"))
					b.WriteByte('\n')
				}
				if err := b.check(); err != nil {
					return err
				}
			}
		case xml.CharData:
			if inV || inIs {
				val.Write(t)
			}
		}
	}
}
