package steps

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode/utf8"
)

// digitTexts returns n random digit-heavy texts (seeded: the same every
// run): groups of digits joined by single spaces or dashes, as in a
// table of figures, with now and then another separator, a '+', a
// parenthesised group, a letter, a line feed or a non-ASCII character,
// long enough in part (up to 2 KiB) that findAll reads them as long runs
// (longRun).
func digitTexts(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, 2))
	seps := []string{" ", " ", " ", "-", "-", " ", "-"}
	rare := []string{".", "/", "  ", "--", " - ", "\n", ",", ":", "+", "(", ")", "a", "Z", "_", "é", "\u00a0", "\xff", "1Z", "(0)", "+49 ", "00"}
	var out []string
	for range n {
		var b strings.Builder
		size := 16 + rng.IntN(64)
		if rng.IntN(4) == 0 {
			size = 256 + rng.IntN(2048)
		}
		digits := "0123456789"
		if rng.IntN(3) == 0 {
			digits = []string{"0", "01", "1", "19", "0369", "6789", "4"}[rng.IntN(7)]
		}
		for b.Len() < size {
			for range 1 + rng.IntN(min(1+rng.IntN(12), 12)) {
				b.WriteByte(digits[rng.IntN(len(digits))])
			}
			if rng.IntN(12) == 0 {
				b.WriteString(rare[rng.IntN(len(rare))])
			} else {
				b.WriteString(seps[rng.IntN(len(seps))])
			}
		}
		out = append(out, b.String())
	}
	return out
}

// TestRedactDigitsMatchesReference compares the redactor with the
// reference (refRedact), and findAll, natively and one start at a time,
// with every expression's own search, on digit-heavy text: digits and
// spaces or dashes, where every byte may be in a match.
func TestRedactDigitsMatchesReference(t *testing.T) {
	texts := digitTexts(1, 2000)
	texts = append(texts, strings.Repeat("4111 1111 1111 1112 030 ", 100), strings.Repeat("4111-1111-1111-1112-030-", 100),
		strings.Repeat("1 ", 600), strings.Repeat("12-", 400), strings.Repeat("612 345 678 ", 100), strings.Repeat("0 ", 600),
		strings.Repeat("030 1234567/", 100), strings.Repeat("123-45-6789 ", 100), strings.Repeat("+1 (555) 010-9999 ", 60),
		strings.Repeat("10.0.0.1 ", 100), strings.Repeat("4111111111111111 ", 60), strings.Repeat("1", 1000),
		strings.Repeat("+999 (9999) 9 12345678 12345678-12345678.12345678 12345678 ", 20), // the longest phone match
		strings.Repeat("0049 (0)30 1 2345 6789 ", 30))
	for _, text := range texts {
		redactAgree(t, text)
	}
}

// FuzzRedactDigits is FuzzRedactReference started from digit-heavy texts
// (go test -fuzz FuzzRedactDigits).
func FuzzRedactDigits(f *testing.F) {
	for _, s := range digitTexts(2, 50) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		redactAgree(t, text)
	})
}

// TestMaxMatchLen checks the longest match of each expression that an at
// runs on a bounded window (atRegexp, phoneAt) against its syntax: a
// window one byte longer holds every match and the byte after it.
func TestMaxMatchLen(t *testing.T) {
	for _, c := range []struct {
		re  *regexp.Regexp
		max int
	}{{rePhone, phoneMaxLen}, {reSSN, 11}, {reIPv4, 15}, {reCard, 37}} {
		re, err := syntax.Parse(c.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if n := maxMatchLen(t, re); n != c.max {
			t.Errorf("%s: longest match %d bytes, the code has %d", c.re, n, c.max)
		}
	}
}

// maxMatchLen returns the length in bytes of re's longest match.
func maxMatchLen(t *testing.T, re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass:
		if hi := re.Rune[len(re.Rune)-1]; hi >= utf8.RuneSelf {
			t.Fatalf("%s: a class with non-ASCII runes", re)
		}
		return 1
	case syntax.OpCapture:
		return maxMatchLen(t, re.Sub[0])
	case syntax.OpQuest:
		return maxMatchLen(t, re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			t.Fatalf("%s: unbounded", re)
		}
		return re.Max * maxMatchLen(t, re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += maxMatchLen(t, sub)
		}
		return n
	case syntax.OpAlternate:
		n := 0
		for _, sub := range re.Sub {
			n = max(n, maxMatchLen(t, sub))
		}
		return n
	}
	t.Fatalf("%s: op %v unbounded or not handled", re, re.Op)
	return 0
}
