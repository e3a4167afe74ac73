package steps

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// Chunk limits.
const (
	// MaxChunkInput is the largest text chunk reads (it is read whole).
	MaxChunkInput = 64 << 20
	// MaxChunks is the most chunks one run emits (the sandbox's cap on
	// derived documents per invocation).
	MaxChunks = 16384
)

// span is a byte range of the text with its length in characters.
type span struct{ start, end, runes int }

// ChunkOptions configures Chunks.
type ChunkOptions struct {
	Strategy   string   // fixed, recursive, structure, sentence
	Size       int      // characters per chunk (default 512)
	Overlap    int      // characters shared by consecutive chunks (default 50, at most size/4)
	Separators []string // recursive: tried in order (default "\n\n", "\n", ". ", " ", "")
}

// ChunkSpan is one chunk: text[Start:End] (byte offsets into the input),
// with the heading it falls under (structure strategy).
type ChunkSpan struct {
	Start, End int
	Section    string
}

// Chunk splits a text document into derived documents, one per chunk, each
// with metadata chunk_index, chunk_start and chunk_end (byte offsets into
// the input), chunk_chars and chunk_strategy.
func Chunk(env Env) error {
	opt, err := chunkParams(env)
	if err != nil {
		return err
	}
	in := env.Input()
	data, err := in.ReadAll(MaxChunkInput)
	if err != nil {
		return err
	}
	if !utf8.Valid(data) {
		return Errorf(ErrMalformed, "input is not UTF-8 text (run extract-text first)")
	}
	// The input is read whole, and neither it nor the chunks are copied
	// (data is never written to again): with the spans of at most
	// MaxChunks chunks, the step's memory is the input's and a little
	// more, so that an input up to MaxChunkInput fits its sandbox.
	text := unsafe.String(unsafe.SliceData(data), len(data))
	chunks, err := Chunks(text, opt)
	if err != nil {
		return err
	}
	for i, c := range chunks {
		meta := []KV{
			{"chunk_index", i},
			{"chunk_start", c.Start},
			{"chunk_end", c.End},
			{"chunk_chars", utf8.RuneCountInString(text[c.Start:c.End])},
			{"chunk_strategy", opt.Strategy},
		}
		if c.Section != "" {
			meta = append(meta, KV{"chunk_section", truncateUTF8(c.Section, 1024)})
		}
		name := derivedName(in.Name, fmt.Sprintf(".chunk-%05d.txt", i))
		if err := env.Emit(name, "text/plain; charset=utf-8", data[c.Start:c.End:c.End], meta); err != nil {
			return err
		}
	}
	if err := env.SetMetadata("chunk_count", len(chunks)); err != nil {
		return err
	}
	return env.SetMetadata("chunk_strategy", opt.Strategy)
}

// chunkParams reads chunk's parameters (strategy, size, overlap,
// separators) into its options.
func chunkParams(env Env) (ChunkOptions, error) {
	p := params{env: env}
	opt := ChunkOptions{
		Strategy: p.oneOf("strategy", "recursive", "fixed", "recursive", "structure", "sentence"),
		Size:     p.integer("size", 512, 1, 1<<20),
	}
	// The default overlap fits any size: 50, or a quarter of a smaller
	// chunk.
	opt.Overlap = p.integer("overlap", min(50, opt.Size/4), 0, 1<<20-1)
	if s, ok := env.Param("separators"); ok {
		opt.Separators = parseSeparators(s)
	}
	if p.err == nil && opt.Overlap >= opt.Size {
		p.fail("overlap", "%d must be smaller than size %d", opt.Overlap, opt.Size)
	}
	return opt, p.err
}

