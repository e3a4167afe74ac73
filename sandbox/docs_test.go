package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/internal/markdown"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/tetratelabs/wazero/api"
)

// readDoc returns docs/NAME of this checkout.
func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection returns the text of doc under heading (a whole heading line)
// up to the next heading of its level.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	text, ok := markdown.Section(doc, heading)
	if !ok {
		t.Fatalf("no section %q", heading)
	}
	return text
}

// TestABIDocHostFunctions checks docs/plugin-abi.md's table of host
// functions against the docex module the sandbox provides: the same
// functions, each with its signature and as many arguments as it names,
// needing the capability it names (a call with handle 0 from a plugin
// granted none is refused and recorded exactly when the table names one).
func TestABIDocHostFunctions(t *testing.T) {
	doc := readDoc(t, "plugin-abi.md")
	rows := markdown.TableRows(docSection(t, doc, "## Host functions (import module `docex`)"))
	typ := map[api.ValueType]string{i32: "i32", i64: "i64"}
	sig := func(h hostFunc) string {
		f := func(ts []api.ValueType) string {
			s := make([]string, len(ts))
			for i, v := range ts {
				s[i] = typ[v]
			}
			return strings.Join(s, " ")
		}
		return "(" + f(h.params) + ") -> " + f(h.results)
	}
	funcs := map[string]hostFunc{}
	for _, h := range hostFuncs() {
		funcs[h.name] = h
	}
	caps := map[string]string{}
	var documented []string
	for _, r := range rows {
		if len(r) != 4 {
			t.Fatalf("row %q: want 4 cells", r)
		}
		call := strings.Trim(r[0], "`")
		name, args, ok := strings.Cut(strings.TrimSuffix(call, ")"), "(")
		if !ok {
			t.Fatalf("row %q: no call", r)
		}
		documented = append(documented, name)
		h, ok := funcs[name]
		if !ok {
			t.Errorf("documented %s is not a host function", name)
			continue
		}
		if got, want := strings.Trim(r[1], "`"), sig(h); got != want {
			t.Errorf("%s: documented signature %s, the host's is %s", name, got, want)
		}
		if n := len(strings.Split(args, ",")); n != len(h.params) {
			t.Errorf("%s: documented with %d arguments, takes %d", name, n, len(h.params))
		}
		c, _, _ := strings.Cut(r[2], " ")
		c = strings.Trim(c, "`")
		if c != "none" && !slices.Contains(pluginapi.Capabilities(), pluginapi.Capability(c)) {
			t.Errorf("%s: documented capability %q does not exist", name, c)
		}
		caps[name] = c
	}
	for name := range funcs {
		if !slices.Contains(documented, name) {
			t.Errorf("host function %s is not documented", name)
		}
	}

	// Each function called with zeros (handle 0, empty ranges) by the oob
	// plugin loaded without capabilities.
	m, mod := readPlugin(t, "oob")
	m.Capabilities = nil
	p, err := sharedSandbox(t).Load(context.Background(), m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for name, want := range caps {
		h := funcs[name]
		if h.name == "" {
			continue
		}
		res, _ := p.run(context.Background(), pluginapi.Call{TenantID: "t", Input: textDoc("in", "x"), Params: map[string]string{"fn": "a"}},
			callOpts{entry: "fuzz_" + name, args: make([]uint64, len(h.params))})
		if res == nil {
			t.Fatalf("%s: the guest did not run", name)
		}
		got := "none"
		if d := res.Report.CapabilityDenials; len(d) > 0 {
			got, _, _ = strings.Cut(d[0], " ")
		}
		if got != want {
			t.Errorf("%s: documented capability %s, a plugin without capabilities was refused %s", name, want, got)
		}
	}
}

// TestABIDocErrorCodes checks docs/plugin-abi.md's table of error codes
// and the fixed bounds it states against the host's constants.
func TestABIDocErrorCodes(t *testing.T) {
	doc := readDoc(t, "plugin-abi.md")
	codes := map[string]int32{"EINVAL": codeInval, "EDENIED": codeDenied, "ENOTFOUND": codeNotFound, "ELIMIT": codeLimit, "EHOST": codeHost}
	seen := 0
	for _, r := range markdown.TableRows(docSection(t, doc, "## Conventions")) {
		want, ok := codes[r[1]]
		if !ok {
			continue
		}
		seen++
		if got, err := strconv.Atoi(r[0]); err != nil || int32(got) != want {
			t.Errorf("%s is documented as %s, the host returns %d", r[1], r[0], want)
		}
	}
	if seen != len(codes) {
		t.Errorf("%d of the %d error codes are in the table", seen, len(codes))
	}
	for _, want := range []string{
		"too many handles (" + strconv.Itoa(maxHandles) + ")",
		"derived documents (" + strconv.Itoa(maxDerived) + ")",
		"a value over " + strconv.Itoa(maxValueLen>>10) + " KiB",
		"a " + strconv.Itoa(maxMetaKeys+1) + "th distinct key (a " + strconv.Itoa(maxMetaKeys-1) + "th on a derived document",
		"message truncated to " + strconv.Itoa(maxMessageLen>>10) + " KiB",
		"Metadata keys: 1-" + strconv.Itoa(maxKeyLen) + " bytes",
		"at most " + strconv.Itoa(maxNameLen) + " bytes",
		"Content types: 1-" + strconv.Itoa(maxNameLen) + " bytes of printable ASCII",
		"metadata value: at most " + strconv.Itoa(maxQueryLen>>10) + " KiB",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/plugin-abi.md does not say %q", want)
		}
	}
}

