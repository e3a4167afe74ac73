package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/docex-dev/docex/plugins/builtin/internal/ooxml"
	"github.com/docex-dev/docex/plugins/builtin/internal/pdf"
	"golang.org/x/net/html/atom"
)

// Extraction limits.
const (
	// MaxWholeInput bounds the formats read whole (PDF, DOCX, XLSX, JSON,
	// Markdown, plain text).
	MaxWholeInput = 64 << 20
	// MaxText bounds the extracted text.
	MaxText = 48 << 20
	// MaxHTMLDepth bounds element nesting in HTML.
	MaxHTMLDepth = 1024
	// MaxJSONDepth bounds nesting in JSON.
	MaxJSONDepth = 1000
)

// Formats extract-text reads.
var Formats = []string{"pdf", "docx", "xlsx", "html", "markdown", "csv", "tsv", "json", "text"}

// formatOf maps a declared media type to a format ("" if none fits).
func formatOf(contentType string) string {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	switch {
	case mt == "application/pdf":
		return "pdf"
	case mt == "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return "docx"
	case mt == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return "xlsx"
	case mt == "text/html" || mt == "application/xhtml+xml":
		return "html"
	case mt == "text/markdown" || mt == "text/x-markdown":
		return "markdown"
	case mt == "text/csv":
		return "csv"
	case mt == "text/tab-separated-values":
		return "tsv"
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return "json"
	case mt == "text/plain":
		return "text"
	}
	return ""
}

// Extracted is the text of a document and what is known about it.
type Extracted struct {
	Text   string
	Format string
	Pages  int // PDF pages, XLSX sheets; 0 when it does not apply
}

// limitedBuilder is a strings.Builder that fails past MaxText.
type limitedBuilder struct {
	strings.Builder
	max int
}

func (b *limitedBuilder) check() error {
	if b.Len() > b.max {
		return Errorf(ErrLimit, "extracted text exceeds %d bytes", b.max)
	}
	return nil
}

// ExtractFormat extracts the text of in as format ("" or "auto": from the
// declared content type, else sniffed).
func ExtractFormat(in Input, format string) (*Extracted, error) {
	if format == "" || format == "auto" {
		format = formatOf(in.ContentType)
		if format == "" || format == "text" { // text/plain is often a guess
			if d := Detect(in.Content, in.Size); d.Format != "" && (format == "" || d.Format != "markdown") {
				format = d.Format
			}
		}
		if format == "" {
			return nil, Errorf(ErrUnsupported, "cannot extract text from %q (want one of %s)", in.ContentType, strings.Join(Formats, ", "))
		}
	}
	x := &Extracted{Format: format}
	var err error
	switch format {
	case "pdf", "docx", "xlsx":
		var data []byte
		if data, err = in.ReadAll(MaxWholeInput); err != nil {
			return nil, err
		}
		switch format {
		case "pdf":
			var doc *pdf.Text
			doc, err = pdf.Extract(data, pdf.Options{MaxText: MaxText})
			if doc != nil {
				x.Text, x.Pages = doc.Text, doc.Pages
			}
		case "docx":
			x.Text, err = ooxml.DocxText(data, ooxml.Options{MaxText: MaxText})
		case "xlsx":
			x.Text, x.Pages, err = ooxml.XlsxText(data, ooxml.Options{MaxText: MaxText})
		}
		err = mapFormatErr(err)
	case "html":
		x.Text, err = htmlText(newCP1252Reader(in.Reader()))
	case "csv", "tsv":
		comma := ','
		if format == "tsv" {
			comma = '\t'
		}
		x.Text, err = csvText(newCP1252Reader(in.Reader()), comma)
	case "json":
		x.Text, err = jsonText(in.Reader())
	case "markdown", "text":
		if in.Size > MaxWholeInput {
			return nil, Errorf(ErrLimit, "input is %d bytes, this format is read whole and the limit is %d", in.Size, MaxWholeInput)
		}
		if format == "text" {
			x.Text, err = readText(in, MaxText)
			break
		}
		// Markdown's syntax is stripped from the decoded text: it may
		// be larger than MaxText, the text left not.
		if x.Text, err = readText(in, MaxWholeInput); err != nil {
			break
		}
		if x.Text = markdownText(x.Text); len(x.Text) > MaxText {
			err = Errorf(ErrLimit, "extracted text exceeds %d bytes", MaxText)
		}
	default:
		return nil, Errorf(ErrParam, "format: %q is not one of auto, %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	if !utf8.ValidString(x.Text) { // the output is text/plain; charset=utf-8
		x.Text = strings.ToValidUTF8(x.Text, "\uFFFD")
	}
	return x, nil
}

// mapFormatErr gives the parsers' errors the step's kinds.
func mapFormatErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pdf.ErrLimit), errors.Is(err, ooxml.ErrLimit):
		return Errorf(ErrLimit, "%v", err)
	case errors.Is(err, pdf.ErrUnsupported):
		return Errorf(ErrUnsupported, "%v", err)
	}
	return Errorf(ErrMalformed, "%v", err)
}

