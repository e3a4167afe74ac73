package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestDecodeErrorsNameKeys: decoding errors name the key path as written
// and what it should hold, never a Go type.
func TestDecodeErrorsNameKeys(t *testing.T) {
	cases := []struct {
		yaml string
		want []string
	}{
		{"config_version: 1\nmulti_tenancy:\n  enabled: maybe\n", []string{"multi_tenancy.enabled (line 3)", "true or false", "maybe"}},
		{"config_version: 1\nsandbox:\n  max_memory_pages: -5\n", []string{"sandbox.max_memory_pages (line 3)", "0 or more"}},
		{"config_version: 1\nsandbox:\n  max_memory_pages: lots\n  pool_size: x\n", []string{"sandbox.max_memory_pages (line 3)", "sandbox.pool_size (line 4)"}},
		{"config_version: 1\ndatabase:\n  type: sqlite\n  colour: red\n", []string{"database.colour (line 4): unknown key"}},
		{"config_version: 1\nbogus: true\n", []string{"config key bogus (line 2): unknown key"}},
		{"config_version: 1\ndatabse:\n  type: sqlite\n", []string{`config key databse (line 2): unknown key (did you mean "database"?)`}},
		{"config_version: 1\ndatabase:\n  sqlite:\n    synchronus: full\n", []string{`database.sqlite.synchronus (line 4): unknown key (did you mean "synchronous"?)`}},
		{"config_version: 1\nsandbox:\n  max_memory_page: 10\n", []string{`sandbox.max_memory_page (line 3): unknown key (did you mean "max_memory_pages"?)`}},
		{"config_version: 1\ndatabase: [1,2]\n", []string{"database (line 2)", "a mapping", "a list"}},
		{"config_version: x\n", []string{"config_version (line 1)", "whole number"}},
		{"config_version: \"1\"\n", []string{`config_version (line 1): want a whole number, got "1" (text): write it without the quotes`}},
		{"config_version: 1\nmulti_tenancy:\n  enabled: 'true'\n", []string{`multi_tenancy.enabled (line 3): want true or false, got "true" (text): write it without the quotes`}},
		{"config_version: 1\nstorage:\n  documents:\n    fsync: 3\n", []string{"storage.documents.fsync (line 4)"}},
		{"config_version: 1\nstorage: {documents: {type: [a]}}\n", []string{"storage.documents.type (line 2)", "text"}},
		{"{{{", []string{"not valid YAML"}},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), t.TempDir())
		if !errors.Is(err, docex.ErrInvalidConfig) {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %q lacks %q", c.yaml, err, w)
			}
		}
		for _, goName := range []string{"uint32", "int64", "config.", "!!", "unmarshal", " into "} {
			if strings.Contains(err.Error(), goName) {
				t.Errorf("%q: %q names a Go type (%s)", c.yaml, err, goName)
			}
		}
	}
}

