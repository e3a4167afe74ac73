package pluginapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const validManifest = `
name = "word-count_2"
version = "1.2.3"
description = "Counts words."
abi_version = 1
module = "wc.wasm"
sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
capabilities = ["log", "content.read", "metadata.write"]
accepted_content_types = ["text/*", "application/json"]

[limits]
memory_pages = 100
timeout_ms = 1500
max_output_bytes = 1000
max_host_calls = 50
max_log_bytes = 10

[parameters.lang]
type = "string"
required = true
description = "Language."

[parameters.min]
type = "int"
`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(validManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Entry != DefaultEntry {
		t.Fatalf("default entry = %q", m.Entry)
	}
	if m.Name != "word-count_2" || m.SHA256 != strings.ToLower(m.SHA256) || !m.Has(CapLog) || m.Has(CapDocumentsLookup) ||
		!m.Parameters["lang"].Required || m.Parameters["min"].Type != "int" {
		t.Fatalf("manifest = %+v", m)
	}
	for ct, want := range map[string]bool{"text/plain": true, "TEXT/Markdown; charset=utf-8": true,
		"application/json": true, "application/pdf": false, "": false} {
		if m.Accepts(ct) != want {
			t.Errorf("Accepts(%q) = %v", ct, !want)
		}
	}
	l, err := m.Resolve(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if l.MemoryPages != 100 || l.Timeout != 1500*time.Millisecond || l.MaxOutputBytes != 1000 || l.MaxHostCalls != 50 || l.MaxLogBytes != 10 {
		t.Fatalf("limits = %+v", l)
	}
	if _, err := m.Resolve(Limits{MemoryPages: 99}); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "memory_pages") {
		t.Fatalf("over ceiling: %v", err)
	}
	m.Limits = ManifestLimits{}
	l, _ = m.Resolve(Limits{Timeout: time.Second})
	if l.Timeout != time.Second || l.MemoryPages != DefaultLimits().MemoryPages {
		t.Fatalf("defaults under a low ceiling = %+v", l)
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, replace, with, want string
	}{
		{"unknown top key", `abi_version = 1`, "abi_version = 1\nnetwork = true", `unknown key "network"`},
		{"unknown limits key", `max_log_bytes = 10`, "max_log_bytes = 10\ncpu = 3", `"limits.cpu"`},
		{"unknown param key", `type = "int"`, "type = \"int\"\ndefault = 3", `"parameters.min.default"`},
		{"misspelt top key", `abi_version = 1`, "abi_version = 1\ndescripton = \"x\"", `unknown key "descripton" (did you mean "description"?)`},
		{"misspelt limits key", `max_log_bytes = 10`, "max_log_bytes = 10\ntimeout = 3", `unknown key "limits.timeout"`},
		{"misspelt limits key, close", `max_log_bytes = 10`, "max_log_bytes = 10\nmemory_page = 3", `unknown key "limits.memory_page" (did you mean "memory_pages"?)`},
		{"misspelt param key", `type = "int"`, "type = \"int\"\nrequird = true", `unknown key "parameters.min.requird" (did you mean "required"?)`},
		// Keys are known only as spelt (the decoder took Name for name,
		// so a wrong-case key was accepted, or silently won over the
		// right one).
		{"wrong-case key", `abi_version = 1`, "abi_version = 1\nName = \"other\"", `unknown key "Name" (did you mean "name"?)`},
		{"wrong-case table", `[limits]`, `[Limits]`, `unknown key "Limits" (did you mean "limits"?)`},
		{"wrong-case limits key", `max_log_bytes = 10`, "MAX_HOST_CALLS = 5", `unknown key "limits.MAX_HOST_CALLS" (did you mean "max_host_calls"?)`},
		{"wrong-case param key", `type = "int"`, "Type = \"int\"", `unknown key "parameters.min.Type" (did you mean "type"?)`},
		{"wrong-case key, wrong type", `abi_version = 1`, "abi_version = 1\nDescription = 5", `unknown key "Description" (did you mean "description"?)`},
		// Nested deeper than a manifest needs: refused before it is
		// decoded, whose cost grows with the square of the depth (a 32 KB
		// manifest of inline tables 8,000 deep had cost gigabytes).
		{"nested too deep", `abi_version = 1`, "abi_version = 1\nx = " + strings.Repeat("{a=", 8000) + "1" + strings.Repeat("}", 8000), "line 6: arrays and tables nested 8000 deep, more than 16"},
		{"uppercase name", `"word-count_2"`, `"Word"`, "name"},
		{"name starts with digit", `"word-count_2"`, `"2word"`, "name"},
		{"long name", `"word-count_2"`, `"` + strings.Repeat("a", 65) + `"`, "name"},
		{"abi", `abi_version = 1`, `abi_version = 2`, "abi_version 2"},
		{"traversal", `"wc.wasm"`, `"../wc.wasm"`, "module"},
		{"absolute", `"wc.wasm"`, `"/etc/passwd"`, "module"},
		{"backslash", `"wc.wasm"`, `"..\\wc.wasm"`, "module"},
		{"short hash", `"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"`, `"abc"`, "sha256"},
		{"non-hex hash", `"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"`, `"` + strings.Repeat("zz", 32) + `"`, "sha256"},
		{"unknown capability", `"metadata.write"`, `"network"`, `unknown capability "network" (the capabilities: log, content.read, metadata.read, metadata.write, documents.emit, documents.lookup)`},
		{"misspelt capability", `"metadata.write"`, `"metadata.wirte"`, `unknown capability "metadata.wirte" (did you mean "metadata.write"?)`},
		{"capabilities as a string", `capabilities = ["log", "content.read", "metadata.write"]`, `capabilities = "log"`, `line 8, key capabilities: want an array of capabilities, for example capabilities = ["content.read", "metadata.write"], got a string`},
		{"types as a string", `accepted_content_types = ["text/*", "application/json"]`, `accepted_content_types = "text/*"`, `key accepted_content_types: want an array of content types`},
		{"abi as a string", `abi_version = 1`, `abi_version = "1"`, `key abi_version: want an integer, got a string`},
		{"pattern without a slash", `"text/*"`, `"text"`, `bad pattern "text": want a media type (text/plain) or a pattern (text/*)`},
		{"duplicate capability", `"metadata.write"`, `"log"`, "duplicate"},
		{"bad glob", `"text/*"`, `"text/["`, "accepted_content_types"},
		{"negative limit", `max_host_calls = 50`, `max_host_calls = -1`, "negative"},
		{"wrong type", `memory_pages = 100`, `memory_pages = "lots"`, "key limits.memory_pages: want an integer, got a string"},
		{"bad param type", `type = "int"`, `type = "blob"`, "unknown type"},
		{"min on a string", `type = "string"`, "type = \"string\"\nmin = 1", "min applies to int and number"},
		{"max on a bool", `type = "int"`, "type = \"bool\"\nmax = 1", "max applies to int and number"},
		{"fractional int bound", `type = "int"`, "type = \"int\"\nmin = 1.5", "whole number"},
		{"huge int bound", `type = "int"`, "type = \"int\"\nmax = 1e300", "whole number"},
		{"nan bound", `type = "int"`, "type = \"number\"\nmax = nan", "finite"},
		{"inf bound", `type = "int"`, "type = \"number\"\nmin = -inf", "finite"},
		{"min above max", `type = "int"`, "type = \"int\"\nmin = 5\nmax = 4", "min 5 is greater than max 4"},
		{"bound of wrong type", `type = "int"`, "type = \"int\"\nmin = \"1\"", "parameters.min.min"},
		{"values on an int", `type = "int"`, "type = \"int\"\nvalues = [\"1\"]", "values applies to string"},
		{"empty values", `type = "string"`, "type = \"string\"\nvalues = []", "want 1-256 values"},
		{"duplicate value", `type = "string"`, "type = \"string\"\nvalues = [\"a\", \"b\", \"a\"]", `values[2]: "a" appears twice`},
		{"control char value", `type = "string"`, "type = \"string\"\nvalues = [\"a\\u0000\"]", "values[0]"},
		{"too many values", `type = "string"`, "type = \"string\"\nvalues = [" + manyValues(257) + "]", "want 1-256 values"},
		{"no version", `version = "1.2.3"`, `version = ""`, "version"},
		{"less_than on a string", `type = "int"`, "type = \"string\"\nless_than = \"lang\"", `parameter "min": less_than applies to int and number parameters, not string`},
		{"less_than itself", `type = "int"`, "type = \"int\"\nless_than = \"min\"", `parameter "min": less_than names the parameter itself`},
		{"less_than unknown", `type = "int"`, "type = \"int\"\nless_than = \"mix\"", `parameter "min": less_than names "mix", which is not a parameter (did you mean "min"?)`},
		{"less_than a string", `type = "int"`, "type = \"int\"\nless_than = \"lang\"", `parameter "min": less_than names "lang", a string parameter (want int or number)`},
		{"syntax", `[limits]`, `[limits`, "invalid manifest: line "},
		{"entry not docex_run*", `module = "wc.wasm"`, "module = \"wc.wasm\"\nentry = \"_initialize\"", "entry"},
		{"entry bad char", `module = "wc.wasm"`, "module = \"wc.wasm\"\nentry = \"docex_run_X\"", "entry"},
		{"entry empty suffix", `module = "wc.wasm"`, "module = \"wc.wasm\"\nentry = \"docex_run_\"", "entry"},
	}
	// Of several bad parameters, the first by name, every time (map order
	// chose one).
	for range 6 {
		tests = append(tests, struct{ name, replace, with, want string }{"several bad parameters", `[parameters.lang]`,
			"[parameters.zz]\ntype = \"blob\"\n[parameters.bb]\ntype = \"blob\"\n[parameters.mm]\ntype = \"blob\"\n[parameters.lang]", `parameter "bb": unknown type`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validManifest, tt.replace, tt.with, 1)
			if src == validManifest {
				t.Fatal("replacement did not apply")
			}
			_, err := ParseManifest([]byte(src))
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidManifest mentioning %q", err, tt.want)
			}
		})
	}
}

