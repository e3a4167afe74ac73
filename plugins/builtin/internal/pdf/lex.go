package pdf

import (
	"bytes"
	"fmt"
	"strconv"
)

// PDF object model.
type (
	name    string
	keyword string
	dict    map[name]any
	array   []any
	ref     struct{ num, gen int }
	// stream is a dictionary and the offset of its data in the file.
	stream struct {
		d   dict
		off int
		raw []byte // data held in memory (object streams' own content)
	}
)

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// lexer reads PDF tokens from b starting at pos.
type lexer struct {
	b   []byte
	pos int
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		if isSpace(c) {
			l.pos++
		} else if c == '%' {
			for l.pos < len(l.b) && l.b[l.pos] != '\n' && l.b[l.pos] != '\r' {
				l.pos++
			}
		} else {
			return
		}
	}
}

// errEOF is returned at the end of input.
var errEOF = fmt.Errorf("%w: unexpected end of data", ErrMalformed)

// token returns the next token: a number (float64 or int), name, []byte
// (string), keyword, or one of the delimiters "[", "]", "<<", ">>" as
// keyword.
func (l *lexer) token() (any, error) {
	l.skipSpace()
	if l.pos >= len(l.b) {
		return nil, errEOF
	}
	c := l.b[l.pos]
	switch {
	case c == '/':
		l.pos++
		start := l.pos
		for l.pos < len(l.b) && !isSpace(l.b[l.pos]) && !isDelim(l.b[l.pos]) {
			l.pos++
		}
		raw := l.b[start:l.pos]
		if bytes.IndexByte(raw, '#') < 0 {
			return name(raw), nil
		}
		var out []byte
		for i := 0; i < len(raw); i++ {
			if raw[i] == '#' && i+2 < len(raw) {
				if v, err := strconv.ParseUint(string(raw[i+1:i+3]), 16, 8); err == nil {
					out = append(out, byte(v))
					i += 2
					continue
				}
			}
			out = append(out, raw[i])
		}
		return name(out), nil
	case c == '(':
		return l.literal()
	case c == '<':
		if l.pos+1 < len(l.b) && l.b[l.pos+1] == '<' {
			l.pos += 2
			return keyword("<<"), nil
		}
		return l.hex()
	case c == '>':
		if l.pos+1 < len(l.b) && l.b[l.pos+1] == '>' {
			l.pos += 2
			return keyword(">>"), nil
		}
		l.pos++
		return keyword(">"), nil
	case c == '[' || c == ']' || c == '{' || c == '}':
		l.pos++
		return keyword(string(c)), nil
	case c == '+' || c == '-' || c == '.' || c >= '0' && c <= '9':
		start := l.pos
		l.pos++
		for l.pos < len(l.b) && (l.b[l.pos] >= '0' && l.b[l.pos] <= '9' || l.b[l.pos] == '.' || l.b[l.pos] == '-') {
			l.pos++
		}
		s := string(l.b[start:l.pos])
		if i, err := strconv.Atoi(s); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0.0, nil // malformed numbers read as 0, as viewers do
		}
		return f, nil
	}
	start := l.pos
	for l.pos < len(l.b) && !isSpace(l.b[l.pos]) && !isDelim(l.b[l.pos]) {
		l.pos++
	}
	if l.pos == start { // a stray delimiter such as ')'
		l.pos++
	}
	return keyword(l.b[start:l.pos]), nil
}

func (l *lexer) literal() ([]byte, error) {
	l.pos++ // (
	var out []byte
	depth := 1
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		l.pos++
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return out, nil
			}
		case '\\':
			if l.pos >= len(l.b) {
				return out, nil
			}
			e := l.b[l.pos]
			l.pos++
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if l.pos < len(l.b) && l.b[l.pos] == '\n' {
					l.pos++
				}
				continue
			case '\n':
				continue
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for k := 0; k < 2 && l.pos < len(l.b) && l.b[l.pos] >= '0' && l.b[l.pos] <= '7'; k++ {
						v = v*8 + int(l.b[l.pos]-'0')
						l.pos++
					}
					c = byte(v)
				} else {
					c = e
				}
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (l *lexer) hex() ([]byte, error) {
	l.pos++ // <
	var out []byte
	var hi byte
	odd := false
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		l.pos++
		if c == '>' {
			break
		}
		v, ok := unhex(c)
		if !ok {
			continue
		}
		if odd {
			out = append(out, hi<<4|v)
		} else {
			hi = v
		}
		odd = !odd
	}
	if odd {
		out = append(out, hi<<4)
	}
	return out, nil
}

// maxDepth bounds nesting of arrays and dictionaries.
const maxDepth = 64

// object parses one object; refs "n g R" are recognised. In content
// streams (ops=true) keywords are returned as such.
func (l *lexer) object(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: objects nested deeper than %d", ErrMalformed, maxDepth)
	}
	tok, err := l.token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case keyword:
		switch t {
		case "[":
			var a array
			for {
				l.skipSpace()
				if l.pos < len(l.b) && l.b[l.pos] == ']' {
					l.pos++
					return a, nil
				}
				if l.pos >= len(l.b) {
					return a, nil
				}
				v, err := l.object(depth + 1)
				if err != nil {
					return nil, err
				}
				if k, ok := v.(keyword); ok && (k == ">>" || k == "endobj") {
					return a, nil
				}
				a = append(a, v)
			}
		case "<<":
			d := dict{}
			for {
				k, err := l.token()
				if err != nil {
					return d, nil
				}
				if kw, ok := k.(keyword); ok && kw == ">>" {
					return d, nil
				}
				key, ok := k.(name)
				if !ok {
					if kw, ok := k.(keyword); ok && (kw == "endobj" || kw == "stream") {
						return d, nil
					}
					continue
				}
				v, err := l.object(depth + 1)
				if err != nil {
					return nil, err
				}
				if kw, ok := v.(keyword); ok && kw == ">>" {
					d[key] = nil
					return d, nil
				}
				d[key] = v
			}
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		return t, nil
	case int:
		// n g R ?
		save := l.pos
		if t >= 0 {
			if g, err := l.token(); err == nil {
				if gi, ok := g.(int); ok && gi >= 0 {
					if r, err := l.token(); err == nil && r == keyword("R") {
						return ref{t, gi}, nil
					}
				}
			}
		}
		l.pos = save
		return t, nil
	}
	return tok, nil
}
