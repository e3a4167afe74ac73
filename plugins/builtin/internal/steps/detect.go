package steps

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"
)

// sniffLen is how much of the content detect-type reads (plus the ZIP
// central directory for OOXML, ODF and EPUB).
const sniffLen = 8 << 10

// Detected is what content sniffing found.
type Detected struct {
	MediaType string
	Format    string // the extract-text format: pdf, docx, xlsx, html, markdown, csv, json, text, or ""
}

var magics = []struct {
	prefix, mt string
}{
	{"%PDF-", "application/pdf"},
	{"\x89PNG\r\n\x1a\n", "image/png"},
	{"\xff\xd8\xff", "image/jpeg"},
	{"GIF87a", "image/gif"}, {"GIF89a", "image/gif"},
	{"II*\x00", "image/tiff"}, {"MM\x00*", "image/tiff"},
	{"\x1f\x8b", "application/gzip"},
	{"BZh", "application/x-bzip2"},
	{"\xfd7zXZ\x00", "application/x-xz"},
	{"\x28\xb5\x2f\xfd", "application/zstd"},
	{"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"},
	{"Rar!\x1a\x07", "application/vnd.rar"},
	{"\x7fELF", "application/x-executable"},
	{"\x00asm", "application/wasm"},
	{"SQLite format 3\x00", "application/vnd.sqlite3"},
	{"{\\rtf", "application/rtf"},
	{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"},
	{"OggS", "audio/ogg"},
	{"fLaC", "audio/flac"},
	{"ID3", "audio/mpeg"},
}

// Detect sniffs the media type of content from its bytes alone.
func Detect(r io.ReaderAt, size int64) Detected {
	head := make([]byte, min(size, sniffLen))
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	for _, m := range magics {
		if bytes.HasPrefix(head, []byte(m.prefix)) {
			d := Detected{MediaType: m.mt}
			if m.mt == "application/pdf" {
				d.Format = "pdf"
			}
			return d
		}
	}
	if len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP" {
		return Detected{MediaType: "image/webp"}
	}
	if len(head) >= 12 && string(head[4:8]) == "ftyp" {
		return Detected{MediaType: "video/mp4"}
	}
	if len(head) > 262 && string(head[257:262]) == "ustar" {
		return Detected{MediaType: "application/x-tar"}
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return detectZip(r, size)
	}
	return detectText(head, size)
}

// zipTypes maps a distinguishing entry to its OOXML type.
var zipTypes = []struct{ entry, mt, format string }{
	{"word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
	{"xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
	{"ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation", ""},
}

func detectZip(r io.ReaderAt, size int64) Detected {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Detected{MediaType: "application/zip"}
	}
	if len(zr.File) > 0 && zr.File[0].Name == "mimetype" && zr.File[0].Method == zip.Store && zr.File[0].UncompressedSize64 < 256 {
		if rc, err := zr.File[0].Open(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, 256))
			rc.Close()
			if mt := strings.TrimSpace(string(b)); strings.Contains(mt, "/") {
				return Detected{MediaType: mt}
			}
		}
	}
	for _, t := range zipTypes {
		for _, f := range zr.File {
			if f.Name == t.entry {
				return Detected{MediaType: t.mt, Format: t.format}
			}
		}
	}
	return Detected{MediaType: "application/zip"}
}

