package steps

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxRedactInput is the largest text redact-pii reads (it is read whole).
const MaxRedactInput = 64 << 20

// PIIKinds are the built-in detectors, in reporting order.
var PIIKinds = []string{"email", "phone", "card", "iban", "ipv4", "ipv6", "ssn"}

// rePhone's alternatives, in its order: international (+ or 00),
// national (0), a parenthesised area code, North American, Spanish. Each
// but the national starts with what the others may not (phoneAt).
const (
	phoneIntl     = `(?:\+\d{1,3}|\b00[1-9]\d{0,2})[ .-]?(?:\(\d{1,4}\)[ .-]?)?(?:\d[ .-])?\d{2,8}(?:[ .-]\d{2,8}){0,4}`
	phoneNational = `\b0(?:\d{1,4}[ ./-]\d{3,8}(?:[ .-]\d{2,8}){0,3}|\d{1,3}(?:[ .-]\d{2,4}){1,4})`
	phoneArea     = `\(\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,4}`
	phoneNANP     = `\b(?:1[ .-])?\d{3}[ .-]\d{3}[ .-]\d{4}\b`
	phoneSpanish  = `\b(?:[6-9]\d\d (?:\d{3} \d{3}|\d\d \d\d \d\d)|[89]\d \d{3} \d\d \d\d)\b`
	// phoneMaxLen is the length of rePhone's longest match (+999,
	// a separator, (9999) and one, a digit and one, 8 digits, 4 times
	// a separator and 8 digits: TestMaxMatchLen).
	phoneMaxLen = 59
)

