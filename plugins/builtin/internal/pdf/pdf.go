package pdf

import (
	"bytes"
	"compress/lzw"
	"compress/zlib"
	"encoding/ascii85"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// Errors: ErrLimit for a size or work limit (a decompression bomb),
// ErrUnsupported for encrypted documents, ErrMalformed otherwise.
var (
	ErrLimit       = errors.New("pdf: limit")
	ErrUnsupported = errors.New("pdf: unsupported")
	ErrMalformed   = errors.New("pdf: malformed")
)

// Options bounds extraction; zero fields take the defaults.
type Options struct {
	// MaxText bounds the extracted text (default 48 MiB).
	MaxText int
	// MaxStream bounds one decoded stream (default 32 MiB).
	MaxStream int
	// MaxDecoded bounds all decoded streams together (default 512 MiB).
	MaxDecoded int64
	// MaxPages bounds the page count (default 100 000).
	MaxPages int
	// MaxPageOps bounds the content-stream objects (operators and their
	// operands) one page runs, its form XObjects' included (default
	// 4 000 000): no single page takes the whole budget.
	MaxPageOps int
	// MaxOps bounds the content-stream objects all pages run and the
	// glyphs they show, together (default 20 000 000).
	MaxOps int
	// MaxPageGlyphs bounds the glyphs one page shows (default 200 000),
	// which are held in memory until the page is laid out.
	MaxPageGlyphs int
}

func (o Options) withDefaults() Options {
	if o.MaxText <= 0 {
		o.MaxText = 48 << 20
	}
	if o.MaxStream <= 0 {
		o.MaxStream = 32 << 20
	}
	if o.MaxDecoded <= 0 {
		o.MaxDecoded = 512 << 20
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 100_000
	}
	if o.MaxPageOps <= 0 {
		o.MaxPageOps = 4_000_000
	}
	if o.MaxOps <= 0 {
		o.MaxOps = 20_000_000
	}
	if o.MaxPageGlyphs <= 0 {
		o.MaxPageGlyphs = 200_000
	}
	return o
}

type xrefEntry struct {
	off    int // file offset, or index in the object stream
	stm    int // object stream number, 0 if none
	inStm  bool
	exists bool
}

// document is a parsed PDF file.
type document struct {
	b       []byte
	opt     Options
	xref    map[int]xrefEntry
	trailer dict
	cache   map[int]any
	objstm  map[int]*objStream
	decoded int64
	ops     int // content-stream objects run, all pages
	fonts   map[ref]*font
}

type objStream struct {
	data []byte
	offs map[int]int // object number -> offset in data
}

var reStartxref = regexp.MustCompile(`startxref\s+(\d+)`)

func open(b []byte, opt Options) (*document, error) {
	if !bytes.Contains(b[:min(len(b), 1024)], []byte("%PDF-")) {
		return nil, fmt.Errorf("%w: no %%PDF- header", ErrMalformed)
	}
	d := &document{b: b, opt: opt.withDefaults(), xref: map[int]xrefEntry{}, cache: map[int]any{},
		objstm: map[int]*objStream{}, fonts: map[ref]*font{}}
	tail := b[max(0, len(b)-4096):]
	ok := false
	if m := reStartxref.FindAllSubmatch(tail, -1); len(m) > 0 {
		if off, err := strconv.Atoi(string(m[len(m)-1][1])); err == nil {
			ok = d.readXrefChain(off) == nil
		}
	}
	if !ok || d.trailer == nil || d.trailer["Root"] == nil {
		if err := d.reconstruct(); err != nil {
			return nil, err
		}
	}
	if d.trailer["Encrypt"] != nil {
		return nil, fmt.Errorf("%w: encrypted PDF", ErrUnsupported)
	}
	return d, nil
}

// readXrefChain reads the xref sections from off following /Prev.
func (d *document) readXrefChain(off int) error {
	seen := map[int]bool{}
	for off > 0 && !seen[off] && len(seen) < 1000 {
		seen[off] = true
		if off >= len(d.b) {
			return fmt.Errorf("%w: xref offset", ErrMalformed)
		}
		l := &lexer{b: d.b, pos: off}
		var tr dict
		var err error
		l.skipSpace()
		if bytes.HasPrefix(d.b[l.pos:], []byte("xref")) {
			tr, err = d.readXrefTable(l)
		} else {
			tr, err = d.readXrefStream(l)
		}
		if err != nil {
			return err
		}
		if d.trailer == nil {
			d.trailer = tr
		}
		if x, ok := tr["XRefStm"].(int); ok {
			if _, err := d.readXrefStream(&lexer{b: d.b, pos: x}); err != nil {
				return err
			}
		}
		prev, _ := tr["Prev"].(int)
		off = prev
	}
	return nil
}

func (d *document) readXrefTable(l *lexer) (dict, error) {
	l.pos += 4
	for {
		tok, err := l.token()
		if err != nil {
			return nil, err
		}
		if tok == keyword("trailer") {
			t, err := l.object(0)
			if err != nil {
				return nil, err
			}
			tr, ok := t.(dict)
			if !ok {
				return nil, fmt.Errorf("%w: trailer", ErrMalformed)
			}
			return tr, nil
		}
		start, ok := tok.(int)
		if !ok {
			return nil, fmt.Errorf("%w: xref table", ErrMalformed)
		}
		nt, _ := l.token()
		n, ok := nt.(int)
		if !ok || n < 0 || n > 10_000_000 {
			return nil, fmt.Errorf("%w: xref subsection", ErrMalformed)
		}
		for i := 0; i < n; i++ {
			a, _ := l.token()
			_, _ = l.token()
			kind, _ := l.token()
			off, _ := a.(int)
			num := start + i
			if _, done := d.xref[num]; done {
				continue // a newer section already set it
			}
			if kind == keyword("n") && off > 0 {
				d.xref[num] = xrefEntry{off: off, exists: true}
			} else {
				d.xref[num] = xrefEntry{}
			}
		}
	}
}

func (d *document) readXrefStream(l *lexer) (dict, error) {
	obj, err := d.indirectAt(l.pos, -1)
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*stream)
	if !ok {
		return nil, fmt.Errorf("%w: xref stream", ErrMalformed)
	}
	data, err := d.streamData(s)
	if err != nil {
		return nil, err
	}
	w, _ := s.d["W"].(array)
	if len(w) != 3 {
		return nil, fmt.Errorf("%w: xref stream /W", ErrMalformed)
	}
	var ws [3]int
	for i := range ws {
		ws[i], _ = w[i].(int)
		if ws[i] < 0 || ws[i] > 8 {
			return nil, fmt.Errorf("%w: xref stream /W", ErrMalformed)
		}
	}
	size, _ := s.d["Size"].(int)
	index := array{0, size}
	if ix, ok := s.d["Index"].(array); ok {
		index = ix
	}
	row := ws[0] + ws[1] + ws[2]
	if row == 0 {
		return nil, fmt.Errorf("%w: xref stream /W", ErrMalformed)
	}
	field := func(b []byte) int {
		v := 0
		for _, c := range b {
			v = v<<8 | int(c)
		}
		return v
	}
	pos := 0
	for i := 0; i+1 < len(index); i += 2 {
		start, _ := index[i].(int)
		n, _ := index[i+1].(int)
		for j := 0; j < n && pos+row <= len(data); j++ {
			r := data[pos : pos+row]
			pos += row
			typ := 1
			if ws[0] > 0 {
				typ = field(r[:ws[0]])
			}
			a, b := field(r[ws[0]:ws[0]+ws[1]]), field(r[ws[0]+ws[1]:])
			num := start + j
			if _, done := d.xref[num]; done {
				continue
			}
			switch typ {
			case 1:
				d.xref[num] = xrefEntry{off: a, exists: true}
			case 2:
				d.xref[num] = xrefEntry{stm: a, off: b, inStm: true, exists: true}
			default:
				d.xref[num] = xrefEntry{}
			}
		}
	}
	return s.d, nil
}

