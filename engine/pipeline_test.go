package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestStoredZeroAttempts: a new definition may not say max_attempts = 0,
// but a version stored with it (older versions took it as the default)
// still parses, with the default, so that its jobs run.
func TestStoredZeroAttempts(t *testing.T) {
	src := []byte("name = \"x\"\nmax_attempts = 0\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n")
	p, err := ParsePipeline(src)
	if err != nil || p.MaxAttempts != DefaultAttempts {
		t.Fatalf("stored definition: %+v, %v; want max_attempts %d", p, err, DefaultAttempts)
	}
	if err := p.checkNew(src); !errors.Is(err, docex.ErrInvalid) {
		t.Fatalf("new definition: %v, want ErrInvalid", err)
	}
	for _, ok := range []string{"name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "name = \"x\"\nmax_attempts = 1\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n"} {
		q, err := ParsePipeline([]byte(ok))
		if err == nil {
			err = q.checkNew([]byte(ok))
		}
		if err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestUniqueIDs(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "a"}, []string{"a"}},
		{[]string{"b", "a", "b", "c", "a"}, []string{"b", "a", "c"}},
		{nil, nil},
	} {
		if got := uniqueIDs(c.in); !slices.Equal(got, c.want) {
			t.Errorf("uniqueIDs(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestParamsMustBeATable: params given as anything but a table (a string,
// a number, an array) was dropped without a word, so the step ran with
// its plugin's defaults. A new definition is refused with the line, the
// key and an example; a version stored with it still parses, as before.
func TestParamsMustBeATable(t *testing.T) {
	head := "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n"
	for _, c := range []struct{ value, want string }{
		{`"size=800"`, "pipeline line 5, key steps[0].params: want a table of parameters, for example params = { size = 800 }, got a string"},
		{`800`, "pipeline line 5, key steps[0].params: want a table of parameters, for example params = { size = 800 }, got an integer"},
		{`["size", 800]`, "pipeline line 5, key steps[0].params: want a table of parameters, for example params = { size = 800 }, got an array"},
		{`true`, "got a bool"},
	} {
		src := []byte(head + "params = " + c.value + "\n")
		p, err := ParsePipeline(src)
		if err != nil {
			t.Fatalf("%s: stored definition: %v", c.value, err)
		}
		err = p.checkNew(src)
		if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("params = %s: %v, want %q", c.value, err, c.want)
		}
	}
	// The second step's, after a table header.
	src := []byte(head + "[steps.params]\nsize = 800\n[[steps]]\nname = \"b\"\nplugin = \"chunk\"\ninput = \"a\"\nparams = 3\n")
	p, err := ParsePipeline(src)
	if err == nil {
		err = p.checkNew(src)
	}
	if want := "pipeline line 11, key steps[1].params: want a table"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second step: %v, want %q", err, want)
	}
	for _, ok := range []string{head, head + "params = { size = 800 }\n", head + "[steps.params]\nsize = 800\n", head + "params = {}\n"} {
		p, err := ParsePipeline([]byte(ok))
		if err == nil {
			err = p.checkNew([]byte(ok))
		}
		if err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestKeyLine: an error names the line of the key it is about, whether the
// step gives its parameters inline, as a [steps.params] table or as dotted
// keys (params.size = 0 named the step's header line before).
func TestKeyLine(t *testing.T) {
	head := "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n"
	for _, c := range []struct {
		body string
		step int
		key  string
		want int
	}{
		{"params = { size = 0 }\n", 0, "params.size", 5},
		{"params.overlap = 1\nparams.size = 0\n", 0, "params.size", 6},
		{"params . size = 0\n", 0, "params.size", 5},
		{"params.size = 0\n", 0, "params", 5},
		{"[steps.params]\noverlap = 1\nsize = 0\n", 0, "params.size", 7},
		{"params.overlap = 1\n", 0, "params.size", 2}, // absent: the step's header
		{"[[steps]]\nname = \"b\"\nplugin = \"chunk\"\nparams.size = 0\n", 1, "params.size", 8},
		{"", -1, "name", 1},
		{"[steps.params.sub]\nk = 1\n", 0, "params.sub", 5},
		{"[steps.params]\nsize = 8\n[steps.params.sub]\nk = 1\n", 0, "params.sub", 7},
		// Strings, comments and quoted keys do not mislead the scan.
		{"params = { a = \"}\", size = 0 }\n", 0, "params.size", 5},
		{"accept = [\"x/y\", # ]\n \"a/b\"]\nparams.size = 0\n", 0, "params.size", 7},
		{"[[steps]]\nname = \"\"\"\n[[steps]]\n\"\"\"\nplugin = 'x'\nparams.size = 0\n", 1, "params.size", 10},
		{"[[steps]]\nname = \"\"\"\n[[steps]]\n\"\"\"\n", 2, "", 0},
		{"\"params\" . 'size' = 0\n", 0, "params.size", 5},
		// A step written inline: its line, and of a key the line it is on.
		{"[[steps]]\nname = \"b\"\n", 1, "", 5},
		{"", 0, "plugin", 4},
	} {
		if got := keyLine([]byte(head+c.body), c.step, c.key); got != c.want {
			t.Errorf("keyLine(%q, %d, %s) = %d, want %d", c.body, c.step, c.key, got, c.want)
		}
	}
}

// TestPipelineSyntaxWords: the TOML parser's own messages are reworded
// ("Key 'name' has already been defined.", '\n').
func TestPipelineSyntaxWords(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name = \"x\"\nname = \"y\"\n", `pipeline line 2: key "name" is defined twice`},
		{"name = \n", "pipeline line 1: expected value but found the end of the line instead"},
		// A table header cut short is reported at its own line, not at
		// the next one (line 3 before).
		{"name = \"p15\"\n[[steps]\nname = \"c\"\n", "pipeline line 2: expected end of table array name delimiter ']', but got the end of the line instead"},
		{"name = \"p15\"\n[[steps]\n", "pipeline line 2: expected end of table array name delimiter ']', but got the end of the line instead"},
		{"name = \"x\"\n[steps\n[[steps]]\n", "pipeline line 2: expected '.' or ']' to end table name, but got the end of the line instead"},
		// An escape cut off by the end of the file: the parser says line 2,
		// and quotes the end as a NUL rune.
		{"name = \"x\"\n[[steps]]\nname = \"\\", `pipeline line 3: invalid escape in string '\' at the end of the file`},
	} {
		_, err := ParsePipeline([]byte(c.src))
		if !errors.Is(err, docex.ErrInvalid) || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.src, err, c.want)
		}
	}
}

