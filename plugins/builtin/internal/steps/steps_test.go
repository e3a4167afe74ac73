package steps

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/docex-dev/docex/tenancy"
)

// memEnv is an in-memory Env.
type memEnv struct {
	in      Input
	params  map[string]string
	meta    map[string]any
	derived []memDoc
}

type memDoc struct {
	name, contentType string
	data              []byte
	meta              []KV
}

func newEnv(name, ct, content string, params map[string]string) *memEnv {
	return &memEnv{in: Input{Name: name, ContentType: ct, Size: int64(len(content)), Content: strings.NewReader(content)},
		params: params, meta: map[string]any{}}
}

func (e *memEnv) Input() Input                  { return e.in }
func (e *memEnv) Param(n string) (string, bool) { v, ok := e.params[n]; return v, ok }

// errHostRefused is what the guest's SetMetadata returns when the host
// answers EINVAL.
var errHostRefused = errors.New("pdk: invalid argument")

// SetMetadata refuses, as the host does (docs/plugin-abi.md), a 257th
// distinct key and a string value over 64 KiB, not UTF-8 or holding a NUL.
func (e *memEnv) SetMetadata(k string, v any) error {
	if _, ok := e.meta[k]; !ok && len(e.meta) >= 256 {
		return errHostRefused
	}
	if s, ok := v.(string); ok && (len(s) > 64<<10 || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
		return errHostRefused
	}
	e.meta[k] = v
	return nil
}
func (e *memEnv) Log(string) {}
func (e *memEnv) Emit(n, ct string, d []byte, m []KV) error {
	e.derived = append(e.derived, memDoc{n, ct, bytes.Clone(d), m})
	return nil
}

func TestChunks(t *testing.T) {
	text := strings.Repeat("Alpha beta gamma. Delta epsilon zeta! Eta theta? ", 40) + "\n\n# Part two\n\nIota kappa lambda.\n\nMu nu xi omicron pi.\n"
	for _, strategy := range []string{"fixed", "recursive", "sentence", "structure"} {
		for _, size := range []int{1, 7, 64, 512, 100000} {
			overlap := min(size/10, 50)
			spans, err := Chunks(text, ChunkOptions{Strategy: strategy, Size: size, Overlap: overlap})
			if err != nil {
				t.Fatal(err)
			}
			checkSpans(t, text, spans, size, strategy == "fixed")
		}
	}
	spans, _ := Chunks(text, ChunkOptions{Strategy: "structure", Size: 512})
	if spans[len(spans)-1].Section != "Part two" {
		t.Fatalf("last section %q", spans[len(spans)-1].Section)
	}
	// Setext headings start sections too; a rule after a blank line or a
	// heading does not.
	setext := "Intro text.\n\nTitle one\n=========\n\nBody one.\n\n---\n\nStill one.\n\n  Title two\n  ---\nBody two.\n# Three\n---\nBody three.\n"
	spans, _ = Chunks(setext, ChunkOptions{Strategy: "structure", Size: 512})
	var secs []string
	for _, s := range spans {
		secs = append(secs, s.Section+"|"+strings.SplitN(setext[s.Start:s.End], "\n", 2)[0])
	}
	if want := []string{"|Intro text.", "Title one|Title one", "Title two|Title two", "Three|# Three"}; !slices.Equal(secs, want) {
		t.Fatalf("setext sections %q, want %q", secs, want)
	}
	// Defaults: 512 characters with 50 of overlap.
	spans, _ = Chunks(strings.Repeat("x", 1000), ChunkOptions{Strategy: "fixed", Size: 512, Overlap: 50})
	if len(spans) != 3 || spans[1].Start != 462 || spans[0].End != 512 {
		t.Fatalf("fixed defaults: %+v", spans)
	}
	if _, err := Chunks("x", ChunkOptions{Size: 10, Overlap: 10}); !errors.Is(err, ErrParam) {
		t.Fatalf("overlap = size: %v", err)
	}
	if _, err := Chunks(strings.Repeat("a ", MaxChunks+10), ChunkOptions{Strategy: "fixed", Size: 2, Overlap: 0}); !errors.Is(err, ErrLimit) {
		t.Fatalf("too many chunks: %v", err)
	}
}

// checkSpans checks chunks: in order, valid UTF-8, at most size
// characters; fixed ones untrimmed, each starting where the previous one's
// last overlap characters do (and the first at 0, the last at the end:
// nothing of text is lost); the others trimmed of white space.
func checkSpans(t *testing.T, text string, spans []ChunkSpan, size int, fixed bool) {
	t.Helper()
	prev := -1
	for i, s := range spans {
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End || s.Start < prev {
			t.Fatalf("span %d %+v out of order (prev start %d)", i, s, prev)
		}
		c := text[s.Start:s.End]
		if !utf8.ValidString(c) || utf8.RuneCountInString(c) > size || !fixed && strings.TrimSpace(c) != c {
			t.Fatalf("span %d %q: size %d", i, c, size)
		}
		if fixed && i > 0 && s.Start > spans[i-1].End {
			t.Fatalf("span %d %+v leaves a gap after %+v", i, s, spans[i-1])
		}
		prev = s.Start
	}
	if fixed && text != "" && (len(spans) == 0 || spans[0].Start != 0 || spans[len(spans)-1].End != len(text)) {
		t.Fatalf("fixed chunks %+v do not cover the %d bytes of text", spans, len(text))
	}
}

