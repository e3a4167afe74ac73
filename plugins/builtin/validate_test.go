package builtin_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// badParams are parameter values the manifests accept and the steps
// refuse (what only their code can check), per step.
var badParams = []struct {
	step   string
	params map[string]string
	want   string // the step's message, without "invalid parameter: "
}{
	{"chunk", map[string]string{"overlap": "600"}, "overlap: 600 must be smaller than size 512"},
	{"redact-pii", map[string]string{"kinds": "emial"}, `kinds: unknown kind "emial" (want email, phone, card, iban, ipv4, ipv6, ssn)`},
	{"redact-pii", map[string]string{"kinds": "email,SSN"}, `kinds: unknown kind "SSN" (want email, phone, card, iban, ipv4, ipv6, ssn)`},
	{"redact-pii", map[string]string{"kinds": "ssn,phone,ssn"}, `kinds: "ssn" given twice`},
	{"redact-pii", map[string]string{"kinds": " , "}, "kinds: empty list"},
	{"redact-pii", map[string]string{"patterns": "EMP-[0-9]{6}"}, `patterns: want a JSON object {"name": "regexp", ...}`},
	{"redact-pii", map[string]string{"patterns": `["EMP"]`}, `patterns: want a JSON object`},
	{"redact-pii", map[string]string{"patterns": `{"Employee": "EMP-[0-9]{6}"}`}, `patterns: name "Employee": want 1-32 of [a-z0-9_]`},
	{"redact-pii", map[string]string{"patterns": `{"SSN": "[0-9]{3}-[0-9]{2}-[0-9]{4}"}`}, `patterns: name "SSN": want 1-32 of [a-z0-9_]`},
	{"redact-pii", map[string]string{"patterns": `{"emp": "EMP-[0-9"}`}, "patterns: emp: error parsing regexp: missing closing ]"},
	{"redact-pii", map[string]string{"patterns": `{"emp": "(?<x"}`}, "patterns: emp: error parsing regexp"},
	{"redact-pii", map[string]string{"patterns": `{"emp": "[0-9]*"}`}, "patterns: emp matches the empty string"},
	{"redact-pii", map[string]string{"patterns": `{"emp": "EMP-[0-9]{6}", "emp": "E[0-9]{4}"}`}, `patterns: name "emp" given twice`},
	{"redact-pii", map[string]string{"replacement": strings.Repeat("x", 257)}, "replacement: at most 256 bytes"},
	{"csv-to-json", map[string]string{"delimiter": ";;"}, `delimiter: ";;": want one character other than NUL, a quote or a line break`},
	{"csv-to-json", map[string]string{"delimiter": `"`}, `delimiter: "\"": want one character`},
	{"csv-to-json", map[string]string{"delimiter": ""}, `delimiter: "": want one character`},
	{"json-extract", map[string]string{"fields": ","}, "fields: no field given"},
	{"json-extract", map[string]string{"fields": "a..b"}, `fields: empty segment in path "a..b"`},
	{"json-extract", map[string]string{"fields": "items[x]"}, `fields: bad index in "items[x]"`},
}

// goodParams are accepted by every check.
var goodParams = []struct {
	step   string
	params map[string]string
}{
	{"chunk", map[string]string{}},
	{"chunk", map[string]string{"size": "800", "overlap": "80", "separators": `\n\n,\n, ,`}},
	{"chunk", map[string]string{"size": "20"}}, // the default overlap shrinks
	{"redact-pii", map[string]string{"kinds": "email, card", "patterns": `{"employee_ref": "EMP-[0-9]{6}"}`, "replacement": "<{kind}>"}},
	{"redact-pii", map[string]string{"kinds": "ssn"}},
	{"redact-pii", map[string]string{"kinds": "email,phone,card,iban,ipv4,ipv6,ssn"}},
	// A pattern named like a built-in kind adds to it (a pipeline stored
	// before ssn was a kind has one).
	{"redact-pii", map[string]string{"patterns": `{"ssn": "[0-9]{3}-[0-9]{2}-[0-9]{4}"}`}},
	{"redact-pii", map[string]string{"kinds": "email", "patterns": `{"email": "x+", "ssn": "[0-9]{9}"}`}},
	{"csv-to-json", map[string]string{"delimiter": "tab", "header": "false"}},
	{"csv-to-json", map[string]string{"delimiter": "é"}},
	{"json-extract", map[string]string{"fields": "customer.name,total=order.items[0].price", "required": "true"}},
	{"extract-text", map[string]string{"format": "pdf"}},
	{"stats", map[string]string{"top": "0"}},
	{"detect-type", map[string]string{}},
}

