package pdf

import "strings"

// glyphNames maps common glyph names to text: the Latin, punctuation,
// ligature, Greek and math names used by Type 1 fonts (TeX's included).
// Single-letter names map to themselves (see glyphText).
var glyphNames = func() map[string]string {
	m := map[string]string{}
	const table = `space:0020 exclam:0021 quotedbl:0022 numbersign:0023 dollar:0024 percent:0025 ampersand:0026
quotesingle:0027 quoteright:2019 parenleft:0028 parenright:0029 asterisk:002A plus:002B comma:002C hyphen:002D
period:002E slash:002F zero:0030 one:0031 two:0032 three:0033 four:0034 five:0035 six:0036 seven:0037 eight:0038
nine:0039 colon:003A semicolon:003B less:003C equal:003D greater:003E question:003F at:0040 bracketleft:005B
backslash:005C bracketright:005D asciicircum:005E underscore:005F grave:0060 quoteleft:2018 braceleft:007B bar:007C
braceright:007D asciitilde:007E exclamdown:00A1 cent:00A2 sterling:00A3 currency:00A4 yen:00A5 brokenbar:00A6
section:00A7 dieresis:00A8 copyright:00A9 ordfeminine:00AA guillemotleft:00AB logicalnot:00AC registered:00AE
macron:00AF degree:00B0 plusminus:00B1 twosuperior:00B2 threesuperior:00B3 acute:00B4 mu:00B5 paragraph:00B6
periodcentered:00B7 cedilla:00B8 onesuperior:00B9 ordmasculine:00BA guillemotright:00BB onequarter:00BC
onehalf:00BD threequarters:00BE questiondown:00BF Agrave:00C0 Aacute:00C1 Acircumflex:00C2 Atilde:00C3
Adieresis:00C4 Aring:00C5 AE:00C6 Ccedilla:00C7 Egrave:00C8 Eacute:00C9 Ecircumflex:00CA Edieresis:00CB
Igrave:00CC Iacute:00CD Icircumflex:00CE Idieresis:00CF Eth:00D0 Ntilde:00D1 Ograve:00D2 Oacute:00D3
Ocircumflex:00D4 Otilde:00D5 Odieresis:00D6 multiply:00D7 Oslash:00D8 Ugrave:00D9 Uacute:00DA Ucircumflex:00DB
Udieresis:00DC Yacute:00DD Thorn:00DE germandbls:00DF agrave:00E0 aacute:00E1 acircumflex:00E2 atilde:00E3
adieresis:00E4 aring:00E5 ae:00E6 ccedilla:00E7 egrave:00E8 eacute:00E9 ecircumflex:00EA edieresis:00EB
igrave:00EC iacute:00ED icircumflex:00EE idieresis:00EF eth:00F0 ntilde:00F1 ograve:00F2 oacute:00F3
ocircumflex:00F4 otilde:00F5 odieresis:00F6 divide:00F7 oslash:00F8 ugrave:00F9 uacute:00FA ucircumflex:00FB
udieresis:00FC yacute:00FD thorn:00FE ydieresis:00FF dotlessi:0131 Lslash:0141 lslash:0142 OE:0152 oe:0153
Scaron:0160 scaron:0161 Ydieresis:0178 Zcaron:017D zcaron:017E florin:0192 circumflex:02C6 caron:02C7
breve:02D8 dotaccent:02D9 ring:02DA ogonek:02DB tilde:02DC hungarumlaut:02DD endash:2013 emdash:2014
quotesinglbase:201A quotedblleft:201C quotedblright:201D quotedblbase:201E dagger:2020 daggerdbl:2021
bullet:2022 ellipsis:2026 perthousand:2030 guilsinglleft:2039 guilsinglright:203A fraction:2044 Euro:20AC
trademark:2122 minus:2212 fi:0066.0069 fl:0066.006C ff:0066.0066 ffi:0066.0066.0069 ffl:0066.0066.006C
dotlessj:0237 visiblespace:2423 Gamma:0393 Delta:0394 Theta:0398 Lambda:039B Xi:039E Pi:03A0 Sigma:03A3
Upsilon:03A5 Phi:03A6 Psi:03A8 Omega:03A9 alpha:03B1 beta:03B2 gamma:03B3 delta:03B4 epsilon:03B5 zeta:03B6
eta:03B7 theta:03B8 iota:03B9 kappa:03BA lambda:03BB nu:03BD xi:03BE omicron:03BF pi:03C0 rho:03C1 sigma:03C3
tau:03C4 upsilon:03C5 phi:03C6 chi:03C7 psi:03C8 omega:03C9 epsilon1:03F5 theta1:03D1 pi1:03D6 rho1:03F1
sigma1:03C2 phi1:03D5 arrowleft:2190 arrowup:2191 arrowright:2192 arrowdown:2193 arrowboth:2194
arrowdblleft:21D0 arrowdblright:21D2 arrowdblboth:21D4 universal:2200 existential:2203 emptyset:2205
gradient:2207 element:2208 notelement:2209 asteriskmath:2217 radical:221A proportional:221D infinity:221E
logicaland:2227 logicalor:2228 intersection:2229 union:222A integral:222B similar:223C approxequal:2248
notequal:2260 equivalence:2261 lessequal:2264 greaterequal:2265 propersubset:2282 propersuperset:2283
reflexsubset:2286 reflexsuperset:2287 circleplus:2295 circlemultiply:2297 perpendicular:22A5 dotmath:22C5
angleleft:27E8 angleright:27E9 summation:2211 product:220F partialdiff:2202 prime:2032 openbullet:25E6
nbspace:00A0 sfthyphen:00AD uniFB01:0066.0069 uniFB02:0066.006C quoteleftreversed:201B
`
	for _, f := range strings.Fields(table) {
		k, v, _ := strings.Cut(f, ":")
		var b strings.Builder
		for _, h := range strings.Split(v, ".") {
			r := rune(0)
			for _, c := range h {
				d, _ := unhex(byte(c))
				r = r<<4 | rune(d)
			}
			b.WriteRune(r)
		}
		m[k] = b.String()
	}
	// Names of digits and letters spelt out by some fonts.
	return m
}()