func TestReadPluginDir(t *testing.T) {
	dir := t.TempDir()
	module := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(module)
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	manifest := func(module string) string {
		return "name = \"p\"\nversion = \"1\"\nabi_version = 1\nmodule = \"" + module + "\"\nsha256 = \"" + hex.EncodeToString(sum[:]) + "\"\n"
	}
	write("m.wasm", string(module))
	write(ManifestFile, manifest("m.wasm"))
	raw, mod, err := ReadPluginDir(dir)
	if err != nil || string(raw) != manifest("m.wasm") || string(mod) != string(module) {
		t.Fatalf("ReadPluginDir = %q, %q, %v", raw, mod, err)
	}
	// A symlink out of the plugin directory is refused.
	outside := filepath.Join(t.TempDir(), "secret.wasm")
	if err := os.WriteFile(outside, module, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.wasm")); err != nil {
		t.Fatal(err)
	}
	write(ManifestFile, manifest("link.wasm"))
	if _, _, err := ReadPluginDir(dir); err == nil {
		t.Fatal("symlink escape was followed")
	}
	write(ManifestFile, manifest("../m.wasm"))
	if _, _, err := ReadPluginDir(dir); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("'..' in module: %v", err)
	}
	if _, _, err := ReadPluginDir(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}

func manyValues(n int) string {
	v := make([]string, n)
	for i := range v {
		v[i] = fmt.Sprintf("%q", fmt.Sprint("v", i))
	}
	return strings.Join(v, ", ")
}