// TestFractionsRefused: a number with a fraction or an exponent written
// for a whole-number key is a wrong type, refused with its key and line
// like a quoted one; before, the decoder truncated it silently
// (config_version: 1.9 was read as 1, max_document_bytes: 1.5 as 1).
// Whole numbers are written as digits: 1.0 and 1e3 are refused too, with
// the digits to write.
func TestFractionsRefused(t *testing.T) {
	keys := map[string]string{ // every whole-number key -> how to write it
		"config_version":                                   "config_version: %s\n",
		"database.sqlite.max_open_tenants":                 "config_version: 1\ndatabase:\n  sqlite:\n    max_open_tenants: %s\n",
		"database.sqlite.busy_timeout_ms":                  "config_version: 1\ndatabase:\n  sqlite:\n    busy_timeout_ms: %s\n",
		"database.sqlite.lock_timeout_ms":                  "config_version: 1\ndatabase:\n  sqlite:\n    lock_timeout_ms: %s\n",
		"database.postgres.max_conns":                      "config_version: 1\ndatabase:\n  postgres:\n    max_conns: %s\n",
		"database.postgres.idle_in_transaction_timeout_ms": "config_version: 1\ndatabase:\n  postgres:\n    idle_in_transaction_timeout_ms: %s\n",
		"database.postgres.lock_timeout_ms":                "config_version: 1\ndatabase:\n  postgres:\n    lock_timeout_ms: %s\n",
		"storage.documents.max_document_bytes":             "config_version: 1\nstorage:\n  documents:\n    max_document_bytes: %s\n",
		"storage.documents.s3.request_timeout_ms":          "config_version: 1\nstorage:\n  documents:\n    s3:\n      request_timeout_ms: %s\n",
		"storage.documents.s3.part_size_mib":               "config_version: 1\nstorage:\n  documents:\n    s3:\n      part_size_mib: %s\n",
		"sandbox.max_memory_pages":                         "config_version: 1\nsandbox:\n  max_memory_pages: %s\n",
		"sandbox.max_timeout_ms":                           "config_version: 1\nsandbox:\n  max_timeout_ms: %s\n",
		"sandbox.max_output_bytes":                         "config_version: 1\nsandbox:\n  max_output_bytes: %s\n",
		"sandbox.max_host_calls":                           "config_version: 1\nsandbox:\n  max_host_calls: %s\n",
		"sandbox.max_log_bytes":                            "config_version: 1\nsandbox:\n  max_log_bytes: %s\n",
		"sandbox.max_instructions":                         "config_version: 1\nsandbox:\n  max_instructions: %s\n",
		"sandbox.init_timeout_ms":                          "config_version: 1\nsandbox:\n  init_timeout_ms: %s\n",
		"sandbox.pool_size":                                "config_version: 1\nsandbox:\n  pool_size: %s\n",
		"sandbox.max_idle_bytes":                           "config_version: 1\nsandbox:\n  max_idle_bytes: %s\n",
		"sandbox.idle_ttl_ms":                              "config_version: 1\nsandbox:\n  idle_ttl_ms: %s\n",
		"sandbox.max_compiled_code_bytes":                  "config_version: 1\nsandbox:\n  max_compiled_code_bytes: %s\n",
	}
	for key, doc := range keys {
		line := strings.Count(doc, "\n")
		w := "a whole number"
		if key == "sandbox.max_memory_pages" {
			w = "a whole number, 0 or more"
		}
		for _, c := range []struct{ value, want string }{
			{"1.5", fmt.Sprintf("config key %s (line %d): want %s, got 1.5", key, line, w)},
			{"1.9", fmt.Sprintf("config key %s (line %d): want %s, got 1.9", key, line, w)},
			{"1.0", fmt.Sprintf("config key %s (line %d): want %s, got 1.0: write it as 1", key, line, w)},
			{"1e3", fmt.Sprintf("config key %s (line %d): want %s, got 1e3: write it as 1000", key, line, w)},
			{"-2.5", fmt.Sprintf("config key %s (line %d): want %s, got -2.5", key, line, w)},
			{".inf", fmt.Sprintf("config key %s (line %d): want %s, got .inf", key, line, w)},
			{"-.inf", fmt.Sprintf("config key %s (line %d): want %s, got -.inf", key, line, w)},
			{"1e30", fmt.Sprintf("config key %s (line %d): want %s, got 1e30", key, line, w)},
		} {
			y := fmt.Sprintf(doc, c.value)
			_, err := Parse([]byte(y), t.TempDir())
			if !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != c.want {
				t.Errorf("%q:\n got  %v\n want %s", y, err, c.want)
			}
		}
	}

	// With other errors: each once, in line order.
	y := "config_version: 1\nsandbox:\n  pool_size: x\n  max_timeout_ms: 2.5\n  max_memory_pages: 1e30\nbogus: 1\n"
	want := `config key sandbox.pool_size (line 3): want a whole number, got "x" (text); ` +
		`config key sandbox.max_timeout_ms (line 4): want a whole number, got 2.5; ` +
		`config key sandbox.max_memory_pages (line 5): want a whole number, 0 or more, got 1e30; ` +
		`config key bogus (line 6): unknown key`
	if _, err := Parse([]byte(y), t.TempDir()); err == nil || err.Error() != want {
		t.Errorf("%q:\n got  %v\n want %s", y, err, want)
	}

	// Digits, a merged fraction overridden by digits, and a fraction in a
	// key that is text are accepted.
	for _, y := range []string{
		"config_version: 1\nsandbox:\n  pool_size: 8\n  max_instructions: 1000000000000000\n",
		"config_version: 1\nbase: &b {pool_size: 1.5}\n",
		"config_version: 1\ndata_dir: 1.5\n",
		"config_version: 1\nsandbox:\n  <<: {pool_size: 1.5}\n  pool_size: 2\n",
	} {
		f, err := Parse([]byte(y), t.TempDir())
		if strings.Contains(y, "base") {
			if err == nil || strings.Contains(err.Error(), "whole number") {
				t.Errorf("%q: %v, want only the unknown key", y, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", y, err)
		} else if strings.Contains(y, "<<") && f.Sandbox.PoolSize != 2 {
			t.Errorf("%q: pool_size %d", y, f.Sandbox.PoolSize)
		}
	}
}

// TestDecodeErrorsNameTheKeyRead: a decoder error names the key the
// decoder read, as the walker that gives each key's line sees it (one
// walker, keyLines's and the messages'): a key merged in with << by its
// section's path (not "sandbox.<<.pool_size"), a section given by an alias
// by the path it is read at, a value on the line after its key by that key
// (not "config key at line 4 (line 4)"), each wrong value of a flow mapping
// by its own key (both were named after the last key of the line), an
// empty text by "" (it was "str"), and a key written twice by its path.
func TestDecodeErrorsNameTheKeyRead(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"config_version: 1\nsandbox:\n  <<: {pool_size: x}\n",
			`config key sandbox.pool_size (line 3): want a whole number, got "x" (text)`},
		{"config_version: 1\nsandbox:\n  <<: [{pool_size: 2}, {pool_size: x}]\n  cache_dir: c\n",
			""}, // the first merge wins: x is never read
		{"config_version: 1\nbase: &b {pool_size: x}\nsandbox: *b\n",
			`config key base (line 2): unknown key; config key sandbox.pool_size (line 2): want a whole number, got "x" (text)`},
		{"config_version: 1\nsandbox:\n  pool_size:\n    x\n",
			`config key sandbox.pool_size (line 3): want a whole number, got "x" (text)`},
		{"config_version: 1\ndatabase:\n  - 1\n",
			`config key database (line 2): want a mapping of keys, got a list`},
		{"config_version: 1\nsandbox: {max_memory_pages: lots, pool_size: x}\n",
			`config key sandbox.max_memory_pages (line 2): want a whole number, 0 or more, got "lots" (text); config key sandbox.pool_size (line 2): want a whole number, got "x" (text)`},
		{"config_version: 1\nsandbox: {max_memory_pages: somethinglong, pool_size: somethinglonger}\n",
			`config key sandbox.max_memory_pages (line 2): want a whole number, 0 or more, got "somethi..." (text); config key sandbox.pool_size (line 2): want a whole number, got "somethi..." (text)`},
		{"config_version: 1\nmulti_tenancy: \"\"\n",
			`config key multi_tenancy (line 2): want a mapping of keys, got "" (text)`},
		{"config_version: 1\nsandbox:\n  pool_size: 1\n  pool_size: 2\n",
			`config key sandbox.pool_size (line 4): written twice (first on line 3)`},
		{"config_version: 1\n!!binary Y29uZmlnX3ZlcnNpb24=: 1\n",
			`config key config_version (line 2): written twice`},
		{"config_version: 1\n? [a]\n: 1\n",
			`config (line 2): want text, got a list`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), t.TempDir())
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.yaml, err)
			}
			continue
		}
		if !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != c.want {
			t.Errorf("%q:\n got  %v\n want %s", c.yaml, err, c.want)
		}
	}
}