var reObj = regexp.MustCompile(`(?m)(\d+)\s+(\d+)\s+obj\b`)

// reconstruct rebuilds the xref by scanning for "N G obj" and finds the
// trailer (the last trailer dictionary, or the catalog).
func (d *document) reconstruct() error {
	d.xref = map[int]xrefEntry{}
	d.cache = map[int]any{}
	for _, m := range reObj.FindAllSubmatchIndex(d.b, -1) {
		num, err := strconv.Atoi(string(d.b[m[2]:m[3]]))
		if err != nil || num > 10_000_000 {
			continue
		}
		d.xref[num] = xrefEntry{off: m[0], exists: true}
	}
	d.trailer = nil
	if i := bytes.LastIndex(d.b, []byte("trailer")); i >= 0 {
		l := &lexer{b: d.b, pos: i + 7}
		if t, err := l.object(0); err == nil {
			if tr, ok := t.(dict); ok && tr["Root"] != nil {
				d.trailer = tr
			}
		}
	}
	if d.trailer == nil {
		// Object streams may hold objects too: index them, then look for
		// the catalog.
		for num, e := range d.xref {
			if obj, err := d.resolve(ref{num, 0}); err == nil {
				if s, ok := obj.(*stream); ok && s.d["Type"] == name("ObjStm") {
					if os, err := d.objStream(num); err == nil {
						for n := range os.offs {
							if _, ok := d.xref[n]; !ok {
								d.xref[n] = xrefEntry{stm: num, inStm: true, exists: true}
							}
						}
					}
				}
			}
			_ = e
		}
		for num := range d.xref {
			obj, err := d.resolve(ref{num, 0})
			if dd, ok := obj.(dict); err == nil && ok && dd["Type"] == name("Catalog") {
				d.trailer = dict{"Root": ref{num, 0}}
				break
			}
			if s, ok := obj.(*stream); err == nil && ok && s.d["Type"] == name("XRef") && s.d["Root"] != nil {
				d.trailer = s.d
				break
			}
		}
	}
	if d.trailer == nil {
		return fmt.Errorf("%w: no catalog found", ErrMalformed)
	}
	return nil
}