// parseSeparators reads a JSON-like list of separators given as a
// comma-separated string with \n, \t and \\ escapes ("\n\n,\n, ").
func parseSeparators(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		r := strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`, `\c`, ",")
		out = append(out, r.Replace(part))
	}
	return out
}

// Chunks splits text per opt. Fixed chunks are the windows as they are
// (with overlap 0 they concatenate back to text); the other strategies'
// chunks are trimmed of surrounding white space, and those left empty
// dropped. It returns ErrParam for bad options and ErrLimit beyond
// MaxChunks. Its memory beside text is that of at most MaxChunks chunks:
// the pieces the strategies split text into are packed as they are cut,
// never listed, so that a large input with many small pieces fails with
// ErrLimit (counting them all) rather than exhausting memory.
func Chunks(text string, opt ChunkOptions) ([]ChunkSpan, error) {
	if opt.Size <= 0 {
		opt.Size = 512
	}
	if opt.Overlap < 0 || opt.Overlap >= opt.Size {
		return nil, Errorf(ErrParam, "overlap %d must be in [0, size)", opt.Overlap)
	}
	if opt.Separators == nil {
		opt.Separators = []string{"\n\n", "\n", ". ", " ", ""}
	}
	var spans []ChunkSpan
	count := 0
	keep := func(c ChunkSpan) {
		if count++; count <= MaxChunks {
			spans = append(spans, c)
		}
	}
	// trimmed keeps s trimmed of white space, unless that leaves it empty.
	trimmed := func(section string) func(span) {
		return func(s span) {
			st, en := s.start, s.end
			for st < en {
				r, n := utf8.DecodeRuneInString(text[st:])
				if !unicode.IsSpace(r) {
					break
				}
				st += n
			}
			for en > st {
				r, n := utf8.DecodeLastRuneInString(text[:en])
				if !unicode.IsSpace(r) {
					break
				}
				en -= n
			}
			if st < en {
				keep(ChunkSpan{Start: st, End: en, Section: section})
			}
		}
	}
	all := span{0, len(text), utf8.RuneCountInString(text)}
	switch opt.Strategy {
	case "fixed":
		fixedSpans(text, all, opt.Size, opt.Overlap, func(s span) {
			if s.start < s.end { // not trimmed: lossless
				keep(ChunkSpan{Start: s.start, End: s.end})
			}
		})
	case "", "recursive":
		p := newPacker(opt.Size, opt.Overlap, trimmed(""))
		splitRecursive(text, all, opt.Separators, opt.Size, p.add)
		p.finish()
	case "sentence":
		p := newPacker(opt.Size, opt.Overlap, trimmed(""))
		sentences(text, func(s span) { splitRecursive(text, s, []string{" ", ""}, opt.Size, p.add) })
		p.finish()
	case "structure":
		seps := opt.Separators[min(1, len(opt.Separators)):]
		sections(text, func(sec section) {
			p := newPacker(opt.Size, 0, trimmed(sec.heading))
			splitKeep(text, sec.span, "\n\n", func(para span) { splitRecursive(text, para, seps, opt.Size, p.add) })
			p.finish()
		})
	default:
		return nil, Errorf(ErrParam, "strategy %q is not one of fixed, recursive, structure, sentence", opt.Strategy)
	}
	if count > MaxChunks {
		return nil, Errorf(ErrLimit, "%d chunks, more than %d per run: use a larger size", count, MaxChunks)
	}
	return spans, nil
}

// advance returns the byte offset n characters after off.
func advance(text string, off, n int) int {
	for ; n > 0 && off < len(text); n-- {
		_, w := utf8.DecodeRuneInString(text[off:])
		off += w
	}
	return off
}

// fixedSpans cuts s into windows of size characters, each starting
// size-overlap characters after the previous one, passing each to yield.
func fixedSpans(text string, s span, size, overlap int, yield func(span)) {
	for start, left := s.start, s.runes; ; {
		n := min(size, left)
		end := advance(text, start, n)
		yield(span{start, end, n})
		if n == left {
			return
		}
		start = advance(text, start, size-overlap)
		left -= size - overlap
	}
}

// splitKeep splits s after each occurrence of sep (the separator stays with
// the piece before it), passing the pieces, which cover s exactly, to
// yield.
func splitKeep(text string, s span, sep string, yield func(span)) {
	start := s.start
	for start < s.end {
		i := strings.Index(text[start:s.end], sep)
		end := s.end
		if i >= 0 {
			end = start + i + len(sep)
		}
		yield(span{start, end, utf8.RuneCountInString(text[start:end])})
		start = end
	}
}

// splitRecursive splits s by the first separator it contains, then splits
// pieces still longer than size by the next separators; "" splits by
// characters. It passes the pieces, in order, to yield.
func splitRecursive(text string, s span, seps []string, size int, yield func(span)) {
	if s.runes <= size {
		yield(s)
		return
	}
	for i, sep := range seps {
		if sep == "" {
			fixedSpans(text, s, size, 0, yield)
			return
		}
		if !strings.Contains(text[s.start:s.end], sep) {
			continue
		}
		splitKeep(text, s, sep, func(p span) { splitRecursive(text, p, seps[i+1:], size, yield) })
		return
	}
	fixedSpans(text, s, size, 0, yield)
}

// packer merges consecutive pieces into chunks of at most size characters
// (a piece longer than size is a chunk of its own); each new chunk starts
// with the previous chunk's trailing pieces that fit in overlap
// characters. It holds the pieces of one chunk only.
type packer struct {
	size, overlap int
	buf           []span // the pieces of the chunk being packed
	n             int    // their characters
	emit          func(span)
}

func newPacker(size, overlap int, emit func(span)) *packer {
	return &packer{size: size, overlap: overlap, emit: emit}
}

// add packs the next piece, emitting the chunk it does not fit in.
func (p *packer) add(s span) {
	for len(p.buf) > 0 && p.n+s.runes > p.size {
		p.emit(span{p.buf[0].start, p.buf[len(p.buf)-1].end, p.n})
		// Back up over trailing pieces that fit in the overlap (never
		// the chunk's first: the next chunk starts after it).
		k, o := len(p.buf), 0
		for k-1 > 0 && o+p.buf[k-1].runes <= p.overlap {
			k--
			o += p.buf[k].runes
		}
		p.buf = p.buf[:copy(p.buf, p.buf[k:])]
		p.n = o
	}
	p.buf = append(p.buf, s)
	p.n += s.runes
}

// finish emits the last chunk.
func (p *packer) finish() {
	if len(p.buf) > 0 {
		p.emit(span{p.buf[0].start, p.buf[len(p.buf)-1].end, p.n})
	}
	p.buf, p.n = p.buf[:0], 0
}

type section struct {
	heading string
	span    span
}

// sections splits Markdown-like text at headings: ATX lines ("# ...") and
// setext ones (a line of text underlined by a line of = or -), passing the
// sections, in order, to yield.
func sections(text string, yield func(section)) {
	cur := section{span: span{start: 0}}
	start := func(h string, at int) {
		if at > cur.span.start {
			cur.span.end = at
			yield(cur)
			cur = section{heading: h, span: span{start: at}}
		} else {
			cur.heading = h
		}
	}
	off := 0
	prevOff, prev, prevHeading := -1, "", false
	for off < len(text) {
		end := strings.IndexByte(text[off:], '\n')
		next := len(text)
		if end >= 0 {
			next = off + end + 1
		}
		line := strings.TrimRight(text[off:next], "\r\n")
		h, ok := headingText(line)
		switch {
		case ok:
			start(h, off)
		case prevOff >= 0 && !prevHeading && setextUnderline(line) && strings.TrimSpace(prev) != "" && len(prev)-len(strings.TrimLeft(prev, " ")) <= 3:
			start(strings.TrimSpace(prev), prevOff)
			ok = true
		}
		prevOff, prev, prevHeading = off, line, ok
		off = next
	}
	cur.span.end = len(text)
	if cur.span.end > cur.span.start {
		yield(cur)
	}
}

// setextUnderline reports whether line is a setext heading's underline:
// up to 3 spaces, then only '=' or only '-', then spaces.
func setextUnderline(line string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	t = strings.TrimRight(t, " \t")
	return t != "" && (strings.Trim(t, "=") == "" || strings.Trim(t, "-") == "")
}

func headingText(line string) (string, bool) {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || !strings.HasPrefix(t, "#") {
		return "", false
	}
	h := strings.TrimLeft(t, "#")
	if n := len(t) - len(h); n > 6 || (h != "" && h[0] != ' ' && h[0] != '\t') {
		return "", false
	}
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(h), "#")), true
}

// abbreviations that do not end a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "sr": true, "jr": true, "st": true,
	"vs": true, "etc": true, "e.g": true, "i.e": true, "cf": true, "no": true, "fig": true, "eq": true,
	"approx": true, "inc": true, "ltd": true, "co": true, "vol": true, "p": true, "pp": true,
}

// sentences splits text into sentence spans covering it: a sentence ends
// after '.', '!' or '?' (and closing quotes or brackets) followed by white
// space, unless the word before is a known abbreviation or a single
// letter; a blank line also ends one. It passes the sentences, in order,
// to yield.
func sentences(text string, yield func(span)) {
	start := 0
	emit := func(end int) {
		if end > start {
			yield(span{start, end, utf8.RuneCountInString(text[start:end])})
			start = end
		}
	}
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == '\n' && i+1 < len(text) && text[i+1] == '\n':
			j := i
			for j < len(text) && (text[j] == '\n' || text[j] == '\r' || text[j] == ' ' || text[j] == '\t') {
				j++
			}
			emit(j)
			i = j
			continue
		case r == '.' || r == '!' || r == '?' || r == '。' || r == '！' || r == '？':
			j := i + w
			for j < len(text) && strings.ContainsRune(`"')]»”’`, rune(text[j])) {
				j++
			}
			if j < len(text) && !unicode.IsSpace(rune(text[j])) && r < 0x80 {
				break
			}
			if r == '.' && isAbbreviation(text[start:i]) {
				break
			}
			for j < len(text) && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r') {
				j++
			}
			emit(j)
			i = j
			continue
		}
		i += w
	}
	emit(len(text))
}

func isAbbreviation(before string) bool {
	k := len(before)
	for k > 0 && before[k-1] != ' ' && before[k-1] != '\n' && before[k-1] != '\t' && before[k-1] != '(' {
		k--
	}
	w := strings.ToLower(before[k:])
	if utf8.RuneCountInString(w) == 1 {
		r, _ := utf8.DecodeRuneInString(w)
		return unicode.IsLetter(r)
	}
	return abbreviations[w]
}
