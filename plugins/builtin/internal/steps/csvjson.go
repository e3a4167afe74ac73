package steps

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CSV limits.
const (
	// MaxCSVLine bounds one physical line of a CSV file: a 100 MB line is
	// refused after reading 1 MiB of it, whatever the memory limit.
	MaxCSVLine = 1 << 20
	// MaxJSONOutput bounds what csv-to-json and extract-text produce.
	MaxJSONOutput = 48 << 20
)

// csvInput is what encoding/csv reads: it fails with ErrLimit once a line
// exceeds max bytes, and follows the quoting as encoding/csv reads it
// (LazyQuotes) so that input ending inside a quoted field fails with
// ErrMalformed naming the line the field opens on. encoding/csv with
// LazyQuotes takes everything up to the end as that field, silently.
type csvInput struct {
	r        io.Reader
	max      int
	line     int    // bytes in the current line
	lineNo   int    // the current line, from 1
	comma    []byte // the delimiter's UTF-8 bytes
	state    csvState
	matched  int // bytes of comma matched (a delimiter of several bytes)
	openLine int // the line the open quoted field started on
}

type csvState uint8

const (
	csvFieldStart csvState = iota // at the start of a field (or a line)
	csvUnquoted                   // in a field that does not start with a quote
	csvQuoted                     // in a quoted field
	csvQuote                      // in a quoted field, after a quote
	csvQuoteCR                    // in a quoted field, after a quote and \r
	csvQuoteComma                 // in a quoted field, after a quote and part of a delimiter
)

func newCSVInput(r io.Reader, comma rune) *csvInput {
	return &csvInput{r: r, max: MaxCSVLine, lineNo: 1, comma: utf8.AppendRune(nil, comma)}
}

func (l *csvInput) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	b := p[:n]
	for off := 0; off < len(b); {
		seg := b[off:]
		nl := bytes.IndexByte(seg, '\n')
		if nl >= 0 {
			seg = seg[:nl]
		}
		if l.line+len(seg) > l.max {
			return off + l.max - l.line, Errorf(ErrLimit, "a line is longer than %d bytes", l.max)
		}
		l.scan(seg)
		if nl < 0 {
			l.line += len(seg)
			break
		}
		l.quoting('\n')
		l.line = 0
		l.lineNo++
		off += nl + 1
	}
	if err == io.EOF && l.state == csvQuoted {
		return n, Errorf(ErrMalformed, "csv: the quoted field opening on line %d is never closed (a \" is missing)", l.openLine)
	}
	return n, err
}

// scan moves the quoting state over b, part of a line without its line
// feed: with a delimiter of one byte, the common states skip to the byte
// that ends them (quoting does the same a byte at a time).
func (l *csvInput) scan(b []byte) {
	if len(l.comma) > 1 {
		for _, c := range b {
			l.quoting(c)
		}
		return
	}
	comma := l.comma[0]
	for i := 0; i < len(b); {
		switch l.state {
		case csvQuoted:
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				return
			}
			i += j + 1
			l.state = csvQuote
		case csvUnquoted:
			j := bytes.IndexByte(b[i:], comma)
			if j < 0 {
				return
			}
			i += j + 1
			l.state = csvFieldStart
		case csvFieldStart:
			if c := b[i]; c == '"' {
				l.state, l.openLine = csvQuoted, l.lineNo
			} else if c != comma {
				l.state = csvUnquoted
			}
			i++
		default:
			l.quoting(b[i])
			i++
		}
	}
}

// quoting moves the quoting state over c as encoding/csv reads it, with
// LazyQuotes: a field is quoted when it starts with a quote, a quote ends
// it when a delimiter or a line break (\r\n included) follows, two quotes
// are one, and any other quote in it is text.
func (l *csvInput) quoting(c byte) {
	comma := func() bool { return l.delimiter(c) }
	switch l.state {
	case csvFieldStart:
		switch {
		case c == '"':
			l.state, l.openLine = csvQuoted, l.lineNo
		case c == '\n':
		case comma():
		default:
			l.state = csvUnquoted
		}
	case csvUnquoted:
		if c == '\n' || comma() {
			l.state, l.matched = csvFieldStart, 0
		}
	case csvQuoted:
		if c == '"' {
			l.state = csvQuote
		}
	case csvQuote:
		switch {
		case c == '"':
			l.state = csvQuoted
		case c == '\n':
			l.state = csvFieldStart
		case c == '\r':
			l.state = csvQuoteCR
		case comma():
			l.state = csvFieldStart
		case l.matched > 0:
			l.state = csvQuoteComma
		default:
			l.state = csvQuoted // a quote that is text
		}
	case csvQuoteCR:
		if c == '\n' {
			l.state = csvFieldStart
			return
		}
		l.state = csvQuoted // the quote and the \r were text
		l.quoting(c)
	case csvQuoteComma:
		if c == l.comma[l.matched] {
			if l.matched++; l.matched == len(l.comma) {
				l.state, l.matched = csvFieldStart, 0
			}
			return
		}
		l.state, l.matched = csvQuoted, 0 // the quote was text
		l.quoting(c)
	}
}

// delimiter reports whether c completes a delimiter, following a
// delimiter of several bytes across calls (l.matched).
func (l *csvInput) delimiter(c byte) bool {
	if c == l.comma[l.matched] {
		l.matched++
	} else if c == l.comma[0] {
		l.matched = 1
	} else {
		l.matched = 0
	}
	if l.matched == len(l.comma) {
		l.matched = 0
		return true
	}
	return false
}

