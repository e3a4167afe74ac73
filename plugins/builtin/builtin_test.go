package builtin_test

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// One sandbox and one compile of the shared module per test binary, into
// a compilation cache kept across runs (TestCacheDir): compiling the 5 MB
// module takes minutes under the race detector.
var shared struct {
	once    sync.Once
	sb      *sandbox.Sandbox
	plugins map[string]*sandbox.Plugin
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.sb != nil {
		shared.sb.Close(context.Background())
	}
	os.Exit(code)
}

// plugin returns the loaded built-in step name.
// testTimeout is the steps' timeout in these tests (see plugin).
const testTimeout = 30 * time.Minute

func plugin(t testing.TB, name string) (*sandbox.Sandbox, *sandbox.Plugin) {
	t.Helper()
	shared.once.Do(func() {
		ctx := context.Background()
		// The steps run under their manifests' limits but for time: a
		// correctness test must pass on a loaded machine (load 20: the
		// 4-million-object PDF took over its 60 s), so the timeout is 30
		// minutes; the instruction limits, which are deterministic, stay.
		if shared.sb, shared.err = sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir(), Ceilings: pluginapi.Limits{Timeout: testTimeout}}); shared.err != nil {
			return
		}
		var all []builtin.Step
		if all, shared.err = builtin.Steps(); shared.err != nil {
			return
		}
		shared.plugins = map[string]*sandbox.Plugin{}
		for _, s := range all {
			m, err := pluginapi.ParseManifest(s.Manifest)
			if err != nil {
				shared.err = err
				return
			}
			m.Limits.TimeoutMS = testTimeout.Milliseconds()
			if shared.plugins[s.Name], shared.err = shared.sb.Load(ctx, m, s.Module); shared.err != nil {
				return
			}
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.sb, shared.plugins[name]
}

func run(t testing.TB, step string, doc pluginapi.Document, params map[string]string) (*pluginapi.Result, error) {
	t.Helper()
	_, p := plugin(t, step)
	return p.Run(context.Background(), pluginapi.Call{TenantID: "t1", UserID: "u", Params: params, Input: doc})
}

func fileDoc(t testing.TB, path, contentType string) pluginapi.Document {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytesDoc(filepath.Base(path), contentType, b)
}

func bytesDoc(name, contentType string, b []byte) pluginapi.Document {
	return pluginapi.Document{Name: name, ContentType: contentType, Size: int64(len(b)), Content: bytes.NewReader(b)}
}

const (
	ctDOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	ctXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

func TestSteps(t *testing.T) {
	all, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(builtin.Names()) {
		t.Fatalf("%d steps", len(all))
	}
	for _, s := range all {
		m, err := pluginapi.ParseManifest(s.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if m.Entry != "docex_run_"+strings.ReplaceAll(s.Name, "-", "_") {
			t.Errorf("%s: entry %q", s.Name, m.Entry)
		}
		if m.Has(pluginapi.CapDocumentsLookup) || m.Has(pluginapi.CapMetadataRead) {
			t.Errorf("%s asks for more than it uses: %v", s.Name, m.Capabilities)
		}
		if _, p := plugin(t, s.Name); p == nil {
			t.Fatalf("%s not loaded", s.Name)
		}
	}
	if !builtin.IsBuiltin("chunk") || builtin.IsBuiltin("wordcount") {
		t.Fatal("IsBuiltin")
	}
}

// TestExtractText runs extract-text in the sandbox on real files of every
// format.
func TestExtractText(t *testing.T) {
	tests := []struct {
		file, contentType, format string
		pages                     int
		want                      string // a phrase of the text
	}{
		{"quality/pdf/refcard-a4.pdf", "application/pdf", "pdf", 3, "Octave"},
		{"quality/pdf/gropdf-apt-get.8.pdf", "application/pdf", "pdf", 0, "apt-get"},
		{"quality/pdf/gs-apt-get.8.pdf", "application/octet-stream", "pdf", 0, "package"},
		{"quality/pdf/default-testpage.pdf", "application/pdf", "pdf", 1, ""},
		{"quality/docx/charis-faq.docx", ctDOCX, "docx", 0, "Charis"},
		{"quality/html/policy.html-ap-flowcharts.html", "text/html", "html", 0, "Maintainer script flowcharts"},
		{"files/debian.csv", "text/csv", "csv", 0, "bookworm"},
		{"files/iso_3166-1.json", "application/json", "json", 0, "Switzerland"},
		{"files/charis-design.md", "text/markdown", "markdown", 0, "Charis"},
		{"files/sheet.xlsx", ctXLSX, "xlsx", 2, "bookworm"},
		{"quality/ref/pdf/gs-apt-get.8.pdf.txt", "text/plain", "text", 0, "apt-get"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			res, err := run(t, "extract-text", fileDoc(t, filepath.Join("testdata", tt.file), tt.contentType), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Derived) != 1 {
				t.Fatalf("derived %d documents", len(res.Derived))
			}
			d := res.Derived[0]
			text := string(d.Content)
			if !strings.HasPrefix(d.ContentType, "text/plain") || !utf8.ValidString(text) || !strings.Contains(text, tt.want) {
				t.Fatalf("derived %s %q: %.300q", d.Name, d.ContentType, text)
			}
			if d.Metadata["source_format"] != tt.format || d.Metadata["text_words"].(float64) < 1 && tt.want != "" {
				t.Fatalf("metadata %v", d.Metadata)
			}
			if tt.format == "text" && d.Metadata["text_language"] != "en" { // an English man page
				t.Fatalf("language: metadata %v", d.Metadata)
			}
			if tt.pages > 0 && d.Metadata["source_pages"] != float64(tt.pages) {
				t.Fatalf("pages %v, want %d", d.Metadata["source_pages"], tt.pages)
			}
			if res.Metadata["text_extracted"] != true {
				t.Fatalf("input metadata %v", res.Metadata)
			}
			t.Logf("%s: %d bytes of text, %v, %s, peak guest memory %d MiB", tt.file, len(text), d.Metadata, res.Report.Duration, res.Report.PeakMemoryBytes>>20)
		})
	}
	t.Run("unsupported", func(t *testing.T) {
		_, err := run(t, "extract-text", bytesDoc("x.bin", "application/octet-stream", []byte{0, 1, 2, 3}), nil)
		if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), "unsupported:") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad format param", func(t *testing.T) {
		_, err := run(t, "extract-text", bytesDoc("a.txt", "text/plain", []byte("hi")), map[string]string{"format": "rtf"})
		// Refused by the sandbox (the manifest declares the values) before
		// the step runs.
		if !errors.Is(err, pluginapi.ErrInvalidParams) || !strings.Contains(err.Error(), `parameter "format": "rtf" is not one of auto, pdf`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestChunk checks, in the sandbox, that every chunk is the exact span of
// the input its offsets name, for every strategy.
func TestChunk(t *testing.T) {
	ref, err := os.ReadFile("testdata/quality/ref/pdf/refcard-a4.pdf.txt")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile("testdata/files/charis-design.md")
	for _, tt := range []struct {
		strategy string
		input    []byte
		params   map[string]string
	}{
		{"recursive", ref, nil},
		{"fixed", ref, map[string]string{"size": "300", "overlap": "30"}},
		{"sentence", ref, map[string]string{"size": "400"}},
		{"structure", md, map[string]string{"size": "800"}},
	} {
		t.Run(tt.strategy, func(t *testing.T) {
			params := map[string]string{"strategy": tt.strategy}
			for k, v := range tt.params {
				params[k] = v
			}
			res, err := run(t, "chunk", bytesDoc("doc.txt", "text/plain", tt.input), params)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Derived) < 2 || res.Metadata["chunk_count"] != float64(len(res.Derived)) {
				t.Fatalf("%d chunks, metadata %v", len(res.Derived), res.Metadata)
			}
			size := 512
			if s, ok := tt.params["size"]; ok {
				fmt.Sscan(s, &size)
			}
			for i, d := range res.Derived {
				m := d.Metadata
				start, end := int(m["chunk_start"].(float64)), int(m["chunk_end"].(float64))
				if m["chunk_index"] != float64(i) || string(tt.input[start:end]) != string(d.Content) || m["chunk_strategy"] != tt.strategy {
					t.Fatalf("chunk %d: metadata %v does not match its content %q", i, m, d.Content)
				}
				if n := utf8.RuneCount(d.Content); n > size || m["chunk_chars"] != float64(n) {
					t.Fatalf("chunk %d has %d characters (size %d)", i, n, size)
				}
			}
		})
	}
	t.Run("bad overlap", func(t *testing.T) {
		// Against the default size (512) the step checks it itself; with
		// a size given, the manifest's less_than does (params_test.go).
		_, err := run(t, "chunk", bytesDoc("a.txt", "text/plain", []byte("hi")), map[string]string{"overlap": "600"})
		if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), "invalid parameter: overlap") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("size not an int", func(t *testing.T) {
		_, err := run(t, "chunk", bytesDoc("a.txt", "text/plain", []byte("hi")), map[string]string{"size": "big"})
		if !errors.Is(err, pluginapi.ErrInvalidParams) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestChunkFixedLossless: through the sandbox, fixed chunks without
// overlap concatenate back to the input exactly, white space included
// (they were trimmed, and windows of white space dropped).
func TestChunkFixedLossless(t *testing.T) {
	text := "  Title  \n\n\n\n\n\n\n\n  body text\t\n   "
	res, err := run(t, "chunk", bytesDoc("a.txt", "text/plain", []byte(text)), map[string]string{"strategy": "fixed", "size": "8", "overlap": "0"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, d := range res.Derived {
		if start := int(d.Metadata["chunk_start"].(float64)); start != b.Len() {
			t.Fatalf("chunk %d starts at %d, want %d", i, start, b.Len())
		}
		b.Write(d.Content)
	}
	if b.String() != text || res.Metadata["chunk_count"] != float64(5) {
		t.Fatalf("%v chunks concatenate to %q, want %q", res.Metadata["chunk_count"], b.String(), text)
	}
}

func TestRedactPII(t *testing.T) {
	text := "Mail ann.lee+x@example.co.uk or call +44 20 7946 0958. Card 4111 1111 1111 1111 (and 4111 1111 1111 1112, not one). " +
		"IBAN GB82 WEST 1234 5698 7654 32 and DE89370400440532013000; bad GB82WEST12345698765433. " +
		"Hosts 192.168.10.254, 999.1.1.1, 2001:db8::8a2e:370:7334 and std::vector. Ticket EMP-123456. " +
		"SSN 123-45-6789 (666-12-3456 is none)."
	res, err := run(t, "redact-pii", bytesDoc("a.txt", "text/plain", []byte(text)), map[string]string{"patterns": `{"employee":"EMP-[0-9]{6}"}`})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Derived[0].Content)
	for _, secret := range []string{"ann.lee", "7946", "4111 1111 1111 1111", "WEST 1234", "DE89370400440532013000", "192.168.10.254", "2001:db8", "EMP-123456", "123-45-6789"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q left in %q", secret, out)
		}
	}
	for _, kept := range []string{"4111 1111 1111 1112", "GB82WEST12345698765433", "999.1.1.1", "std::vector", "666-12-3456"} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q (not PII) was redacted: %q", kept, out)
		}
	}
	want := map[string]float64{"pii_email": 1, "pii_phone": 1, "pii_card": 1, "pii_iban": 2, "pii_ipv4": 1, "pii_ipv6": 1, "pii_ssn": 1, "pii_employee": 1, "pii_total": 9}
	for k, v := range want {
		if res.Metadata[k] != v || res.Derived[0].Metadata[k] != v {
			t.Errorf("%s = %v / %v, want %v", k, res.Metadata[k], res.Derived[0].Metadata[k], v)
		}
	}
	for k, v := range res.Metadata {
		if s, ok := v.(string); ok && strings.Contains(text, s) {
			t.Errorf("metadata %s carries a value from the text: %q", k, s)
		}
	}
	for _, bad := range []map[string]string{{"kinds": "email,passport"}, {"patterns": `{"x":"("}`}, {"patterns": `{"x":"a*"}`}, {"patterns": "nope"}} {
		if _, err := run(t, "redact-pii", bytesDoc("a.txt", "text/plain", []byte(text)), bad); !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), "invalid parameter") {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

// TestRedactPIIIdentifiers: through the sandbox, identifiers and figures
// shaped like digit groups are left alone, and only the phone number
// beside them is redacted (each of them was redacted as a phone number).
func TestRedactPIIIdentifiers(t *testing.T) {
	text := "Invoice 2024-0001-17 (order 2024-001-17, part 1234-5678-90) for years 2019 2020 2021; " +
		"write to 51 Franklin Street, Boston, MA 02110-1301 or call 1-800-555-1234."
	res, err := run(t, "redact-pii", bytesDoc("a.txt", "text/plain", []byte(text)), map[string]string{"kinds": "phone"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(text, "1-800-555-1234", "[PHONE]", 1)
	if got := string(res.Derived[0].Content); got != want || res.Metadata["pii_phone"] != 1.0 {
		t.Fatalf("%q (%v phone numbers), want %q", got, res.Metadata["pii_phone"], want)
	}
}

// TestRedactPIISSN: through the sandbox, US Social Security numbers are
// redacted as [SSN] and counted in pii_ssn, by default and when kinds
// names ssn; numbers outside the SSA's rules, identifiers and phone
// numbers are not SSNs.
func TestRedactPIISSN(t *testing.T) {
	text := "Employee Jane Roe, SSN 123-45-6789, spouse 078-05-1121; call 555-123-4567 or 1-800-555-1234. " +
		"Not SSNs: 000-12-3456, 666-12-3456, 900-12-3456, 123-00-6789, 123-45-0000, ref 2024-123-45-6789, 123-45-6789-01, " +
		"123 45 6789, 123456789, invoice 2024-0001-17, Boston, MA 02110-1301."
	ssns := strings.NewReplacer("SSN 123-45-6789,", "SSN [SSN],", "spouse 078-05-1121;", "spouse [SSN];")
	phones := strings.NewReplacer("555-123-4567", "[PHONE]", "1-800-555-1234", "[PHONE]")
	// Without the ssn kind, an SSN is no phone number either, also with a
	// leading 0 (078-05-1121 was redacted as one).
	phonesOnly := phones
	for _, tt := range []struct {
		params     map[string]string
		want       string
		ssn, phone any // nil: not counted
	}{
		{nil, phones.Replace(ssns.Replace(text)), 2.0, 2.0},
		{map[string]string{"kinds": "ssn"}, ssns.Replace(text), 2.0, nil},
		{map[string]string{"kinds": "phone, ssn"}, phones.Replace(ssns.Replace(text)), 2.0, 2.0},
		{map[string]string{"kinds": "phone"}, phonesOnly.Replace(text), nil, 2.0},
	} {
		res, err := run(t, "redact-pii", bytesDoc("a.txt", "text/plain", []byte(text)), tt.params)
		if err != nil {
			t.Fatalf("%v: %v", tt.params, err)
		}
		if got := string(res.Derived[0].Content); got != tt.want {
			t.Errorf("%v:\n got %q\nwant %q", tt.params, got, tt.want)
		}
		for _, md := range []map[string]any{res.Metadata, res.Derived[0].Metadata} {
			if md["pii_ssn"] != tt.ssn || md["pii_phone"] != tt.phone {
				t.Errorf("%v: pii_ssn %v, pii_phone %v, want %v, %v", tt.params, md["pii_ssn"], md["pii_phone"], tt.ssn, tt.phone)
			}
		}
	}
}

// redactEnv is steps.Env over a text, keeping what the step emits and
// records (the native half of TestRedactPIIForms).
type redactEnv struct {
	paramEnv
	out  string
	meta map[string]any
}

func (e *redactEnv) SetMetadata(k string, v any) error { e.meta[k] = v; return nil }
func (e *redactEnv) Emit(_, _ string, data []byte, _ []steps.KV) error {
	e.out = string(data)
	return nil
}

// TestRedactPIIForms runs each case natively (the Go code the guest is
// built from) and through the sandbox (steps.wasm), which must agree:
// tracking numbers, SSN-shaped numbers with the ssn kind off, national
// phone forms, alternative last digits and patterns named like a
// built-in kind. counts are the pii_* keys to check (others unchecked).
func TestRedactPIIForms(t *testing.T) {
	phone := map[string]string{"kinds": "phone"}
	for _, tt := range []struct {
		params  map[string]string
		in, out string
		counts  map[string]float64
	}{
		// A UPS tracking number is not a phone number (01 2345 6784 was
		// one), spaced or not; a phone number beside one still is.
		{phone, "track 1Z 999 AA1 01 2345 6784 x", "track 1Z 999 AA1 01 2345 6784 x", map[string]float64{"pii_phone": 0}},
		{phone, "track 1Z999AA10123456784 x", "track 1Z999AA10123456784 x", map[string]float64{"pii_phone": 0}},
		{nil, "track 1Z 999 AA1 01 2345 6784, call 555-123-4567", "track 1Z 999 AA1 01 2345 6784, call [PHONE]", map[string]float64{"pii_phone": 1, "pii_total": 1}},
		{nil, "UPS 1Z 999 AA1 01 2345 6784 / 0151 23456789", "UPS 1Z 999 AA1 01 2345 6784 / [PHONE]", map[string]float64{"pii_phone": 1}},
		// An alternative last digit (or up to four) after a slash is part
		// of the number ("/8" was left beside [PHONE]).
		{phone, "call 555-123-4567/8 now", "call [PHONE] now", map[string]float64{"pii_phone": 1}},
		// Two numbers joined by a slash: the second was left whole.
		{phone, "call 555-123-4567/555-123-4568 now", "call [PHONE]/[PHONE] now", map[string]float64{"pii_phone": 2}},
		{phone, "fax (555) 123-4567/555-123-4568", "fax [PHONE]/[PHONE]", map[string]float64{"pii_phone": 2}},
		// Two German numbers joined by a slash: the second's area code was
		// read as the first's alternative ending ("/030") and the rest
		// left beside it.
		{phone, "030 1234567/030 7654321", "[PHONE]/[PHONE]", map[string]float64{"pii_phone": 2}},
		{phone, "Tel. 030 1234567/0151 23456789, Fax", "Tel. [PHONE]/[PHONE], Fax", map[string]float64{"pii_phone": 2}},
		{phone, "call 555-123-4567/555 123 4568", "call [PHONE]/[PHONE]", map[string]float64{"pii_phone": 2}},
		// An alternative ending followed by a short figure stays one.
		{phone, "030 1234567/030 12", "[PHONE] 12", map[string]float64{"pii_phone": 1}},
		// An identifier's groups after a slash stay.
		{phone, "ref 2024/0123-4567-89", "ref 2024/0123-4567-89", map[string]float64{"pii_phone": 0}},
		{phone, "call 555-123-4567/89.", "call [PHONE].", map[string]float64{"pii_phone": 1}},
		{phone, "Berlin 030 1234567/8, ask", "Berlin [PHONE], ask", map[string]float64{"pii_phone": 1}},
		{phone, "call 555-123-4567/8h", "call [PHONE]/8h", map[string]float64{"pii_phone": 1}},
		{phone, "call 555-123-4567/12345 x", "call [PHONE]/12345 x", map[string]float64{"pii_phone": 1}},
		{phone, "call 555-123-4567/8-9 or 555-123-4567/8é", "call [PHONE]/8-9 or [PHONE]/8é", map[string]float64{"pii_phone": 2}},
		// An SSN-shaped number (3, 2 and 4 digits joined by dashes) is no
		// phone number, also with the ssn kind off (012-34-5678 was one).
		{phone, "ssn 012-34-5678 x", "ssn 012-34-5678 x", map[string]float64{"pii_phone": 0}},
		{phone, "SSN 078-05-1121 30 days", "SSN 078-05-1121 30 days", map[string]float64{"pii_phone": 0}},
		{phone, "id 000-12-3456, tel 012 34 5678", "id 000-12-3456, tel [PHONE]", map[string]float64{"pii_phone": 1}},
		{nil, "ssn 012-34-5678 x", "ssn [SSN] x", map[string]float64{"pii_phone": 0, "pii_ssn": 1}},
		{nil, "ref 012-00-5678 x", "ref 012-00-5678 x", map[string]float64{"pii_phone": 0, "pii_ssn": 0}},
		// Spanish national numbers: nine digits from 6 to 9, 3-3-3,
		// 3-2-2-2 or (8 and 9) 2-3-2-2 with single spaces.
		{phone, "móvil 612 345 678.", "móvil [PHONE].", map[string]float64{"pii_phone": 1}},
		{phone, "móvil 612 34 56 78, fijo 91 123 45 67 o 912 34 56 78", "móvil [PHONE], fijo [PHONE] o [PHONE]", map[string]float64{"pii_phone": 3}},
		{phone, "llame al 900 123 456", "llame al [PHONE]", map[string]float64{"pii_phone": 1}},
		{phone, "tel +34 612 345 678 x", "tel [PHONE] x", map[string]float64{"pii_phone": 1}},
		{phone, "figures 712 845 690 123 and 1 612 345 678", "figures 712 845 690 123 and 1 612 345 678", map[string]float64{"pii_phone": 0}},
		{phone, "total 612 345 678,50 EUR", "total 612 345 678,50 EUR", map[string]float64{"pii_phone": 0}},
		{phone, "total 612 345 678 EUR", "total [PHONE] EUR", map[string]float64{"pii_phone": 1}}, // documented: a lone figure of that form is one
		{phone, "ids 612-345-678 612.345.678 512 345 678 61 234 56 78", "ids 612-345-678 612.345.678 512 345 678 61 234 56 78", map[string]float64{"pii_phone": 0}},
		// German national and international forms.
		{phone, "Berlin 030 1234567, mobil 0151 23456789", "Berlin [PHONE], mobil [PHONE]", map[string]float64{"pii_phone": 2}},
		{phone, "Berlin +49 30 1234567.", "Berlin [PHONE].", map[string]float64{"pii_phone": 1}},
		// A pattern named like a built-in kind counts as that kind, beside
		// its detector (a pipeline stored before ssn was a kind has one).
		{map[string]string{"patterns": `{"ssn": "SSN#[0-9]{9}"}`}, "SSN#123456789 and 123-45-6789", "[SSN] and [SSN]", map[string]float64{"pii_ssn": 2, "pii_total": 2}},
		{map[string]string{"kinds": "email", "patterns": `{"ssn": "[0-9]{3}-[0-9]{2}-[0-9]{4}"}`}, "a@b.io 666-12-3456", "[EMAIL] [SSN]", map[string]float64{"pii_email": 1, "pii_ssn": 1, "pii_total": 2}},
		{map[string]string{"kinds": "ssn", "patterns": `{"ssn": "[0-9]{3}-[0-9]{2}-[0-9]{4}", "email": "x@corp"}`}, "666-12-3456 123-45-6789 x@corp", "[SSN] [SSN] [EMAIL]", map[string]float64{"pii_ssn": 2, "pii_email": 1, "pii_total": 3}},
	} {
		name := fmt.Sprintf("%v/%s", tt.params, tt.in)
		env := &redactEnv{paramEnv: paramEnv{memEnv: memEnv{in: steps.Input{Name: "a.txt", ContentType: "text/plain", Size: int64(len(tt.in)), Content: strings.NewReader(tt.in)}},
			params: tt.params}, meta: map[string]any{}}
		if err := steps.RedactPII(env); err != nil {
			t.Errorf("%s: native: %v", name, err)
		} else if env.out != tt.out {
			t.Errorf("%s: native:\n got %q\nwant %q", name, env.out, tt.out)
		}
		res, err := run(t, "redact-pii", bytesDoc("a.txt", "text/plain", []byte(tt.in)), tt.params)
		if err != nil {
			t.Errorf("%s: sandbox: %v", name, err)
			continue
		}
		if got := string(res.Derived[0].Content); got != tt.out {
			t.Errorf("%s: sandbox:\n got %q\nwant %q", name, got, tt.out)
		}
		for k, v := range tt.counts {
			if n, _ := env.meta[k].(int); float64(n) != v || res.Metadata[k] != v {
				t.Errorf("%s: %s = %v natively, %v in the sandbox, want %v", name, k, env.meta[k], res.Metadata[k], v)
			}
		}
	}
}

func TestOtherSteps(t *testing.T) {
	csv := fileDoc(t, "testdata/files/debian.csv", "text/csv")
	res, err := run(t, "csv-to-json", csv, map[string]string{"infer_types": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if j := string(res.Derived[0].Content); !strings.Contains(j, `"series":"bookworm"`) || res.Metadata["csv_columns"] != 8.0 {
		t.Fatalf("csv-to-json: %v %.200s", res.Metadata, j)
	}
	res, err = run(t, "json-extract", fileDoc(t, "testdata/files/iso_3166-1.json", "application/json"),
		map[string]string{"fields": "first=3166-1[0].name,code=3166-1[0].alpha_2,missing=nope"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["first"] != "Aruba" || res.Metadata["code"] != "AW" || res.Metadata["json_fields_found"] != 2.0 {
		t.Fatalf("json-extract: %v", res.Metadata)
	}
	if _, err := run(t, "json-extract", fileDoc(t, "testdata/files/iso_3166-1.json", "application/json"), nil); !errors.Is(err, pluginapi.ErrInvalidParams) {
		t.Fatalf("json-extract without fields: %v", err)
	}
	res, err = run(t, "stats", fileDoc(t, "testdata/quality/ref/pdf/refcard-a4.pdf.txt", "text/plain"), map[string]string{"top": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["stats_words"].(float64) < 1000 || res.Metadata["stats_language"] != "en" || strings.Count(res.Metadata["stats_top_terms"].(string), ",") != 4 {
		t.Fatalf("stats: %v", res.Metadata)
	}
	for file, want := range map[string]string{
		"quality/pdf/refcard-a4.pdf": "application/pdf", "quality/docx/charis-faq.docx": ctDOCX, "files/sheet.xlsx": ctXLSX,
		"quality/html/html-autolink.html": "text/html", "files/debian.csv": "text/csv", "files/iso_3166-1.json": "application/json",
		"files/charis-design.md": "text/markdown",
	} {
		res, err := run(t, "detect-type", fileDoc(t, filepath.Join("testdata", file), "application/octet-stream"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Metadata["detected_type"] != want || res.Metadata["detected_matches_declared"] != false {
			t.Errorf("%s: %v, want %s", file, res.Metadata, want)
		}
	}
}

// zipDoc builds a DOCX whose word/document.xml is inflated from n bytes of
// spaces; declared is the uncompressed size its header states.
func zipBomb(t testing.TB, n int, declared uint64) []byte {
	t.Helper()
	var deflated bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&deflated, zlib.BestCompression)
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	for i := 0; i < n; i += len(chunk) {
		zw.Write(chunk[:min(len(chunk), n-i)])
	}
	zw.Close()
	raw := deflated.Bytes()[2 : deflated.Len()-4] // zlib -> raw deflate
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	ct, _ := w.Create("[Content_Types].xml")
	ct.Write([]byte(`<?xml version="1.0"?><Types/>`))
	fw, err := w.CreateRaw(&zip.FileHeader{Name: "word/document.xml", Method: zip.Deflate,
		CompressedSize64: uint64(len(raw)), UncompressedSize64: declared, CRC32: 0})
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(raw)
	w.Close()
	return b.Bytes()
}

// pdfBomb builds a one-page PDF whose content stream inflates to n bytes.
func pdfBomb(n int) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	chunk := bytes.Repeat([]byte("0 0 m "), 1<<18)
	for i := 0; i < n; i += len(chunk) {
		zw.Write(chunk)
	}
	zw.Close()
	var b bytes.Buffer
	offs := []int{}
	obj := func(s string) { offs = append(offs, b.Len()); b.WriteString(s) }
	b.WriteString("%PDF-1.7\n")
	obj("1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n")
	obj("2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n")
	obj("3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n")
	obj(fmt.Sprintf("4 0 obj << /Length %d /Filter /FlateDecode >> stream\n", z.Len()))
	b.Write(z.Bytes())
	b.WriteString("\nendstream endobj\n")
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 5\n0000000000 65535 f \n")
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer << /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", x)
	return b.Bytes()
}

// lineReader is n bytes of one CSV line, made up as it is read.
type lineReader int64

func (l lineReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(l) {
		return 0, fmt.Errorf("EOF")
	}
	n := min(int64(len(p)), int64(l)-off)
	for i := range p[:n] {
		if (off+int64(i))%10 == 9 {
			p[i] = ','
		} else {
			p[i] = 'a'
		}
	}
	return int(n), nil
}

// rss returns the process's resident set and its peak (VmRSS, VmHWM) in
// MiB; resetPeak restarts the peak (Linux /proc/self/clear_refs).
func rss() (cur, peak int) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		var kb int
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kb); err == nil {
			cur = kb >> 10
		}
		if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil {
			peak = kb >> 10
		}
	}
	return
}

func resetPeak() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// TestHostileInputs: each hostile input ends in a typed error within the
// step's limits, and the host's memory stays bounded (peak RSS reported).
// The bombs are just above the limits they hit (compressing more costs
// minutes under the race detector; the limits stop at the same point).
func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds large inputs")
	}
	nested := func() pluginapi.Document {
		return bytesDoc("deep.html", "text/html", []byte(strings.Repeat("<div>", 200_000)+"deep"+strings.Repeat("</div>", 200_000)))
	}
	line := func() pluginapi.Document {
		return pluginapi.Document{Name: "line.csv", ContentType: "text/csv", Size: 100 << 20, Content: lineReader(100 << 20)}
	}
	tests := []struct {
		name, step string
		doc        func() pluginapi.Document
		want       string // the step's error kind in the message
	}{
		{"zip bomb docx", "extract-text", func() pluginapi.Document { return bytesDoc("bomb.docx", ctDOCX, zipBomb(t, 80<<20, 80<<20)) }, "limit:"},
		// archive/zip refuses an entry that inflates past its declared size.
		{"zip bomb docx, size understated", "extract-text", func() pluginapi.Document { return bytesDoc("bomb.docx", ctDOCX, zipBomb(t, 80<<20, 1000)) }, "malformed input:"},
		{"pdf compression bomb", "extract-text", func() pluginapi.Document { return bytesDoc("bomb.pdf", "application/pdf", pdfBomb(96<<20)) }, "limit:"},
		{"deeply nested html", "extract-text", nested, "limit:"},
		{"100 MB single-line csv", "extract-text", line, "limit:"},
		{"100 MB single-line csv to json", "csv-to-json", line, "limit:"},
		// A single page may not take the file's whole budget of work, nor
		// hold more glyphs than its memory.
		{"pdf page of 4 million content-stream objects", "extract-text", func() pluginapi.Document {
			return bytesDoc("ops.pdf", "application/pdf", onePagePDF(strings.Repeat("q Q ", 2_000_001)))
		}, "limit: pdf: limit: page 1 runs more than 4000000 content-stream objects"},
		{"pdf page showing a 16 MiB string", "extract-text", func() pluginapi.Document {
			return bytesDoc("glyphs.pdf", "application/pdf", onePagePDF("BT /F1 1 Tf ("+strings.Repeat("x", 16<<20)+") Tj ET"))
		}, "limit: pdf: limit: page 1 shows more than 200000 glyphs"},
		{"junk pdf", "extract-text", func() pluginapi.Document {
			return bytesDoc("junk.pdf", "application/pdf", []byte("%PDF-1.4\nthis is not a PDF\n"))
		}, "malformed input:"},
	}
	plugin(t, "extract-text") // compile first: its memory is not the inputs'
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc()
			runtime.GC()
			debug.FreeOSMemory()
			base, _ := rss()
			resetPeak()
			res, err := run(t, tt.step, doc, nil)
			_, peak := rss()
			if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrPluginStatusError with %q", err, tt.want)
			}
			t.Logf("%s: %v; guest memory %d MiB, host peak RSS %d MiB (%+d MiB over the %d MiB before)",
				tt.name, err, res.Report.PeakMemoryBytes>>20, peak, peak-base, base)
			if peak-base > 512 {
				t.Errorf("host peak RSS grew by %d MiB", peak-base)
			}
		})
	}
}

// onePagePDF is a one-page PDF drawing content with font F1 (Helvetica).
func onePagePDF(content string) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(format string, args ...any) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj ", len(offs))
		fmt.Fprintf(&b, format, args...)
		b.WriteString(" endobj\n")
	}
	b.WriteString("%PDF-1.4\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /Font << /F1 5 0 R >> >> >>")
	obj("<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>")
	obj("<< /Length %d >> stream\n%s\nendstream", len(content), content)
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, x)
	return b.Bytes()
}

// TestJSONExtractMostFields: json-extract's documented maximum of fields
// works under the host's 256 metadata keys per invocation (the step adds
// json_fields_found), and one more is refused as a parameter, not by the
// host ("pdk: invalid argument").
func TestJSONExtractMostFields(t *testing.T) {
	fields := func(n int) string {
		fs := make([]string, n)
		for i := range fs {
			fs[i] = "k" + strconv.Itoa(i) + "=total"
		}
		return strings.Join(fs, ",")
	}
	doc := []byte(`{"total":12}`)
	res, err := run(t, "json-extract", bytesDoc("a.json", "application/json", doc), map[string]string{"fields": fields(255)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata["json_fields_found"] != 255.0 || res.Metadata["k254"] != 12.0 {
		t.Fatalf("255 fields: %d keys, json_fields_found %v", len(res.Metadata), res.Metadata["json_fields_found"])
	}
	_, err = run(t, "json-extract", bytesDoc("a.json", "application/json", doc), map[string]string{"fields": fields(256)})
	if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), "invalid parameter: fields: at most 255") {
		t.Fatalf("256 fields: %v", err)
	}
}

// TestJSONExtractUnstorableStrings: through the sandbox, a string field
// the host would refuse as metadata fails with the documented kind.
func TestJSONExtractUnstorableStrings(t *testing.T) {
	for doc, want := range map[string]string{
		`{"a":"` + strings.Repeat("x", 70000) + `"}`: `limit: field "a" is a string of 70000 bytes, limit 65536`,
		`{"a":"x\u0000y"}`:                           `malformed input: field "a" is a string holding a NUL character`,
	} {
		_, err := run(t, "json-extract", bytesDoc("a.json", "application/json", []byte(doc)), map[string]string{"fields": "a"})
		if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20s: %v, want %s", doc, err, want)
		}
	}
}