// TestParseIsLinear: Parse returns soon, whatever the file holds. The walk
// over the node tree (for the keys' lines and the values the decoder would
// truncate) followed every alias, so that ten aliases of ten aliases ...
// of a list, nine levels deep (a few hundred bytes), took 10^9 steps
// before the decoder refused the unknown keys; and the decoder compares
// every key of a mapping with every other one, which took minutes for the
// 100,000 keys that fit in MaxConfigBytes (and the message listed them
// all). Neither returned in the test's time on the old code.
func TestParseIsLinear(t *testing.T) {
	bomb := "config_version: 1\na0: &a0 [x,x,x,x,x,x,x,x,x,x]\n"
	for i := 1; i < 9; i++ {
		bomb += fmt.Sprintf("a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	var many strings.Builder
	many.WriteString("config_version: 1\n")
	for i := 0; many.Len() < MaxConfigBytes-20; i++ {
		fmt.Fprintf(&many, "k%d: 1\n", i)
	}
	second := "config_version: 1\n---\n" + strings.TrimPrefix(many.String()[:MaxConfigBytes/2], "config_version: 1\n")
	second = second[:strings.LastIndexByte(second, '\n')+1]
	cases := []struct{ name, yaml, want string }{
		{"aliases", bomb, "config key a0 (line 2): unknown key; config key a1 (line 3): unknown key"},
		{"keys", many.String(), "config (line 1): a mapping of "},
		{"keys in a second document", second, "config: more than one YAML document"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), t.TempDir())
		if !errors.Is(err, docex.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %.200v, want %s...", c.name, err, c.want)
		}
	}
}

// nested returns a docex.yaml setting the key at the dotted path to value,
// and the line of that key.
func nested(path, value string) (string, int) {
	if path == "config_version" {
		return "config_version: " + value + "\n", 1
	}
	y := "config_version: 1\n"
	parts := strings.Split(path, ".")
	for i, p := range parts {
		y += strings.Repeat("  ", i) + p + ":"
		if i == len(parts)-1 {
			y += " " + value
		}
		y += "\n"
	}
	return y, len(parts) + 1
}

// boolKeys returns the dotted path of every boolean key of docex.yaml.
func boolKeys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			for f := range t.Fields() {
				if k, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); k != "" && k != "-" && f.IsExported() {
					walk(f.Type, strings.TrimPrefix(prefix+"."+k, "."))
				}
			}
		case reflect.Bool:
			out = append(out, prefix)
		}
	}
	walk(reflect.TypeFor[File](), "")
	return out
}

