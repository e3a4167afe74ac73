package builtin_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
)

// TestRedactCost reports what redact-pii costs per MiB of text in the
// sandbox (instruction units and time, warm) and natively (the same Go
// code, steps.RedactPII), on extracted text without PII, the same with
// PII in every 27 KiB, and a worst case: digits and spaces only, where
// every detector has to look at every byte. Reports only
// (DOCEX_STEPS_REPORT=1).
func TestRedactCost(t *testing.T) {
	reportsOnly(t)
	page, err := os.ReadFile("testdata/quality/ref/pdf/gs-apt-get.8.pdf.txt")
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	fill := func(parts ...string) []byte {
		var b bytes.Buffer
		for b.Len() < size {
			for _, p := range parts {
				b.WriteString(p)
			}
		}
		return b.Bytes()[:size]
	}
	pii := "\nContact jane.doe@example.com, +49 30 1234567 or 030 1234567/030 7654321; card 4111 1111 1111 1111, " +
		"IBAN GB82 WEST 1234 5698 7654 32, host 10.0.0.1 or fe80::1, SSN 123-45-6789.\n"
	t.Logf("load average at start: %s", loadAverage())
	t.Logf("%-8s %16s %12s %12s", "text", "units/MiB", "sandbox s", "native s")
	for _, in := range []struct {
		name string
		data []byte
	}{{"plain", fill(string(page))}, {"pii", fill(string(page), pii)}, {"digits", fill("4111 1111 1111 1112 030 ")}} {
		doc := bytesDoc("x.txt", "text/plain", in.data)
		if _, err := run(t, "redact-pii", bytesDoc("x.txt", "text/plain", []byte("warm")), nil); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		res, err := run(t, "redact-pii", doc, nil)
		box := time.Since(t0)
		if err != nil {
			t.Logf("%-8s %v after %.3f s", in.name, err, box.Seconds())
			continue
		}
		t0 = time.Now()
		env := &memEnv{in: steps.Input{Name: "x.txt", ContentType: "text/plain", Size: size, Content: bytes.NewReader(in.data)}}
		if err := steps.RedactPII(env); err != nil {
			t.Fatal(err)
		}
		nat := time.Since(t0)
		t.Logf("%-8s %16.3g %12.3f %12.3f", in.name, float64(res.Report.Instructions)*(1<<20)/float64(len(in.data)), box.Seconds(), nat.Seconds())
	}
	t.Logf("load average at end: %s", loadAverage())
}

// TestRedactPIIUnits checks that redact-pii on extracted text costs less
// than 1e11 instruction units per MiB in the sandbox (units are the same
// on every run, whatever the load). It cost 6.3e11 when every expression
// scanned the whole text: 4 MiB took a minute, the default budget (1e13)
// stopped it near 14 MiB of the 64 it reads; 3.9e10 since (findAll). On
// digits and spaces only (or dashes), where every byte may be in a number,
// it cost 5.2e11 while the number detectors ran their expressions over
// such a run; 8.2e10 since they look at one possible start at a time
// (findAnchored): under 2e11 there too.
func TestRedactPIIUnits(t *testing.T) {
	page, err := os.ReadFile("testdata/quality/ref/pdf/gs-apt-get.8.pdf.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		max  float64
	}{
		{"text", bytes.Repeat(page, (256<<10)/len(page)+1)[:256<<10], 1e11},
		{"digits and spaces", bytes.Repeat([]byte("4111 1111 1111 1112 030 "), (256<<10)/24+1)[:256<<10], 2e11},
		{"digits and dashes", bytes.Repeat([]byte("4111-1111-1111-1112-030-"), (256<<10)/24+1)[:256<<10], 2e11},
	} {
		res, err := run(t, "redact-pii", bytesDoc("x.txt", "text/plain", c.data), nil)
		if err != nil {
			t.Fatal(err)
		}
		perMiB := float64(res.Report.Instructions) * (1 << 20) / float64(len(c.data))
		t.Logf("%s: %.3g instruction units per MiB", c.name, perMiB)
		if perMiB > c.max {
			t.Errorf("redact-pii on %s: %.3g instruction units per MiB, want under %.3g", c.name, perMiB, c.max)
		}
	}
}