var (
	reEmail = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,}`)
	// Phone numbers, 9-15 digits (checked after matching, without an
	// international prefix 00 or a trunk "(0)": phoneDigits): a +country
	// code (or 00 and a country code, which never starts with 0), an
	// optional parenthesised group ("(0)"), an optional one-digit group,
	// then groups of 2-8 digits separated by single spaces, dots or
	// dashes; or a national number: a 0 and 1-4 digits, a space, dot,
	// dash or slash, then groups of 3-8 and 2-8 digits (030 12345678,
	// 06-12345678), or two to five groups of 2-4 digits, the first
	// starting with 0 (01 23 45 67 89); or a parenthesised area code then
	// two to five groups of 2-4 digits ((555) 123-4567); or, without any
	// of those, only the North American 3-3-4 digits after an optional 1
	// (555-123-4567, 1-800-555-1234), or a Spanish national number: nine
	// digits, the first 6 to 9, in groups of 3-3-3 or 3-2-2-2, or 2-3-2-2
	// after 8 or 9, separated by single spaces (612 345 678, 91 123 45 67;
	// spanishForm, numberAlone): other groupings are identifiers
	// (2024-0001-17) or figures (2019 2020 2021).
	rePhone = regexp.MustCompile(phoneIntl + "|" + phoneNational + "|" + phoneArea + "|" + phoneNANP + "|" + phoneSpanish)
	// UPS tracking numbers: 1Z and 16 capital letters and digits, single
	// spaces allowed between them (1Z 999 AA1 01 2345 6784); the digit
	// groups inside one are no phone number.
	reUPS = regexp.MustCompile(`\b1Z(?: ?[0-9A-Z]){16}\b`)
	// A US Social Security number's shape, 3, 2 and 4 digits joined by
	// dashes, at the start of a phone match: none of the phone forms.
	reSSNShape = regexp.MustCompile(`^\d{3}-\d{2}-\d{4}\b`)
	// US Social Security numbers: 3, 2 and 4 digits joined by dashes
	// (validSSN checks the SSA's rules; numberSpan the surroundings).
	// Groups separated by spaces are left out: in text they are as often
	// figures ("830 98 2240"), and only dashes make an SSN's form.
	reSSN  = regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`)
	reCard = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	reIBAN = regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b`)
	reIPv4 = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	reIPv6 = regexp.MustCompile(`(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:%[0-9a-z]+)?`)
)

// A detector is a built-in regular expression with what its matches are
// made of, so that findAll runs it only where a match can be: bytes of in,
// at least min of them, and at least n bytes of the set of each of need
// (TestDetectorBytes checks all three against the expression).
//
// A detector of numbers (phone, card, ssn, ipv4) also has at, for a long
// run of its bytes (digits and separators: every byte may be in a match):
// at(text, s) is the end of the match the expression makes starting at
// text[s], with the text around it (\b), or -1 when it makes none there;
// it looks at a bounded number of bytes.
type detector struct {
	re   *regexp.Regexp
	in   byteSet
	min  int
	need []needed
	at   func(text string, s int) int
}

// needed is n bytes of set.
type needed struct {
	set byteSet
	n   int
}

// A byteSet holds the bytes b for which it is true at b.
type byteSet [256]bool

// bytesOf returns the set of the bytes of spec, a list of bytes and ranges
// as in a regular expression's class ("a-z0-9_-": a final '-' is itself),
// and of every non-ASCII byte if nonASCII.
func bytesOf(spec string, nonASCII bool) byteSet {
	var s byteSet
	for i := 0; i < len(spec); i++ {
		if i+2 < len(spec) && spec[i+1] == '-' {
			for c := int(spec[i]); c <= int(spec[i+2]); c++ {
				s[c] = true
			}
			i += 2
			continue
		}
		s[spec[i]] = true
	}
	for c := utf8.RuneSelf; nonASCII && c < len(s); c++ {
		s[c] = true
	}
	return s
}

var (
	digit    = bytesOf("0-9", false)
	detEmail = detector{re: reEmail, in: bytesOf("A-Za-z0-9.!#$%&'*+/=?^_{|}~@-", false), min: 6, need: []needed{{bytesOf("@", false), 1}, {bytesOf(".", false), 1}}}
	detPhone = detector{re: rePhone, in: bytesOf("0-9 +.()/-", false), min: 4, need: []needed{{digit, 3}}, at: phoneAt}
	// phoneSpans keeps only phone matches of at least 9 digits, widened
	// (numberSpan) only over digits of their run: a run of fewer digits
	// holds none it keeps, and the matches it does not keep change nothing.
	detPhoneKept = detector{re: rePhone, in: detPhone.in, min: 9, need: []needed{{digit, 9}}, at: phoneAt}
	detUPS       = detector{re: reUPS, in: bytesOf("0-9A-Z ", false), min: 18, need: []needed{{bytesOf("Z", false), 1}}}
	detSSN       = detector{re: reSSN, in: bytesOf("0-9-", false), min: 11, need: []needed{{bytesOf("-", false), 2}, {digit, 9}},
		at: atRegexp(reSSN, 11, ssnStart)}
	detCard = detector{re: reCard, in: bytesOf("0-9 -", false), min: 13, need: []needed{{digit, 13}}, at: cardAt}
	detIBAN = detector{re: reIBAN, in: bytesOf("A-Z0-9 ", false), min: 15, need: []needed{{bytesOf("A-Z", false), 2}, {digit, 2}}}
	detIPv4 = detector{re: reIPv4, in: bytesOf("0-9.", false), min: 7, need: []needed{{bytesOf(".", false), 3}, {digit, 4}},
		at: atRegexp(reIPv4, 15, ipv4Start)}
	// (?i) lets the zone's [0-9a-z] match U+017F and U+212A (the folds of
	// s and k): every non-ASCII byte may be one of a match's.
	detIPv6 = detector{re: reIPv6, in: bytesOf("0-9A-Za-z:%", true), min: 2, need: []needed{{bytesOf(":", false), 2}}}

	// rePhone's alternatives that can match at a '+', a '(', a '0' and
	// another digit, anchored (phoneAt).
	rePhoneAtPlus  = anchored(phoneIntl)
	rePhoneAtParen = anchored(phoneArea)
	rePhoneAtZero  = anchored(phoneIntl + "|" + phoneNational + "|" + phoneNANP)
	rePhoneAtDigit = anchored(phoneNANP + "|" + phoneSpanish)
)

// anchored compiles expr anchored at the start of the text.
func anchored(expr string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + expr + `)`)
}

// atRegexp returns a detector's at for re, whose matches are at most
// maxLen bytes long and start only where start is true: re anchored, run
// on maxLen bytes and one more (for \b after the longest match). Anchored
// at text[s], the expression sees no character before it, as its \b
// would see a non-word one: start must be false where one is a word
// character and the expression needs \b to start there.
func atRegexp(re *regexp.Regexp, maxLen int, start func(text string, s int) bool) func(string, int) int {
	at := anchored(re.String())
	return func(text string, s int) int {
		if !start(text, s) {
			return -1
		}
		if loc := at.FindStringIndex(text[s:min(len(text), s+maxLen+1)]); loc != nil {
			return s + loc[1]
		}
		return -1
	}
}

// phoneAt is rePhone's at: at a '+' only its international form can
// match, at a '(' only the parenthesised area code, at a 0 the
// international (00), national and North American forms, at another
// digit the North American and Spanish forms; the expression of those
// alone, in rePhone's order, makes the same match as rePhone
// (leftmost-first: the first alternative that matches).
func phoneAt(text string, s int) int {
	if !phoneStart(text, s) {
		return -1
	}
	var re *regexp.Regexp
	switch text[s] {
	case '+':
		re = rePhoneAtPlus
	case '(':
		re = rePhoneAtParen
	case '0':
		re = rePhoneAtZero
	default:
		re = rePhoneAtDigit
	}
	if loc := re.FindStringIndex(text[s:min(len(text), s+phoneMaxLen+1)]); loc != nil {
		return s + loc[1]
	}
	return -1
}

// cardAt is reCard's at, by hand: reCard, \b\d(?:[ -]?\d){12,18}\b, reads
// its digits one way only (a space or dash is taken when a digit follows
// it, else the next byte must be a digit), and its greedy repetition ends
// the match after the most digits, 13 to 19, that \b allows (no word
// character after).
func cardAt(text string, s int) int {
	if !wordStart(text, s) {
		return -1
	}
	var ends [19]int // ends[k]: after the first digit and k more
	m, p := 0, s+1
	for m < 18 {
		q := p
		if q < len(text) && (text[q] == ' ' || text[q] == '-') {
			q++
		}
		if !isDigit(text, q) {
			break
		}
		p = q + 1
		m++
		ends[m] = p
	}
	for k := m; k >= 12; k-- {
		if ends[k] == len(text) || !isWord(text[ends[k]]) {
			return ends[k]
		}
	}
	return -1
}

// longRun is the run length from which findAll looks for a number
// detector's matches one possible start at a time (findAnchored): the
// expression's search over a run of digits and separators keeps dozens
// of threads alive at every byte (Go's regexp has no DFA), 16 times what
// the same text costs in short runs.
const longRun = 256

// isWord reports whether c is a word character for \b (ASCII letters,
// digits, '_').
func isWord(c byte) bool { return isAlnum(c) || c == '_' }

// isDigit reports whether text[i] is an ASCII digit (false outside text).
func isDigit(text string, i int) bool {
	return i >= 0 && i < len(text) && text[i] >= '0' && text[i] <= '9'
}

// wordStart reports whether a match of an expression starting with \b\d
// can start at text[s]: a digit not after a word character.
func wordStart(text string, s int) bool {
	return isDigit(text, s) && (s == 0 || !isWord(text[s-1]))
}

// phoneStart reports whether a rePhone match can start at text[s]: a '+'
// or '(', or a digit not after a word character (every form starting with
// a digit starts with \b) that starts one of the forms: a 0 (00 and a
// country code, a national number), a 1 and a separator or three digits
// and a separator (North American, Spanish 3-3-3 and 3-2-2-2), or an 8 or
// 9, a digit and a space (Spanish 2-3-2-2).
func phoneStart(text string, s int) bool {
	switch c := text[s]; {
	case c == '+' || c == '(':
		return true
	case !wordStart(text, s):
		return false
	case c == '0':
		return true
	}
	sep := func(i int) bool { return i < len(text) && (text[i] == ' ' || text[i] == '.' || text[i] == '-') }
	return text[s] == '1' && sep(s+1) || isDigit(text, s+1) && isDigit(text, s+2) && sep(s+3) ||
		(text[s] == '8' || text[s] == '9') && isDigit(text, s+1) && s+2 < len(text) && text[s+2] == ' '
}

// ssnStart reports whether a reSSN match can start at text[s]: a digit
// not after a word character, with dashes 3 and 6 bytes on.
func ssnStart(text string, s int) bool {
	return wordStart(text, s) && s+6 < len(text) && text[s+3] == '-' && text[s+6] == '-'
}

// ipv4Start reports whether a reIPv4 match can start at text[s]: a digit
// not after a word character, with a dot 1 to 3 bytes on.
func ipv4Start(text string, s int) bool {
	if !wordStart(text, s) {
		return false
	}
	for i := s + 1; i <= s+3 && i < len(text); i++ {
		if text[i] == '.' {
			return true
		}
	}
	return false
}

// findAnchored appends to locs the matches of d.re in text[lo:hi] (a run
// of d.in's bytes: no match of the text crosses its ends) as
// FindAllStringIndex finds them in the text: the leftmost start s where
// d.at finds a match, that match, then on from its end. d.at looks at a
// bounded number of bytes at each s: a bounded cost per byte, whatever
// the run.
func findAnchored(locs [][]int, text string, lo, hi int, d *detector) [][]int {
	for s := lo; s < hi; {
		end := d.at(text, s)
		if end < 0 {
			s++
			continue
		}
		locs = append(locs, []int{s, end})
		s = end
	}
	return locs
}

// findAll returns d.re.FindAllStringIndex(text, -1), in far less time: it
// runs the expression only on the runs of bytes of d.in that can hold a
// match (d.min, d.need), each with the character before and after it
// (for \b). A match is made of d.in's bytes, so it lies inside one run,
// and the leftmost-first matches of the text are those of its runs, one
// run after another. (Go's regexp, without a DFA, runs its NFA over all
// the text it is given: hundreds of nanoseconds a byte for each
// expression, on the whole text most of what redact-pii cost.) On a run
// of longRun bytes or more a number detector looks for its matches one
// possible start at a time (findAnchored): in digits and separators the
// expression's search over the run costs 10 to 20 times as much.
func findAll(text string, d *detector) [][]int {
	return findAllFrom(text, d, longRun)
}

// findAllFrom is findAll, looking for a number detector's matches one
// possible start at a time (findAnchored) in runs of long bytes or more.
func findAllFrom(text string, d *detector, long int) [][]int {
	var locs [][]int
	for i := 0; i < len(text); {
		if !d.in[text[i]] {
			i++
			continue
		}
		start := i
		for i < len(text) && d.in[text[i]] {
			i++
		}
		if i-start < d.min || !holdsAll(text[start:i], d.need) {
			continue
		}
		if d.at != nil && i-start >= long {
			locs = findAnchored(locs, text, start, i, d)
			continue
		}
		lo, hi := start, i
		if lo > 0 {
			_, n := utf8.DecodeLastRuneInString(text[:lo])
			lo -= n
		}
		if hi < len(text) {
			_, n := utf8.DecodeRuneInString(text[hi:])
			hi += n
		}
		for _, loc := range d.re.FindAllStringIndex(text[lo:hi], -1) {
			locs = append(locs, []int{lo + loc[0], lo + loc[1]})
		}
	}
	return locs
}

// holdsAll reports whether s holds n bytes of the set of each of need.
func holdsAll(s string, need []needed) bool {
	for _, nd := range need {
		n := 0
		for i := 0; i < len(s) && n < nd.n; i++ {
			if nd.set[s[i]] {
				n++
			}
		}
		if n < nd.n {
			return false
		}
	}
	return true
}

// Redactor finds and replaces personal data.
type Redactor struct {
	kinds   []string
	long    int // findAllFrom's long (longRun; tests lower it)
	extra   map[string]*regexp.Regexp
	replace string // template; "{kind}" is replaced by the kind
}

// NewRedactor returns a redactor for kinds (nil: all built-in kinds) and
// extra named patterns (RE2 syntax). A pattern may bear a built-in kind's
// name: its matches are that kind's (replaced and counted as it), found
// beside the built-in detector's when kinds has it too. It returns
// ErrParam for an unknown kind, a bad name or a pattern that does not
// compile or matches "".
func NewRedactor(kinds []string, extra map[string]string, replacement string) (*Redactor, error) {
	if kinds == nil {
		kinds = PIIKinds
	}
	for _, k := range kinds {
		if !slices.Contains(PIIKinds, k) {
			return nil, Errorf(ErrParam, "kinds: unknown kind %q (want %s)", k, strings.Join(PIIKinds, ", "))
		}
	}
	r := &Redactor{kinds: kinds, long: longRun, extra: map[string]*regexp.Regexp{}, replace: replacement}
	if r.replace == "" {
		r.replace = "[{kind}]"
	}
	for name, pat := range extra {
		if !validKind(name) {
			return nil, Errorf(ErrParam, "patterns: name %q: want 1-32 of [a-z0-9_]", name)
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, Errorf(ErrParam, "patterns: %s: %v", name, err)
		}
		if re.MatchString("") {
			return nil, Errorf(ErrParam, "patterns: %s matches the empty string", name)
		}
		r.extra[name] = re
	}
	return r, nil
}

func validKind(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

type match struct {
	start, end int
	kind       string
	prio       int // at one start, the lower first (overlapOrder)
}

// overlapOrder ranks the built-in kinds among matches starting at one
// place (a card number is not also a phone number); extra patterns rank
// before all of them, whatever their name.
var overlapOrder = []string{"email", "iban", "card", "ipv6", "ipv4", "ssn", "phone"}

// Redact returns text with every match replaced and the count per kind.
func (r *Redactor) Redact(text string) (string, map[string]int) {
	var ms []match
	add := func(kind string, d *detector, ok func(string) bool) {
		prio := slices.Index(overlapOrder, kind)
		for _, loc := range findAllFrom(text, d, r.long) {
			if kind == "ipv6" && !standsAlone(text, loc[0], loc[1]) {
				continue // part of a word: "Dir::Cache::Archives"
			}
			if kind == "ssn" {
				var keep bool
				if loc[0], loc[1], keep = numberSpan(text, loc[0], loc[1]); !keep {
					continue
				}
			}
			if ok == nil || ok(text[loc[0]:loc[1]]) {
				ms = append(ms, match{loc[0], loc[1], kind, prio})
			}
		}
	}
	for _, k := range r.kinds {
		switch k {
		case "email":
			add(k, &detEmail, nil)
		case "card":
			add(k, &detCard, func(s string) bool { return luhn(digits(s)) })
		case "iban":
			add(k, &detIBAN, validIBAN)
		case "ipv4":
			add(k, &detIPv4, func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a.Is4() })
		case "ipv6":
			add(k, &detIPv6, func(s string) bool {
				a, err := netip.ParseAddr(s)
				return err == nil && a.Is6() && strings.Trim(s, ":") != ""
			})
		case "ssn":
			add(k, &detSSN, validSSN)
		case "phone":
			for _, loc := range phoneSpans(text, r.long) {
				ms = append(ms, match{loc[0], loc[1], k, slices.Index(overlapOrder, k)})
			}
		}
	}
	for _, n := range sortedKeys(r.extra) {
		for _, loc := range r.extra[n].FindAllStringIndex(text, -1) {
			ms = append(ms, match{loc[0], loc[1], n, -1})
		}
	}
	// Earlier first; at one start the lower rank (overlapOrder); then the
	// longer match.
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].start != ms[j].start {
			return ms[i].start < ms[j].start
		}
		if ms[i].prio != ms[j].prio {
			return ms[i].prio < ms[j].prio
		}
		return ms[i].end > ms[j].end
	})
	counts := map[string]int{}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, m := range ms {
		if m.start < last {
			continue // overlaps an earlier match
		}
		b.WriteString(text[last:m.start])
		b.WriteString(strings.ReplaceAll(r.replace, "{kind}", strings.ToUpper(m.kind)))
		counts[m.kind]++
		last = m.end
	}
	b.WriteString(text[last:])
	return b.String(), counts
}

// standsAlone reports whether text[start:end] is not glued to a letter,
// digit, '_', ':' or '.' on either side (a full stop after it is fine).
func standsAlone(text string, start, end int) bool {
	glued := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.'
	}
	if end < len(text) && text[end] == '.' && (end+1 == len(text) || !glued(text[end+1])) {
		end = len(text) // a full stop ends the sentence, not the address
	}
	return (start == 0 || !glued(text[start-1])) && (end == len(text) || !glued(text[end]))
}

// phoneSpans returns the bounds of the phone numbers in text: rePhone's
// matches that numberSpan keeps (and widens), of 9 to 15 digits
// (phoneDigits) with a separator or at least 10 digits, not a ZIP+4 code,
// not starting with an SSN's shape (012-34-5678), a Spanish form only as
// numberAlone allows, none inside a UPS tracking number; each takes in an
// alternative ending (altEnding) unless a second number starts after its
// slash.
func phoneSpans(text string, long int) [][2]int {
	ups := findAllFrom(text, &detUPS, long)
	var spans [][2]int
	prevEnd := -1 // the end of the last span before its alternative ending
	for _, loc := range findAllFrom(text, &detPhoneKept, long) {
		start, end, keep := numberSpan(text, loc[0], loc[1])
		second := false
		if !keep && len(spans) > 0 && prevEnd == loc[0]-1 && text[loc[0]-1] == '/' {
			// Right after a phone number and a slash: a second number
			// ("555-123-4567/555-123-4568"), not a group of an
			// identifier; nor are its first digits the first number's
			// alternative ending ("030 1234567/030 7654321": "/030").
			start, end, keep = numberSpanAfter(text, loc[0], loc[1])
			second = true
		}
		if !keep {
			continue
		}
		s := text[start:end]
		if n := phoneDigits(s); n < 9 || n > 15 || !strings.ContainsAny(s, " .-()+") && len(digits(s)) < 10 ||
			zipPlus4(s) || reSSNShape.MatchString(s) || spanishForm(s) && !numberAlone(text, start, end) ||
			slices.ContainsFunc(ups, func(u []int) bool { return start < u[1] && u[0] < end }) {
			continue
		}
		if second {
			spans[len(spans)-1][1] = prevEnd
		}
		spans = append(spans, [2]int{start, altEnding(text, end)})
		prevEnd = end
	}
	return spans
}

// spanishForm reports whether a phone match is rePhone's Spanish national
// form: nine digits, the first 6 to 9 (no other form starts so with nine).
func spanishForm(s string) bool {
	return s[0] >= '6' && s[0] <= '9' && len(digits(s)) == 9
}

// numberAlone reports whether text[start:end], digit groups separated by
// spaces, is not one of a row of figures (digits and a space before it, a
// space and a digit after it: "712 845 690 123", "1 612 345 678") nor a
// figure with decimals after a comma ("612 345 678,50").
func numberAlone(text string, start, end int) bool {
	digit := func(i int) bool { return i >= 0 && i < len(text) && text[i] >= '0' && text[i] <= '9' }
	if start >= 1 && text[start-1] == ' ' && digit(start-2) {
		return false
	}
	return !(end < len(text) && (text[end] == ' ' || text[end] == ',') && digit(end+1))
}

// altEnding returns the end of a phone number that ends at end, taking in
// a slash and 1 to 4 digits after it, an alternative last digit or digits
// ("555-123-4567/8": the number and 555-123-4568), when no letter, '_',
// non-ASCII character or digit follows them, nor a dash, dot, colon,
// slash or comma and a digit; otherwise end.
func altEnding(text string, end int) int {
	if end >= len(text) || text[end] != '/' {
		return end
	}
	i := end + 1
	for i < len(text) && text[i] >= '0' && text[i] <= '9' {
		i++
	}
	if n := i - end - 1; n < 1 || n > 4 {
		return end
	}
	if i < len(text) {
		c := text[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80 {
			return end
		}
		if strings.IndexByte("-.:/,", c) >= 0 && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9' {
			return end
		}
	}
	return i
}

// zipPlus4 reports whether s is 5 digits, a dash and 4 digits: a US ZIP+4
// code ("Boston, MA 02110-1301"), not a phone number.
func zipPlus4(s string) bool {
	return len(s) == 10 && s[5] == '-' && len(digits(s)) == 9
}

// validSSN reports whether s, 3, 2 and 4 digits joined by dashes, is a
// US Social Security number by the SSA's rules: the area (the first
// group) is not 000, 666 or 900-999, the group is not 00 and the serial
// is not 0000.
func validSSN(s string) bool {
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// phoneDigits counts the digits of a phone match that E.164's 15 count:
// not an international call prefix 00 ("0049 30 1234567890" has 14) nor a
// parenthesised trunk 0 ("+33 (0)1 23 45 67 89" has 11).
func phoneDigits(s string) int {
	n := len(digits(s))
	if strings.HasPrefix(s, "00") {
		n -= 2
	}
	if strings.Contains(s, "(0)") {
		n--
	}
	return n
}

func digits(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// luhn reports whether a 13-19 digit number passes the Luhn check.
func luhn(d string) bool {
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := 0; i < len(d); i++ {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// ibanLengths are the IBAN lengths of the registry's countries.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// validIBAN checks the country length and the ISO 13616 mod-97 checksum.
func validIBAN(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if n, ok := ibanLengths[s[:2]]; !ok || n != len(s) {
		return false
	}
	rem := 0
	for _, c := range s[4:] + s[:4] {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// RedactPII writes a redacted copy of a text document and records how many
// values of each kind it replaced (never the values).
func RedactPII(env Env) error {
	r, err := redactParams(env)
	if err != nil {
		return err
	}
	in := env.Input()
	data, err := in.ReadAll(MaxRedactInput)
	if err != nil {
		return err
	}
	text := string(data)
	if strings.ToValidUTF8(text, "") != text {
		return Errorf(ErrMalformed, "input is not UTF-8 text (run extract-text first)")
	}
	out, counts := r.Redact(text)
	var meta []KV
	total := 0
	all := slices.Clone(r.kinds)
	for _, n := range sortedKeys(r.extra) {
		if !slices.Contains(all, n) {
			all = append(all, n) // a pattern named like a kind adds to its count
		}
	}
	for _, k := range all {
		meta = append(meta, KV{"pii_" + k, counts[k]})
		total += counts[k]
	}
	meta = append(meta, KV{"pii_total", total})
	if err := env.Emit(derivedName(in.Name, ".redacted.txt"), "text/plain; charset=utf-8", []byte(out), meta); err != nil {
		return err
	}
	for _, kv := range meta {
		if err := env.SetMetadata(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redactParams reads redact-pii's parameters (kinds, patterns,
// replacement) into a Redactor.
func redactParams(env Env) (*Redactor, error) {
	p := params{env: env}
	var kinds []string
	if s, ok := env.Param("kinds"); ok {
		for _, k := range strings.Split(s, ",") {
			if k = strings.TrimSpace(k); k != "" {
				if slices.Contains(kinds, k) {
					p.fail("kinds", "%q given twice", k)
				}
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			p.fail("kinds", "empty list")
		}
	}
	extra := map[string]string{}
	if s, ok := env.Param("patterns"); ok {
		var dup string
		var err error
		switch extra, dup, err = parsePatterns(s); {
		case err != nil:
			p.fail("patterns", `want a JSON object {"name": "regexp", ...}: %v`, err)
		case dup != "":
			p.fail("patterns", "name %q given twice", dup)
		case len(extra) > 32:
			p.fail("patterns", "at most 32 patterns")
		}
	}
	repl := p.str("replacement", "[{kind}]")
	if len(repl) > 256 {
		p.fail("replacement", "at most 256 bytes")
	}
	if p.err != nil {
		return nil, p.err
	}
	return NewRedactor(kinds, extra, repl)
}

// parsePatterns reads the patterns parameter, a JSON object of strings,
// as json.Unmarshal would, and also returns the first name given twice
// (Unmarshal keeps the last value silently), or "".
func parsePatterns(s string) (map[string]string, string, error) {
	out := map[string]string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, "", err
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.Token() // '{': Unmarshal checked the syntax
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		name, _ := tok.(string)
		if seen[name] {
			return out, name, nil
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, "", err
		}
	}
	return out, "", nil
}

// numberSpan widens a phone match to the end of the run of digits it ends
// inside ("0049 30 1234567" matched up to "1234"), so that no digit of a
// number is left beside the replacement. It reports false for a match
// that starts inside a run of digits ("1234567 89 10": the run is no
// group of a phone number), that digits and a dash, dot or slash come
// before ("2024-0123-4567-89": groups of a longer identifier), or that a
// dash or dot and a digit follow ("555-123-4567-89"), or ":" and a digit
// (a date and a time, "05.12.2026 10:30"). An SSN match (never next to
// a digit) is checked the same way ("2024-123-45-6789", "123-45-6789-01").
func numberSpan(text string, start, end int) (int, int, bool) {
	digit := func(i int) bool { return i >= 0 && i < len(text) && text[i] >= '0' && text[i] <= '9' }
	if digit(start-1) || start >= 2 && strings.IndexByte("-./", text[start-1]) >= 0 && digit(start-2) {
		return start, end, false
	}
	return numberSpanAfter(text, start, end)
}

// numberSpanAfter is numberSpan without its check of what comes before the
// match (for a match right after a phone number and a slash).
func numberSpanAfter(text string, start, end int) (int, int, bool) {
	digit := func(i int) bool { return i >= 0 && i < len(text) && text[i] >= '0' && text[i] <= '9' }
	for digit(end) {
		end++
	}
	if end < len(text) && (text[end] == ':' || text[end] == '-' || text[end] == '.') && digit(end+1) {
		return start, end, false
	}
	return start, end, true
}