// indirectAt parses "N G obj ... endobj" at off; num (if >= 0) must match.
func (d *document) indirectAt(off, num int) (any, error) {
	l := &lexer{b: d.b, pos: off}
	n, _ := l.token()
	_, _ = l.token()
	kw, _ := l.token()
	if ni, ok := n.(int); !ok || kw != keyword("obj") || (num >= 0 && ni != num) {
		return nil, fmt.Errorf("%w: no object %d at offset %d", ErrMalformed, num, off)
	}
	obj, err := l.object(0)
	if err != nil {
		return nil, err
	}
	dd, ok := obj.(dict)
	if !ok {
		return obj, nil
	}
	l.skipSpace()
	if !bytes.HasPrefix(d.b[l.pos:], []byte("stream")) {
		return obj, nil
	}
	p := l.pos + 6
	if p < len(d.b) && d.b[p] == '\r' {
		p++
	}
	if p < len(d.b) && d.b[p] == '\n' {
		p++
	}
	return &stream{d: dd, off: p}, nil
}

// resolve follows references (bounded).
func (d *document) resolve(v any) (any, error) {
	for range 32 {
		r, ok := v.(ref)
		if !ok {
			return v, nil
		}
		if obj, ok := d.cache[r.num]; ok {
			v = obj
			continue
		}
		e := d.xref[r.num]
		if !e.exists {
			return nil, nil
		}
		var obj any
		var err error
		if e.inStm {
			obj, err = d.fromObjStream(e.stm, r.num)
		} else {
			obj, err = d.indirectAt(e.off, r.num)
		}
		if err != nil {
			return nil, err
		}
		d.cache[r.num] = obj
		if len(d.cache) > 2_000_000 {
			return nil, fmt.Errorf("%w: more than 2,000,000 objects", ErrLimit)
		}
		v = obj
	}
	return nil, fmt.Errorf("%w: reference chain too long", ErrMalformed)
}

// get resolves v and ignores errors (a broken object reads as null).
func (d *document) get(v any) any {
	o, _ := d.resolve(v)
	return o
}

func (d *document) dictOf(v any) dict {
	switch o := d.get(v).(type) {
	case dict:
		return o
	case *stream:
		return o.d
	}
	return nil
}

func (d *document) num(v any) float64 {
	switch o := d.get(v).(type) {
	case int:
		return float64(o)
	case float64:
		return o
	}
	return 0
}

