package builtin_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex/plugins/builtin/internal/quality"
	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
)

// corpusFormat is one format of the quality corpus: the reference tool's
// output is DIR/ref/<format>/<file>.txt.
type corpusFormat struct {
	format, contentType string
	minF1               float64
	minDocs             int
}

var corpusFormats = []corpusFormat{
	{"pdf", "application/pdf", 0.95, 20},
	{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 0.98, 10},
	{"html", "text/html", 0.98, 20},
}

// scoreDir extracts every document of dir/<format> natively and scores it
// against dir/ref/<format>.
func scoreDir(t *testing.T, dir string, f corpusFormat) (scores map[string]quality.Score) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, f.format, "*."+f.format))
	slices.Sort(files)
	scores = map[string]quality.Score{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := os.ReadFile(filepath.Join(dir, "ref", f.format, filepath.Base(file)+".txt"))
		if err != nil {
			t.Fatalf("reference of %s: %v", file, err)
		}
		x, err := steps.ExtractFormat(steps.Input{Name: filepath.Base(file), ContentType: f.contentType,
			Size: int64(len(data)), Content: bytes.NewReader(data)}, "")
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		scores[filepath.Base(file)] = quality.Compare(x.Text, string(ref))
	}
	return scores
}

func checkScores(t *testing.T, f corpusFormat, scores map[string]quality.Score, minDocs int) {
	t.Helper()
	if len(scores) < minDocs {
		t.Errorf("%s: %d documents, want at least %d", f.format, len(scores), minDocs)
	}
	var report strings.Builder
	sum, worst := 0.0, 1.0
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range scores {
			if !yield(k) {
				return
			}
		}
	}) {
		s := scores[name]
		fmt.Fprintf(&report, "  %-45s F1 %.4f (P %.4f R %.4f, %d/%d tokens)\n", name, s.F1, s.Precision, s.Recall, s.Got, s.Want)
		sum += s.F1
		worst = min(worst, s.F1)
		if s.F1 < f.minF1 {
			t.Errorf("%s %s: F1 %.4f below %.2f", f.format, name, s.F1, f.minF1)
		}
	}
	if len(scores) > 0 {
		t.Logf("%s: %d documents, mean F1 %.4f, worst %.4f\n%s", f.format, len(scores), sum/float64(len(scores)), worst, report.String())
	}
}

// TestExtractionQualityCommitted scores the small committed corpus
// (testdata/quality, references made by pdftotext and pandoc by
// testdata/corpus/fetch.sh's commands).
func TestExtractionQualityCommitted(t *testing.T) {
	for _, f := range corpusFormats {
		checkScores(t, f, scoreDir(t, "testdata/quality", f), 1)
	}
}

// TestExtractionQuality scores the full corpus gathered by
// testdata/corpus/fetch.sh into $DOCEX_CORPUS (make corpus-test): at least
// 20 PDFs, 10 DOCX and 20 HTML pages, each at or above its F1 bar.
func TestExtractionQuality(t *testing.T) {
	dir := os.Getenv("DOCEX_CORPUS")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: DOCEX_CORPUS is not set (.ci/run fetches the corpus)")
		}
		t.Skip("set DOCEX_CORPUS to a corpus made by testdata/corpus/fetch.sh")
	}
	for _, f := range corpusFormats {
		checkScores(t, f, scoreDir(t, dir, f), f.minDocs)
	}
}
