package steps

import (
	"os"
	"strings"
	"testing"
)

// redactBenchText is about 1 MiB of extracted text (a man page's PDF text,
// repeated), with the PII the step redacts sprinkled in.
func redactBenchText(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile("../../testdata/quality/ref/pdf/gs-apt-get.8.pdf.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var s strings.Builder
	for s.Len() < 1<<20 {
		s.Write(b)
		s.WriteString("\nContact jane.doe@example.com, +49 30 1234567 or 030 1234567/030 7654321; card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, host 10.0.0.1 or fe80::1, SSN 123-45-6789.\n")
	}
	return s.String()[:1<<20]
}

// BenchmarkRedact runs the Redactor with every built-in kind on 1 MiB of
// text (ns/op is ns per MiB), and the reference (refRedact: every
// expression over the whole text) in the same run: on extracted text with
// PII, and on digits and spaces only (TestRedactCost's worst case).
func BenchmarkRedact(b *testing.B) {
	r, err := NewRedactor(nil, nil, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, text := range []struct{ name, text string }{
		{"text", redactBenchText(b)},
		{"digits", strings.Repeat("4111 1111 1111 1112 030 ", (1<<20)/24+1)[:1<<20]},
	} {
		for _, impl := range []struct {
			name   string
			redact func(string) (string, map[string]int)
		}{{"findAll", r.Redact}, {"reference", func(s string) (string, map[string]int) { return refRedact(r, s) }}} {
			b.Run(text.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(text.text)))
				for b.Loop() {
					impl.redact(text.text)
				}
			})
		}
	}
}