// TestMaxDerivedKey: max_derived, the most documents one job may derive,
// is 1 to MaxDerivedLimit, an integer, DefaultDerived when left out; a
// bad value names its line and key.
func TestMaxDerivedKey(t *testing.T) {
	const steps = "[[steps]]\nname = \"a\"\nplugin = \"split\"\n"
	for _, c := range []struct {
		value string // "" leaves the key out
		want  int
		err   string
	}{
		{"", DefaultDerived, ""},
		{"1", 1, ""},
		{"20", 20, ""},
		{"1000000", MaxDerivedLimit, ""},
		{"1_000", 1000, ""},
		{"0", 0, "pipeline line 2, key max_derived: max_derived 0: want 1 to 1000000, the most documents one job may derive, all steps together (leave it out for the default, 100000)"},
		{"-1", 0, "pipeline line 2, key max_derived: max_derived -1: want 1 to 1000000"},
		{"1000001", 0, "pipeline line 2, key max_derived: max_derived 1000001: want 1 to 1000000"},
		{"99999999999999999999", 0, "pipeline line 2: 99999999999999999999 is out of range"},
		{`"x"`, 0, "pipeline line 2, key max_derived: want an integer, got a string"},
		{"1.5", 0, "pipeline line 2, key max_derived: want an integer, got a number"},
		{"true", 0, "pipeline line 2, key max_derived: want an integer, got a bool"},
	} {
		src := "name = \"x\"\n"
		if c.value != "" {
			src += "max_derived = " + c.value + "\n"
		}
		p, err := ParsePipeline([]byte(src + steps))
		if c.err == "" {
			if err != nil || p.MaxDerived != c.want {
				t.Errorf("max_derived = %q: %+v, %v; want %d", c.value, p, err, c.want)
			}
			continue
		}
		if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("max_derived = %q: %v, want ErrInvalid with %q", c.value, err, c.err)
		}
	}
	// Misspelt, or another tool's name for it, or given to a step.
	for _, c := range []struct{ src, want string }{
		{"name = \"x\"\nmax_derive = 5\n" + steps, `pipeline line 2, key max_derive: unknown key "max_derive" (did you mean "max_derived"?)`},
		{"name = \"x\"\nmax_documents = 5\n" + steps, `pipeline line 2, key max_documents: unknown key "max_documents" (did you mean "max_derived"? the most documents one job may derive, all steps together)`},
		{"name = \"x\"\n" + steps + "max_derived = 5\n", `pipeline line 5, key steps[0].max_derived: unknown key "max_derived" (a step has no such key: max_derived, at the top of the file, bounds the documents a job derives, all steps together)`},
	} {
		_, err := ParsePipeline([]byte(c.src))
		if !errors.Is(err, docex.ErrInvalid) || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.src, err, c.want)
		}
	}
}

