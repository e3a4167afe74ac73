package main

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// writef writes one piece of human output: format lays the text out (its
// own tabs separate columns, its own newlines end lines), and every string
// (of any string type), error, fmt.Stringer or []string argument goes
// through escape, so a value
// (a name, an id, an audit target, a plugin's log line) prints in its
// column, on its line, and cannot move the cursor or recolour the terminal.
// Every human-readable line docex prints goes through writef (or escape).
func writef(w io.Writer, format string, args ...any) {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = escape(v)
		case error:
			args[i] = escape(v.Error())
		case fmt.Stringer:
			args[i] = escape(v.String())
		case []string:
			out := make([]string, len(v))
			for j, s := range v {
				out[j] = escape(s)
			}
			args[i] = out
		default:
			if rv := reflect.ValueOf(a); rv.Kind() == reflect.String { // named string types
				args[i] = escape(rv.String())
			}
		}
	}
	fmt.Fprintf(w, format, args...)
}

// escape returns s with what a terminal or a line-oriented reader would
// act on written as Go escapes: control characters (C0, tab and newline
// included, DEL, C1), the Unicode line and paragraph separators, the
// bidirectional embeddings, overrides and isolates (U+202A-U+202E,
// U+2066-U+2069), and invalid UTF-8 (\xNN). Everything else is unchanged.
func escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case dangerous(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			return !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || dangerous(r) }) >= 0
		}
	}
	return false
}

// dangerous reports the non-ASCII runes escape writes as \u escapes.
func dangerous(r rune) bool {
	return r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// terminalWriter is the last line of defence under human output: it writes
// control characters other than the layout's tabs and newlines as \xNN, so
// text that reached the output without writef cannot drive a terminal
// either. It buffers; Flush writes the rest.
type terminalWriter struct{ w *bufio.Writer }

func newTerminalWriter(w io.Writer) *terminalWriter {
	return &terminalWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (t *terminalWriter) Write(p []byte) (int, error) {
	start := 0
	for i, c := range p {
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			t.w.Write(p[start:i])
			fmt.Fprintf(t.w, `\x%02x`, c)
			start = i + 1
		}
	}
	if _, err := t.w.Write(p[start:]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (t *terminalWriter) Flush() error { return t.w.Flush() }