// newCSVReader reads delimiter-separated records with bounded lines,
// failing on a quoted field left open at the end.
func newCSVReader(r io.Reader, comma rune) *csv.Reader {
	cr := csv.NewReader(bufio.NewReaderSize(newCSVInput(r, comma), 64<<10))
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	return cr
}

// csvError maps encoding/csv errors to the step's kinds; the input's own
// (ErrLimit, ErrMalformed from csvInput) pass as they are.
func csvError(err error) error {
	if errors.Is(err, ErrLimit) || errors.Is(err, ErrMalformed) {
		return err // encoding/csv returns its reader's errors as they are
	}
	return Errorf(ErrMalformed, "csv: %v", err)
}

// delimiterParam reads the delimiter, def when none is given.
func delimiterParam(p *params, def string) rune {
	s := p.str("delimiter", def)
	if s == `\t` || s == "tab" {
		s = "\t"
	}
	r, n := utf8.DecodeRuneInString(s)
	if n != len(s) || n == 0 || r == 0 || r == '"' || r == '\n' || r == '\r' || r == utf8.RuneError {
		p.fail("delimiter", "%q: want one character other than NUL, a quote or a line break", s)
		return ','
	}
	return r
}

// CSVToJSON converts a CSV document into a JSON array: of objects keyed by
// the header row (header=true, the default), or of arrays.
func CSVToJSON(env Env) error {
	in := env.Input()
	// A document declared tab-separated is split on tabs by default.
	def := ","
	if formatOf(in.ContentType) == "tsv" {
		def = "\t"
	}
	comma, header, infer, err := csvParams(env, def)
	if err != nil {
		return err
	}
	// Read as extract-text reads CSV: bytes that are not UTF-8 as
	// Windows-1252.
	cr := newCSVReader(newCP1252Reader(in.Reader()), comma)
	var out bytes.Buffer
	out.WriteByte('[')
	var cols []string
	used := map[string]bool{}
	// name returns c, or c_N with the first N from 2 that no column has
	// taken: every key of an object is distinct.
	name := func(c string) string {
		n := c
		for i := 2; used[n]; i++ {
			n = c + "_" + strconv.Itoa(i)
		}
		used[n] = true
		return n
	}
	rows, width := 0, 0
	headerDone := false
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return csvError(err)
		}
		if header && !headerDone {
			headerDone = true
			cols = make([]string, len(rec))
			for i, c := range rec {
				c = strings.TrimPrefix(c, "\uFEFF")
				if c == "" {
					c = "column_" + strconv.Itoa(i+1)
				}
				cols[i] = name(c)
			}
			width = len(cols)
			continue
		}
		// A row wider than the header names its extra fields column_N
		// (N counts from 1), made distinct from the header's names.
		for header && len(cols) < len(rec) {
			cols = append(cols, name("column_"+strconv.Itoa(len(cols)+1)))
		}
		width = max(width, len(rec))
		if rows > 0 {
			out.WriteByte(',')
		}
		out.WriteByte('\n')
		if header {
			out.WriteByte('{')
			for i, v := range rec {
				if i > 0 {
					out.WriteByte(',')
				}
				writeJSONString(&out, cols[i])
				out.WriteByte(':')
				writeCSVValue(&out, v, infer)
			}
			out.WriteByte('}')
		} else {
			out.WriteByte('[')
			for i, v := range rec {
				if i > 0 {
					out.WriteByte(',')
				}
				writeCSVValue(&out, v, infer)
			}
			out.WriteByte(']')
		}
		rows++
		if out.Len() > MaxJSONOutput {
			return Errorf(ErrLimit, "JSON output exceeds %d bytes", MaxJSONOutput)
		}
	}
	out.WriteString("\n]\n")
	if err := env.Emit(derivedName(csvBase(in.Name), ".json"), "application/json", out.Bytes(),
		[]KV{{"csv_rows", rows}, {"csv_columns", width}}); err != nil {
		return err
	}
	if err := env.SetMetadata("csv_rows", rows); err != nil {
		return err
	}
	return env.SetMetadata("csv_columns", width)
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	b.Write(enc)
}

// writeCSVValue writes v as a JSON string, or with infer as a number,
// boolean or null when it reads as one.
func writeCSVValue(b *bytes.Buffer, v string, infer bool) {
	if infer {
		t := strings.TrimSpace(v)
		switch strings.ToLower(t) {
		case "true", "false":
			b.WriteString(strings.ToLower(t))
			return
		case "":
			b.WriteString("null")
			return
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil && json.Valid([]byte(t)) {
			_ = f
			b.WriteString(t)
			return
		}
	}
	writeJSONString(b, v)
}

// csvParams reads csv-to-json's parameters: the delimiter, whether the
// first row is a header and whether to infer types.
func csvParams(env Env, defDelimiter string) (comma rune, header, infer bool, err error) {
	p := params{env: env}
	comma = delimiterParam(&p, defDelimiter)
	header = p.boolean("header", true)
	infer = p.boolean("infer_types", false)
	return comma, header, infer, p.err
}

// csvBase is name without a trailing .csv or .tsv, in any case.
func csvBase(name string) string {
	if n := len(name) - 4; n > 0 {
		if ext := strings.ToLower(name[n:]); ext == ".csv" || ext == ".tsv" {
			return name[:n]
		}
	}
	return name
}