var standardEncoding = func() *[256]string {
	var e [256]string
	for c := 32; c < 127; c++ {
		e[c] = string(rune(c))
	}
	e[0x27], e[0x60] = "’", "‘"
	hi := map[int]string{0xa1: "exclamdown", 0xa2: "cent", 0xa3: "sterling", 0xa4: "fraction", 0xa5: "yen",
		0xa6: "florin", 0xa7: "section", 0xa8: "currency", 0xa9: "quotesingle", 0xaa: "quotedblleft",
		0xab: "guillemotleft", 0xac: "guilsinglleft", 0xad: "guilsinglright", 0xae: "fi", 0xaf: "fl",
		0xb1: "endash", 0xb2: "dagger", 0xb3: "daggerdbl", 0xb4: "periodcentered", 0xb6: "paragraph",
		0xb7: "bullet", 0xb8: "quotesinglbase", 0xb9: "quotedblbase", 0xba: "quotedblright",
		0xbb: "guillemotright", 0xbc: "ellipsis", 0xbd: "perthousand", 0xbf: "questiondown", 0xc1: "grave",
		0xc2: "acute", 0xc3: "circumflex", 0xc4: "tilde", 0xc5: "macron", 0xc6: "breve", 0xc7: "dotaccent",
		0xc8: "dieresis", 0xca: "ring", 0xcb: "cedilla", 0xcd: "hungarumlaut", 0xce: "ogonek", 0xcf: "caron",
		0xd0: "emdash", 0xe1: "AE", 0xe3: "ordfeminine", 0xe8: "Lslash", 0xe9: "Oslash", 0xea: "OE",
		0xeb: "ordmasculine", 0xf1: "ae", 0xf5: "dotlessi", 0xf8: "lslash", 0xf9: "oslash", 0xfa: "oe",
		0xfb: "germandbls"}
	for c, n := range hi {
		e[c] = glyphText(n)
	}
	return &e
}()

var winAnsiEncoding = func() *[256]string {
	var e [256]string
	const high = "€\x00‚ƒ„…†‡ˆ‰Š‹Œ\x00Ž\x00\x00‘’“”•–—˜™š›œ\x00žŸ"
	hr := []rune(high)
	for c := 32; c < 256; c++ {
		switch {
		case c >= 0x80 && c < 0xa0:
			if hr[c-0x80] != 0 {
				e[c] = string(hr[c-0x80])
			}
		case c == 0x7f:
		default:
			e[c] = string(rune(c))
		}
	}
	e[0xad] = "-"
	return &e
}()

var macRomanEncoding = func() *[256]string {
	var e [256]string
	for c := 32; c < 127; c++ {
		e[c] = string(rune(c))
	}
	const high = "ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø¿¡¬√ƒ≈∆«»… ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\uF8FFÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ"
	for i, r := range []rune(high) {
		if 0x80+i < 256 {
			e[0x80+i] = string(r)
		}
	}
	e[0xde], e[0xdf] = "fi", "fl"
	return &e
}()

func identityEncoding() *[256]string {
	var e [256]string
	for c := 32; c < 256; c++ {
		e[c] = string(rune(c))
	}
	return &e
}

func namedEncoding(n name) *[256]string {
	switch n {
	case "WinAnsiEncoding":
		return winAnsiEncoding
	case "MacRomanEncoding":
		return macRomanEncoding
	case "StandardEncoding":
		return standardEncoding
	}
	return nil
}

// standardWidths approximates the widths of the standard 14 fonts when a
// font dictionary gives none: monospaced 600, others by a coarse class.
func standardWidths(base string) map[uint32]float64 {
	w := map[uint32]float64{}
	mono := strings.Contains(base, "Courier")
	for c := uint32(32); c < 256; c++ {
		switch {
		case mono:
			w[c] = 600
		case c == ' ':
			w[c] = 250
		case c >= 'A' && c <= 'Z':
			w[c] = 667
		case c == 'i' || c == 'l' || c == 'j' || c == 't' || c == 'f' || c == '.' || c == ',':
			w[c] = 278
		case c == 'm' || c == 'w':
			w[c] = 833
		default:
			w[c] = 500
		}
	}
	return w
}
