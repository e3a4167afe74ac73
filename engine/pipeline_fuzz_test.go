package engine

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/docex-dev/docex"
)

// pipelineLineRe finds the line an error names ("pipeline line N").
var pipelineLineRe = regexp.MustCompile(`^pipeline line (\d+)`)

// FuzzParsePipeline: ParsePipeline never fails other than with
// docex.ErrInvalid (a recovered parser panic is a failure of this test,
// not a valid refusal), a line it names is in the source, and what it
// accepts holds every rule of docs/jobs.md: valid names, limits in range,
// unique steps, inputs that name a step or the document, no cycle, an
// order with every step after its input, canonical parameters. Parsing is
// deterministic.
func FuzzParsePipeline(f *testing.F) {
	seeds := []string{
		"name = \"p\"\n[[steps]]\nname = \"a\"\nplugin = \"upper\"\n",
		"name = \"invoices\"\ndescription = \"text, chunks, redaction\"\nmax_attempts = 3\nmax_derived = 100000\n\n" +
			"[[steps]]\nname = \"extract\"\nplugin = \"extract-text\"\naccept = [\"application/pdf\", \"text/*\"]\n\n" +
			"[[steps]]\nname = \"chunk\"\nplugin = \"chunk\"\ninput = \"extract\"\nretry_timeout = true\n[steps.params]\nsize = 1000\n",
		"name = \"c\"\n[[steps]]\nname = \"a\"\nplugin = \"x\"\ninput = \"b\"\n[[steps]]\nname = \"b\"\nplugin = \"x\"\ninput = \"a\"\n",
		"name = \"d\"\nmax_attempts = 0\nmax_derived = 1\n[[steps]]\nname = \"a\"\nplugin = \"x\"\n[steps.params]\nf = 1.5\nb = true\ns = \"é\"\n",
		"name = \"e\"\n[[steps]]\nname = \"a\"\nplugin = \"x\"\nparams = \"not a table\"\n",
		"name = \"f\"\n[[steps]]\nname = \"a\"\nplugin = \"x\"\n[steps.params]\nnested = { a = 1 }\nlist = [1, 2]\n",
		"name = \"g\"\nsteps = []\n",
		"name = \"h\"\n[[steps]]\nname = \"document\"\nplugin = \"x\"\n",
		"name = \"i\"\n[[steps]]\nname = \"a\"\nplugin = \"x\"\naccept = [\"*/*\", \"text\"]\n",
		"name = \"j\"\n[[steps]]\nname = \"a\"\nplugin = \"x\"\nmax_derived = 5\n",
		"[[steps]]\nname = \"a\"\n",
		"name = \"k\"\nmax_attempts = 1e3\n",
		"name = \"\u00e9\"\n",
		"\x00\xff",
	}
	if b, err := os.ReadFile("../examples/showcase/showcase.toml"); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := ParsePipeline(src)
		if err != nil {
			msg := err.Error()
			if !errors.Is(err, docex.ErrInvalid) {
				t.Fatalf("error %v does not match docex.ErrInvalid", err)
			}
			if strings.Contains(msg, "parser failure") {
				t.Fatalf("the parser panicked: %v", err)
			}
			if m := pipelineLineRe.FindStringSubmatch(strings.TrimPrefix(msg, "invalid argument: ")); m != nil {
				n, _ := strconv.Atoi(m[1])
				if n < 1 || n > strings.Count(string(src), "\n")+1 {
					t.Fatalf("error names line %d of a %d-line source: %v", n, strings.Count(string(src), "\n")+1, err)
				}
			}
			return
		}
		if len(src) > MaxPipelineBytes {
			t.Fatalf("accepted %d bytes, more than %d", len(src), MaxPipelineBytes)
		}
		if !validPipelineName(p.Name) || !utf8.ValidString(p.Description) {
			t.Fatalf("accepted name %q, description %q", p.Name, p.Description)
		}
		if p.MaxAttempts < 1 || p.MaxAttempts > MaxAttemptsLimit || p.MaxDerived < 1 || p.MaxDerived > MaxDerivedLimit {
			t.Fatalf("accepted max_attempts %d, max_derived %d", p.MaxAttempts, p.MaxDerived)
		}
		if len(p.Steps) == 0 || len(p.Steps) > MaxPipelineSteps {
			t.Fatalf("accepted %d steps", len(p.Steps))
		}
		names := map[string]bool{}
		for _, s := range p.Steps {
			if !validPipelineName(s.Name) || s.Name == InputDocument || names[s.Name] || !validPipelineName(s.Plugin) {
				t.Fatalf("accepted step %q (plugin %q); steps so far %v", s.Name, s.Plugin, names)
			}
			names[s.Name] = true
			for _, a := range s.Accept {
				if !validMediaGlob(a) {
					t.Fatalf("step %s: accepted filter %q", s.Name, a)
				}
			}
			if s.Params == nil {
				t.Fatalf("step %s: nil params", s.Name)
			}
			if c := s.CanonicalParams(); len(c) > 0 && c[0] != '{' {
				t.Fatalf("step %s: canonical params %q", s.Name, c)
			}
		}
		for _, s := range p.Steps {
			if s.Input != InputDocument && !names[s.Input] {
				t.Fatalf("step %s: accepted input %q", s.Name, s.Input)
			}
		}
		order := p.Order() // returns only when there is no cycle
		if len(order) != len(p.Steps) {
			t.Fatalf("order has %d of %d steps", len(order), len(p.Steps))
		}
		done := map[string]bool{InputDocument: true}
		for _, s := range order {
			if !done[s.Input] {
				t.Fatalf("step %s comes before its input %s", s.Name, s.Input)
			}
			done[s.Name] = true
		}
		again, err := ParsePipeline(src)
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("parsing again: %+v, %v; first %+v", again, err, p)
		}
	})
}
