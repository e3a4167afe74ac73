package quality

import (
	"strings"
	"unicode"
)

// ligatures are expanded before tokenizing (extractors differ on them).
var ligatures = strings.NewReplacer("ﬀ", "ff", "ﬁ", "fi", "ﬂ", "fl", "ﬃ", "ffi", "ﬄ", "ffl", "ﬅ", "st", "ﬆ", "st")

// Tokens splits text into lowercase tokens: maximal runs of letters and
// digits (so punctuation, list bullets and table rules do not count).
func Tokens(text string) []string {
	text = ligatures.Replace(text)
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Score is a token-level comparison.
type Score struct {
	Precision, Recall, F1 float64
	Got, Want             int // token counts
}

// Compare scores got against want (multisets of tokens: order is ignored,
// repetitions count).
func Compare(got, want string) Score {
	g, w := Tokens(got), Tokens(want)
	bag := map[string]int{}
	for _, t := range w {
		bag[t]++
	}
	common := 0
	for _, t := range g {
		if bag[t] > 0 {
			bag[t]--
			common++
		}
	}
	s := Score{Got: len(g), Want: len(w)}
	if len(g) == 0 && len(w) == 0 {
		s.Precision, s.Recall, s.F1 = 1, 1, 1
		return s
	}
	if len(g) > 0 {
		s.Precision = float64(common) / float64(len(g))
	}
	if len(w) > 0 {
		s.Recall = float64(common) / float64(len(w))
	}
	if s.Precision+s.Recall > 0 {
		s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
	}
	return s
}