// TestSandboxDocLimits checks the table of docs/sandbox.md's "Limits and
// defaults", and the defaults docs/writing-plugins.md's manifest states,
// against pluginapi.DefaultLimits and DefaultCeilings.
func TestSandboxDocLimits(t *testing.T) {
	fields := func(l pluginapi.Limits) map[string]int64 {
		return map[string]int64{
			"memory_pages": int64(l.MemoryPages), "timeout_ms": l.Timeout.Milliseconds(),
			"max_output_bytes": l.MaxOutputBytes, "max_host_calls": l.MaxHostCalls,
			"max_log_bytes": l.MaxLogBytes, "max_instructions": l.MaxInstructions,
		}
	}
	def, ceil := fields(pluginapi.DefaultLimits()), fields(pluginapi.DefaultCeilings())
	value := func(s string) int64 {
		s, _, _ = strings.Cut(s, " (")
		mult := int64(1)
		for suffix, m := range map[string]int64{" KiB": 1 << 10, " MiB": 1 << 20} {
			if v, ok := strings.CutSuffix(s, suffix); ok {
				s, mult = v, m
			}
		}
		if b, e, ok := strings.Cut(s, "^"); ok {
			base, _ := strconv.ParseInt(b, 10, 64)
			exp, _ := strconv.Atoi(e)
			n := int64(1)
			for range exp {
				n *= base
			}
			return n
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(s, " ", ""), 10, 64)
		if err != nil {
			t.Fatalf("cannot read %q", s)
		}
		return n * mult
	}
	seen := 0
	for _, r := range markdown.TableRows(docSection(t, readDoc(t, "sandbox.md"), "## Limits and defaults")) {
		key, _, _ := strings.Cut(r[0], " ")
		if _, ok := def[key]; !ok {
			t.Errorf("limit %q is not a manifest limit", key)
			continue
		}
		seen++
		if got := value(r[1]); got != def[key] {
			t.Errorf("%s: documented default %s (%d), DefaultLimits has %d", key, r[1], got, def[key])
		}
		if got := value(r[2]); got != ceil[key] {
			t.Errorf("%s: documented ceiling %s (%d), DefaultCeilings has %d", key, r[2], got, ceil[key])
		}
	}
	if seen != len(def) {
		t.Errorf("docs/sandbox.md lists %d of the %d limits", seen, len(def))
	}
	if DefaultInitTimeout != 10*time.Second {
		t.Errorf("DefaultInitTimeout is %s, the docs say 10 s", DefaultInitTimeout)
	}

	// writing-plugins.md's manifest: "key = N  # ... default D".
	re := regexp.MustCompile(`(?m)^(\w+) = \d+ .*default (\d+)`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(readDoc(t, "writing-plugins.md"), -1) {
		n++
		if want, err := strconv.ParseInt(m[2], 10, 64); err != nil || want != def[m[1]] {
			t.Errorf("docs/writing-plugins.md: %s documented default %s, DefaultLimits has %d", m[1], m[2], def[m[1]])
		}
	}
	if n == 0 {
		t.Error("docs/writing-plugins.md's manifest states no default")
	}
}

// TestDocLogLineOverhead: the docs state the per-line charge against
// max_log_bytes as a number; it must be logLineOverhead.
func TestDocLogLineOverhead(t *testing.T) {
	want := "plus " + strconv.Itoa(logLineOverhead) + " bytes"
	for _, doc := range []string{"sandbox.md", "plugin-abi.md"} {
		if !strings.Contains(readDoc(t, doc), want) {
			t.Errorf("docs/%s does not say a log line costs its text %s", doc, want)
		}
	}
}

// TestDocOutputOverhead: the docs state the per-entry charges against
// max_output_bytes as numbers; they must be derivedOverhead and
// metaKeyOverhead.
func TestDocOutputOverhead(t *testing.T) {
	d, k := strconv.Itoa(derivedOverhead), strconv.Itoa(metaKeyOverhead)
	for doc, wants := range map[string][]string{
		"plugin-abi.md": {"content plus " + d + " bytes", "plus " + k + " bytes the first time the run sets that key on that document"},
		"sandbox.md": {"every derived document plus " + d + " bytes and every metadata key a run sets on a document for the first time in the run plus " + k,
			"plus " + d + " bytes per derived document and " + k + " per metadata key"},
	} {
		text := strings.Join(strings.Fields(readDoc(t, doc)), " ")
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("docs/%s does not say %q", doc, want)
			}
		}
	}
}

