package steps

// The redactor before it ran its regular expressions only on the runs of
// text a match can be made of (findAll): the reference that
// TestRedactMatchesReference and FuzzRedactReference compare it with.

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// refRedact is Redactor.Redact as it was before it ran its detectors only
// on candidate runs (findAll): every detector on the whole text.
func refRedact(r *Redactor, text string) (string, map[string]int) {
	var ms []match
	add := func(kind string, re *regexp.Regexp, ok func(string) bool) {
		prio := slices.Index(overlapOrder, kind)
		for _, loc := range re.FindAllStringIndex(text, -1) {
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
			add(k, reEmail, nil)
		case "card":
			add(k, reCard, func(s string) bool { return luhn(digits(s)) })
		case "iban":
			add(k, reIBAN, validIBAN)
		case "ipv4":
			add(k, reIPv4, func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a.Is4() })
		case "ipv6":
			add(k, reIPv6, func(s string) bool {
				a, err := netip.ParseAddr(s)
				return err == nil && a.Is6() && strings.Trim(s, ":") != ""
			})
		case "ssn":
			add(k, reSSN, validSSN)
		case "phone":
			for _, loc := range refPhoneSpans(text) {
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

// refPhoneSpans is phoneSpans before findAll; it returns the bounds of the phone numbers in text: rePhone's
// matches that numberSpan keeps (and widens), of 9 to 15 digits
// (phoneDigits) with a separator or at least 10 digits, not a ZIP+4 code,
// not starting with an SSN's shape (012-34-5678), a Spanish form only as
// numberAlone allows, none inside a UPS tracking number; each takes in an
// alternative ending (altEnding) unless a second number starts after its
// slash.
func refPhoneSpans(text string) [][2]int {
	var ups [][]int
	if strings.Contains(text, "1Z") {
		ups = reUPS.FindAllStringIndex(text, -1)
	}
	var spans [][2]int
	prevEnd := -1 // the end of the last span before its alternative ending
	for _, loc := range rePhone.FindAllStringIndex(text, -1) {
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

// TestDetectorBytes checks each detector's byte sets against its
// expression's compiled program: every rune an instruction can consume is
// made of bytes of in, and no path to a match is shorter than min or
// holds fewer than n bytes of a set of need.
func TestDetectorBytes(t *testing.T) {
	for name, d := range map[string]*detector{"email": &detEmail, "phone": &detPhone, "ups": &detUPS, "ssn": &detSSN,
		"card": &detCard, "iban": &detIBAN, "ipv4": &detIPv4, "ipv6": &detIPv6} {
		re, err := syntax.Parse(d.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			t.Fatal(err)
		}
		// runes returns the runes an instruction consumes (nil: none).
		runes := func(in *syntax.Inst) []rune {
			var rs []rune
			switch in.Op {
			case syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				t.Fatalf("%s: matches any character", name)
			case syntax.InstRune1:
				rs = append(rs, in.Rune[0])
			case syntax.InstRune:
				if len(in.Rune) == 1 {
					rs = append(rs, in.Rune[0])
					if syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
						for f := unicode.SimpleFold(in.Rune[0]); f != in.Rune[0]; f = unicode.SimpleFold(f) {
							rs = append(rs, f)
						}
					}
					break
				}
				for i := 0; i < len(in.Rune); i += 2 {
					for r := in.Rune[i]; r <= in.Rune[i+1]; r++ {
						rs = append(rs, r)
					}
				}
			}
			return rs
		}
		// fewest returns the fewest runes on a path to a match that
		// count: each at least a byte, those consumed by an instruction
		// that consumes no other rune.
		fewest := func(count func(r rune) bool) int {
			dist := make([]int, len(prog.Inst))
			for i := range dist {
				dist[i] = 1 << 30
			}
			dist[prog.Start] = 0
			for changed := true; changed; { // relax until stable
				changed = false
				relax := func(to uint32, d int) {
					if d < dist[to] {
						dist[to], changed = d, true
					}
				}
				for pc := range prog.Inst {
					in, d := &prog.Inst[pc], dist[pc]
					if d == 1<<30 {
						continue
					}
					switch in.Op {
					case syntax.InstMatch, syntax.InstFail:
					case syntax.InstAlt, syntax.InstAltMatch:
						relax(in.Out, d)
						relax(in.Arg, d)
					case syntax.InstCapture, syntax.InstEmptyWidth, syntax.InstNop:
						relax(in.Out, d)
					default:
						if rs := runes(in); !slices.ContainsFunc(rs, func(r rune) bool { return !count(r) }) {
							d++
						}
						relax(in.Out, d)
					}
				}
			}
			least := 1 << 30
			for pc := range prog.Inst {
				if prog.Inst[pc].Op == syntax.InstMatch {
					least = min(least, dist[pc])
				}
			}
			return least
		}
		if n := fewest(func(rune) bool { return true }); n < d.min {
			t.Errorf("%s: a match of %d runes, min %d", name, n, d.min)
		}
		for _, nd := range d.need {
			if n := fewest(func(r rune) bool { return r < utf8.RuneSelf && nd.set[byte(r)] }); n < nd.n {
				t.Errorf("%s: a match with %d bytes of a set of need, want %d", name, n, nd.n)
			}
		}
		for pc := range prog.Inst {
			for _, r := range runes(&prog.Inst[pc]) {
				for _, c := range []byte(string(r)) {
					if !d.in[c] {
						t.Errorf("%s: %q (byte %#x) can be in a match, not in its bytes", name, r, c)
					}
				}
			}
		}
	}
}

// piiTexts returns n random texts of PII, near misses and the characters
// around them that the detectors look at (seeded: the same every run).
func piiTexts(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, 1))
	tokens := []string{
		"jane.doe@example.com", "a@b.io", "x@y", "@", "@@", "a.b-c@d-e.f.gh", "o'neil+tag@mail.example.org", "a@-b.com", "u@host.c",
		"+49 30 1234567", "0049 30 1234567890", "+33 (0)1 23 45 67 89", "030 1234567/030 7654321", "030 1234567", "06-12345678",
		"01 23 45 67 89", "(555) 123-4567", "555-123-4567", "1-800-555-1234", "555-123-4567/8", "555-123-4567/555-123-4568",
		"612 345 678", "91 123 45 67", "712 845 690 123", "612 345 678,50", "2024-0001-17", "2019 2020 2021", "02110-1301",
		"+1 (555) 010-9999", "030/1234567", "+44.20.7946.0958", "0800 123 4567", "0031-20-1234567", "+", "(0)", "00",
		"4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5500 0000 0000 0004", "4111 1111 1111 1112",
		"GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "XX82WEST12345698765432",
		"10.0.0.1", "192.168.1.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "fe80::1", "2001:db8::8a2e:370:7334", "::1", "[::1]:80",
		"fe80::1%eth0", "fe80::1%ſ", "fe80::1%K", "Dir::Cache::Archives", "std::vector", ":::", "a:b:c", "ff:ff",
		"123-45-6789", "000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "2024-123-45-6789", "123-45-6789-01",
		"1Z 999 AA1 01 2345 6784", "1Z999AA10123456784", "1Z", "05.12.2026 10:30", "v1.2.3", "ISO 13616", "ABC", "DE",
		"é", "中文", "ſ", "K", "\u00a0", "\u2009", "\xff", "\xe2\x84", "\xc5", "\U0001F600",
	}
	seps := []string{"", "", " ", " ", "  ", "\n", "\t", "/", "-", ".", ":", ",", ";", "@", "%", "(", ")", "+", "_", "a", "Z", "é", "\xff"}
	runs := []string{"0123456789", "0000000000", "9876543210", "abcdef", "ABCDEF", "1 2 3 4 5 6 7 8 9 0 ", "12-34-56-78-90-", "1.2.3.4.5.6.", "::::"}
	var out []string
	for range n {
		var b strings.Builder
		for range 1 + rng.IntN(30) {
			switch rng.IntN(8) {
			case 0: // a long run of digits or of another class
				r := runs[rng.IntN(len(runs))]
				for range 1 + rng.IntN(40) {
					b.WriteByte(r[rng.IntN(len(r))])
				}
			case 1: // random ASCII bytes the detectors use
				const cs = "0123456789 -./:@%()+AZaz_,"
				for range 1 + rng.IntN(20) {
					b.WriteByte(cs[rng.IntN(len(cs))])
				}
			default:
				b.WriteString(tokens[rng.IntN(len(tokens))])
			}
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		out = append(out, b.String())
	}
	return out
}

// redactAgree fails t unless the redactor and the reference (refRedact)
// give the same output and counts on text, with every built-in kind and
// with each kind alone, and unless findAll finds what every detector's
// expression finds in the whole text.
func redactAgree(t *testing.T, text string) {
	t.Helper()
	for name, d := range map[string]*detector{"email": &detEmail, "phone": &detPhone, "ups": &detUPS, "ssn": &detSSN,
		"card": &detCard, "iban": &detIBAN, "ipv4": &detIPv4, "ipv6": &detIPv6} {
		got, want := findAll(text, d), d.re.FindAllStringIndex(text, -1)
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%s in %q: findAll %v, FindAllStringIndex %v", name, text, got, want)
		}
		if d.at == nil {
			continue
		}
		// Every run as a long one: one start at a time (findAnchored).
		if got := findAllFrom(text, d, 0); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%s in %q: findAnchored %v, FindAllStringIndex %v", name, text, got, want)
		}
	}
	for _, kinds := range append([][]string{nil}, func() (ks [][]string) {
		for _, k := range PIIKinds {
			ks = append(ks, []string{k})
		}
		return ks
	}()...) {
		r, err := NewRedactor(kinds, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		out, counts := r.Redact(text)
		wantOut, wantCounts := refRedact(r, text)
		if out != wantOut || !maps.Equal(counts, wantCounts) {
			t.Fatalf("kinds %v, %q:\n got %q %v\nwant %q %v", kinds, text, out, counts, wantOut, wantCounts)
		}
		r.long = 0 // every run as a long one
		if out, counts := r.Redact(text); out != wantOut || !maps.Equal(counts, wantCounts) {
			t.Fatalf("kinds %v, long runs, %q:\n got %q %v\nwant %q %v", kinds, text, out, counts, wantOut, wantCounts)
		}
	}
}

// TestRedactMatchesReference compares the redactor with the reference on
// random texts of PII, near misses and unicode, and on long ones.
func TestRedactMatchesReference(t *testing.T) {
	texts := piiTexts(1, 3000)
	long := strings.Join(texts[:500], " ")
	texts = append(texts, long, strings.Repeat("1", 5000), strings.Repeat("1 ", 3000), strings.Repeat("12-", 2000),
		strings.Repeat("a@", 2000)+"b.com", strings.Repeat("ff:", 3000), strings.Repeat("AB12 ", 1000), strings.Repeat("1.", 3000))
	for _, text := range texts {
		redactAgree(t, text)
	}
}

// FuzzRedactReference compares the redactor with the reference on any
// text (go test -fuzz FuzzRedactReference).
func FuzzRedactReference(f *testing.F) {
	for _, s := range piiTexts(2, 50) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		redactAgree(t, text)
	})
}