// TestEmptyAcceptRefused: accept = [] filtered nothing (the step took every
// input), where a user may mean the opposite. A new definition is refused
// with the line and key; a version stored with it still parses, as before.
func TestEmptyAcceptRefused(t *testing.T) {
	src := []byte("name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n[[steps]]\nname = \"b\"\nplugin = \"stats\"\naccept = []\n")
	p, err := ParsePipeline(src)
	if err != nil || len(p.Steps[1].Accept) != 0 || !p.Steps[1].Accepts("application/pdf") {
		t.Fatalf("stored definition: %+v, %v", p, err)
	}
	err = p.checkNew(src)
	if want := "pipeline line 8, key steps[1].accept: an empty content-type filter"; !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("new definition: %v, want ErrInvalid with %q", err, want)
	}
	for _, ok := range []string{"name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\naccept = [\"text/*\"]\n"} {
		q, err := ParsePipeline([]byte(ok))
		if err == nil {
			err = q.checkNew([]byte(ok))
		}
		if err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestEmptyInputRefused: input = "" names no step, yet was taken for
// "document". A new definition is refused with the line and key, in a
// [[steps]] table or an inline one; a version stored with it still
// parses, its input "document", as before.
func TestEmptyInputRefused(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n[[steps]]\nname = \"b\"\nplugin = \"stats\"\ninput = \"\"\n", `pipeline line 8, key steps[1].input: input "" is neither "document" nor a step of this pipeline (leave input out for "document", the default)`},
		{"name = \"x\"\nsteps = [\n  { name = \"a\", plugin = \"chunk\", input = \"\" },\n]\n", `key steps[0].input: input "" is neither "document"`},
	} {
		p, err := ParsePipeline([]byte(c.src))
		if err != nil || p.Steps[len(p.Steps)-1].Input != InputDocument {
			t.Fatalf("stored definition %q: %+v, %v", c.src, p, err)
		}
		err = p.checkNew([]byte(c.src))
		if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("new definition %q: %v, want ErrInvalid with %q", c.src, err, c.want)
		}
	}
	for _, ok := range []string{"name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n", "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\ninput = \"document\"\n"} {
		q, err := ParsePipeline([]byte(ok))
		if err == nil {
			err = q.checkNew([]byte(ok))
		}
		if err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestBadParamValueKey: a parameter whose value is not a string, number or
// bool, or not finite, is named by its own key and line (a table given as
// [steps.params.sub] was reported at the step's [[steps]] line, key
// params); of several, the first by name every time.
func TestBadParamValueKey(t *testing.T) {
	head := "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"chunk\"\n"
	for _, c := range []struct{ body, want string }{
		{"[steps.params.sub]\nk = 1\n", `pipeline line 5, key steps[0].params.sub: parameter "sub": want a string, number or bool, not a table`},
		{"[steps.params]\nsize = 800\noverlap = [1]\n", `pipeline line 7, key steps[0].params.overlap: parameter "overlap": want a string, number or bool, not an array`},
		{"params = { size = inf }\n", `pipeline line 5, key steps[0].params.size: parameter "size": not a finite number`},
		{"params = { \"size \" = 1 }\n", `pipeline line 5, key steps[0].params: parameter name "size " is not valid`},
		{"params = { z = [1], b = [2], m = {} }\n", `key steps[0].params.b: parameter "b"`},
	} {
		for range 5 { // map order must not choose the parameter named
			_, err := ParsePipeline([]byte(head + c.body))
			if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%q: %v, want %q", c.body, err, c.want)
			}
		}
	}
}

// TestValidateMetaFirstByName: of several bad metadata keys, the error
// names the first by name, every time (map order chose one).
func TestValidateMetaFirstByName(t *testing.T) {
	m := map[string]docex.Value{}
	for _, k := range []string{"zz\x01bad", "mm\x01bad", "aa\x01bad", "ok"} {
		m[k] = docex.String("v")
	}
	for range 20 {
		if err := validateMeta(m); err == nil || !strings.Contains(err.Error(), `"aa\x01bad"`) {
			t.Fatalf("validateMeta: %v, want the key aa\\x01bad named", err)
		}
	}
}