// TestChunksFixedLossless checks that fixed chunks are the windows as they
// are: nothing trimmed, no window of white space dropped, so that with no
// overlap they concatenate back to the input exactly (they were trimmed).
func TestChunksFixedLossless(t *testing.T) {
	for _, c := range []struct {
		text          string
		size, overlap int
		want          []string
	}{
		{"  ab  cd  \n\n  ", 4, 0, []string{"  ab", "  cd", "  \n\n", "  "}},
		{"  ab  cd  \n\n  ", 4, 2, []string{"  ab", "ab  ", "  cd", "cd  ", "  \n\n", "\n\n  "}},
		{"é \u00a0 x\t", 2, 0, []string{"é ", "\u00a0 ", "x\t"}},
		{"     ", 2, 0, []string{"  ", "  ", " "}},
		{"", 4, 0, nil},
	} {
		spans, err := Chunks(c.text, ChunkOptions{Strategy: "fixed", Size: c.size, Overlap: c.overlap})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range spans {
			got = append(got, c.text[s.Start:s.End])
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q size %d overlap %d: %q, want %q", c.text, c.size, c.overlap, got, c.want)
		}
		if c.overlap == 0 && strings.Join(got, "") != c.text {
			t.Errorf("%q: chunks %q do not concatenate back to it", c.text, got)
		}
	}
}

func FuzzChunks(f *testing.F) {
	f.Add("Hello world. Second sentence!\n\n# H\n\npara", 10, 3, "sentence")
	f.Add("ééééé ééé", 2, 1, "fixed")
	f.Fuzz(func(t *testing.T, text string, size, overlap int, strategy string) {
		if !utf8.ValidString(text) || size < 1 || size > 1000 || overlap < 0 || overlap >= size {
			return
		}
		spans, err := Chunks(text, ChunkOptions{Strategy: strategy, Size: size, Overlap: overlap})
		if err != nil {
			if !errors.Is(err, ErrParam) && !errors.Is(err, ErrLimit) {
				t.Fatal(err)
			}
			return
		}
		checkSpans(t, text, spans, size, strategy == "fixed")
	})
}

func TestChecksums(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{{"4111111111111111", true}, {"4111111111111112", false}, {"79927398713", false}, {"378282246310005", true}} {
		if luhn(c.s) != c.want {
			t.Errorf("luhn(%s) = %v", c.s, !c.want)
		}
	}
	for _, c := range []struct {
		s    string
		want bool
	}{{"GB82WEST12345698765432", true}, {"GB82 WEST 1234 5698 7654 32", true}, {"DE89370400440532013000", true},
		{"GB82WEST12345698765433", false}, {"DE8937040044053201300", false}, {"XX82WEST12345698765432", false}} {
		if validIBAN(c.s) != c.want {
			t.Errorf("validIBAN(%s) = %v", c.s, !c.want)
		}
	}
}

func TestRedactReplacement(t *testing.T) {
	r, err := NewRedactor([]string{"email"}, nil, "<{kind}>")
	if err != nil {
		t.Fatal(err)
	}
	out, counts := r.Redact("a@b.io and call 555-123-4567")
	if out != "<EMAIL> and call 555-123-4567" || counts["email"] != 1 || counts["phone"] != 0 {
		t.Fatalf("%q %v", out, counts)
	}
}