// TestBooleansAreTrueOrFalse: a boolean is written true or false (YAML
// 1.2). The decoder read the YAML 1.1 spellings into a boolean key as
// well, quoted or not (enabled: off disabled multi-tenancy, fsync: "no"
// turned fsync off): every boolean key now refuses them, and the
// capitalised True and FALSE, naming the key and its line.
func TestBooleansAreTrueOrFalse(t *testing.T) {
	keys := boolKeys()
	if len(keys) != 4 {
		t.Fatalf("boolean keys %v: a new one? check its default and docex.yaml.example", keys)
	}
	for _, k := range keys {
		for _, c := range []struct{ value, got string }{
			{"yes", "yes"}, {"no", "no"}, {"on", "on"}, {"off", "off"}, {"y", "y"}, {"n", "n"},
			{"Yes", "Yes"}, {"NO", "NO"}, {"On", "On"}, {"OFF", "OFF"}, {"Y", "Y"}, {"N", "N"},
			{`"yes"`, `"yes" (text)`}, {"'off'", `"off" (text)`},
			{"True", "True"}, {"TRUE", "TRUE"}, {"False", "False"}, {"FALSE", "FALSE"},
			{"!!binary eWVz", "!!binary eWVz"}, // "yes"
		} {
			y, line := nested(k, c.value)
			want := fmt.Sprintf("config key %s (line %d): want true or false, got %s: use true or false", k, line, c.got)
			if _, err := Parse([]byte(y), t.TempDir()); !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != want {
				t.Errorf("%q:\n got  %v\n want %s", y, err, want)
			}
		}
		for _, v := range []string{"true", "false", "!!bool true"} {
			y, _ := nested(k, v)
			if _, err := Parse([]byte(y), t.TempDir()); err != nil && strings.Contains(err.Error(), "true or false") {
				t.Errorf("%q: %v", y, err)
			}
		}
	}
	// In a file that says it is YAML 1.1 too, and merged in.
	for y, want := range map[string]string{
		"%YAML 1.1\n---\nconfig_version: 1\nmulti_tenancy:\n  enabled: yes\n": "config key multi_tenancy.enabled (line 5): want true or false, got yes: use true or false",
		"config_version: 1\nstorage:\n  documents:\n    <<: {fsync: off}\n":   "config key storage.documents.fsync (line 4): want true or false, got off: use true or false",
	} {
		if _, err := Parse([]byte(y), t.TempDir()); err == nil || err.Error() != want {
			t.Errorf("%q:\n got  %v\n want %s", y, err, want)
		}
	}
	// Parsed values.
	f, err := Parse([]byte("config_version: 1\nmulti_tenancy:\n  enabled: false\nstorage:\n  documents:\n    tenant_scoped: true\n    fsync: false\n"), "/x")
	if err != nil || f.MultiTenant() || !*f.Storage.Documents.TenantScoped || *f.Storage.Documents.Fsync {
		t.Fatalf("false: %v %+v", err, f)
	}
}