func detectText(head []byte, size int64) Detected {
	if len(head) == 0 {
		return Detected{MediaType: "application/octet-stream"}
	}
	// UTF-16 with a byte order mark: text, which extract-text decodes.
	if (bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff"))) && size%2 == 0 && size >= 4 {
		return Detected{"text/plain", "text"}
	}
	// Trim an incomplete rune at the cut.
	t := head
	if int64(len(head)) < size {
		for k := 1; k <= 3 && k <= len(t); k++ {
			if utf8.RuneStart(t[len(t)-k]) {
				if !utf8.FullRune(t[len(t)-k:]) {
					t = t[:len(t)-k]
				}
				break
			}
		}
	}
	if bytes.IndexByte(t, 0) >= 0 || bytes.HasPrefix(head, []byte("\xff\xfe")) || bytes.HasPrefix(head, []byte("\xfe\xff")) {
		return Detected{MediaType: "application/octet-stream"} // binary, or a UTF-16 BOM on an odd size
	}
	// Bytes that are not UTF-8 are read as Windows-1252, as extract-text
	// reads them, when they look like text: no control character but tab,
	// line feed, form feed and carriage return, none of the five bytes
	// Windows-1252 leaves undefined. JSON must be UTF-8 (RFC 8259): such
	// a document is told by the other rules.
	utf8Text := utf8.Valid(t)
	if !utf8Text && !cp1252Text(t) {
		return Detected{MediaType: "application/octet-stream"}
	}
	s := string(t)
	if !utf8Text {
		s = decodeCP1252(t)
	}
	s = strings.TrimPrefix(s, "\uFEFF")
	trim := strings.TrimSpace(s)
	lower := strings.ToLower(trim[:min(len(trim), 512)])
	switch {
	case strings.HasPrefix(lower, "<!doctype html") || strings.HasPrefix(lower, "<html") ||
		strings.Contains(lower, "<head") || strings.Contains(lower, "<body"):
		return Detected{"text/html", "html"}
	case strings.HasPrefix(lower, "<svg") || strings.HasPrefix(lower, "<?xml") && strings.Contains(lower, "<svg"):
		return Detected{MediaType: "image/svg+xml"}
	case strings.HasPrefix(lower, "<?xml"):
		return Detected{MediaType: "application/xml"}
	case utf8Text && (strings.HasPrefix(trim, "{") || strings.HasPrefix(trim, "[")) && looksJSON(trim, int64(len(t)) >= size):
		return Detected{"application/json", "json"}
	}
	switch looksCSV(s) {
	case "\t":
		return Detected{"text/tab-separated-values", "tsv"}
	case ",", ";":
		return Detected{"text/csv", "csv"}
	}
	if looksMarkdown(s) {
		return Detected{"text/markdown", "markdown"}
	}
	return Detected{"text/plain", "text"}
}

// cp1252Text reports whether b, not valid UTF-8, reads as Windows-1252
// text: none of its bytes outside valid UTF-8 sequences is one of the five
// Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D), and it
// holds no control character but tab, line feed, form feed and carriage
// return.
func cp1252Text(b []byte) bool {
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r' || c == 0x7f {
				return false
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 && cp1252(c) == utf8.RuneError {
			return false
		}
		b = b[n:]
	}
	return true
}

// looksJSON: the head is valid JSON, or (when cut) decodes without a
// syntax error up to the cut.
func looksJSON(s string, whole bool) bool {
	if whole {
		return json.Valid([]byte(s))
	}
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		_, err := dec.Token()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return true
		}
		if err != nil {
			return strings.Contains(err.Error(), "unexpected EOF")
		}
	}
}

// looksCSV returns the separator (a comma, semicolon or tab, tried in that
// order) of which the first lines hold at least two, each with 1 to n of
// them where n is the first line's count, and a third of them at least the
// same count; or "".
func looksCSV(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 1 && !strings.HasSuffix(s, "\n") {
		lines = lines[:len(lines)-1] // maybe cut
	}
	if len(lines) < 2 {
		return ""
	}
	lines = lines[:min(len(lines), 50)]
	for _, sep := range []string{",", ";", "\t"} {
		n := strings.Count(lines[0], sep)
		if n == 0 {
			continue
		}
		ok, same := true, map[int]int{}
		mode := 0
		for _, l := range lines[1:] {
			c := strings.Count(l, sep)
			if c < 1 || c > n {
				ok = false
				break
			}
			same[c]++
			mode = max(mode, same[c])
		}
		if ok && mode*3 >= len(lines)-1 {
			return sep
		}
	}
	return ""
}

// looksMarkdown: ATX headings, fenced code or links in the first lines.
func looksMarkdown(s string) bool {
	score := 0
	for _, l := range strings.SplitN(s, "\n", 200) {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "# ") || strings.HasPrefix(t, "## ") || strings.HasPrefix(t, "### "):
			score += 2
		case strings.HasPrefix(t, "```"):
			score += 2
		case strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "* "):
			score++
		}
		if strings.Contains(t, "](") {
			score++
		}
	}
	return score >= 3
}

// DetectType sniffs the input's type from its content (not its name or
// declared type) and records detected_type, detected_format (the
// extract-text format, when there is one) and whether it agrees with the
// declared content type (detected_matches_declared).
func DetectType(env Env) error {
	in := env.Input()
	d := Detect(in.Content, in.Size)
	declared := strings.ToLower(strings.TrimSpace(strings.SplitN(in.ContentType, ";", 2)[0]))
	meta := []KV{{"detected_type", d.MediaType}, {"detected_matches_declared", declared == d.MediaType}}
	if d.Format != "" {
		meta = append(meta, KV{"detected_format", d.Format})
	}
	for _, kv := range meta {
		if err := env.SetMetadata(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}