// readText returns in's content decoded as plain text (decodeText does),
// streamed into one buffer of the text's size: the input is not held
// beside it. It returns ErrLimit once the text exceeds limit bytes, and
// the input's read errors.
func readText(in Input, limit int) (string, error) {
	r := newTextReader(in.Reader())
	// UTF-8 decodes to its own size (one byte more tells EOF from a
	// full buffer); other text may grow: the buffer then grows once, to
	// limit+1 bytes.
	buf := make([]byte, 0, min(in.Size, int64(limit))+1)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return "", Errorf(ErrLimit, "extracted text exceeds %d bytes", limit)
			}
			grown := make([]byte, len(buf), limit+1) // not append's rounding
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if len(buf) > limit {
		return "", Errorf(ErrLimit, "extracted text exceeds %d bytes", limit)
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf)), nil
}

// decodeText returns data as UTF-8: UTF-16 with a BOM is converted, a UTF-8
// BOM dropped, and bytes that are not UTF-8 read as Windows-1252.
func decodeText(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		data = data[3:]
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		be := data[0] == 0xfe
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if be {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			} else {
				u = append(u, uint16(data[i+1])<<8|uint16(data[i]))
			}
		}
		return string(utf16.Decode(u))
	}
	if utf8.Valid(data) {
		return string(data)
	}
	return decodeCP1252(data)
}

// decodeCP1252 returns data as UTF-8, its valid UTF-8 sequences as they
// are and every other byte read as Windows-1252.
func decodeCP1252(data []byte) string {
	var b strings.Builder
	b.Grow(len(data) + len(data)/8)
	for len(data) > 0 {
		r, n := utf8.DecodeRune(data)
		if r == utf8.RuneError && n == 1 {
			r = cp1252(data[0])
		}
		b.WriteRune(r)
		data = data[n:]
	}
	return b.String()
}

// cp1252 maps a Windows-1252 byte to its rune.
func cp1252(c byte) rune {
	const high = "€\uFFFD‚ƒ„…†‡ˆ‰Š‹Œ\uFFFDŽ\uFFFD\uFFFD‘’“”•–—˜™š›œ\uFFFDžŸ"
	if c >= 0x80 && c < 0xa0 {
		return []rune(high)[c-0x80]
	}
	return rune(c)
}

// csvText renders CSV rows as tab-separated lines.
func csvText(r io.Reader, comma rune) (string, error) {
	// Built once per document: building a Replacer costs far more than
	// using it, and most fields have nothing to replace.
	fieldSpace := strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ")
	cr := newCSVReader(r, comma)
	b := limitedBuilder{max: MaxText}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", csvError(err)
		}
		for i, f := range rec {
			if i > 0 {
				b.WriteByte('\t')
			}
			if strings.ContainsAny(f, "\t\r\n") {
				f = fieldSpace.Replace(f)
			}
			b.WriteString(f)
		}
		b.WriteByte('\n')
		if err := b.check(); err != nil {
			return "", err
		}
	}
}