func TestParameterCheck(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		spec ParameterSpec
		ok   []string
		bad  map[string]string // value -> error text
	}{
		{"string", ParameterSpec{}, []string{"", "anything", "  x "}, map[string]string{strings.Repeat("a", 64<<10+1): "longer than"}},
		{"string values", ParameterSpec{Type: "string", Values: []string{"fixed", "recursive"}},
			[]string{"fixed", "recursive"}, map[string]string{"Fixed": `"Fixed" is not one of fixed, recursive`, "": "is not one of", " fixed": "is not one of"}},
		{"int", ParameterSpec{Type: "int"}, []string{"0", "-7", "9223372036854775807"},
			map[string]string{"1.5": `"1.5" is not a valid int`, " 1": "not a valid int", "": "not a valid int", "9223372036854775808": "not a valid int"}},
		{"int bounded", ParameterSpec{Type: "int", Min: f(1), Max: f(1048576)}, []string{"1", "512", "1048576"},
			map[string]string{"0": "0 is less than the minimum 1", "1048577": "1048577 is greater than the maximum 1048576", "-9223372036854775808": "less than the minimum"}},
		{"int max only", ParameterSpec{Type: "int", Max: f(9007199254740991)}, []string{"-5", "9007199254740991"},
			map[string]string{"9007199254740992": "greater than the maximum 9007199254740991"}},
		{"number bounded", ParameterSpec{Type: "number", Min: f(-0.5), Max: f(2.5)}, []string{"-0.5", "0", "2.5", "1e0"},
			map[string]string{"2.51": "greater than the maximum 2.5", "-1": "less than the minimum -0.5", "NaN": "not a number in range", "+Inf": "greater than the maximum", "x": "not a valid number"}},
		{"number", ParameterSpec{Type: "number"}, []string{"NaN", "1e308", "-3"}, map[string]string{"1,5": "not a valid number"}},
		{"bool", ParameterSpec{Type: "bool"}, []string{"true", "false", "1", "F"}, map[string]string{"yes": `"yes" is not a valid bool`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.spec.Type != "" {
				if err := tt.spec.validate(); err != nil {
					t.Fatalf("declaration: %v", err)
				}
			}
			for _, v := range tt.ok {
				if err := tt.spec.Check(v); err != nil {
					t.Errorf("Check(%q) = %v", v, err)
				}
			}
			for v, want := range tt.bad {
				if err := tt.spec.Check(v); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Check(%.40q) = %v, want an error mentioning %q", v, err, want)
				}
			}
		})
	}
}