func TestRedactIPv6(t *testing.T) {
	r, _ := NewRedactor([]string{"ipv6"}, nil, "")
	for in, want := range map[string]int{"Acquire::AllowInsecure Dir::Cache::Archives": 0, "std::vector<int>": 0,
		"host fe80::1 and 2001:db8::8a2e:370:7334.": 2, "[::1]:80": 1} {
		if _, c := r.Redact(in); c["ipv6"] != want {
			t.Errorf("%q: %d IPv6, want %d", in, c["ipv6"], want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("mail x@y.com 4111 1111 1111 1111 ::1 10.0.0.1 +1 (555) 010-9999")
	f.Fuzz(func(t *testing.T, text string) {
		r, _ := NewRedactor(nil, nil, "")
		out, counts := r.Redact(text)
		n := 0
		for _, c := range counts {
			n += c
		}
		if n == 0 && out != text {
			t.Fatalf("nothing found but text changed: %q -> %q", text, out)
		}
	})
}

func TestJSONExtract(t *testing.T) {
	e := newEnv("a.json", "application/json", `{"a":{"b":[1,{"c":"x"}],"t":true,"o":{"k":1}},"n":null}`,
		map[string]string{"fields": "a.b[1].c, num=a.b[0], t=a.t, obj=a.o, n, missing"})
	if err := JSONExtract(e); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a.b[1].c": "x", "num": 1.0, "t": true, "obj": `{"k":1}`, "json_fields_found": 4}
	for k, v := range want {
		if e.meta[k] != v {
			t.Errorf("%s = %#v, want %#v", k, e.meta[k], v)
		}
	}
	e.params["required"] = "true"
	if err := JSONExtract(e); !errors.Is(err, ErrMalformed) {
		t.Fatalf("required: %v", err)
	}
	for _, bad := range []string{"a..b", "a[x]", "=a", "a[1"} {
		if _, err := parseFields(bad); !errors.Is(err, ErrParam) {
			t.Errorf("parseFields(%q) = %v", bad, err)
		}
	}
}

func TestExtractFormats(t *testing.T) {
	tests := []struct{ ct, in, want string }{
		{"text/html", "<html><head><title>T</title><style>p{}</style><script>x=1</script></head><body><h1>Head</h1><p>One <b>two</b>\n three</p><table><tr><td>a</td><td>b</td></tr></table><ul><li>i1<li>i2</ul><img alt=\"pic\"></body></html>",
			"T\n\nHead\nOne two three\na\tb\ni1\ni2\npic\n"},
		{"text/csv", "a,\"b,c\"\n1,2\n", "a\tb,c\n1\t2\n"},
		{"application/json", `{"k":"v","l":["x",1,{"m":"y"}]}`, "v\nx\ny\n"},
		{"text/markdown", "# Title\n\nSome *em* and [link](http://x) `code`.\n- item\n", "Title\n\nSome em and link code.\nitem\n"},
		{"text/plain", "caf\xe9", "café"},
	}
	for _, tt := range tests {
		x, err := ExtractFormat(Input{Name: "x", ContentType: tt.ct, Size: int64(len(tt.in)), Content: strings.NewReader(tt.in)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if x.Text != tt.want {
			t.Errorf("%s: %q, want %q", tt.ct, x.Text, tt.want)
		}
	}
}

func FuzzHTML(f *testing.F) {
	f.Add("<p>a<div><table><td>x</td></table></div><script>y</script>")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := htmlText(strings.NewReader(in))
		if err == nil && !utf8.ValidString(out) && utf8.ValidString(in) {
			t.Fatalf("invalid UTF-8 out of valid input")
		}
	})
}

func TestStats(t *testing.T) {
	s := CountText("The cat sat.\nThe cat ran! Dogs run", true)
	if s.Words != 8 || s.Lines != 2 || s.Sentences != 3 || s.TopTerms(1)[0] != (TermCount{"cat", 2}) {
		t.Fatalf("%+v %v", s, s.TopTerms(3))
	}
	e := newEnv("a.txt", "text/plain", strings.Repeat("der Hund und die Katze ist nicht da. ", 20), map[string]string{"top": "3"})
	if err := Stats(e); err != nil || e.meta["stats_language"] != "de" {
		t.Fatalf("%v %v", err, e.meta)
	}
	if err := Stats(newEnv("a", "text/plain", "", map[string]string{"top": "101"})); !errors.Is(err, ErrParam) {
		t.Fatalf("top 101: %v", err)
	}
}

// TestRedactPhone checks the phone detector on national and international
// formats, and that it leaves short or unseparated numbers alone.
func TestRedactPhone(t *testing.T) {
	r, err := NewRedactor([]string{"phone"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, want string
	}{
		{"call 555-123-4567 now", "call [PHONE] now"},
		{"call (555) 123-4567 now", "call [PHONE] now"},
		{"Paris +33 1 23 45 67 89.", "Paris [PHONE]."},
		{"Paris +33 (0)1 23 45 67 89.", "Paris [PHONE]."},
		{"mobile +31 6 1234 5678", "mobile [PHONE]"},
		{"mobile +31 6 12345678", "mobile [PHONE]"},
		{"London +44 20 7946 0958", "London [PHONE]"},
		{"E.164 +14155552671 done", "E.164 [PHONE] done"},
		{"Berlin +49 30 12345678", "Berlin [PHONE]"},
		{"Berlin 030 12345678", "Berlin [PHONE]"},
		{"Berlin 030/12345678", "Berlin [PHONE]"},
		{"mobile 06-12345678", "mobile [PHONE]"},
		{"Paris 01 23 45 67 89", "Paris [PHONE]"},
		{"date 05/12/2026 and 0.5 12345678", "date 05/12/2026 and 0.5 12345678"},
		{"tel 0049 30 1234567 now", "tel [PHONE] now"},
		// 15 digits after the international prefix 00, or with a trunk 0.
		{"tel 0049 30 1234567890 now", "tel [PHONE] now"},
		{"tel 0049 (0)30 12345678901 now", "tel [PHONE] now"},
		{"tel +49 (0)30 12345678901 now", "tel [PHONE] now"},
		{"tel 00 49 30 12345678901 now", "tel [PHONE] now"},
		{"tel 0049301234567 now", "tel [PHONE] now"},
		{"id 0000123456789 x", "id 0000123456789 x"},
		// 16 digits without them is not a phone number.
		{"acct 1234 5678 9012 3456 x", "acct 1234 5678 9012 3456 x"},
		{"tel 0049 30 12345678901234 now", "tel 0049 30 12345678901234 now"},
		{"met on 05.12.2026 10:30 and 2026-12-05 10:30.", "met on 05.12.2026 10:30 and 2026-12-05 10:30."},
		{"on 05.12.2026 10:30 call 555-123-4567: ask", "on 05.12.2026 10:30 call [PHONE]: ask"},
		{"ref 1234567 89 10", "ref 1234567 89 10"},
		{"+44 20 7946 09581 x", "[PHONE] x"},
		{"year 2024 and 12 items", "year 2024 and 12 items"},
		{"order 123456789", "order 123456789"},
		{"short +33 1 23", "short +33 1 23"},
		{"version 1.2.3.4", "version 1.2.3.4"},
	} {
		out, _ := r.Redact(c.in)
		if out != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, out, c.want)
		}
	}
}

// TestRedactPhoneIdentifiers checks that identifiers, figures and dates
// shaped like digit groups are not phone numbers (each was redacted as
// one), and that phone numbers of every documented form still are.
func TestRedactPhoneIdentifiers(t *testing.T) {
	r, err := NewRedactor([]string{"phone"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	negatives := []string{
		"invoice 2024-0001-17",
		"order 2024-001-17",
		"ref 2024-0001-1234-56",
		"file 2024/0123-45678",
		"part 1234-5678-90",
		"acct 123-456-789",
		"ssn 123-45-6789",
		"years 2019 2020 2021",
		"scores 12 34 56 78 90",
		"lot 1234.5678.90",
		"serial 555-123-4567-89",
		"build 2024.12.0555.1234",
		"ISBN 978-3-16-148410-0",
		"on 2024-12-05 at 10:30",
		"Boston, MA 02110-1301, USA",
		"GraphBackground=255 255 255",
		"Method A: 79.98 80.04 80.02 80.04",
		"2012-11-11 02:24:53.609667389 +0900",
	}
	for _, in := range negatives {
		if out, _ := r.Redact(in); out != in {
			t.Errorf("Redact(%q) = %q: not a phone number", in, out)
		}
	}
	positives := []struct{ in, want string }{
		{"call 555-123-4567 now", "call [PHONE] now"},
		{"call 555.123.4567 now", "call [PHONE] now"},
		{"call 555 123 4567 now", "call [PHONE] now"},
		{"call 1-800-555-1234 now", "call [PHONE] now"},
		{"call (555) 123-4567 now", "call [PHONE] now"},
		{"call (555)123-4567 now", "call [PHONE] now"},
		{"Sydney (02) 1234 5678", "Sydney [PHONE]"},
		{"Paris 01 23 45 67 89", "Paris [PHONE]"},
		{"Zurich 044 123 45 67", "Zurich [PHONE]"},
		{"London 020 7946 0958", "London [PHONE]"},
		{"Berlin 030/12345678", "Berlin [PHONE]"},
		{"Madrid +34 912 345 678", "Madrid [PHONE]"},
		{"US +1 (555) 123-4567", "US [PHONE]"},
		{"tel 0049 30 1234567 now", "tel [PHONE] now"},
		{"call 555-123-4567.", "call [PHONE]."},
		{"call 555-123-4567, or 555-123-4568.", "call [PHONE], or [PHONE]."},
		{"ticket 48213: call 030 12345678", "ticket 48213: call [PHONE]"},
		{"Novato, CA 94945, U.S.A., +1(415)492-9861, for", "Novato, CA 94945, U.S.A., [PHONE], for"},
		{"Krefeld 02151 1234", "Krefeld [PHONE]"},
	}
	for _, c := range positives {
		if out, _ := r.Redact(c.in); out != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, out, c.want)
		}
	}
}

// TestRedactSSN checks the ssn kind: US Social Security numbers in the
// AAA-GG-SSSS form within the SSA's rules are redacted; numbers outside
// them, other groupings and parts of longer identifiers are not.
func TestRedactSSN(t *testing.T) {
	r, err := NewRedactor([]string{"ssn"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	positives := []struct{ in, want string }{
		{"ssn 123-45-6789", "ssn [SSN]"},
		{"SSN: 123-45-6789.", "SSN: [SSN]."},
		{"SSN#078-05-1121, born 1970", "SSN#[SSN], born 1970"},
		{"(001-01-0001)", "([SSN])"},
		{"area 665-12-3456 and 667-12-3456", "area [SSN] and [SSN]"},
		{"area 899-99-9999", "area [SSN]"},
		{"group 123-01-6789 and 123-99-6789", "group [SSN] and [SSN]"},
		{"serial 123-45-0001", "serial [SSN]"},
		{"two 123-45-6789/987-65-432 x", "two [SSN]/987-65-432 x"},
		{"line\n123-45-6789\n", "line\n[SSN]\n"},
		{"ends 123-45-6789", "ends [SSN]"},
		{"time 123-45-6789 10:30", "time [SSN] 10:30"},
	}
	for _, c := range positives {
		out, counts := r.Redact(c.in)
		if out != c.want || counts["ssn"] != strings.Count(c.want, "[SSN]") {
			t.Errorf("Redact(%q) = %q %v, want %q", c.in, out, counts, c.want)
		}
	}
	negatives := []string{
		"area 000-12-3456",
		"area 666-12-3456",
		"area 900-12-3456",
		"area 987-65-4321",
		"area 999-99-9999",
		"group 123-00-6789",
		"serial 123-45-0000",
		// Other groupings, separators and lengths.
		"ssn 123456789",
		"ssn 123 45 6789",
		"ssn 123.45.6789",
		"ssn 123/45/6789",
		"ssn 123-456-789",
		"ssn 12-345-6789",
		"ssn 1234-45-6789",
		"ssn 123-45-67890",
		"ssn 123-4-56789",
		"ssn 123--45-6789",
		// Part of a longer identifier or a word.
		"ref 2024-123-45-6789",
		"ref 2024.123-45-6789",
		"ref 2024/123-45-6789",
		"ref 123-45-6789-01",
		"ref 123-45-6789.5",
		"ref 123-45-6789:12",
		"ref X123-45-6789",
		"ref 123-45-6789X",
		"ref 123-45-6789_a",
		"ref 9123-45-6789",
		// Phone numbers, dates, ZIP+4 codes are not SSNs.
		"call 555-123-4567",
		"call 1-800-555-1234",
		"call (555) 123-4567",
		"on 2024-12-05",
		"Boston, MA 02110-1301",
		"invoice 2024-0001-17",
		"ISBN 978-3-16-148410-0",
	}
	for _, in := range negatives {
		if out, counts := r.Redact(in); out != in || counts["ssn"] != 0 {
			t.Errorf("Redact(%q) = %q %v: not an SSN", in, out, counts)
		}
	}
}

// TestRedactSSNAndPhone checks the ssn kind among all kinds: an SSN is an
// SSN, not a phone number, also where a phone pattern matches it too (a
// national number starting with 0), and phone numbers stay phone numbers.
func TestRedactSSNAndPhone(t *testing.T) {
	r, err := NewRedactor(nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, want   string
		ssn, phone int
	}{
		{"ssn 123-45-6789, tel 555-123-4567", "ssn [SSN], tel [PHONE]", 1, 1},
		{"ssn 012-34-5678", "ssn [SSN]", 1, 0},
		{"tel 012 34 5678", "tel [PHONE]", 0, 1},
		{"tel +1 555-123-4567 ssn 321-54-9876.", "tel [PHONE] ssn [SSN].", 1, 1},
		{"part 1234-5678-90, ssn 666-12-3456", "part 1234-5678-90, ssn 666-12-3456", 0, 0},
	} {
		out, counts := r.Redact(c.in)
		if out != c.want || counts["ssn"] != c.ssn || counts["phone"] != c.phone {
			t.Errorf("Redact(%q) = %q %v, want %q (%d SSN, %d phone)", c.in, out, counts, c.want, c.ssn, c.phone)
		}
	}
}

// TestRedactKinds checks the kinds NewRedactor accepts (ssn among them)
// and the message naming them for an unknown one.
func TestRedactKinds(t *testing.T) {
	for _, k := range []string{"email", "phone", "card", "iban", "ipv4", "ipv6", "ssn"} {
		if _, err := NewRedactor([]string{k}, nil, ""); err != nil {
			t.Errorf("kind %s: %v", k, err)
		}
	}
	_, err := NewRedactor([]string{"SSN"}, nil, "")
	want := `kinds: unknown kind "SSN" (want email, phone, card, iban, ipv4, ipv6, ssn)`
	if !errors.Is(err, ErrParam) || err.Error() != "invalid parameter: "+want {
		t.Errorf("err = %v, want %q", err, want)
	}
	// A pattern may bear a kind's name (a pipeline stored before ssn was a
	// kind has one): its matches count as that kind's, beside the
	// detector's, and rank as an extra pattern's.
	r, err := NewRedactor(nil, map[string]string{"ssn": `SSN#\d{9}`, "email": `\bx@corp\b`}, "")
	if err != nil {
		t.Fatalf("patterns named ssn and email: %v", err)
	}
	out, counts := r.Redact("SSN#123456789, 123-45-6789, x@corp, a@b.io")
	if want := "[SSN], [SSN], [EMAIL], [EMAIL]"; out != want || counts["ssn"] != 2 || counts["email"] != 2 || len(counts) != 2 {
		t.Errorf("Redact = %q %v, want %q (2 SSN, 2 email)", out, counts, want)
	}
	if _, err := NewRedactor(nil, map[string]string{"SSN": `\d{9}`}, ""); !errors.Is(err, ErrParam) {
		t.Errorf("a pattern named SSN: %v, want ErrParam (not [a-z0-9_])", err)
	}
}

// TestJSONExtractFieldKeys checks that json-extract refuses, before it
// reads the document, a key given twice (the last one silently won), its
// own count's key, and keys the engine would refuse.
func TestJSONExtractFieldKeys(t *testing.T) {
	for _, c := range []struct{ fields, want string }{
		{"k=a,k=b", `fields: the key "k" is given twice`},
		{"a,a", `fields: the key "a" is given twice`},
		{"json_fields_found=a", "fields: the key json_fields_found is the step's own count"},
		{"bad\u0085key=a", "fields: bad metadata key"},
		{"bad\u2028key=a", "fields: bad metadata key"},
		{"bad\u202ekey=a", "fields: bad metadata key"},
		{"bad\u2066key=a", "fields: bad metadata key"},
		{"bad\u2069key=a", "fields: bad metadata key"},
		{"bad\xffkey=a", "fields: bad metadata key"},
		{manyFields(256), "fields: at most 255"},
		{manyFields(257), "fields: at most 255"},
	} {
		e := newEnv("a.json", "application/json", `{"a":1,"b":2}`, map[string]string{"fields": c.fields})
		err := JSONExtract(e)
		if !errors.Is(err, ErrParam) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("fields %.40q: %v, want %s", c.fields, err, c.want)
		}
		if len(e.meta) != 0 {
			t.Errorf("fields %.40q: metadata set: %v", c.fields, e.meta)
		}
	}
	e := newEnv("a.json", "application/json", `{"a":1,"b":2}`, map[string]string{"fields": "x=a,y=b,a"})
	if err := JSONExtract(e); err != nil || e.meta["x"] != 1.0 || e.meta["a"] != 1.0 || e.meta["json_fields_found"] != 3 {
		t.Fatalf("%v %v", err, e.meta)
	}
	// The documented maximum works: 255 fields and json_fields_found are
	// the 256 keys the host takes.
	e = newEnv("a.json", "application/json", `{"total":12}`, map[string]string{"fields": manyKeyedFields(255, "total")})
	if err := JSONExtract(e); err != nil || e.meta["json_fields_found"] != 255 || len(e.meta) != 256 {
		t.Fatalf("255 fields: %v, %d keys", err, len(e.meta))
	}
}

// TestJSONExtractKeyRuleIsTheHosts: a key json-extract's fields accept is
// one the host takes (tenancy's rule: no control, no bidirectional
// control), for every rune; before 2026-12-08 a key with a bidirectional
// control passed the step's check and failed the run when the host
// refused it.
func TestJSONExtractKeyRuleIsTheHosts(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		key := "k" + string(r)
		if r == ',' || r == '=' || r == ' ' || r == '.' || r == '[' || r == ']' || unicode.IsSpace(r) {
			continue // the syntax of fields
		}
		_, err := parseFields(key + "=a")
		host := !tenancy.IsControl(r) && !tenancy.IsBidiControl(r)
		if (err == nil) != host {
			t.Errorf("key %+q: fields check %v, host takes it: %v", key, err, host)
		}
	}
}

// manyKeyedFields returns "k0=path,k1=path,...": n fields of one path.
func manyKeyedFields(n int, path string) string {
	fs := make([]string, n)
	for i := range fs {
		fs[i] = "k" + strconv.Itoa(i) + "=" + path
	}
	return strings.Join(fs, ",")
}

// manyFields returns "f0,f1,...": n distinct fields.
func manyFields(n int) string {
	fs := make([]string, n)
	for i := range fs {
		fs[i] = "f" + strconv.Itoa(i)
	}
	return strings.Join(fs, ",")
}

// TestMarkdownText checks the Markdown text extraction on inline syntax:
// marks dropped, words and literal punctuation kept.
func TestMarkdownText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Some *emph*, **bold**, `code` and [link](http://x).", "Some emph, bold, code and link."},
		{`\*not emphasis\* and a \_ and C:\path`, `*not emphasis* and a _ and C:\path`},
		{"2 * 3 = 6 and 4 ** 2 and a _ b", "2 * 3 = 6 and 4 ** 2 and a _ b"},
		{"snake_case_word stays, _em_ goes", "snake_case_word stays, em goes"},
		{"# Heading #", "Heading"},
		{"## Heading ##  ", "Heading"},
		{"I like C# and F#", "I like C# and F#"},
		{"## About C#", "About C#"},
		{"- item with *emph*", "item with emph"},
		{"* starts", "starts"},
		// HTML tags with attributes go too, their words stay; a "<" that
		// starts no tag stays.
		{`c <span class="x">attr</span> d`, "c attr d"},
		{`<a href="http://x">link</a>`, "link"},
		{`see <img src="x.png" alt="y"> it`, "see  it"},
		{`<div align="center">block</div>`, "block"},
		{`<a title='q > r' data-n=1>t</a> and <br /> <IMG SRC=x/>`, "t and  "},
		{"a < b and c > d", "a < b and c > d"},
		{"x<y and y>z", "x<y and y>z"},
		{"<http://x.io> and <a@b.io>", "http://x.io and a@b.io"},
		{`<span class="open`, `<span class="open`},
	} {
		if got := strings.TrimSuffix(markdownText(c.in+"\n"), "\n"); got != c.want {
			t.Errorf("markdownText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestStepInputChecks covers refusals found by the docs/steps.md audit: a
// kind given twice (it was counted twice), a NUL delimiter (refused only
// by encoding/csv, as malformed input), data after a JSON value (ignored),
// and top terms cut inside a term.
func TestStepInputChecks(t *testing.T) {
	e := newEnv("a.txt", "text/plain", "mail a@b.io", map[string]string{"kinds": "email, email"})
	if err := RedactPII(e); !errors.Is(err, ErrParam) || !strings.Contains(err.Error(), `kinds: "email" given twice`) {
		t.Errorf("kinds twice: %v", err)
	}
	// A pattern name given twice: the last one silently won.
	for _, pats := range []string{`{"a":"x+","a":"y+"}`, `{"a":"x+","b":"z","\u0061":"y+"}`} {
		e = newEnv("a.txt", "text/plain", "xx yy", map[string]string{"patterns": pats})
		if err := RedactPII(e); !errors.Is(err, ErrParam) || !strings.Contains(err.Error(), `patterns: name "a" given twice`) {
			t.Errorf("patterns %s: %v", pats, err)
		}
		if err := ValidateRedactPII(e); !errors.Is(err, ErrParam) || !strings.Contains(err.Error(), `patterns: name "a" given twice`) {
			t.Errorf("validate patterns %s: %v", pats, err)
		}
	}
	e = newEnv("a.csv", "text/csv", "a,b\n1,2\n", map[string]string{"delimiter": "\x00"})
	if err := CSVToJSON(e); !errors.Is(err, ErrParam) {
		t.Errorf("NUL delimiter: %v", err)
	}
	for _, doc := range []string{`{"a":1} trailing`, `{"a":1} {"a":2}`, `[1] 2`} {
		e = newEnv("a.json", "application/json", doc, map[string]string{"fields": "a"})
		if err := JSONExtract(e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", doc, err)
		}
	}
	e = newEnv("a.json", "application/json", "{\"a\":1}\n\n", map[string]string{"fields": "a"})
	if err := JSONExtract(e); err != nil || e.meta["a"] != 1.0 {
		t.Errorf("trailing white space: %v %v", err, e.meta)
	}
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"ab:1,cd:2,ef:3", 14, "ab:1,cd:2,ef:3"},
		{"ab:1,cd:2,ef:3", 13, "ab:1,cd:2"},
		{"ab:1,cd:2,ef:3", 9, "ab:1,cd:2"},
		{"ab:1,cd:2,ef:3", 8, "ab:1"},
		{"abcdef:1", 4, ""},
	} {
		if got := topTermsText(c.in, c.max); got != c.want {
			t.Errorf("topTermsText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

// TestJSONExtractUnstorableStrings: a string field the host would refuse
// as metadata (over 64 KiB, or holding NUL) fails with the error's kind,
// not the host's bare "pdk: invalid argument".
func TestJSONExtractUnstorableStrings(t *testing.T) {
	for _, c := range []struct {
		doc  string
		kind error
		want string
	}{
		{`{"a":"` + strings.Repeat("x", 70000) + `"}`, ErrLimit, `limit: field "a" is a string of 70000 bytes, limit 65536`},
		{`{"a":"x\u0000y"}`, ErrMalformed, `malformed input: field "a" is a string holding a NUL character`},
		{`{"a":` + strings.Repeat("1", 70000) + `}`, ErrLimit, `limit: field "a" is a number of 70000 bytes, limit 65536`},
	} {
		e := newEnv("a.json", "application/json", c.doc, map[string]string{"fields": "a"})
		if err := JSONExtract(e); !errors.Is(err, c.kind) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%.20s: %v, want %s", c.doc, err, c.want)
		}
	}
	// At the limit, the string is stored.
	e := newEnv("a.json", "application/json", `{"a":"`+strings.Repeat("x", 65536)+`"}`, map[string]string{"fields": "a"})
	if err := JSONExtract(e); err != nil || len(e.meta["a"].(string)) != 65536 {
		t.Fatalf("65536 bytes: %v", err)
	}
}

// TestExtractNonUTF8 checks that HTML, CSV and TSV bytes that are not
// UTF-8 are read as Windows-1252, as plain text is: the extracted text is
// valid UTF-8 (it was written with the raw bytes).
func TestExtractNonUTF8(t *testing.T) {
	for _, c := range []struct{ ct, in, want string }{
		{"text/html", "<html><body>caf\xe9 2</body></html>", "café 2\n"},
		{"text/html", "<html><head><meta charset=\"iso-8859-1\"></head><body><p>na\xefve \x80 caf\xc3\xa9</p></body></html>", "naïve € café\n"},
		{"text/csv", "a,b\ncaf\xe9,1\n", "a\tb\ncafé\t1\n"},
		{"text/tab-separated-values", "a\tb\n\x93q\x94\t1\n", "a\tb\n\u201cq\u201d\t1\n"},
	} {
		x, err := ExtractFormat(Input{Name: "x", ContentType: c.ct, Size: int64(len(c.in)), Content: strings.NewReader(c.in)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if x.Text != c.want || !utf8.ValidString(x.Text) {
			t.Errorf("%s %q: %q, want %q", c.ct, c.in, x.Text, c.want)
		}
	}
	// Sequences split across reads stay whole; stray bytes become
	// Windows-1252 (undefined ones U+FFFD).
	in := "é€\xe9\xe2\x82x\x81\xf0\x9f\x98\x80y\xc3"
	b, err := io.ReadAll(iotest.OneByteReader(newCP1252Reader(iotest.OneByteReader(strings.NewReader(in)))))
	if want := "é€éâ‚x\uFFFD😀yÃ"; err != nil || string(b) != want {
		t.Fatalf("%q %v, want %q", b, err, want)
	}
}

// utf16 returns s in UTF-16 with a byte order mark.
func utf16Text(s string, be bool) string {
	b := []byte{0xff, 0xfe}
	if be {
		b = []byte{0xfe, 0xff}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if be {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return string(b)
}

// TestNonUTF8CSVAndStats checks that csv-to-json and stats read what is
// not UTF-8 as extract-text does (csv-to-json as it reads CSV, stats as it
// reads plain text), not as U+FFFD (csv-to-json) or word breaks (stats).
func TestNonUTF8CSVAndStats(t *testing.T) {
	e := newEnv("d.csv", "text/csv", "name,city\ncaf\xe9,Z\xfcrich\n\x93q\x94,\x80\n", map[string]string{})
	if err := CSVToJSON(e); err != nil {
		t.Fatal(err)
	}
	if got, want := string(e.derived[0].data), "[\n{\"name\":\"café\",\"city\":\"Zürich\"},\n{\"name\":\"\u201cq\u201d\",\"city\":\"€\"}\n]\n"; got != want {
		t.Errorf("csv-to-json: %q, want %q", got, want)
	}
	for _, c := range []struct {
		in                         string
		bytes, chars, words, lines int
		top                        string
	}{
		{"caf\xe9 caf\xe9 na\xefve", 15, 15, 3, 1, "café:2,naïve:1"},
		{"\xef\xbb\xbfcaf\xc3\xa9 caf\xc3\xa9", 14, 9, 2, 1, "café:2"},
		{utf16Text("Café, 20 €\nCafé 😀\n", false), 40, 18, 3, 2, "café:2"},
		{utf16Text("Café, 20 €\nCafé 😀\n", true), 40, 18, 3, 2, "café:2"},
		{"\xff\xfe" + "a\x00\x00\xd8b\x00c", 9, 3, 2, 1, ""}, // an unpaired surrogate (U+FFFD), an odd last byte
	} {
		e := newEnv("a.txt", "text/plain", c.in, map[string]string{})
		if err := Stats(e); err != nil {
			t.Fatal(err)
		}
		m := e.meta
		if m["stats_bytes"] != c.bytes || m["stats_chars"] != c.chars || m["stats_words"] != c.words || m["stats_lines"] != c.lines || m["stats_top_terms"] != c.top {
			t.Errorf("stats %q: %v, want bytes %d chars %d words %d lines %d top %s", c.in, m, c.bytes, c.chars, c.words, c.lines, c.top)
		}
		// Streamed a byte at a time, the text is the same.
		var b strings.Builder
		if _, err := io.Copy(&b, iotest.OneByteReader(newTextReader(iotest.OneByteReader(strings.NewReader(c.in))))); err != nil {
			t.Fatal(err)
		}
		if want := decodeText([]byte(c.in)); b.String() != want {
			t.Errorf("newTextReader(%q) = %q, decodeText %q", c.in, b.String(), want)
		}
	}
}

// TestJSONNesting checks that json-extract, like extract-text, refuses
// arrays and objects nested deeper than MaxJSONDepth with limit: (it took
// up to 10,000 levels and failed past them with malformed input), and
// that brackets inside strings do not count.
func TestJSONNesting(t *testing.T) {
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	want := "limit: json nesting deeper than 1000"
	for _, c := range []struct {
		doc  string
		kind error
	}{
		{`{"a":` + nested(999) + `}`, nil},
		{`{"a":` + nested(1000) + `}`, ErrLimit},
		{nested(1001), ErrLimit},
		{nested(10001), ErrLimit},
		{`{"a":"` + strings.Repeat("[{", 2000) + `\"["}`, nil},
		{`{"a":` + strings.Repeat("[", 1001), ErrLimit}, // too deep before it is malformed
	} {
		e := newEnv("a.json", "application/json", c.doc, map[string]string{"fields": "a"})
		err := JSONExtract(e)
		_, xerr := jsonText(strings.NewReader(c.doc))
		if c.kind == nil {
			if err != nil || xerr != nil {
				t.Errorf("%.30s: json-extract %v, extract-text %v", c.doc, err, xerr)
			}
			continue
		}
		for _, err := range []error{err, xerr} {
			if !errors.Is(err, c.kind) || err.Error() != want {
				t.Errorf("%.30s (%d bytes): %v, want %s", c.doc, len(c.doc), err, want)
			}
		}
	}
}
