package pdf

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text is the result of Extract.
type Text struct {
	Text  string
	Pages int
}

// Extract returns the text of a PDF file: pages in order, separated by form
// feeds; on each page the text in content order, with line breaks where
// the baseline moves and spaces where glyphs are set apart. It returns
// errors wrapping ErrLimit, ErrUnsupported or ErrMalformed.
func Extract(b []byte, opt Options) (t *Text, err error) {
	defer func() { // a parser bug must end in a clean error, not a crash
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	d, err := open(b, opt)
	if err != nil {
		return nil, err
	}
	pages, err := d.pages()
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	for i, p := range pages {
		if i > 0 {
			out.WriteByte('\f')
		}
		if err := d.pageText(i+1, p, &out); err != nil {
			return nil, err
		}
		if out.Len() > d.opt.MaxText {
			return nil, fmt.Errorf("%w: text exceeds %d bytes", ErrLimit, d.opt.MaxText)
		}
	}
	return &Text{Text: out.String(), Pages: len(pages)}, nil
}

type page struct {
	d         dict
	resources dict
}

// pages walks the page tree (cycles and depth bounded).
func (d *document) pages() ([]page, error) {
	root := d.dictOf(d.trailer["Root"])
	if root == nil {
		return nil, fmt.Errorf("%w: no catalog", ErrMalformed)
	}
	var out []page
	seen := map[any]bool{}
	var walk func(v any, res dict, depth int) error
	walk = func(v any, res dict, depth int) error {
		if depth > 64 {
			return fmt.Errorf("%w: page tree deeper than 64", ErrMalformed)
		}
		if r, ok := v.(ref); ok {
			if seen[r] {
				return nil
			}
			seen[r] = true
		}
		n := d.dictOf(v)
		if n == nil {
			return nil
		}
		if r := d.dictOf(n["Resources"]); r != nil {
			res = r
		}
		kids, isTree := d.get(n["Kids"]).(array)
		if typ, _ := d.get(n["Type"]).(name); typ == "Page" || !isTree {
			out = append(out, page{n, res})
			if len(out) > d.opt.MaxPages {
				return fmt.Errorf("%w: more than %d pages", ErrLimit, d.opt.MaxPages)
			}
			return nil
		}
		for _, k := range kids {
			if err := walk(k, res, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root["Pages"], nil, 0)
}

type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

// placed is a glyph placed on the page.
type placed struct {
	text       string
	code       uint32
	x, y, endX float64 // baseline start and end in device space
	size       float64 // effective font size
	space      bool
}

type gstate struct {
	ctm                            matrix
	font                           *font
	fontSize, tc, tw, th, tl, rise float64
}

// interp runs a page's content streams, collecting placed glyphs.
type interp struct {
	d      *document
	page   int // from 1
	glyphs []placed
	ops    int // content-stream objects run on the page
	forms  int
}

const maxFormDepth = 12

func (d *document) pageText(n int, p page, out *strings.Builder) error {
	in := &interp{d: d, page: n}
	var data []byte
	switch c := d.get(p.d["Contents"]).(type) {
	case *stream:
		b, err := d.streamData(c)
		if err != nil {
			return err
		}
		data = b
	case array:
		for _, s := range c {
			if st, ok := d.get(s).(*stream); ok {
				b, err := d.streamData(st)
				if err != nil {
					return err
				}
				data = append(append(data, b...), '\n')
				if len(data) > d.opt.MaxStream {
					return fmt.Errorf("%w: page content exceeds %d bytes", ErrLimit, d.opt.MaxStream)
				}
			}
		}
	}
	st := gstate{ctm: identity, th: 1}
	if err := in.run(data, p.resources, st, 0); err != nil {
		return err
	}
	layout(in.glyphs, out)
	return nil
}

func (in *interp) run(data []byte, res dict, gs gstate, depth int) error {
	d := in.d
	l := &lexer{b: data}
	var args []any
	var stack []gstate
	var tm, tlm matrix
	fonts := d.dictOf(res["Font"])
	xobjs := d.dictOf(res["XObject"])
	tooMany := false // more than MaxPageGlyphs glyphs
	show := func(s []byte) {
		if gs.font == nil {
			gs.font = d.loadFont(nil)
		}
		n := gs.font.codeLen
		k := (len(s) + n - 1) / n // glyphs in s
		if len(in.glyphs)+k > d.opt.MaxPageGlyphs {
			tooMany = true // checked before decoding: a string may hold millions
			return
		}
		d.ops += k // a glyph is work too: the file's budget counts it
		var buf [64]glyph
		for _, g := range gs.font.decode(s, buf[:0]) {
			trm := (matrix{gs.fontSize * gs.th, 0, 0, gs.fontSize, 0, gs.rise}).mul(tm).mul(gs.ctm)
			adv := (g.width*gs.fontSize + gs.tc) * gs.th
			if g.space {
				adv += gs.tw * gs.th
			}
			size := math.Hypot(trm[2], trm[3])
			// The glyph ends at its own width: character and word spacing
			// are gaps (Ghostscript spaces words with Tc).
			end := (matrix{1, 0, 0, 1, g.width * gs.fontSize * gs.th, 0}).mul(tm).mul(gs.ctm)
			endX := end[4] + gs.rise*end[2]
			in.glyphs = append(in.glyphs, placed{code: g.code, text: g.text, x: trm[4], y: trm[5], endX: endX, size: size, space: g.text == " "})
			tm = (matrix{1, 0, 0, 1, adv, 0}).mul(tm)
		}
	}
	for {
		obj, err := l.object(0)
		if err != nil {
			return nil // end of stream (or garbage at its end)
		}
		in.ops++
		d.ops++
		if in.ops > d.opt.MaxPageOps {
			return fmt.Errorf("%w: page %d runs more than %d content-stream objects (operators and operands)", ErrLimit, in.page, d.opt.MaxPageOps)
		}
		if d.ops > d.opt.MaxOps {
			return in.fileLimit()
		}
		op, isOp := obj.(keyword)
		if !isOp {
			if len(args) < 64 {
				args = append(args, obj)
			}
			continue
		}
		num := func(i int) float64 {
			if i < len(args) {
				return d.num(args[i])
			}
			return 0
		}
		switch op {
		case "q":
			if len(stack) < 256 {
				stack = append(stack, gs)
			}
		case "Q":
			if n := len(stack); n > 0 {
				gs, stack = stack[n-1], stack[:n-1]
			}
		case "cm":
			if len(args) == 6 {
				gs.ctm = matrix{num(0), num(1), num(2), num(3), num(4), num(5)}.mul(gs.ctm)
			}
		case "BT":
			tm, tlm = identity, identity
		case "Tf":
			if len(args) == 2 {
				if fn, ok := args[0].(name); ok && fonts != nil {
					gs.font = d.loadFont(fonts[fn])
				}
				gs.fontSize = num(1)
			}
		case "Tc":
			gs.tc = num(0)
		case "Tw":
			gs.tw = num(0)
		case "Tz":
			gs.th = num(0) / 100
		case "TL":
			gs.tl = num(0)
		case "Ts":
			gs.rise = num(0)
		case "Td":
			tlm = (matrix{1, 0, 0, 1, num(0), num(1)}).mul(tlm)
			tm = tlm
		case "TD":
			gs.tl = -num(1)
			tlm = (matrix{1, 0, 0, 1, num(0), num(1)}).mul(tlm)
			tm = tlm
		case "Tm":
			if len(args) == 6 {
				tlm = matrix{num(0), num(1), num(2), num(3), num(4), num(5)}
				tm = tlm
			}
		case "T*":
			tlm = (matrix{1, 0, 0, 1, 0, -gs.tl}).mul(tlm)
			tm = tlm
		case "Tj":
			if len(args) == 1 {
				if s, ok := args[0].([]byte); ok {
					show(s)
				}
			}
		case "'", "\"":
			if op == "\"" && len(args) == 3 {
				gs.tw, gs.tc = num(0), num(1)
			}
			tlm = (matrix{1, 0, 0, 1, 0, -gs.tl}).mul(tlm)
			tm = tlm
			if len(args) > 0 {
				if s, ok := args[len(args)-1].([]byte); ok {
					show(s)
				}
			}
		case "TJ":
			if len(args) == 1 {
				if a, ok := args[0].(array); ok {
					for _, x := range a {
						switch v := x.(type) {
						case []byte:
							show(v)
						case int, float64:
							adj := -d.num(v) / 1000 * gs.fontSize * gs.th
							tm = (matrix{1, 0, 0, 1, adj, 0}).mul(tm)
						}
					}
				}
			}
		case "Do":
			if len(args) == 1 && depth < maxFormDepth && xobjs != nil {
				if xn, ok := args[0].(name); ok {
					if xs, ok := d.get(xobjs[xn]).(*stream); ok && d.get(xs.d["Subtype"]) == name("Form") {
						in.forms++
						if in.forms > 10_000 {
							return fmt.Errorf("%w: more than 10000 form XObjects on a page", ErrLimit)
						}
						data, err := d.streamData(xs)
						if err == nil {
							fgs := gs
							if m, ok := d.get(xs.d["Matrix"]).(array); ok && len(m) == 6 {
								fgs.ctm = matrix{d.num(m[0]), d.num(m[1]), d.num(m[2]), d.num(m[3]), d.num(m[4]), d.num(m[5])}.mul(gs.ctm)
							}
							fres := d.dictOf(xs.d["Resources"])
							if fres == nil {
								fres = res
							}
							if err := in.run(data, fres, fgs, depth+1); err != nil {
								return err
							}
						} else if isLimit(err) {
							return err
						}
					}
				}
			}
		case "BI":
			// Inline image: skip its data up to "EI".
			for l.pos < len(l.b) {
				if l.b[l.pos] == 'I' && l.pos > 0 && l.b[l.pos-1] == 'D' && l.pos+1 < len(l.b) && isSpace(l.b[l.pos+1]) {
					break
				}
				l.pos++
			}
			for l.pos+2 < len(l.b) {
				if l.b[l.pos] == 'E' && l.b[l.pos+1] == 'I' && isSpace(l.b[l.pos-1]) && (l.pos+2 >= len(l.b) || isSpace(l.b[l.pos+2])) {
					l.pos += 2
					break
				}
				l.pos++
			}
		}
		if tooMany {
			return fmt.Errorf("%w: page %d shows more than %d glyphs", ErrLimit, in.page, d.opt.MaxPageGlyphs)
		}
		if d.ops > d.opt.MaxOps {
			return in.fileLimit()
		}
		args = args[:0]
	}
}

// fileLimit is the error for a file past Options.MaxOps.
func (in *interp) fileLimit() error {
	return fmt.Errorf("%w: the pages run more than %d content-stream objects and glyphs in all, past it on page %d", ErrLimit, in.d.opt.MaxOps, in.page)
}

func isLimit(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), ErrLimit.Error())
}

// layout turns placed glyphs (in content order) into lines of words: a new
// line when the baseline moves by more than half the font size, a space
// when the gap between glyphs exceeds 0.15 of it (or the text goes back).
func layout(gl []placed, out *strings.Builder) {
	var prev *placed
	lastSpace := true
	for i := range gl {
		g := &gl[i]
		if g.text == "" {
			continue
		}
		if prev != nil {
			size := math.Max(math.Max(g.size, prev.size), 1)
			dy := math.Abs(g.y - prev.y)
			gap := g.x - prev.endX
			switch {
			case dy > size*0.5:
				out.WriteByte('\n')
				lastSpace = true
			case gap > size*0.15 || gap < -size*1.5:
				if !lastSpace && !g.space {
					out.WriteByte(' ')
					lastSpace = true
				}
			}
		}
		t := g.text
		for _, r := range t {
			if r < 0x20 || r == 0xFFFD || unicode.Is(unicode.Co, r) {
				t = strings.Map(func(r rune) rune {
					if r < 0x20 || r == 0xFFFD || unicode.Is(unicode.Co, r) {
						return -1
					}
					return r
				}, t)
				break
			}
		}
		if t == "" {
			continue
		}
		if g.space || t == " " {
			if !lastSpace {
				out.WriteByte(' ')
				lastSpace = true
			}
		} else {
			out.WriteString(t)
			r, _ := utf8.DecodeLastRuneInString(t)
			lastSpace = unicode.IsSpace(r)
		}
		prev = g
	}
	out.WriteByte('\n')
}
