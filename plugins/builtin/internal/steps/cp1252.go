package steps

import (
	"io"
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