// TestWorkerConfigBounds: a tenant named twice is served once (two names
// halved its slots: a worker of two tenants leaves each half), and
// Concurrency and Batch are capped.
func TestWorkerConfigBounds(t *testing.T) {
	w := (&Engine{}).Worker(WorkerConfig{Tenants: []string{"a", "b", "a"}, Concurrency: 5000, TenantConcurrency: 4000, Batch: 5000})
	if !slices.Equal(w.cfg.Tenants, []string{"a", "b"}) || w.cfg.Concurrency != MaxConcurrency || w.cfg.TenantConcurrency != MaxConcurrency || w.cfg.Batch != MaxBatch {
		t.Errorf("config %+v", w.cfg)
	}
	if w := (&Engine{}).Worker(WorkerConfig{}); w.cfg.Tenants != nil {
		t.Errorf("nil tenants (every tenant) became %v", w.cfg.Tenants)
	}
}

// TestPluginValuesFirstByName: of several metadata values a plugin set
// with an unsupported type, the error names the first key by name, every
// time (map order chose one).
func TestPluginValuesFirstByName(t *testing.T) {
	m := map[string]any{"zz": []any{}, "bb": map[string]any{}, "mm": nil, "ok": "v"}
	for range 20 {
		if _, err := pluginValues("p", m); !errors.Is(err, docex.ErrPluginFailed) || !strings.Contains(err.Error(), `metadata "bb"`) {
			t.Fatalf("pluginValues: %v, want ErrPluginFailed naming \"bb\"", err)
		}
	}
}

// TestPipelineErrorLines: an error names the line of the key it is about
// however the steps are written. Steps given as an inline array (steps =
// [ { ... } ]), an unknown table ([[step]], [meta]) and a step more than
// MaxPipelineSteps named no line; an unknown key inside an inline step
// was named without its step (bogus for steps[0].bogus).
func TestPipelineErrorLines(t *testing.T) {
	many := "name = \"x\"\n"
	for i := range MaxPipelineSteps + 1 {
		many += fmt.Sprintf("[[steps]]\nname = \"s%d\"\nplugin = \"tag\"\n", i)
	}
	for _, c := range []struct{ src, want string }{
		{"name = \"x\"\nsteps = [\n  { name = \"a\", plugin = \"tag\" },\n  { name = \"b\", plugin = \"tag\", bogus = 1 },\n]\n",
			`pipeline line 4, key steps[1].bogus: unknown key "bogus"`},
		{"name = \"x\"\nsteps = [ { name = \"a\", plugin = \"tag\", bogus = 1 } ]\n",
			`pipeline line 2, key steps[0].bogus: unknown key "bogus"`},
		{"name = \"x\"\nsteps = [ { name = \"a\", plugin = \"tag\", input = \"b\" } ]\n",
			`pipeline line 2, key steps[0].input: input "b" is neither "document" nor a step of this pipeline`},
		{"name = \"x\"\n\n[[step]]\nname = \"a\"\nplugin = \"tag\"\n",
			`pipeline line 3, key step: unknown key "step" (did you mean "steps"?`},
		{"name = \"x\"\n[meta]\nowner = \"me\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n",
			`pipeline line 2, key meta: unknown key "meta"`},
		{"name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n[steps.extra]\nk = 1\n",
			`pipeline line 5, key steps[0].extra: unknown key "extra"`},
		{"name = \"x\"\nsteps = []\n", "pipeline line 2, key steps: a pipeline needs at least one [[steps]]"},
		{many, fmt.Sprintf("pipeline line %d, key steps: 33 steps, more than 32", 2+3*MaxPipelineSteps)},
	} {
		_, err := ParsePipeline([]byte(c.src))
		if !errors.Is(err, docex.ErrInvalid) || !strings.HasPrefix(strings.TrimPrefix(err.Error(), "invalid argument: "), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.src, err, c.want)
		}
	}
	// Inline steps checked against the installed plugins.
	ctx := context.Background()
	s := acmeSession(t, newTestSandbox(t))
	installTestPlugins(t, s, "tag")
	for _, c := range []struct{ src, want string }{
		{"name = \"x\"\nsteps = [ { name = \"a\", plugin = \"nope\" }, ]\n",
			`pipeline line 2, key steps[0].plugin: unknown plugin "nope"`},
		{"name = \"x\"\nsteps = [\n  { name = \"a\", plugin = \"tag\" },\n  { name = \"b\",\n    plugin = \"nope\" },\n]\n",
			`pipeline line 5, key steps[1].plugin: unknown plugin "nope"`},
		{"name = \"x\"\nsteps = [\n  { name = \"a\", plugin = \"tag\",\n    params = { size = 1 } },\n]\n",
			`pipeline line 4, key steps[0].params.size: plugin "tag" has no parameter "size"`},
	} {
		_, err := s.CreatePipeline(ctx, []byte(c.src))
		if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.src, err, c.want)
		}
	}
}

