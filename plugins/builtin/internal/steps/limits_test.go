package steps

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestChunksMemory: the strategies do not list the pieces they cut the
// text into (a word each here, 4 million of them), and a count past
// MaxChunks is counted, not kept: what Chunks allocates is its chunks'
// spans, whatever the text.
func TestChunksMemory(t *testing.T) {
	text := strings.Repeat("ab cd. ", 4<<20/7*2) // 8 MiB: words, sentences, no paragraphs
	for _, tt := range []struct {
		strategy string
		size     int
		want     error
	}{
		{"recursive", 2000, nil},
		{"sentence", 2000, nil},
		{"structure", 2000, nil},
		{"fixed", 2000, nil},
		{"recursive", 10, ErrLimit},
		{"sentence", 10, ErrLimit},
		{"structure", 10, ErrLimit},
		{"fixed", 10, ErrLimit},
	} {
		var err error
		n := allocated(func() { _, err = Chunks(text, ChunkOptions{Strategy: tt.strategy, Size: tt.size}) })
		if !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
			t.Fatalf("%s size %d: err = %v, want %v", tt.strategy, tt.size, err, tt.want)
		}
		// MaxChunks spans of 40 bytes, grown by append: under 4 MiB
		// (it was over 100 MiB, a piece listed per word).
		if n > 4<<20 {
			t.Errorf("%s size %d: Chunks allocated %d bytes for %d of text", tt.strategy, tt.size, n, len(text))
		}
	}
}

// TestChunkLimits: chunk reads up to MaxChunkInput and fails past it, or
// past MaxChunks, with ErrLimit before emitting anything; it copies
// neither the input nor the chunks.
func TestChunkLimits(t *testing.T) {
	big := strings.Repeat("x", MaxChunkInput+1)
	for _, tt := range []struct {
		name   string
		text   string
		params map[string]string
		want   string
	}{
		{"input over the limit", big, map[string]string{"size": "1048576"}, "limit: input is 67108865 bytes"},
		{"too many chunks", big[:MaxChunks*4+1], map[string]string{"size": "4", "overlap": "0"}, "limit: 16385 chunks, more than 16384"},
	} {
		env := newEnv("a.txt", "text/plain", tt.text, tt.params)
		if err := Chunk(env); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tt.want) || len(env.derived) > 0 {
			t.Fatalf("%s: err = %v, %d derived, want %q", tt.name, err, len(env.derived), tt.want)
		}
	}
	text := big[:MaxChunkInput]
	env := &countEnv{memEnv: newEnv("a.txt", "text/plain", text, map[string]string{"size": "8192"})}
	// The input read whole, the spans, the chunks' metadata: no copy of
	// the input beside it.
	n := allocated(func() {
		if err := Chunk(env); err != nil {
			t.Fatal(err)
		}
	})
	if env.emitted != MaxChunkInput/8192 || n > MaxChunkInput+MaxChunkInput/8 {
		t.Errorf("chunk emitted %d chunks, allocated %d bytes for %d of input", env.emitted, n, len(text))
	}
}

// countEnv is a memEnv that counts what is emitted instead of keeping it.
type countEnv struct {
	*memEnv
	emitted int
}

func (e *countEnv) Emit(string, string, []byte, []KV) error { e.emitted++; return nil }

// TestExtractTextLimits: plain text and Markdown are read up to
// MaxWholeInput, and their text is at most MaxText (`limit:` past each),
// as the other formats' is; the text is decoded into one buffer, without
// the input beside it.
func TestExtractTextLimits(t *testing.T) {
	for _, tt := range []struct {
		name, ct string
		text     string
		want     string // "" for success
		alloc    int    // what it may allocate, beside 1 MiB of buffers
	}{
		{"text of MaxText", "text/plain", strings.Repeat("x", MaxText), "", MaxText},
		{"text over MaxText", "text/plain", strings.Repeat("x", MaxText+1), "limit: extracted text exceeds 50331648 bytes", MaxText},
		{"text of MaxWholeInput", "text/plain", strings.Repeat("x", MaxWholeInput), "limit: extracted text exceeds", MaxText},
		{"text over MaxWholeInput", "text/plain", strings.Repeat("x", MaxWholeInput+1), "limit: input is 67108865 bytes", 0},
		// Windows-1252 text doubles in UTF-8: the buffer of the input's
		// size, then one of MaxText.
		{"Windows-1252 text over MaxText", "text/plain", strings.Repeat("\xe9", MaxText/2+1), "limit: extracted text exceeds", MaxText/2 + MaxText},
		// The decoded text and the text left, about its size.
		{"Markdown of MaxWholeInput, less text", "text/markdown", strings.Repeat("**bold** ", MaxWholeInput/9), "", MaxWholeInput * 2},
		{"Markdown over MaxText", "text/markdown", strings.Repeat("plain ", MaxText/6+1), "limit: extracted text exceeds", (MaxText + 6) * 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := &countEnv{memEnv: newEnv("a.txt", tt.ct, tt.text, map[string]string{"format": "auto"})}
			err := ExtractText(env)
			// What reading the text allocates (counting its words
			// makes garbage of its own, not kept).
			n := allocated(func() { _, _ = ExtractFormat(env.in, "auto") })
			switch {
			case tt.want == "" && (err != nil || env.emitted != 1):
				t.Fatalf("err = %v, %d emitted", err, env.emitted)
			case tt.want != "" && (!errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tt.want) || env.emitted != 0):
				t.Fatalf("err = %v, %d emitted, want %q", err, env.emitted, tt.want)
			}
			if limit := uint64(tt.alloc + 1<<20); n > limit {
				t.Errorf("extract-text allocated %d bytes for %d of input (at most %d)", n, len(tt.text), limit)
			}
		})
	}
}
