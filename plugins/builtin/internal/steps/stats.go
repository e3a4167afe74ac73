package steps

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTerms bounds the distinct terms stats counts; past it new terms are
// not counted (stats_terms_capped is set).
const maxTerms = 200_000

// TextStats are counts over a text.
type TextStats struct {
	Bytes, Chars, Words, Lines, Sentences int
	terms                                 map[string]int
	function                              map[string]int // function words, for the language
	capped                                bool
	// The word's first runes, UTF-8, in word[:wordBytes]: an array, not a
	// slice, so that counting stores no pointer (in the sandbox a slice
	// here cost half as much again, apparently the write barrier of a GC
	// cycle that lasts while nothing is allocated).
	word         [64 * utf8.UTFMax]byte
	wordBytes    int
	wordRunes    int // the runes in word
	inWord       bool
	lastNonSpace rune
	lastByte     byte
	countTerms   bool
}

func newTextStats(terms bool) *TextStats {
	s := &TextStats{countTerms: terms, function: map[string]int{}}
	if terms {
		s.terms = map[string]int{}
	}
	return s
}

// isWordRune reports whether r belongs to a word (letters, digits, marks).
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func (s *TextStats) endWord() {
	if !s.inWord {
		return
	}
	s.inWord = false
	s.Words++
	// Only terms and function words are looked up: a word longer than
	// every function word and no term is not even lowercased.
	if s.wordRunes >= 1 && s.wordRunes <= maxFunctionWord || s.countTerms && s.wordRunes >= 2 {
		s.lookUp()
	}
	s.wordBytes, s.wordRunes = 0, 0
}

// lookUp counts the word ended as a function word or a term. (A function
// of its own: in the sandbox a call pays for the whole function it
// enters, and most words end without a look-up.)
//
//go:noinline
func (s *TextStats) lookUp() {
	// strings.ToLower(string(s.word)), without a string per word (a map
	// index with string(bytes) copies nothing; functionWord's value is
	// the key to count under).
	var buf [64 * utf8.UTFMax]byte
	lower := appendLower(buf[:0], s.word[:s.wordBytes])
	if functionFilter.mayHold(lower) {
		if w, ok := functionWord[string(lower)]; ok {
			s.function[w]++
		}
	}
	if s.countTerms && s.wordRunes >= 2 && !stopwords[string(lower)] && !isNumber(string(lower)) {
		if _, ok := s.terms[string(lower)]; ok || len(s.terms) < maxTerms {
			s.terms[string(lower)]++
		} else {
			s.capped = true
		}
	}
}