// TestValidateAgreesWithRun: a built-in step's docex_validate_NAME
// refuses exactly what its run refuses, with the same words: the native
// Go code's error, the guest's refusal and the guest's failed run.
func TestValidateAgreesWithRun(t *testing.T) {
	ctx := context.Background()
	code := map[string]steps.Step{}
	for _, s := range steps.All() {
		code[s.Name] = s
	}
	in := []byte("a,b\n1,2\n")
	for _, tt := range badParams {
		t.Run(tt.step+"/"+tt.want, func(t *testing.T) {
			env := &paramEnv{memEnv: memEnv{in: steps.Input{Name: "x.txt", ContentType: "text/plain", Size: int64(len(in)), Content: bytes.NewReader(in)}},
				params: tt.params}
			runErr := code[tt.step].Run(env)
			if !errors.Is(runErr, steps.ErrParam) || !strings.Contains(runErr.Error(), tt.want) {
				t.Fatalf("native run: %v, want %q", runErr, tt.want)
			}
			if vErr := code[tt.step].Validate(env); vErr == nil || vErr.Error() != runErr.Error() {
				t.Fatalf("native validate: %v, run: %v", vErr, runErr)
			}
			_, p := plugin(t, tt.step)
			if !p.Validates() {
				t.Fatalf("%s exports no docex_validate_*", tt.step)
			}
			err := p.Validate(ctx, "t1", tt.params)
			var r *pluginapi.Refusal
			if !errors.As(err, &r) || r.Message != steps.ParamMessage(runErr) {
				t.Fatalf("guest validate: %v, want a refusal saying %q", err, steps.ParamMessage(runErr))
			}
			_, err = run(t, tt.step, bytesDoc("x.txt", "text/plain", in), tt.params)
			if !errors.Is(err, pluginapi.ErrPluginStatusError) || !strings.Contains(err.Error(), runErr.Error()) {
				t.Fatalf("guest run: %v, want %q", err, runErr)
			}
		})
	}
	for _, tt := range goodParams {
		_, p := plugin(t, tt.step)
		if err := p.Validate(ctx, "t1", tt.params); err != nil {
			t.Errorf("%s %v: %v", tt.step, tt.params, err)
		}
		if s := code[tt.step]; s.Validate != nil {
			if err := s.Validate(&paramEnv{params: tt.params}); err != nil {
				t.Errorf("native %s %v: %v", tt.step, tt.params, err)
			}
		}
		if want := tt.step != "detect-type"; p.Validates() != want {
			t.Errorf("%s: Validates() = %v, want %v", tt.step, p.Validates(), want)
		}
	}
}

// TestPipelineCreateChecksStepParams: pipeline create runs each built-in
// step's parameter check: what the manifest cannot declare is refused
// with the line and key (ErrInvalid), nothing is stored; good ones pass.
func TestPipelineCreateChecksStepParams(t *testing.T) {
	ctx := context.Background()
	eng := builtinEngine(t)
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	def := func(step string, params map[string]string) string {
		var b strings.Builder
		b.WriteString("name = \"p\"\n[[steps]]\nname = \"text\"\nplugin = \"extract-text\"\n\n[[steps]]\nname = \"s\"\nplugin = \"" + step + "\"\n[steps.params]\n")
		for _, k := range sortedKeys(params) {
			b.WriteString(k + " = '''" + params[k] + "'''\n")
		}
		return b.String()
	}
	for _, tt := range badParams {
		t.Run(tt.step+"/"+tt.want, func(t *testing.T) {
			src := def(tt.step, tt.params)
			_, err := s.CreatePipeline(ctx, []byte(src))
			key, _, _ := strings.Cut(tt.want, ":")
			line := 10 + slices.Index(sortedKeys(tt.params), key)
			want := "pipeline line " + strconv.Itoa(line) + ", key steps[1].params." + key + ": plugin \"" + tt.step + "\" refused its parameters: " + tt.want
			if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant ErrInvalid containing %q\n%s", err, want, src)
			}
			if docex.Code(err) != "invalid" {
				t.Fatalf("code %q", docex.Code(err))
			}
			if ps, err := s.Pipelines(ctx); err != nil || len(ps) != 0 {
				t.Fatalf("stored %v, %v", ps, err)
			}
		})
	}
	for _, tt := range goodParams {
		if _, err := s.CreatePipeline(ctx, []byte(def(tt.step, tt.params))); err != nil {
			t.Errorf("%s %v: %v", tt.step, tt.params, err)
		}
	}
	// The showcase's own definition passes.
	showcase, err := os.ReadFile(filepath.Join(showcaseDir, "showcase.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePipeline(ctx, showcase); err != nil {
		t.Fatalf("showcase: %v", err)
	}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