// loadBytes loads module under a minimal manifest (capabilities caps).
func loadBytes(t *testing.T, module []byte, caps ...string) (*Plugin, error) {
	t.Helper()
	sum := sha256.Sum256(module)
	m := &pluginapi.Manifest{Name: "m", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "m.wasm",
		SHA256: hex.EncodeToString(sum[:]), Capabilities: caps}
	p, err := newSandbox(t, Config{}).Load(context.Background(), m, module)
	if err == nil {
		t.Cleanup(func() { p.Close(context.Background()) })
	}
	return p, err
}

// TestABIDocEntrySignatures: docs/plugin-abi.md, "The module": every
// export a manifest could name as its entry must be () -> i32; other
// exports starting with docex_run_ are not entries and are not checked.
func TestABIDocEntrySignatures(t *testing.T) {
	// (module (memory (export "memory") 1)
	//   (func (export "docex_run") (result i32) (i32.const 0))
	//   (func (export "docex_run_X") (param i32) (result i32) (local.get 0)))
	mod := []byte("\x00\x61\x73\x6d\x01\x00\x00\x00\x01\x0a\x02\x60\x00\x01\x7f\x60\x01\x7f\x01\x7f\x03\x03\x02\x00\x01\x05\x03\x01\x00\x01" +
		"\x07\x24\x03\x06\x6d\x65\x6d\x6f\x72\x79\x02\x00\x09\x64\x6f\x63\x65\x78\x5f\x72\x75\x6e\x00\x00\x0b\x64\x6f\x63\x65\x78\x5f\x72\x75\x6e\x5f\x58\x00\x01" +
		"\x0a\x0b\x02\x04\x00\x41\x00\x0b\x04\x00\x20\x00\x0b")
	doc := strings.Join(strings.Fields(readDoc(t, "plugin-abi.md")), " ")
	if !strings.Contains(doc, "Every export a manifest could name as its entry (`docex_run`, or `docex_run_` followed by 1-54 of `[a-z0-9_]`)") {
		t.Error("docs/plugin-abi.md does not say which docex_run exports must be () -> i32")
	}
	if _, err := loadBytes(t, mod); err != nil {
		t.Fatalf("docex_run_X (not an entry name) (i32) -> i32: %v", err)
	}
	lower := bytes.Replace(mod, []byte("docex_run_X"), []byte("docex_run_x"), 1)
	if _, err := loadBytes(t, lower); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), `export "docex_run_x" has signature`) {
		t.Fatalf("docex_run_x (i32) -> i32: err = %v, want ErrInvalidModule naming its signature", err)
	}
}

