package pdf

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
)

// font maps character codes to text and widths.
type font struct {
	codeLen  int               // bytes per code: 1 (simple fonts) or 2 (Type0), or from the CMap
	toUni    map[uint32]string // ToUnicode CMap
	enc      [256]string       // simple fonts: code -> text from the encoding
	widths   map[uint32]float64
	defWidth float64 // glyph space units (1/1000 em)
	scale    float64 // glyph space to text space (Type3: FontMatrix)
}

// glyph is one decoded character code.
type glyph struct {
	code  uint32
	text  string
	width float64 // text space units per unit font size
	space bool    // single-byte code 32 (word spacing applies)
}

func (f *font) decode(s []byte, out []glyph) []glyph {
	n := f.codeLen
	for i := 0; i < len(s); i += n {
		var code uint32
		for k := 0; k < n; k++ {
			code <<= 8
			if i+k < len(s) {
				code |= uint32(s[i+k])
			}
		}
		g := glyph{code: code, space: n == 1 && code == 32}
		if t, ok := f.toUni[code]; ok {
			g.text = t
		} else if n == 1 {
			g.text = f.enc[code]
		}
		w, ok := f.widths[code]
		if !ok {
			w = f.defWidth
		}
		g.width = w * f.scale
		out = append(out, g)
	}
	return out
}

// loadFont builds a font from its dictionary (cached by reference).
func (d *document) loadFont(v any) *font {
	r, isRef := v.(ref)
	if isRef {
		if f, ok := d.fonts[r]; ok {
			return f
		}
	}
	f := d.buildFont(d.dictOf(v))
	if isRef {
		d.fonts[r] = f
	}
	return f
}

func (d *document) buildFont(fd dict) *font {
	f := &font{codeLen: 1, widths: map[uint32]float64{}, defWidth: 500, scale: 0.001}
	if fd == nil {
		for i := range f.enc {
			f.enc[i] = string(rune(i))
		}
		return f
	}
	subtype, _ := d.get(fd["Subtype"]).(name)
	if s, ok := d.get(fd["ToUnicode"]).(*stream); ok {
		if data, err := d.streamData(s); err == nil {
			f.toUni, f.codeLen = parseCMap(data, f.codeLen)
		}
	}
	if subtype == "Type0" {
		f.codeLen = 2
		if enc, ok := d.get(fd["Encoding"]).(*stream); ok { // embedded CMap: its code space
			if data, err := d.streamData(enc); err == nil {
				if _, n := parseCMap(data, 0); n > 0 {
					f.codeLen = n
				}
			}
		}
		f.defWidth = 1000
		if desc, ok := d.get(fd["DescendantFonts"]).(array); ok && len(desc) > 0 {
			df := d.dictOf(desc[0])
			if dw := d.num(df["DW"]); dw > 0 {
				f.defWidth = dw
			}
			if w, ok := d.get(df["W"]).(array); ok {
				for i := 0; i < len(w); {
					first := int(d.num(w[i]))
					if i+1 < len(w) {
						if ws, ok := d.get(w[i+1]).(array); ok {
							for k, x := range ws {
								f.widths[uint32(first+k)] = d.num(x)
							}
							i += 2
							continue
						}
					}
					if i+2 < len(w) {
						last, wv := int(d.num(w[i+1])), d.num(w[i+2])
						for c := first; c <= last && c-first < 65536; c++ {
							f.widths[uint32(c)] = wv
						}
					}
					i += 3
				}
			}
		}
		if f.toUni == nil { // Identity: CIDs are often Unicode in simple cases
			f.toUni = map[uint32]string{}
		}
		return f
	}
	// Simple font: one byte per code, whatever the ToUnicode code space says.
	f.codeLen = 1
	first := int(d.num(fd["FirstChar"]))
	if ws, ok := d.get(fd["Widths"]).(array); ok {
		for i, w := range ws {
			f.widths[uint32(first+i)] = d.num(w)
		}
		if dflt := d.num(d.dictOf(fd["FontDescriptor"])["MissingWidth"]); dflt > 0 {
			f.defWidth = dflt
		}
	} else {
		f.widths = standardWidths(string(mustName(d.get(fd["BaseFont"]))))
	}
	if subtype == "Type3" {
		if m, ok := d.get(fd["FontMatrix"]).(array); ok && len(m) == 6 {
			f.scale = d.num(m[0])
		}
	}
	// Base encoding: the font's own (embedded Type1), else Standard; the
	// /Encoding name or dictionary overrides.
	base := standardEncoding
	desc := d.dictOf(fd["FontDescriptor"])
	if builtin := d.type1Encoding(desc); builtin != nil {
		base = builtin
	}
	if subtype == "TrueType" && desc != nil {
		if flags := int(d.num(desc["Flags"])); flags&4 != 0 && fd["Encoding"] == nil { // symbolic
			base = identityEncoding()
		}
	}
	switch e := d.get(fd["Encoding"]).(type) {
	case name:
		if t := namedEncoding(e); t != nil {
			base = t
		}
	case dict:
		if bn, ok := d.get(e["BaseEncoding"]).(name); ok {
			if t := namedEncoding(bn); t != nil {
				base = t
			}
		}
		f.enc = *base
		if diffs, ok := d.get(e["Differences"]).(array); ok {
			code := 0
			for _, x := range diffs {
				switch v := d.get(x).(type) {
				case int:
					code = v
				case name:
					if code >= 0 && code < 256 {
						f.enc[code] = glyphText(string(v))
					}
					code++
				}
			}
		}
		return f
	}
	f.enc = *base
	return f
}

