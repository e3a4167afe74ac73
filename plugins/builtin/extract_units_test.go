package builtin_test

import (
	"bytes"
	"os"
	"testing"
)

// TestExtractTextUnits checks that extract-text on plain text costs less
// than 6e9 instruction units per MiB in the sandbox (units are the same on
// every run, whatever the load). It cost 1.37e10 while the word counting
// (text_words, text_language) ran its loops inside large functions (in
// the sandbox a loop's every turn pays for the function around it) and
// made a string of every word: 8 MiB took 1.1e11 units, 32 MiB 4.4e11.
func TestExtractTextUnits(t *testing.T) {
	page, err := os.ReadFile("testdata/quality/ref/pdf/gs-apt-get.8.pdf.txt")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat(page, (4<<20)/len(page)+1)[:4<<20]
	res, err := run(t, "extract-text", bytesDoc("x.txt", "text/plain", data), nil)
	if err != nil {
		t.Fatal(err)
	}
	perMiB := float64(res.Report.Instructions) * (1 << 20) / float64(len(data))
	t.Logf("%.3g instruction units per MiB", perMiB)
	if perMiB > 6e9 {
		t.Fatalf("extract-text: %.3g instruction units per MiB of plain text, want under 6e9", perMiB)
	}
}