// TestABIDocRunReturnsNonZero: docs/plugin-abi.md, "Documents and
// handles": a non-zero return while the status is ok (here set to ok
// explicitly) makes the status error, "docex_run returned N".
func TestABIDocRunReturnsNonZero(t *testing.T) {
	// (module (import "docex" "set_status" (func $status (param i32 i32 i32) (result i32)))
	//   (memory (export "memory") 1)
	//   (func (export "docex_run") (result i32)
	//     (drop (call $status (i32.const 0) (i32.const 0) (i32.const 0))) (i32.const 1)))
	mod := []byte("\x00\x61\x73\x6d\x01\x00\x00\x00\x01\x0c\x02\x60\x03\x7f\x7f\x7f\x01\x7f\x60\x00\x01\x7f\x02\x14\x01\x05\x64\x6f\x63\x65\x78" +
		"\x0a\x73\x65\x74\x5f\x73\x74\x61\x74\x75\x73\x00\x00\x03\x02\x01\x01\x05\x03\x01\x00\x01\x07\x16\x02\x06\x6d\x65\x6d\x6f\x72\x79\x02\x00" +
		"\x09\x64\x6f\x63\x65\x78\x5f\x72\x75\x6e\x00\x01\x0a\x0f\x01\x0d\x00\x41\x00\x41\x00\x41\x00\x10\x00\x1a\x41\x01\x0b")
	p, err := loadBytes(t, mod)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), pluginapi.Call{TenantID: "t", Input: textDoc("in", "x")})
	if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.HasSuffix(err.Error(), ": docex_run returned 1") || res.Status != pluginapi.StatusError {
		t.Fatalf("err = %v, res = %+v; want status error, docex_run returned 1", err, res)
	}
	doc := readDoc(t, "plugin-abi.md")
	if !strings.Contains(strings.Join(strings.Fields(doc), " "), "returns non-zero while the status is `ok` (none was set, or `ok` was)") {
		t.Error("docs/plugin-abi.md does not say that a non-zero return fails a run whose status was set to ok")
	}
}

// TestValidContentType: emit refuses (EINVAL) the content types the
// engine would refuse (engine.ParseContentType: printable ASCII, 1-255
// bytes, type/subtype, at most 255 bytes once normalised), as
// docs/plugin-abi.md says, rather than the run failing afterwards.
func TestValidContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/plain":                       true,
		"text/plain; charset=utf-8":        true,
		"TEXT/Plain":                       true,
		"application/vnd.a+json":           true,
		"":                                 false,
		"text":                             false,
		"text/":                            false,
		"/plain":                           false,
		"a/b/c":                            false,
		`text/plain; x="é"`:                false, // not ASCII
		"text/plain; x=\"a\tb\"":           false, // a control character
		"text/plain; x=\"\x01\"":           false,
		"text/" + strings.Repeat("a", 251): false, // 256 bytes
		"text/" + strings.Repeat("a", 250): true,
		manyParams(255):                    false, // 255 bytes, more once normalised ("; " between parameters)
		manyParams(200):                    true,
	} {
		if got := validContentType(ct); got != want {
			t.Errorf("validContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// manyParams returns "text/plain;p0=1;p1=1;...;z=111" of n bytes (n >= 14).
func manyParams(n int) string {
	s := "text/plain"
	for i := 0; n-len(s) >= 12; i++ {
		s += ";p" + strconv.Itoa(i) + "=1"
	}
	return s + ";z=" + strings.Repeat("1", n-len(s)-3)
}

// TestDecodeValue: metadata_set and derived_metadata_set refuse (EINVAL)
// the values the engine would refuse, as docs/plugin-abi.md says: a
// string that is not UTF-8 or holds a NUL byte, a number that is not
// finite, a bool other than true or false.
func TestDecodeValue(t *testing.T) {
	for raw, want := range map[string]any{
		"sAnn": "Ann", "s": "", "n42": 42.0, "n2.5e-3": 2.5e-3, "btrue": true, "bfalse": false,
		"s\xff": nil, "sa\x00b": nil, "nInf": nil, "nNaN": nil, "n": nil, "b1": nil, "bTrue": nil, "": nil, "x1": nil,
	} {
		got, ok := decodeValue([]byte(raw))
		if want == nil {
			if ok {
				t.Errorf("decodeValue(%q) = %v, want refused", raw, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("decodeValue(%q) = %v, %v; want %v", raw, got, ok, want)
		}
	}
}