// TestKeyLineInline: keyLine finds the keys of steps written as an inline
// array of tables.
func TestKeyLineInline(t *testing.T) {
	src := []byte("name = \"x\"\nsteps = [\n  { name = \"a\", plugin = \"tag\" }, # [[steps]]\n  {\n    name = \"b\",\n    params = { size = 1, sub = { k = \"]\" } },\n  },\n]\n")
	for _, c := range []struct {
		step int
		key  string
		want int
	}{
		{0, "plugin", 3}, {0, "", 3}, {0, "params", 3}, {1, "", 4}, {1, "name", 5},
		{1, "params.size", 6}, {1, "params.sub.k", 6}, {1, "plugin", 4}, {2, "", 0}, {-1, "steps", 2},
	} {
		if got := keyLine(src, c.step, c.key); got != c.want {
			t.Errorf("keyLine(%d, %q) = %d, want %d", c.step, c.key, got, c.want)
		}
	}
}

// TestPipelineKeysExactCase: a key is known only as spelt. The decoder
// matched keys to fields whatever their case, so NAME, Steps or PLUGIN
// were accepted, and of name = "a" and Name = "b" the second silently
// won. Each is an unknown key in a new definition, named with its line
// and the right key. A stored version may have one (it was accepted): it
// still parses, as before, so that its jobs run, unless the key's value
// has the wrong type too.
func TestPipelineKeysExactCase(t *testing.T) {
	const step = "[[steps]]\nname = \"a\"\nplugin = \"tag\"\n"
	for _, c := range []struct{ src, want string }{
		{"name = \"dupa\"\nName = \"dupb\"\n" + step, `pipeline line 2, key Name: unknown key "Name" (did you mean "name"?)`},
		{"NAME = \"x\"\n" + step, `pipeline line 1, key NAME: unknown key "NAME" (did you mean "name"?)`},
		{"name = \"x\"\nMax_Attempts = 2\n" + step, `pipeline line 2, key Max_Attempts: unknown key "Max_Attempts" (did you mean "max_attempts"?)`},
		{"name = \"x\"\n[[Steps]]\nname = \"a\"\nplugin = \"tag\"\n", `pipeline line 2, key Steps: unknown key "Steps" (did you mean "steps"?)`},
		{"name = \"x\"\n" + step + "Plugin = \"other\"\n", `pipeline line 5, key steps[0].Plugin: unknown key "Plugin" (did you mean "plugin"?)`},
		{"name = \"x\"\n[[steps]]\nname = \"a\"\nPLUGIN = \"tag\"\n", `pipeline line 4, key steps[0].PLUGIN: unknown key "PLUGIN" (did you mean "plugin"?)`},
		{"name = \"x\"\nsteps = [ { name = \"a\", plugin = \"tag\", Accept = [\"text/*\"] } ]\n", `pipeline line 2, key steps[0].Accept: unknown key "Accept" (did you mean "accept"?)`},
		{"name = \"x\"\n" + step + "[steps.Params]\nsize = 1\n", `pipeline line 5, key steps[0].Params: unknown key "Params" (did you mean "params"?)`},
		// A wrong-case key whose value has the wrong type is still an
		// unknown key first.
		{"name = \"x\"\nDescription = 5\n" + step, `pipeline line 2, key Description: unknown key "Description" (did you mean "description"?)`},
		{"name = \"x\"\n" + step + "Retry_Timeout = \"yes\"\n", `pipeline line 5, key steps[0].Retry_Timeout: unknown key "Retry_Timeout" (did you mean "retry_timeout"?)`},
	} {
		p, err := ParsePipeline([]byte(c.src))
		stored := err == nil
		if err == nil {
			err = p.checkNew([]byte(c.src))
		}
		if !errors.Is(err, docex.ErrInvalid) || strings.TrimPrefix(err.Error(), "invalid argument: ") != c.want {
			t.Errorf("%q:\n got %v\nwant %s", c.src, err, c.want)
		}
		if typeErr := strings.Contains(c.src, "= 5") || strings.Contains(c.src, "\"yes\""); stored == typeErr {
			t.Errorf("%q: stored version parses: %v", c.src, stored)
		}
	}
	// Parameter names keep their case (the plugin's check says whether
	// it has them).
	p, err := ParsePipeline([]byte("name = \"x\"\n" + step + "params = { Size = 1 }\n"))
	if err != nil || p.Steps[0].Params["Size"] != "1" {
		t.Errorf("params = { Size = 1 }: %+v, %v", p, err)
	}
}