// TestTagErrorsHideNothing: a value whose explicit tag it does not fit
// (enabled: !!bool yes, pool_size: !!int x, !!null x) stops the decoder,
// which then reported no other error: the file's unknown keys and wrong
// types were found one run at a time, after the tag was fixed. Every
// error is reported, each once, in line order, as for other errors.
func TestTagErrorsHideNothing(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"config_version: 1\nbogus: 1\nmulti_tenancy:\n  enabled: !!bool yes\n",
			"config key bogus (line 2): unknown key; config key multi_tenancy.enabled (line 4): want true or false, got !!bool yes: use true or false"},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!bool yes\nsandbox:\n  pool_size: x\n  max_memory_page: 1\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool yes: use true or false; " +
				`config key sandbox.pool_size (line 5): want a whole number, got "x" (text); ` +
				`config key sandbox.max_memory_page (line 6): unknown key (did you mean "max_memory_pages"?)`},
		{"config_version: 1\nsandbox:\n  pool_size: !!int x\n  max_timeout_ms: y\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!int x: write it in decimal digits; " +
				`config key sandbox.max_timeout_ms (line 4): want a whole number, got "y" (text)`},
		{"config_version: 1\nsandbox: {pool_size: !!int x, bogus: 1}\n",
			"config key sandbox.pool_size (line 2): want a whole number, got !!int x: write it in decimal digits; config key sandbox.bogus (line 2): unknown key"},
		{"config_version: 1\nsandbox:\n  cache_dir: &a !!null x\n  max_timeout_ms: y\n",
			"config key sandbox.cache_dir (line 3): no value: leave the key out for the default; " +
				`config key sandbox.max_timeout_ms (line 4): want a whole number, got "y" (text)`},
		{"config_version: 1\r\nmulti_tenancy:\r\n  enabled: !<tag:yaml.org,2002:bool> on\r\n  enabld: true\r\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool on: use true or false; " +
				`config key multi_tenancy.enabld (line 4): unknown key (did you mean "enabled"?)`},
		{"config_version: 1\ndata_dir: \"\u00e9\u2028\"\nmulti_tenancy: {enabled: !!bool off}\nbogus: 1\n",
			// U+2028 is a line break to YAML, in quotes too.
			"config key multi_tenancy.enabled (line 4): want true or false, got !!bool off: use true or false; config key bogus (line 5): unknown key"},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!bool no\n  bootstrap_tenant:\n    id: !!int x\nbogus: 1\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool no: use true or false; " +
				"config key multi_tenancy.bootstrap_tenant.id (line 5): want text, got !!int x: write it without the tag; config key bogus (line 6): unknown key"},
		// A key's tag: it said "config is not valid YAML: cannot decode
		// !!str `x` as a !!int", no key, no line, nothing else.
		{"config_version: 1\n!!int x: 1\nsandbox:\n  pool_size: abc\n",
			"config key x (line 2): a key is text, got !!int x: write it without the tag; " +
				`config key sandbox.pool_size (line 4): want a whole number, got "abc" (text)`},
		{"config_version: 1\nsandbox:\n  !!bool max_timeout_ms: 5\n  pool_size: abc\n",
			"config key sandbox.max_timeout_ms (line 3): a key is text, got !!bool max_timeout_ms: write it without the tag; " +
				`config key sandbox.pool_size (line 4): want a whole number, got "abc" (text)`},
		{"config_version: 1\nsandbox: {!!int 5: 1, pool_size: abc}\n",
			"config key sandbox.5 (line 2): a key is text, got !!int 5: write it without the tag; " +
				`config key sandbox.pool_size (line 2): want a whole number, got "abc" (text)`},
		// A local tag: the decoder reads past it.
		{"config_version: 1\n!a x: 1\nsandbox:\n  pool_size: abc\n",
			"config key x (line 2): a key is text, got !a x: write it without the tag; " +
				`config key sandbox.pool_size (line 4): want a whole number, got "abc" (text)`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "/x")
		if !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != c.want {
			t.Errorf("%q:\n got  %v\n want %s", c.yaml, err, c.want)
		}
	}
}
