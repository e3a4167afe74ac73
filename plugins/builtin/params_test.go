package builtin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// paramEnv is steps.Env in memory with parameters.
type paramEnv struct {
	memEnv
	params map[string]string
}

func (e *paramEnv) Param(k string) (string, bool) { v, ok := e.params[k]; return v, ok }

// paramErr runs a step's Go code (what the guest runs) with one parameter
// set and returns its complaint about that parameter, or nil.
func paramErr(step steps.Step, name, value string) error {
	in := []byte("a,b\n1,2\n")
	env := &paramEnv{memEnv: memEnv{in: steps.Input{Name: "x.txt", ContentType: "text/plain", Size: int64(len(in)), Content: bytes.NewReader(in)}},
		params: map[string]string{name: value}}
	if step.Name == "json-extract" {
		env.params["fields"] = "a"
	}
	err := step.Run(env)
	if errors.Is(err, steps.ErrParam) && strings.Contains(err.Error(), name+":") {
		return err
	}
	return nil
}

// TestDeclaredParametersMatchSteps: what a built-in manifest declares
// (min, max, values) is what the step itself accepts, so pipeline create
// refuses exactly the values the step would fail on.
func TestDeclaredParametersMatchSteps(t *testing.T) {
	all, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]steps.Step{}
	for _, s := range steps.All() {
		code[s.Name] = s
	}
	checked := 0
	for _, s := range all {
		m, err := pluginapi.ParseManifest(s.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range m.Parameters {
			var in, out []string
			if p.Min != nil {
				lo := int64(*p.Min)
				in, out = append(in, strconv.FormatInt(lo, 10)), append(out, strconv.FormatInt(lo-1, 10))
			}
			if p.Max != nil {
				hi := int64(*p.Max)
				in, out = append(in, strconv.FormatInt(hi, 10)), append(out, strconv.FormatInt(hi+1, 10))
			}
			if p.Values != nil {
				in, out = append(in, p.Values...), append(out, "no-such-value", strings.ToUpper(p.Values[0]))
			}
			if len(in) == 0 {
				continue
			}
			checked++
			for _, v := range in {
				if name == "overlap" && v != "0" {
					continue // must also be less than size: checked by the step
				}
				if err := p.Check(v); err != nil {
					t.Errorf("%s.%s: manifest refuses %q: %v", s.Name, name, v, err)
				}
				if err := paramErr(code[s.Name], name, v); err != nil {
					t.Errorf("%s.%s: manifest accepts %q, the step refuses it: %v", s.Name, name, v, err)
				}
			}
			for _, v := range out {
				if p.Check(v) == nil {
					t.Errorf("%s.%s: manifest accepts %q", s.Name, name, v)
				}
				if paramErr(code[s.Name], name, v) == nil {
					t.Errorf("%s.%s: the step accepts %q, the manifest refuses it", s.Name, name, v)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d declared parameters checked", checked)
	}
}

// TestChunkSmallSizeDefaultOverlap: a size below the default overlap (50)
// works without an overlap: the default shrinks to a quarter of the size.
func TestChunkSmallSizeDefaultOverlap(t *testing.T) {
	text := []byte(strings.Repeat("lorem ipsum dolor sit amet ", 20))
	for _, size := range []int{1, 3, 4, 20, 199, 200, 512} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			res, err := run(t, "chunk", bytesDoc("a.txt", "text/plain", text), map[string]string{"size": fmt.Sprint(size), "strategy": "fixed"})
			if size > len(text) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			overlap := min(50, size/4)
			if len(res.Derived) < 2 {
				t.Fatalf("%d chunks", len(res.Derived))
			}
			// fixed: each chunk starts size-overlap after the previous.
			s0, s1 := res.Derived[0].Metadata["chunk_start"].(float64), res.Derived[1].Metadata["chunk_start"].(float64)
			if int(s1-s0) != size-overlap {
				t.Fatalf("chunks start %v and %v apart, want size %d - overlap %d", s0, s1, size, overlap)
			}
		})
	}
}

// TestPipelineCreateRefusesDeclaredRanges: pipeline create refuses a
// parameter outside what the manifest declares, naming the line and key,
// and the sandbox refuses it at run time (docex run).
func TestPipelineCreateRefusesDeclaredRanges(t *testing.T) {
	ctx := context.Background()
	eng := builtinEngine(t)
	s := eng.As(docex.UserContext{UserID: "alice", TenantID: "acme", Roles: []string{"admin"}})
	head := "name = \"p\"\n[[steps]]\nname = \"c\"\nplugin = \"chunk\"\n[steps.params]\n"
	for _, tt := range []struct{ params, want string }{
		{"size = 0\n", `pipeline line 6, key steps[0].params.size: plugin "chunk", parameter "size": 0 is less than the minimum 1`},
		{"size = 2000000\n", "greater than the maximum 1048576"},
		{"size = \"abc\"\n", `pipeline line 6, key steps[0].params.size: plugin "chunk", parameter "size": value "abc" is not of type int`},
		{"overlap = -1\n", "line 6, key steps[0].params.overlap"},
		{"strategy = \"recursiv\"\n", `"recursiv" is not one of recursive, fixed, structure, sentence`},
		// Declared between two parameters: overlap less_than size.
		{"size = 100\noverlap = 200\n", `pipeline line 7, key steps[0].params.overlap: plugin "chunk", parameter "overlap": 200 must be less than size (100)`},
		{"size = 100\noverlap = 100\n", `parameter "overlap": 100 must be less than size (100)`},
	} {
		_, err := s.CreatePipeline(ctx, []byte(head+tt.params))
		if !errors.Is(err, docex.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want ErrInvalid containing %q", tt.params, err, tt.want)
		}
	}
	if _, err := s.CreatePipeline(ctx, []byte(head+"size = 20\n")); err != nil {
		t.Fatalf("size 20 with the default overlap: %v", err)
	}
	if _, err := s.CreatePipeline(ctx, []byte(head+"size = 100\noverlap = 99\n")); err != nil {
		t.Fatalf("size 100, overlap 99: %v", err)
	}
	if _, err := s.CreatePipeline(ctx, []byte("name = \"e\"\n[[steps]]\nname = \"x\"\nplugin = \"extract-text\"\nparams = { format = \"PDF\" }\n")); !errors.Is(err, docex.ErrInvalid) ||
		!strings.Contains(err.Error(), "line 5, key steps[0].params.format") {
		t.Errorf("format PDF: %v", err)
	}
	// The same check at run time, before the step runs.
	_, err := run(t, "stats", bytesDoc("a.txt", "text/plain", []byte("hi")), map[string]string{"top": "101"})
	if !errors.Is(err, pluginapi.ErrInvalidParams) || !strings.Contains(err.Error(), `parameter "top": 101 is greater than the maximum 100`) {
		t.Fatalf("stats top=101: %v", err)
	}
	_, err = run(t, "chunk", bytesDoc("a.txt", "text/plain", []byte("hi")), map[string]string{"size": "10", "overlap": "10"})
	if !errors.Is(err, pluginapi.ErrInvalidParams) || !strings.Contains(err.Error(), `parameter "overlap": 10 must be less than size (10)`) {
		t.Fatalf("chunk size=10 overlap=10: %v", err)
	}
}
