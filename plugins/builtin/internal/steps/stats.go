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
	word                                  []rune
	inWord                                bool
	lastNonSpace                          rune
	lastByte                              byte
	countTerms                            bool
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

func isNumber(t string) bool {
	for _, r := range t {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// Write counts p (which must hold whole runes; see Add).
func (s *TextStats) add(text string) {
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