// jsonText lists the string values of a JSON document, one per line, in
// document order (object keys are left out).
func jsonText(r io.Reader) (string, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxWholeInput+1))
	b := limitedBuilder{max: MaxText}
	depth := 0
	var stack []bool // true: inside an object
	expectKey := func() bool { return len(stack) > 0 && stack[len(stack)-1] }
	keyNext := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if depth != 0 {
				return "", Errorf(ErrMalformed, "json: unexpected end")
			}
			return b.String(), nil
		}
		if err != nil {
			return "", Errorf(ErrMalformed, "json: %v", err)
		}
		if dec.InputOffset() > MaxWholeInput {
			return "", Errorf(ErrLimit, "json input exceeds %d bytes", MaxWholeInput)
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				depth++
				if depth > MaxJSONDepth {
					return "", Errorf(ErrLimit, "json nesting deeper than %d", MaxJSONDepth)
				}
				stack = append(stack, t == '{')
				keyNext = t == '{'
				continue
			default:
				depth--
				stack = stack[:len(stack)-1]
			}
		case string:
			if keyNext {
				keyNext = false
				continue
			}
			b.WriteString(t)
			b.WriteByte('\n')
			if err := b.check(); err != nil {
				return "", err
			}
		}
		keyNext = expectKey()
	}
}

// markdownText strips Markdown syntax, keeping the words: heading marks,
// emphasis, list bullets, block quotes, link and image targets, fences,
// HTML tags.
func markdownText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inFence := false
	for line := range strings.Lines(s) { // not SplitAfter: a line per byte would take 16 times the text
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence {
			b.WriteString(line)
			continue
		}
		if strings.Trim(t, "=-*_ ") == "" && len(t) >= 3 { // setext underline or rule
			b.WriteString("\n")
			continue
		}
		heading := strings.HasPrefix(t, "#")
		t = strings.TrimLeft(t, "#>")
		t = strings.TrimSpace(t)
		for _, bullet := range []string{"- ", "* ", "+ "} {
			t = strings.TrimPrefix(t, bullet)
		}
		// A heading's closing #s, after a space ("## Title ##"); "C#" stays.
		if k := strings.TrimRight(t, "#"); heading && k != t && (k == "" || strings.HasSuffix(k, " ")) {
			t = strings.TrimSpace(k)
		}
		writeInlineMarkdown(&b, t)
		b.WriteString("\n")
	}
	return b.String()
}

// writeInlineMarkdown writes s to b without its emphasis, code marks, link
// targets and tags (into the document's builder: a string per line would
// be as much garbage as text).
func writeInlineMarkdown(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			// A backslash escape ("\\*") is the punctuation itself.
			if i+1 < len(s) && isASCIIPunct(s[i+1]) {
				b.WriteByte(s[i+1])
				i++
				continue
			}
		case '*', '_', '`':
			// Emphasis or code marks are dropped; inside a word
			// (snake_case) an underscore stays, and a run with white
			// space (or the line's edge) on both sides ("2 * 3") is no
			// mark at all.
			end := i
			for end < len(s) && s[end] == c {
				end++
			}
			if c != '`' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') && (end == len(s) || s[end] == ' ' || s[end] == '\t') {
				b.WriteString(s[i:end])
				i = end - 1
				continue
			}
			if c == '_' && i > 0 && i+1 < len(s) && isAlnum(s[i-1]) && isAlnum(s[i+1]) {
				b.WriteByte(c)
			}
			continue
		case '!':
			if i+1 < len(s) && s[i+1] == '[' {
				continue
			}
		case '[':
			if j := strings.Index(s[i:], "]("); j > 0 {
				if k := strings.IndexByte(s[i+j:], ')'); k > 0 {
					writeInlineMarkdown(b, s[i+1:i+j])
					i += j + k
					continue
				}
			}
		case '<':
			if n := htmlTagLen(s[i:]); n > 0 {
				i += n - 1
				continue
			}
			if j := strings.IndexByte(s[i:], '>'); j > 0 && !strings.ContainsAny(s[i+1:i+j], " \t") || j > 0 && strings.HasPrefix(s[i+1:], "/") {
				if !strings.Contains(s[i+1:i+j], "@") && !strings.Contains(s[i+1:i+j], "://") {
					i += j
					continue
				}
				b.WriteString(s[i+1 : i+j])
				i += j
				continue
			}
		}
		b.WriteByte(c)
	}
}

