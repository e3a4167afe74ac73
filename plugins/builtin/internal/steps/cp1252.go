package steps

import (
	"bufio"
	"bytes"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// cp1252Reader passes UTF-8 through and reads each byte that is not part
// of a valid UTF-8 sequence as Windows-1252, as decodeText does, for the
// streamed formats (HTML, CSV, TSV): what it returns is valid UTF-8.
type cp1252Reader struct {
	r   io.Reader
	in  []byte // read, not yet decoded (at most an incomplete sequence between reads)
	out []byte // decoded; out[off:] not yet returned
	off int
	err error
	buf [32 << 10]byte
}

func newCP1252Reader(r io.Reader) *cp1252Reader { return &cp1252Reader{r: r} }

func (d *cp1252Reader) Read(p []byte) (int, error) {
	if d.off == len(d.out) {
		d.out, d.off = d.out[:0], 0
	}
	for len(d.out) == 0 {
		if d.err != nil && len(d.in) == 0 {
			return 0, d.err
		}
		if d.err == nil {
			n, err := d.r.Read(d.buf[:])
			d.in = append(d.in, d.buf[:n]...)
			d.err = err
		}
		i := 0
		// Most text is UTF-8: a valid chunk (but for an incomplete
		// sequence at its end, which waits for the next read) is passed
		// through whole.
		cut := len(d.in)
		if d.err == nil {
			for k := 1; k <= 3 && k <= len(d.in); k++ {
				if utf8.RuneStart(d.in[len(d.in)-k]) {
					if !utf8.FullRune(d.in[len(d.in)-k:]) {
						cut = len(d.in) - k
					}
					break
				}
			}
		}
		if utf8.Valid(d.in[:cut]) {
			d.out = append(d.out, d.in[:cut]...)
			i = cut
		}
		for i < len(d.in) {
			c := d.in[i]
			if c < utf8.RuneSelf {
				d.out = append(d.out, c)
				i++
				continue
			}
			if d.err == nil && !utf8.FullRune(d.in[i:]) {
				break // the rest of the sequence comes with the next read
			}
			r, n := utf8.DecodeRune(d.in[i:])
			if r == utf8.RuneError && n == 1 {
				d.out = utf8.AppendRune(d.out, cp1252(c))
			} else {
				d.out = append(d.out, d.in[i:i+n]...)
			}
			i += n
		}
		d.in = append(d.in[:0], d.in[i:]...)
	}
	n := copy(p, d.out[d.off:])
	d.off += n
	return n, nil
}

// newTextReader reads r as extract-text reads plain text (decodeText),
// streaming: a UTF-8 byte order mark is dropped, UTF-16 with a byte order
// mark converted, and bytes that are not UTF-8 read as Windows-1252. What
// it returns is valid UTF-8.
func newTextReader(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(head, []byte("\xef\xbb\xbf")):
		br.Discard(3)
	case bytes.HasPrefix(head, []byte("\xff\xfe")), bytes.HasPrefix(head, []byte("\xfe\xff")):
		br.Discard(2)
		return &utf16Reader{r: br, be: head[0] == 0xfe}
	}
	return newCP1252Reader(br)
}

// utf16Reader converts UTF-16 (without its byte order mark) to UTF-8, as
// decodeText does: an unpaired surrogate becomes U+FFFD, an odd last byte
// is dropped.
type utf16Reader struct {
	r    io.Reader
	be   bool
	in   []byte // read, not yet decoded: at most one byte of a unit
	high rune   // a high surrogate waiting for its pair, or 0
	out  []byte
	off  int
	err  error
	buf  [32 << 10]byte
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	if u.off == len(u.out) {
		u.out, u.off = u.out[:0], 0
	}
	for len(u.out) == 0 {
		if u.err != nil {
			if u.high != 0 {
				u.out, u.high = utf8.AppendRune(u.out, utf8.RuneError), 0
				break
			}
			return 0, u.err
		}
		n, err := u.r.Read(u.buf[:])
		u.in = append(u.in, u.buf[:n]...)
		u.err = err
		i := 0
		for ; i+1 < len(u.in); i += 2 {
			var c rune
			if u.be {
				c = rune(u.in[i])<<8 | rune(u.in[i+1])
			} else {
				c = rune(u.in[i+1])<<8 | rune(u.in[i])
			}
			switch {
			case u.high != 0 && c >= 0xdc00 && c < 0xe000:
				u.out = utf8.AppendRune(u.out, utf16.DecodeRune(u.high, c))
				u.high = 0
				continue
			case u.high != 0:
				u.out = utf8.AppendRune(u.out, utf8.RuneError)
				u.high = 0
			}
			switch {
			case c >= 0xd800 && c < 0xdc00:
				u.high = c
			case c >= 0xdc00 && c < 0xe000:
				u.out = utf8.AppendRune(u.out, utf8.RuneError)
			default:
				u.out = utf8.AppendRune(u.out, c)
			}
		}
		u.in = append(u.in[:0], u.in[i:]...)
	}
	n := copy(p, u.out[u.off:])
	u.off += n
	return n, nil
}