func mustName(v any) name {
	n, _ := v.(name)
	return n
}

var reDup = regexp.MustCompile(`dup\s+(\d+)\s*/([^\s/\[\]{}()<>]+)\s+put`)

// type1Encoding reads the built-in encoding of an embedded Type 1 font
// program (its clear-text part), nil if none or StandardEncoding.
func (d *document) type1Encoding(desc dict) *[256]string {
	s, ok := d.get(desc["FontFile"]).(*stream)
	if !ok {
		return nil
	}
	data, err := d.streamData(s)
	if err != nil {
		return nil
	}
	clear := data
	if n := int(d.num(s.d["Length1"])); n > 0 && n < len(data) {
		clear = data[:n]
	}
	if i := bytes.Index(clear, []byte("eexec")); i >= 0 {
		clear = clear[:i]
	}
	i := bytes.Index(clear, []byte("/Encoding"))
	if i < 0 || bytes.HasPrefix(bytes.TrimSpace(clear[i+9:]), []byte("StandardEncoding")) {
		return nil
	}
	var enc [256]string
	for _, m := range reDup.FindAllSubmatch(clear[i:], -1) {
		if c, err := strconv.Atoi(string(m[1])); err == nil && c < 256 {
			enc[c] = glyphText(string(m[2]))
		}
	}
	return &enc
}

// parseCMap reads bfchar/bfrange mappings (and the code length from the
// code space ranges, or def if none).
func parseCMap(data []byte, def int) (map[uint32]string, int) {
	m := map[uint32]string{}
	codeLen := def
	l := &lexer{b: data}
	var stack []any
	mode := ""
	for n := 0; n < 1_000_000; n++ {
		tok, err := l.object(0)
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case keyword:
			switch t {
			case "begincodespacerange", "beginbfchar", "beginbfrange", "begincidrange", "begincidchar":
				mode = string(t)
				stack = stack[:0]
			case "endcodespacerange":
				if len(stack) >= 1 {
					if b, ok := stack[0].([]byte); ok && len(b) > 0 {
						codeLen = len(b)
					}
				}
				mode = ""
			case "endbfchar":
				for i := 0; i+1 < len(stack); i += 2 {
					src, _ := stack[i].([]byte)
					m[codeOf(src)] = unicodeOf(stack[i+1])
				}
				mode = ""
			case "endbfrange":
				for i := 0; i+2 < len(stack); i += 3 {
					lo, _ := stack[i].([]byte)
					hi, _ := stack[i+1].([]byte)
					a, b := codeOf(lo), codeOf(hi)
					if b < a || b-a > 65535 {
						continue
					}
					switch dst := stack[i+2].(type) {
					case []byte:
						base := []rune(unicodeOf(dst))
						if len(base) == 0 {
							continue
						}
						for c := a; c <= b; c++ {
							r := append([]rune{}, base...)
							r[len(r)-1] += rune(c - a)
							m[c] = string(r)
						}
					case array:
						for k, x := range dst {
							if uint32(k) > b-a {
								break
							}
							m[a+uint32(k)] = unicodeOf(x)
						}
					}
				}
				mode = ""
			default:
				if strings.HasPrefix(string(t), "end") {
					mode = ""
				}
			}
		default:
			if mode != "" {
				stack = append(stack, tok)
			}
		}
	}
	if len(m) == 0 {
		m = nil
	}
	return m, codeLen
}

func codeOf(b []byte) uint32 {
	var c uint32
	for _, x := range b {
		c = c<<8 | uint32(x)
	}
	return c
}

// unicodeOf decodes a CMap destination (UTF-16BE bytes).
func unicodeOf(v any) string {
	b, ok := v.([]byte)
	if !ok {
		if n, ok := v.(name); ok {
			return glyphText(string(n))
		}
		return ""
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	if len(b) == 1 {
		return string(rune(b[0]))
	}
	return string(utf16.Decode(u))
}

// glyphText maps a glyph name to its text (Adobe Glyph List subset,
// uniXXXX, uXXXX[XX], ligatures and suffixes).
func glyphText(n string) string {
	if i := strings.IndexByte(n, '.'); i > 0 {
		n = n[:i]
	}
	if strings.Contains(n, "_") {
		var b strings.Builder
		for _, part := range strings.Split(n, "_") {
			b.WriteString(glyphText(part))
		}
		return b.String()
	}
	if t, ok := glyphNames[n]; ok {
		return t
	}
	if len(n) == 1 {
		return n
	}
	if strings.HasPrefix(n, "uni") && len(n) >= 7 && (len(n)-3)%4 == 0 {
		var u []uint16
		for i := 3; i+4 <= len(n); i += 4 {
			v, err := strconv.ParseUint(n[i:i+4], 16, 16)
			if err != nil {
				return ""
			}
			u = append(u, uint16(v))
		}
		return string(utf16.Decode(u))
	}
	if strings.HasPrefix(n, "u") && len(n) >= 5 && len(n) <= 7 {
		if v, err := strconv.ParseUint(n[1:], 16, 32); err == nil {
			return string(rune(v))
		}
	}
	return ""
}
