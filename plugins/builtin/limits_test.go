package builtin_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// proseText returns n bytes of Markdown-like prose: headings, paragraphs of
// sentences, built in memory by repeating one block (the chunkers' work
// and memory depend on the text's shape, not on its variety).
func proseText(n int) []byte {
	var b strings.Builder
	words := strings.Fields("the engine splits every document into chunks of text that fit a model's window and keeps their offsets so a reader can find them again")
	for s := 0; b.Len() < 64<<10; s++ {
		if s%40 == 0 {
			fmt.Fprintf(&b, "## Section %d\n\n", s/40)
		}
		for w := range 12 + s%9 {
			word := words[(s*7+w)%len(words)]
			if w == 0 {
				word = strings.ToUpper(word[:1]) + word[1:]
			}
			b.WriteString(word)
			b.WriteByte(' ')
		}
		b.WriteString("again.")
		if s%6 == 5 {
			b.WriteString("\n\n")
		} else {
			b.WriteByte(' ')
		}
	}
	block := b.String()
	return bytes.Repeat([]byte(block), n/len(block)+1)[:n]
}

// TestLargestInputs: through the sandbox, the largest input each step
// reads whole (chunk's MaxChunkInput, extract-text's MaxWholeInput for
// plain text) succeeds or fails with `limit:`, never by exhausting the
// step's memory; one byte more is `limit:` up front. The peak guest
// memory (the run's report) stays under the manifest's limit with a
// margin. DOCEX_LIMITS_MEASURE=1 also runs the largest plain text that
// extracts (MaxText, 40 s) and logs the runs of the QA probe (chunk at 30
// and 50 MiB, extract-text at 60 MiB).
func TestLargestInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds large inputs")
	}
	mans := manifests(t)
	type tc struct {
		name, step string
		size       int
		params     map[string]string
		want       string // "" for success, else in the error
	}
	tests := []tc{
		{"chunk recursive max", "chunk", steps.MaxChunkInput, map[string]string{"size": "8192"}, ""},
		{"chunk recursive max, too many chunks", "chunk", steps.MaxChunkInput, map[string]string{"size": "800"}, "limit: "},
		{"chunk max+1", "chunk", steps.MaxChunkInput + 1, map[string]string{"size": "4096"}, "limit: input is"},
		{"extract-text text max", "extract-text", steps.MaxWholeInput, nil, "limit: extracted text exceeds"},
	}
	if os.Getenv("DOCEX_LIMITS_MEASURE") != "" {
		tests = append(tests,
			tc{"chunk sentence max", "chunk", steps.MaxChunkInput, map[string]string{"strategy": "sentence", "size": "8192"}, ""},
			tc{"chunk structure max", "chunk", steps.MaxChunkInput, map[string]string{"strategy": "structure", "size": "8192"}, ""},
			tc{"chunk recursive 30 MiB", "chunk", 30 << 20, map[string]string{"size": "4000"}, "?"},
			tc{"chunk recursive 50.3 MiB", "chunk", 52_740_000, map[string]string{"size": "4000"}, "?"},
			tc{"chunk sentence 50.3 MiB", "chunk", 52_740_000, map[string]string{"strategy": "sentence", "size": "4000"}, "?"},
			tc{"chunk structure 50.3 MiB", "chunk", 52_740_000, map[string]string{"strategy": "structure", "size": "4000"}, "?"},
			tc{"chunk fixed 50.3 MiB", "chunk", 52_740_000, map[string]string{"strategy": "fixed", "size": "4000"}, "?"},
			tc{"chunk recursive 50.3 MiB size 800", "chunk", 52_740_000, map[string]string{"size": "800"}, "?"},
			// 40 s in the sandbox (counting the words?), too slow for
			// every run: its memory is the text's and half as much.
			tc{"extract-text text MaxText", "extract-text", steps.MaxText, nil, ""},
			tc{"extract-text 60 MiB", "extract-text", 60 << 20, nil, "?"},
			tc{"extract-text 67,000,000 B", "extract-text", 67_000_000, nil, "?"},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mans[tt.step]
			memLimit := int64(m.Limits.MemoryPages) * 65536
			res, err := run(t, tt.step, bytesDoc("big.txt", "text/plain", proseText(tt.size)), tt.params)
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			t.Logf("%s (%d bytes): %d derived, err %v; peak guest memory %.1f MiB of %d MiB, %v",
				tt.name, tt.size, len(res.Derived), err, float64(res.Report.PeakMemoryBytes)/(1<<20), memLimit>>20, res.Report.Duration)
			switch {
			case tt.want == "?":
				return
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want != "" && (!errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want ErrPluginStatusError with %q", err, tt.want)
			}
			// A margin for the Go runtime's own growth: an eighth of
			// the limit.
			if res.Report.PeakMemoryBytes > memLimit-memLimit/8 {
				t.Errorf("peak guest memory %d bytes, limit %d", res.Report.PeakMemoryBytes, memLimit)
			}
		})
	}
}