func TestParameterBoundsParsed(t *testing.T) {
	src := validManifest + "min = 1\nmax = 10\n[parameters.mode]\nvalues = [\"a\", \"b\"]\n[parameters.ratio]\ntype = \"number\"\nmin = 0.25\n"
	m, err := ParseManifest([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := m.Parameters["min"]
	if p.Min == nil || *p.Min != 1 || p.Max == nil || *p.Max != 10 {
		t.Fatalf("min = %+v", p)
	}
	if mode := m.Parameters["mode"]; mode.Type != "string" || !slices.Equal(mode.Values, []string{"a", "b"}) || mode.Check("c") == nil {
		t.Fatalf("mode = %+v", mode)
	}
	if r := m.Parameters["ratio"]; r.Min == nil || *r.Min != 0.25 || r.Max != nil || r.Check("0.2") == nil {
		t.Fatalf("ratio = %+v", r)
	}
	// A clone shares nothing with the original.
	c := p.Clone()
	*c.Min = 5
	if *p.Min != 1 {
		t.Fatal("Clone shares Min")
	}
}

func FuzzParameterCheck(f *testing.F) {
	f.Add("int", 1.0, 10.0, "5")
	f.Add("number", -1.5, 2.5, "NaN")
	f.Add("int", 0.0, 100.0, "-9223372036854775808")
	f.Add("number", 0.0, 1.0, "1e-400")
	f.Fuzz(func(t *testing.T, typ string, lo, hi float64, v string) {
		p := ParameterSpec{Type: typ, Min: &lo, Max: &hi}
		if p.validate() != nil {
			return
		}
		if p.Check(v) != nil {
			return
		}
		// Accepted: within the bounds.
		switch typ {
		case "int":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || float64(n) < lo || float64(n) > hi {
				t.Fatalf("accepted %q outside [%v, %v]", v, lo, hi)
			}
		case "number":
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || !(x >= lo && x <= hi) {
				t.Fatalf("accepted %q outside [%v, %v]", v, lo, hi)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte(validManifest + "min = -3\nmax = 9007199254740991\n[parameters.m]\nvalues = [\"a\"]\n"))
	f.Add([]byte("name = \"x\"\n[limits]\nmemory_pages = 1e99"))
	f.Add([]byte("[parameters]\nx = 1"))
	f.Add([]byte("capabilities = [1, \"log\"]\n"))
	f.Add([]byte("module = \"a/../../b\"\n"))
	f.Add([]byte("\"\\")) // the parser reports line 0 for it
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error does not wrap ErrInvalidManifest: %v", err)
			}
			// A line the error names is one of data's.
			if rest, ok := strings.CutPrefix(err.Error(), ErrInvalidManifest.Error()+": line "); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexFunc(rest+":", func(r rune) bool { return r < '0' || r > '9' })])
				if n < 1 || n > 1+bytes.Count(data, []byte("\n")) {
					t.Fatalf("error names line %d of %d: %v", n, 1+bytes.Count(data, []byte("\n")), err)
				}
			}
			return
		}
		// Anything accepted must satisfy the invariants.
		if !validName(m.Name) || m.ABIVersion != ABIVersion || len(m.SHA256) != 64 ||
			!fs.ValidPath(m.Module) || strings.Contains(m.Module, "\\") {
			t.Fatalf("accepted invalid manifest %+v", m)
		}
		for _, c := range m.Capabilities {
			if !slices.Contains(Capabilities(), Capability(c)) {
				t.Fatalf("accepted unknown capability %q", c)
			}
		}
		for name, p := range m.Parameters {
			if p.validate() != nil || (p.Min != nil && p.Max != nil && *p.Min > *p.Max) {
				t.Fatalf("accepted invalid parameter %q: %+v", name, p)
			}
		}
		m.Resolve(Limits{})
	})
}