// TestJSONExtractNesting: through the sandbox, json-extract refuses JSON
// nested deeper than 1000 levels with limit:, as extract-text does (it
// took up to 10,000 and failed past them with malformed input:).
func TestJSONExtractNesting(t *testing.T) {
	for _, n := range []int{1001, 20_000} {
		doc := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		for _, step := range []string{"json-extract", "extract-text"} {
			var params map[string]string
			if step == "json-extract" {
				params = map[string]string{"fields": "a"}
			}
			_, err := run(t, step, bytesDoc("deep.json", "application/json", doc), params)
			want := "limit: json nesting deeper than 1000"
			if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s, %d levels: %v, want %s", step, n, err, want)
			}
		}
	}
}

// TestExtractTextNonUTF8: through the sandbox, HTML and CSV bytes that are
// not UTF-8 come out as Windows-1252 readings, the derived text valid
// UTF-8 (chunk refused the raw bytes extract-text wrote before).
func TestExtractTextNonUTF8(t *testing.T) {
	for _, c := range []struct{ name, ct, in, want string }{
		{"l2.html", "text/html", "<html><body>caf\xe9 2</body></html>", "café 2\n"},
		{"l3.html", "text/html", "<html><head><meta charset=\"iso-8859-1\"></head><body>caf\xe9</body></html>", "café\n"},
		{"l.csv", "text/csv", "a,b\ncaf\xe9,1\n", "a\tb\ncafé\t1\n"},
	} {
		res, err := run(t, "extract-text", bytesDoc(c.name, c.ct, []byte(c.in)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(res.Derived[0].Content); got != c.want || !utf8.ValidString(got) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if _, err := run(t, "chunk", bytesDoc("x.txt", "text/plain; charset=utf-8", res.Derived[0].Content), nil); err != nil {
			t.Errorf("%s: chunk: %v", c.name, err)
		}
	}
}

// TestNonUTF8CSVToJSONAndStats: through the sandbox, csv-to-json and stats
// read bytes that are not UTF-8 as Windows-1252, as extract-text does
// (csv-to-json wrote U+FFFD, stats split words at them).
func TestNonUTF8CSVToJSONAndStats(t *testing.T) {
	res, err := run(t, "csv-to-json", bytesDoc("l.csv", "text/csv", []byte("name,city\ncaf\xe9,Z\xfcrich\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Derived[0].Content), "[\n{\"name\":\"café\",\"city\":\"Zürich\"}\n]\n"; got != want {
		t.Errorf("csv-to-json: %q, want %q", got, want)
	}
	res, err = run(t, "stats", bytesDoc("l.txt", "text/plain", []byte("caf\xe9 caf\xe9 na\xefve")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Metadata; m["stats_words"] != 3.0 || m["stats_top_terms"] != "café:2,naïve:1" || m["stats_bytes"] != 15.0 {
		t.Errorf("stats: %v", m)
	}
}

// TestExtractTextMarkdownTags: through the sandbox, Markdown's HTML tags
// with attributes are removed, their words kept.
func TestExtractTextMarkdownTags(t *testing.T) {
	in := "c <span class=\"x\">attr</span> d <a href=\"http://x\">link</a>\n\n<div align=\"center\">block</div> and a < b\n"
	res, err := run(t, "extract-text", bytesDoc("t.md", "text/markdown", []byte(in)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Derived[0].Content), "c attr d link\n\nblock and a < b\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}