// appendLower appends w, UTF-8, lowercased rune by rune (as
// strings.ToLower does) to dst. (A function of its own: in the sandbox
// each turn of a loop pays for the function around it, see add.)
//
//go:noinline
func appendLower(dst, w []byte) []byte {
	for i := 0; i < len(w); {
		if c := w[i]; c < utf8.RuneSelf {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(w[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += n
	}
	return dst
}

// maxFunctionWord is the most runes of a function word (langWords), at
// most the 8 of a word whose function is counted (TestMaxFunctionWord).
const maxFunctionWord = 5

func isNumber(t string) bool {
	for _, r := range t {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// Write counts p (which must hold whole runes; see Add).
//
// In the sandbox every backward jump of a Go function pays for the whole
// function (the wasm loop that holds its code: docs/sandbox.md), so the
// loops over bytes are in small functions of their own (go:noinline):
// add's loop goes from run to run, a run of ASCII letters and digits
// (asciiAlnumEnd, asciiWord) or of ASCII white space (asciiSpaceEnd,
// spaces), or one other rune (rune1), which it counts as the rune-by-rune
// loop before did (TestCountTextMatchesReference).
func (s *TextStats) add(text string) {
	for i := 0; i < len(text); {
		if j := asciiAlnumEnd(text, i); j > i {
			s.asciiWord(text[i:j])
			i = j
		} else if j := asciiSpaceEnd(text, i); j > i {
			s.spaces(text[i:j])
			i = j
		} else {
			i = s.rune1(text, i)
		}
	}
	s.Bytes += len(text)
	if len(text) > 0 {
		s.lastByte = text[len(text)-1]
	}
}

// asciiAlnumEnd returns the end of the run of ASCII letters and digits
// at text[i:] (i when there is none).
//
//go:noinline
func asciiAlnumEnd(text string, i int) int {
	for i < len(text) && isAlnum(text[i]) {
		i++
	}
	return i
}

// asciiSpaceEnd returns the end of the run of ASCII white space
// (unicode.IsSpace's: space, \t, \n, \v, \f, \r) at text[i:].
//
//go:noinline
func asciiSpaceEnd(text string, i int) int {
	for i < len(text) && (text[i] == ' ' || text[i] >= '\t' && text[i] <= '\r') {
		i++
	}
	return i
}

// asciiWord counts w, ASCII letters and digits, as word runes. Only the
// runes endWord looks at are kept: up to 64 with terms, else one more
// than a function word has (a longer word is none).
//
//go:noinline
func (s *TextStats) asciiWord(w string) {
	s.Chars += len(w)
	s.inWord = true
	s.lastNonSpace = rune(w[len(w)-1])
	keep := 64
	if !s.countTerms {
		keep = maxFunctionWord + 1
	}
	if n := min(len(w), keep-s.wordRunes); n > 0 {
		s.wordBytes += copy(s.word[s.wordBytes:], w[:n])
		s.wordRunes += n
	}
}

// spaces counts w, ASCII white space: it ends a word, and a sentence
// after '.', '!' or '?'.
//
//go:noinline
func (s *TextStats) spaces(w string) {
	s.Chars += len(w)
	s.endWord()
	s.Lines += strings.Count(w, "\n")
	if s.lastNonSpace == '.' || s.lastNonSpace == '!' || s.lastNonSpace == '?' {
		s.Sentences++
		s.lastNonSpace = 0
	}
}

// rune1 counts the rune at text[i] and returns the index after it.
//
//go:noinline
func (s *TextStats) rune1(text string, i int) int {
	r, n := utf8.DecodeRuneInString(text[i:])
	s.Chars++
	if isWordRune(r) {
		s.lastNonSpace = r
		s.inWord = true
		keep := 64
		if !s.countTerms {
			keep = maxFunctionWord + 1
		}
		if s.wordRunes < keep {
			s.wordBytes += utf8.EncodeRune(s.word[s.wordBytes:], r)
			s.wordRunes++
		}
		return i + n
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
	return i + n
}

func (s *TextStats) finish() {
	s.endWord()
	if s.Bytes > 0 && s.lastByte != '\n' {
		s.Lines++
	}
	if s.lastNonSpace != 0 && s.Words > 0 {
		s.Sentences++
	}
}

// TopTerms returns the n most frequent terms, most frequent first (ties
// alphabetical).
func (s *TextStats) TopTerms(n int) []TermCount {
	out := make([]TermCount, 0, len(s.terms))
	for t, c := range s.terms {
		out = append(out, TermCount{t, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Term < out[j].Term
	})
	return out[:min(n, len(out))]
}

// Language returns the ISO 639-1 code of the text's language, or "" when
// it cannot be told cheaply (see detectLanguage).
func (s *TextStats) Language() string { return detectLanguage(s.function) }

// TermCount is a term and how often it occurs.
type TermCount struct {
	Term  string
	Count int
}

// CountText returns the statistics of text.
func CountText(text string, terms bool) *TextStats {
	s := newTextStats(terms)
	s.add(text)
	s.finish()
	return s
}

// countReader streams r through s (a rune split across reads is kept).
func countReader(r io.Reader, s *TextStats) error {
	br := bufio.NewReaderSize(r, 64<<10)
	buf := make([]byte, 64<<10)
	carry := 0
	for {
		n, err := br.Read(buf[carry:])
		n += carry
		end := n
		if err == nil { // keep an incomplete rune for the next read
			for k := 1; k <= 3 && k <= end; k++ {
				if utf8.RuneStart(buf[end-k]) {
					if !utf8.FullRune(buf[end-k : end]) {
						end -= k
					}
					break
				}
			}
		}
		s.add(string(buf[:end]))
		carry = copy(buf, buf[end:n])
		if err == io.EOF {
			s.add(string(buf[:carry]))
			s.finish()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Stats records counts of a text document, read as extract-text reads
// plain text (decodeText): stats_bytes (the input's size), stats_chars,
// stats_words, stats_lines, stats_sentences, stats_top_terms
// ("term:count,...", stopwords and numbers left out) and stats_language
// when it can be told.
func Stats(env Env) error {
	top, err := statsParams(env)
	if err != nil {
		return err
	}
	in := env.Input()
	s := newTextStats(true)
	// The text is read as extract-text reads plain text; stats_bytes is
	// the input's size.
	if err := countReader(newTextReader(in.Reader()), s); err != nil {
		return err
	}
	s.Bytes = int(in.Size)
	var b strings.Builder
	for i, t := range s.TopTerms(top) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Term + ":" + strconv.Itoa(t.Count))
	}
	meta := []KV{
		{"stats_bytes", s.Bytes}, {"stats_chars", s.Chars}, {"stats_words", s.Words},
		{"stats_lines", s.Lines}, {"stats_sentences", s.Sentences}, {"stats_top_terms", topTermsText(b.String(), 4096)},
	}
	if s.capped {
		meta = append(meta, KV{"stats_terms_capped", true})
	}
	if lang := s.Language(); lang != "" {
		meta = append(meta, KV{"stats_language", lang})
	}
	for _, kv := range meta {
		if err := env.SetMetadata(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// statsParams reads stats' parameters: the number of top terms.
func statsParams(env Env) (int, error) {
	p := params{env: env}
	top := p.integer("top", 10, 0, 100)
	return top, p.err
}

// topTermsText is terms ("term:count,...") cut to at most max bytes at a
// comma, so that no term is cut or left without its count.
func topTermsText(terms string, max int) string {
	if len(terms) <= max {
		return terms
	}
	if i := strings.LastIndexByte(terms[:max+1], ','); i >= 0 {
		return terms[:i]
	}
	return ""
}

// functionFilter tells most words that are no function word without a
// map lookup (endWord).
var functionFilter = newWordFilter(langIndex)

// A wordFilter is a set of bits, one for each word of a set (wordBit): a
// word whose bit is clear is not in the set.
type wordFilter [64]uint64

func newWordFilter[V any](words map[string]V) *wordFilter {
	var f wordFilter
	for w := range words {
		b := wordBit([]byte(w))
		f[b/64] |= 1 << (b % 64)
	}
	return &f
}

// mayHold reports whether w's bit is set (w may be in the set).
func (f *wordFilter) mayHold(w []byte) bool {
	b := wordBit(w)
	return f[b/64]&(1<<(b%64)) != 0
}

// wordBit is a bit for w, not empty: its length, first and last bytes.
func wordBit(w []byte) uint {
	return (uint(len(w))*131 + uint(w[0])*31 + uint(w[len(w)-1])) % 4096
}