// TestCheckRelations: less_than holds between given values only; ints
// compare exactly, numbers as floats.
func TestCheckRelations(t *testing.T) {
	m, err := ParseManifest([]byte(validManifest + `
[parameters.size]
type = "int"
[parameters.overlap]
type = "int"
less_than = "size"
[parameters.ratio]
type = "number"
less_than = "limit"
[parameters.limit]
type = "number"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		params map[string]string
		key    string
		want   string
	}{
		{map[string]string{"size": "100", "overlap": "99"}, "", ""},
		{map[string]string{"size": "100", "overlap": "100"}, "overlap", "100 must be less than size (100)"},
		{map[string]string{"size": "100", "overlap": "500"}, "overlap", "500 must be less than size (100)"},
		{map[string]string{"overlap": "500"}, "", ""}, // size not given: the plugin's default, its own check
		{map[string]string{"size": "5"}, "", ""},
		{map[string]string{"size": "9007199254740993", "overlap": "9007199254740992"}, "", ""}, // exact beyond 2^53
		{map[string]string{"size": "9007199254740992", "overlap": "9007199254740993"}, "overlap", "must be less than size"},
		{map[string]string{"ratio": "0.5", "limit": "0.75"}, "", ""},
		{map[string]string{"ratio": "0.75", "limit": "0.5"}, "ratio", "0.75 must be less than limit (0.5)"},
		{map[string]string{"ratio": "NaN", "limit": "1"}, "ratio", "must be less than limit"},
	} {
		key, err := m.CheckRelations(tt.params)
		if key != tt.key || (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckRelations(%v) = %q, %v; want %q, %q", tt.params, key, err, tt.key, tt.want)
		}
	}
}

// TestValidateExport: the validate export of an entry, and which exports
// must have the validate signature.
func TestValidateExport(t *testing.T) {
	for entry, want := range map[string]string{"docex_run": "docex_validate", "docex_run_chunk": "docex_validate_chunk", "docex_run_a_b": "docex_validate_a_b"} {
		if got := ValidateExport(entry); got != want || !IsValidateExport(got) {
			t.Errorf("ValidateExport(%q) = %q, want %q", entry, got, want)
		}
	}
	for name, want := range map[string]bool{"docex_validate": true, "docex_validate_x": true, "docex_validate_": true, "docex_validatex": false, "docex_run": false, "validate": false} {
		if got := IsValidateExport(name); got != want {
			t.Errorf("IsValidateExport(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestParseStoredManifest: a manifest stored with a key spelt in another
// case (accepted when it was installed: the decoder took Name for name)
// still parses with ParseStoredManifest, so that its plugin runs, while
// ParseManifest, for installs, refuses it. A key the decoder could not
// place, or a wrong-case key of the wrong type, is refused by both.
func TestParseStoredManifest(t *testing.T) {
	for _, c := range []struct {
		replace, with string
		stored        bool // ParseStoredManifest accepts it
	}{
		{`abi_version = 1`, "abi_version = 1\nDescription = \"d\"", true},
		{`[limits]`, `[Limits]`, true},
		{`type = "int"`, `TYPE = "int"`, true},
		{`abi_version = 1`, "abi_version = 1\nnetwork = true", false},
		{`abi_version = 1`, "abi_version = 1\nDescription = 5", false},
	} {
		src := []byte(strings.Replace(validManifest, c.replace, c.with, 1))
		if _, err := ParseManifest(src); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("%s: ParseManifest: %v, want an unknown key", c.with, err)
		}
		m, err := ParseStoredManifest(src)
		if c.stored && (err != nil || m.Name != "word-count_2") {
			t.Errorf("%s: ParseStoredManifest: %+v, %v", c.with, m, err)
		}
		if !c.stored && !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: ParseStoredManifest: %v, want ErrInvalidManifest", c.with, err)
		}
	}
}