func (d *document) objStream(num int) (*objStream, error) {
	if os, ok := d.objstm[num]; ok {
		if os == nil {
			return nil, fmt.Errorf("%w: object stream %d loops", ErrMalformed, num)
		}
		return os, nil
	}
	d.objstm[num] = nil
	obj, err := d.resolve(ref{num, 0})
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*stream)
	if !ok {
		return nil, fmt.Errorf("%w: object stream %d", ErrMalformed, num)
	}
	data, err := d.streamData(s)
	if err != nil {
		return nil, err
	}
	n, _ := s.d["N"].(int)
	first, _ := s.d["First"].(int)
	os := &objStream{data: data, offs: map[int]int{}}
	l := &lexer{b: data}
	for i := 0; i < n && i < 1_000_000; i++ {
		a, err1 := l.token()
		b, err2 := l.token()
		on, ok1 := a.(int)
		off, ok2 := b.(int)
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			break
		}
		os.offs[on] = first + off
	}
	d.objstm[num] = os
	return os, nil
}

func (d *document) fromObjStream(stm, num int) (any, error) {
	os, err := d.objStream(stm)
	if err != nil {
		return nil, err
	}
	off, ok := os.offs[num]
	if !ok || off < 0 || off >= len(os.data) {
		return nil, nil
	}
	l := &lexer{b: os.data, pos: off}
	return l.object(0)
}

// streamData returns the decoded data of s.
func (d *document) streamData(s *stream) ([]byte, error) {
	var raw []byte
	if s.raw != nil {
		raw = s.raw
	} else {
		n := int(d.num(s.d["Length"]))
		end := s.off + n
		if n <= 0 || end > len(d.b) || !bytes.Contains(d.b[end:min(len(d.b), end+32)], []byte("endstream")) {
			i := bytes.Index(d.b[s.off:], []byte("endstream"))
			if i < 0 {
				return nil, fmt.Errorf("%w: stream without endstream", ErrMalformed)
			}
			end = s.off + i
			for end > s.off && (d.b[end-1] == '\n' || d.b[end-1] == '\r') {
				end--
			}
		}
		raw = d.b[s.off:end]
	}
	filters := d.get(s.d["Filter"])
	parms := d.get(s.d["DecodeParms"])
	var fs []any
	var ps []any
	switch f := filters.(type) {
	case name:
		fs = []any{f}
		ps = []any{parms}
	case array:
		fs = f
		if pa, ok := parms.(array); ok {
			ps = pa
		}
	}
	data := raw
	for i, f := range fs {
		fn, _ := d.get(f).(name)
		var p dict
		if i < len(ps) {
			p = d.dictOf(ps[i])
		}
		var err error
		if data, err = d.decode(fn, data, p); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// decode applies one filter, bounded by MaxStream and MaxDecoded.
func (d *document) decode(f name, data []byte, p dict) ([]byte, error) {
	var r io.Reader
	switch f {
	case "FlateDecode", "Fl":
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: flate: %v", ErrMalformed, err)
		}
		r = zr
	case "LZWDecode", "LZW":
		early := 1
		if p != nil {
			if e, ok := p["EarlyChange"].(int); ok {
				early = e
			}
		}
		if early == 0 {
			r = lzw.NewReader(bytes.NewReader(data), lzw.MSB, 8)
		} else {
			r = newLZW(data)
		}
	case "ASCIIHexDecode", "AHx":
		l := &lexer{b: append(append([]byte{'<'}, data...), '>')}
		out, _ := l.hex()
		return d.count(out)
	case "ASCII85Decode", "A85":
		if i := bytes.Index(data, []byte("~>")); i >= 0 {
			data = data[:i]
		}
		r = ascii85.NewDecoder(bytes.NewReader(bytes.TrimPrefix(bytes.TrimSpace(data), []byte("<~"))))
	case "RunLengthDecode", "RL":
		return d.count(runLength(data, d.opt.MaxStream))
	default:
		// Image filters (DCT, JPX, CCITT, JBIG2) and Crypt: no text inside.
		return nil, fmt.Errorf("%w: filter %s", ErrUnsupported, f)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(d.opt.MaxStream)+1))
	if len(out) > d.opt.MaxStream {
		return nil, fmt.Errorf("%w: a stream decodes to more than %d bytes (a compression bomb?)", ErrLimit, d.opt.MaxStream)
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, f, err)
	}
	// A truncated stream keeps what decoded.
	out, err = d.count(out)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return predict(out, p)
	}
	return out, nil
}