// htmlTagLen returns the length of the HTML start tag s starts with
// (`<a href="x">`, `<img src=x alt='y' />`, `<br />`), or 0: the name must
// be an HTML element's, right after the "<", then white space before each
// attribute; a ">" inside a quoted value does not end it. End tags,
// unknown names without white space and autolinks are writeInlineMarkdown's
// own case; "<" followed by a space ("a < b") is never a tag.
func htmlTagLen(s string) int {
	i := 1
	for i < len(s) && isAlnum(s[i]) {
		i++
	}
	if i == 1 || !isLetter(s[1]) || atom.Lookup([]byte(strings.ToLower(s[1:i]))) == 0 {
		return 0
	}
	for {
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		switch {
		case j < len(s) && s[j] == '>':
			return j + 1
		case j+1 < len(s) && s[j] == '/' && s[j+1] == '>':
			return j + 2
		case j == i || j == len(s) || !isLetter(s[j]) && s[j] != '_' && s[j] != ':':
			return 0
		}
		i = j
		for i < len(s) && (isAlnum(s[i]) || strings.IndexByte("_.:-", s[i]) >= 0) {
			i++
		}
		k := i
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
		if k == len(s) || s[k] != '=' {
			continue
		}
		for k++; k < len(s) && (s[k] == ' ' || s[k] == '\t'); k++ {
		}
		if k < len(s) && (s[k] == '"' || s[k] == '\'') {
			e := strings.IndexByte(s[k+1:], s[k])
			if e < 0 {
				return 0
			}
			i = k + 1 + e + 1
			continue
		}
		e := k
		for e < len(s) && strings.IndexByte(" \t\"'=<>`", s[e]) < 0 {
			e++
		}
		if e == k {
			return 0
		}
		i = e
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isASCIIPunct reports whether c is ASCII punctuation, which a backslash
// escapes in Markdown.
func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ExtractText writes the text of a PDF, DOCX, XLSX, HTML, Markdown, CSV,
// JSON or plain-text document to a derived text/plain document with
// metadata source_format, source_pages (PDF pages, XLSX sheets),
// text_chars, text_words and text_language (when it can be told).
func ExtractText(env Env) error {
	format, err := extractParams(env)
	if err != nil {
		return err
	}
	in := env.Input()
	x, err := ExtractFormat(in, format)
	if err != nil {
		return err
	}
	s := CountText(x.Text, false)
	meta := []KV{{"source_format", x.Format}}
	if x.Pages > 0 {
		meta = append(meta, KV{"source_pages", x.Pages})
	}
	meta = append(meta, KV{"text_chars", s.Chars}, KV{"text_words", s.Words})
	if lang := s.Language(); lang != "" {
		meta = append(meta, KV{"text_language", lang})
	}
	if err := env.Emit(derivedName(in.Name, ".txt"), "text/plain; charset=utf-8", stringBytes(x.Text), meta); err != nil {
		return err
	}
	return env.SetMetadata("text_extracted", true)
}

// extractParams reads extract-text's parameters: the format.
func extractParams(env Env) (string, error) {
	p := params{env: env}
	format := p.oneOf("format", "auto", append([]string{"auto"}, Formats...)...)
	return format, p.err
}
