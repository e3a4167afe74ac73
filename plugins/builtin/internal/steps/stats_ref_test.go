package steps

// TextStats's counting before it skipped a string per word and decoded
// ASCII without the unicode tables: the reference that TestCountTextMatchesReference
// and FuzzCountTextReference compare it with.

import (
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// refTextStats is TextStats as it was (add and endWord).
type refTextStats struct {
	TextStats
	word []rune // TextStats.word as it was
}

func (s *refTextStats) endWord() {
	if !s.inWord {
		return
	}
	s.inWord = false
	s.Words++
	if len(s.word) >= 1 && len(s.word) <= 8 || s.countTerms && len(s.word) >= 2 {
		t := strings.ToLower(string(s.word))
		if _, ok := langIndex[t]; ok {
			s.function[t]++
		}
		if s.countTerms && len(s.word) >= 2 && !stopwords[t] && !isNumber(t) {
			if _, ok := s.terms[t]; ok || len(s.terms) < maxTerms {
				s.terms[t]++
			} else {
				s.capped = true
			}
		}
	}
	s.word = s.word[:0]
}

func (s *refTextStats) add(text string) {
	for _, r := range text {
		s.Chars++
		if isWordRune(r) {
			s.lastNonSpace = r
			if !s.inWord {
				s.inWord = true
			}
			if len(s.word) < 64 {
				s.word = append(s.word, r)
			}
			continue
		}
		s.endWord()
		if r == '\n' {
			s.Lines++
		}
		if !unicode.IsSpace(r) {
			s.lastNonSpace = r
		} else if s.lastNonSpace == '.' || s.lastNonSpace == '!' || s.lastNonSpace == '?' {
			s.Sentences++
			s.lastNonSpace = 0
		}
	}
	s.Bytes += len(text)
	if len(text) > 0 {
		s.lastByte = text[len(text)-1]
	}
}

func (s *refTextStats) finish() {
	s.endWord()
	if s.Bytes > 0 && s.lastByte != '\n' {
		s.Lines++
	}
	if s.lastNonSpace != 0 && s.Words > 0 {
		s.Sentences++
	}
}

// statsTexts returns n random texts of words, function words in any case
// (İN and the Kelvin sign's K lowercase to function words), digits,
// marks, spaces, line ends, sentence ends and bytes that are not UTF-8
// (seeded: the same every run).
func statsTexts(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, 3))
	tokens := []string{"the", "The", "THE", "und", "Und", "für", "FÜR", "è", "È", "più", "não", "NÃO", "İN", "İn", "ın", "\u212A", "della",
		"nicht", "which", "sont", "elle", "word", "words", "internationalization", strings.Repeat("x", 70), "naïve", "cafe\u0301", "\u0301",
		"123", "4.5", "x1", "ß", "ẞ", "Σ", "ς", "日本語", "中文", "١٢٣", "Ⅻ", "ﬁ", "ǅ", "\xff", "\xe2\x84", "\xc5", "\U0001F600", "_", "-", "'", "\ufeff", "\r", "\x00", "\u0130", "\u023a"}
	seps := []string{" ", " ", " ", "\n", "\r\n", "\t", ". ", "! ", "? ", ".", ",", "\u00a0", "\u2009", "\u3000", "\x85", "", "?\n", "...  "}
	var out []string
	for range n {
		var b strings.Builder
		for range 1 + rng.IntN(60) {
			b.WriteString(tokens[rng.IntN(len(tokens))])
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		out = append(out, b.String())
	}
	return out
}

// statsAgree fails t unless CountText and the reference give the same
// counts, function words and terms on text, with and without terms, read
// at once and in two parts (add's callers keep runes whole).
func statsAgree(t *testing.T, text string) {
	t.Helper()
	for _, terms := range []bool{false, true} {
		cut := len(text) / 2
		for cut > 0 && cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut--
		}
		for _, parts := range [][]string{{text}, {text[:cut], text[cut:]}} {
			got := newTextStats(terms)
			want := &refTextStats{TextStats: *newTextStats(terms)}
			for _, p := range parts {
				got.add(p)
				want.add(p)
			}
			got.finish()
			want.finish()
			if got.Bytes != want.Bytes || got.Chars != want.Chars || got.Words != want.Words || got.Lines != want.Lines ||
				got.Sentences != want.Sentences || got.capped != want.capped || !maps.Equal(got.function, want.function) ||
				!maps.Equal(got.terms, want.terms) || got.Language() != want.Language() {
				t.Fatalf("terms %v, %q:\n got %+v\nwant %+v", terms, text, got, want.TextStats)
			}
		}
	}
}

// TestCountTextMatchesReference compares TextStats with the reference
// on random texts.
func TestCountTextMatchesReference(t *testing.T) {
	texts := statsTexts(1, 3000)
	texts = append(texts, strings.Join(texts[:300], " "), "", "\n", "İN İN", strings.Repeat("the der le ", 30))
	for _, text := range texts {
		statsAgree(t, text)
	}
}

// FuzzCountTextReference compares TextStats with the reference on any
// text (go test -fuzz FuzzCountTextReference).
func FuzzCountTextReference(f *testing.F) {
	for _, s := range statsTexts(2, 50) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		statsAgree(t, text)
	})
}

// TestMaxFunctionWord checks maxFunctionWord: no function word is longer
// in runes, and it is at most 8.
func TestMaxFunctionWord(t *testing.T) {
	n := 0
	for w := range langIndex {
		n = max(n, utf8.RuneCountInString(w))
	}
	if n != maxFunctionWord || n > 8 {
		t.Fatalf("the longest function word has %d runes, maxFunctionWord is %d", n, maxFunctionWord)
	}
}