func (d *document) count(out []byte) ([]byte, error) {
	if len(out) > d.opt.MaxStream {
		return nil, fmt.Errorf("%w: a stream decodes to more than %d bytes", ErrLimit, d.opt.MaxStream)
	}
	d.decoded += int64(len(out))
	if d.decoded > d.opt.MaxDecoded {
		return nil, fmt.Errorf("%w: streams decode to more than %d bytes in all", ErrLimit, d.opt.MaxDecoded)
	}
	return out, nil
}

func runLength(b []byte, max int) []byte {
	var out []byte
	for i := 0; i < len(b) && len(out) <= max; {
		n := int(b[i])
		i++
		switch {
		case n < 128:
			end := min(i+n+1, len(b))
			out = append(out, b[i:end]...)
			i = end
		case n > 128:
			if i < len(b) {
				out = append(out, bytes.Repeat(b[i:i+1], 257-n)...)
			}
			i++
		default:
			return out
		}
	}
	return out
}

// predict undoes PNG (and TIFF 2 for 8-bit) predictors.
func predict(data []byte, p dict) ([]byte, error) {
	pred, _ := p["Predictor"].(int)
	if pred < 2 {
		return data, nil
	}
	cols, _ := p["Columns"].(int)
	if cols <= 0 {
		cols = 1
	}
	colors, _ := p["Colors"].(int)
	if colors <= 0 {
		colors = 1
	}
	bpc, _ := p["BitsPerComponent"].(int)
	if bpc <= 0 {
		bpc = 8
	}
	bpp := max(1, colors*bpc/8)
	rowLen := (cols*colors*bpc + 7) / 8
	if rowLen <= 0 || rowLen > 1<<20 {
		return nil, fmt.Errorf("%w: predictor columns", ErrMalformed)
	}
	if pred == 2 {
		for r := 0; r+rowLen <= len(data); r += rowLen {
			for i := r + bpp; i < r+rowLen; i++ {
				data[i] += data[i-bpp]
			}
		}
		return data, nil
	}
	out := make([]byte, 0, len(data))
	prev := make([]byte, rowLen)
	for r := 0; r+1 <= len(data); r += rowLen + 1 {
		ft := data[r]
		end := min(r+1+rowLen, len(data))
		row := make([]byte, rowLen)
		copy(row, data[r+1:end])
		for i := range row {
			var a, b, c byte
			if i >= bpp {
				a = row[i-bpp]
				c = prev[i-bpp]
			}
			b = prev[i]
			switch ft {
			case 1:
				row[i] += a
			case 2:
				row[i] += b
			case 3:
				row[i] += byte((int(a) + int(b)) / 2)
			case 4:
				pa, pb, pc := abs(int(b)-int(c)), abs(int(a)-int(c)), abs(int(a)+int(b)-2*int(c))
				switch {
				case pa <= pb && pa <= pc:
					row[i] += a
				case pb <= pc:
					row[i] += b
				default:
					row[i] += c
				}
			}
		}
		out = append(out, row...)
		prev = row
	}
	return out, nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// lzwReader decodes PDF's LZW (early change 1).
func newLZW(data []byte) io.Reader {
	var out bytes.Buffer
	table := make([][]byte, 4096)
	for i := range 256 {
		table[i] = []byte{byte(i)}
	}
	next, width := 258, 9
	var bits, nbits uint32
	var prev []byte
	for _, c := range data {
		bits = bits<<8 | uint32(c)
		nbits += 8
		for nbits >= uint32(width) {
			code := int(bits >> (nbits - uint32(width)) & (1<<width - 1))
			nbits -= uint32(width)
			switch {
			case code == 256:
				next, width, prev = 258, 9, nil
				continue
			case code == 257:
				return &out
			}
			var entry []byte
			if code < next && table[code] != nil {
				entry = table[code]
			} else if code == next && prev != nil {
				entry = append(append([]byte{}, prev...), prev[0])
			} else {
				return &out
			}
			out.Write(entry)
			if out.Len() > 64<<20 {
				return &out
			}
			if prev != nil && next < 4096 {
				table[next] = append(append([]byte{}, prev...), entry[0])
				next++
			}
			prev = entry
			if next+1 >= 1<<width && width < 12 {
				width++
			}
		}
	}
	return &out
}