// TestStepTypeErrorIndex: a value of the wrong type in a step is named
// with the step's index (steps.accept before) and the line of that step's
// key (the decoder names the line of the last step that sets the key).
func TestStepTypeErrorIndex(t *testing.T) {
	const a = "name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n"
	for _, c := range []struct{ src, want string }{
		{a + "accept = \"text/*\"\n", `pipeline line 5, key steps[0].accept: want an array of content types, for example accept = ["text/plain", "application/pdf"], got a string`},
		{a + "retry_timeout = 1\n", `pipeline line 5, key steps[0].retry_timeout: want true or false, got an integer`},
		{a + "input = 1\n", `pipeline line 5, key steps[0].input: want a string, got an integer`},
		{a + "[[steps]]\nname = \"b\"\nplugin = \"tag\"\ninput = false\n", `pipeline line 8, key steps[1].input: want a string, got a boolean`},
		// The first of two bad steps, at its own line (line 9 before).
		{a + "accept = 1\n[[steps]]\nname = \"b\"\nplugin = \"tag\"\naccept = [\"x/y\"]\n[[steps]]\nname = \"c\"\nplugin = \"tag\"\naccept = 2\n",
			`pipeline line 5, key steps[0].accept: want an array of content types`},
		{"name = \"x\"\nsteps = [\n  { name = \"a\", plugin = \"tag\" },\n  { name = \"b\", plugin = 3 },\n]\n", `pipeline line 4, key steps[1].plugin: want a string, got an integer`},
	} {
		_, err := ParsePipeline([]byte(c.src))
		if !errors.Is(err, docex.ErrInvalid) || !strings.HasPrefix(strings.TrimPrefix(err.Error(), "invalid argument: "), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.src, err, c.want)
		}
	}
}

// TestPluginNameCaseHint: a plugin named in the wrong case is refused
// with the name it may mean, as docex run does (no hint before).
func TestPluginNameCaseHint(t *testing.T) {
	const head = "name = \"x\"\n[[steps]]\nname = \"a\"\n"
	for _, c := range []struct{ plugin, want string }{
		{"Chunk", `pipeline line 4, key steps[0].plugin: plugin name "Chunk" is not valid (did you mean "chunk"?)`},
		{"EXTRACT-TEXT", `pipeline line 4, key steps[0].plugin: plugin name "EXTRACT-TEXT" is not valid (did you mean "extract-text"?)`},
		{"chunk!", `pipeline line 4, key steps[0].plugin: plugin name "chunk!" is not valid`},
		{"1chunk", `pipeline line 4, key steps[0].plugin: plugin name "1chunk" is not valid`},
	} {
		_, err := ParsePipeline([]byte(head + "plugin = \"" + c.plugin + "\"\n"))
		if !errors.Is(err, docex.ErrInvalid) || strings.TrimPrefix(err.Error(), "invalid argument: ") != c.want {
			t.Errorf("plugin %q:\n got %v\nwant %s", c.plugin, err, c.want)
		}
	}
}

// TestPipelineTooLarge: a definition over MaxPipelineBytes is refused
// with docex.ErrTooLarge (code too_large, a kind of ErrInvalid); it was
// the plain ErrInvalid.
func TestPipelineTooLarge(t *testing.T) {
	src := []byte("name = \"x\"\n" + strings.Repeat("#", MaxPipelineBytes))
	_, err := ParsePipeline(src)
	if !errors.Is(err, docex.ErrTooLarge) || !errors.Is(err, docex.ErrInvalid) {
		t.Fatalf("%d bytes: %v, want ErrTooLarge", len(src), err)
	}
	if _, err := ParsePipeline(src[:MaxPipelineBytes]); errors.Is(err, docex.ErrTooLarge) {
		t.Fatalf("%d bytes: %v", MaxPipelineBytes, err)
	}
}
