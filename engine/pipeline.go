package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/spell"
)

// Limits of pipeline definitions (a larger definition is refused with
// docex.ErrTooLarge, a kind of docex.ErrInvalid).
const (
	MaxPipelineBytes = 64 << 10
	MaxPipelineSteps = 32
	MaxPipelineName  = 64
	// MaxPipelineNesting bounds how deep arrays and tables nest ([[steps]]
	// is 2; a step's accept list inside it 3).
	MaxPipelineNesting = 16
	DefaultAttempts    = 3
	MaxAttemptsLimit   = 20
	DefaultDerived     = 100000     // max_derived when a definition leaves it out
	MaxDerivedLimit    = 1000000    // the largest max_derived
	InputDocument      = "document" // a step's input: the pipeline's input document
	maxStepParamBytes  = 4096
)

// Pipeline is a parsed, validated pipeline definition (see
// docs/jobs.md for the TOML format).
type Pipeline struct {
	Name        string `toml:"name" json:"name"`
	Description string `toml:"description" json:"description"`
	// MaxAttempts bounds the attempts of a job, 1 (no retries) to
	// MaxAttemptsLimit (default 3; a new definition may not say 0): transient
	// failures are retried with backoff until then.
	MaxAttempts int `toml:"max_attempts" json:"max_attempts"`
	// MaxDerived bounds the documents one job may derive, all its steps
	// and attempts together, 1 to MaxDerivedLimit (default
	// DefaultDerived): a step's runs that would pass it are not committed
	// and the job fails (docex.ErrTooLarge, no retry).
	MaxDerived int    `toml:"max_derived" json:"max_derived"`
	Steps      []Step `toml:"steps" json:"steps"`

	wrongCase    error      // its first key spelt in another case (Name), decoded as the key (see checkNew)
	zeroAttempts bool       // the definition says max_attempts = 0 (see checkNew)
	badParams    *badParams // a step's params is not a table (see checkNew)
	emptyAccept  int        // 1 + the first step whose accept list is empty, or 0 (see checkNew)
	emptyInput   int        // 1 + the first step that says input = "", or 0 (see checkNew)
}

// Step is one step of a pipeline: a plugin run on each of its input
// documents.
type Step struct {
	Name string `toml:"name" json:"name"`
	// Plugin names an installed plugin (the tenant's own, else a
	// system-wide one).
	Plugin string `toml:"plugin" json:"plugin"`
	// Input is "document" (the default: the pipeline's input document) or
	// the name of an earlier step, whose derived documents are then each
	// an input of this step (fan-out). A new definition may not say
	// input = "" (a stored one that does reads it as "document").
	Input string `toml:"input" json:"input"`
	// Accept filters inputs by content type ("text/*", "application/pdf");
	// empty accepts everything. Filtered inputs are skipped and recorded.
	Accept []string `toml:"accept" json:"accept"`
	// Params are the plugin's parameters (strings, integers, floats or
	// bools; stored as their canonical text).
	Params map[string]string `toml:"-" json:"params"`
	// RetryTimeout makes a timeout of this step transient (retried up to
	// MaxAttempts); by default a timeout fails the job at once.
	RetryTimeout bool `toml:"retry_timeout" json:"retry_timeout"`

	RawParams map[string]any `toml:"params" json:"-"`

	canonical string // CanonicalParams, computed once by ParsePipeline
}

// pipelineErr is an error matching docex.ErrInvalid that names the line
// (when known) and the key of a pipeline definition.
func pipelineErr(src []byte, step int, key, format string, args ...any) error {
	return docex.Errorf(docex.ErrInvalid, "%s: %s", pipelineWhere(src, step, key), fmt.Sprintf(format, args...))
}

// pipelineWhere is the start of pipelineErr's message: "pipeline line N,
// key K" (or "pipeline key K" when the line is not known).
func pipelineWhere(src []byte, step int, key string) string {
	return lineWhere(keyLine(src, step, key), where(stepPath(step, key)))
}

// lineWhere words a key and its line (0: not known) for an error.
func lineWhere(line int, key string) string {
	if line > 0 {
		return fmt.Sprintf("pipeline line %d, key %s", line, key)
	}
	return "pipeline key " + key
}

// ParsePipeline parses and validates a pipeline definition on its own
// (plugins are checked when it is created). It returns an error matching
// docex.ErrInvalid that names the line and key: a TOML syntax error, an
// unknown key, a bad name, a duplicate step, an unknown input, a cycle, a
// bad content-type filter or parameter.
func ParsePipeline(src []byte) (p *Pipeline, err error) {
	return parsePipeline(src, new(string))
}

// parsePipeline is ParsePipeline; it sets *name to the definition's name
// once its TOML is decoded (its syntax and value types right) and the name
// is valid, even when it then refuses the definition (an unknown key, a
// cycle): the target of pipeline.create's audit entry.
func parsePipeline(src []byte, name *string) (p *Pipeline, err error) {
	if len(src) > MaxPipelineBytes {
		return nil, docex.Errorf(docex.ErrTooLarge, "pipeline definition is %d bytes, larger than %d", len(src), MaxPipelineBytes)
	}
	defer func() { // a parser bug must not crash the host
		if r := recover(); r != nil {
			p, err = nil, docex.Errorf(docex.ErrInvalid, "pipeline: parser failure: %v", r)
		}
	}()
	if depth, line := spell.TOMLNesting(src); depth > MaxPipelineNesting {
		return nil, docex.Errorf(docex.ErrInvalid, "pipeline line %d: arrays and tables nested %d deep, more than %d", line, depth, MaxPipelineNesting)
	}
	p = new(Pipeline)
	md, err := toml.NewDecoder(bytes.NewReader(src)).Decode(p)
	if err == nil && validPipelineName(p.Name) {
		*name = p.Name
	}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return nil, docex.Errorf(docex.ErrInvalid, "pipeline line %d: %s", spell.TOMLLine(pe.Position.Line, pe.Position.Start, pe.Position.Len, src), spell.TOMLSyntax(pe.Message))
	}
	// Unknown keys first: a wrong-case key was decoded into a field, and
	// may be why a value has the wrong type.
	unknown, wrongCase := unknownKeys(src, md, err == nil)
	if unknown != nil {
		return nil, unknown
	}
	if err != nil {
		if line, key, msg, ok := spell.TOMLTypeError(err.Error(), pipelineWant); ok {
			if sub, inStep := strings.CutPrefix(key, "steps."); inStep {
				if i := typeErrorStep(src, line, sub, err.Error()); i >= 0 {
					return nil, pipelineErr(src, i, sub, "%s", msg)
				}
			}
			return nil, docex.Errorf(docex.ErrInvalid, "pipeline line %d, key %s: %s", line, key, msg)
		}
		return nil, docex.Errorf(docex.ErrInvalid, "pipeline: %v", err)
	}
	p.wrongCase = wrongCase
	p.zeroAttempts = md.IsDefined("max_attempts") && p.MaxAttempts == 0
	if !md.IsDefined("max_derived") {
		p.MaxDerived = DefaultDerived
	}
	p.badParams, p.emptyInput = shadowSteps(src)
	if err := p.validate(src); err != nil {
		return nil, err
	}
	return p, nil
}

// unknownKeys returns an error naming the first key of src (in source
// order) that a pipeline definition does not have, with its line and a
// key close to it, or nil. A key is known only as spelt: the decoder
// matches keys to fields whatever their case (NAME, Steps). decoded says
// the decoder filled the Pipeline without an error, so that a key it left
// undecoded (inside a value) is unknown too; otherwise the decoder's
// error says what is wrong with the value.
//
// Such a key the decoder took into a field (Name for name) was accepted
// before, so a stored version may have one: it is returned as stored, for
// checkNew to refuse in a new definition, and unknown is a key refused
// in every definition.
func unknownKeys(src []byte, md toml.MetaData, decoded bool) (unknown, stored error) {
	undecoded := map[string]bool{}
	if decoded {
		for _, k := range md.Undecoded() {
			undecoded[k.String()] = true
		}
	}
	top, step := spell.FieldKeys(reflect.TypeFor[Pipeline](), "toml"), spell.FieldKeys(reflect.TypeFor[Step](), "toml")
	var locs []keyLoc
	seen := map[string]int{}
	for _, k := range md.Keys() {
		n := seen[k.String()]
		seen[k.String()]++
		depth := 0 // how many of k's parts name the unknown key
		switch {
		case !slices.Contains(top, k[0]):
			depth = 1
		case k[0] == "steps" && len(k) >= 2 && !slices.Contains(step, k[1]):
			depth = 2
		case len(k) >= 3 && k[0] == "steps" && k[1] == "params":
			continue // parameter values are decoded later
		case undecoded[k.String()]:
			depth = len(k)
		}
		if depth == 0 || stored != nil && decoded && !undecoded[k.String()] {
			continue
		}
		if locs == nil {
			locs = locateKeys(src)
		}
		line, path := 0, stepPath(-1, strings.Join(k[:depth], "."))
		if loc, ok := nthKey(locs, k, n); ok {
			line, path = loc.line, keyPrefix(loc.path, depth)
		}
		var known []string
		switch {
		case depth == 1:
			known = top
		case depth == 2 && k[0] == "steps":
			known = step
		}
		bad := k[depth-1]
		hint := spell.Suggest(bad, known)
		if hint == "" && known != nil {
			hint = keyAlias(bad, depth == 2)
		}
		err := docex.Errorf(docex.ErrInvalid, "%s: unknown key %q%s", lineWhere(line, where(path)), bad, hint)
		if !decoded || undecoded[k.String()] {
			return err, nil
		}
		if stored == nil {
			stored = err
		}
	}
	return nil, stored
}

// typeErrorStep returns the step whose key (dotted below the step) has
// the value of the wrong type a decoder error (msg, naming line) is
// about, or -1. The decoder names the key without its step, and the line
// of the last step that sets it: the step is the first whose value has
// the type the error names, else the one that sets key on line.
func typeErrorStep(src []byte, line int, key, msg string) int {
	_, rest, _ := strings.Cut(msg, "TOML value has type ")
	got, _, ok := strings.Cut(rest, ";")
	var raw struct {
		Steps []map[string]any `toml:"steps"`
	}
	if _, err := toml.Decode(string(src), &raw); ok && err == nil {
		for i, step := range raw.Steps {
			var v any = step
			for k := range strings.SplitSeq(key, ".") {
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if v != nil && strings.ReplaceAll(fmt.Sprintf("%T", v), "interface {}", "any") == got {
				return i
			}
		}
	}
	for _, loc := range locateKeys(src) {
		if loc.key && loc.line == line && slices.Equal(loc.keys(), append([]string{"steps"}, strings.Split(key, ".")...)) && len(loc.path) > 1 && loc.path[1].index >= 0 {
			return loc.path[1].index
		}
	}
	return -1
}

// checkNew returns an error matching docex.ErrInvalid for what a new
// definition (src, parsed as p) may not say though a stored one may
// (ParsePipeline still reads it, for the jobs of the versions stored with
// it): max_attempts = 0, which older versions took as the default (3)
// where a user may mean "no retries" (1); an empty accept list, which
// filters nothing (a user may mean "skip every input"); input = "", which
// names no step (older versions took it for "document"); and a key spelt
// in another case (Name, PLUGIN), which the decoder took for the key (the
// last of name and Name won).
func (p *Pipeline) checkNew(src []byte) error {
	if p.wrongCase != nil {
		return p.wrongCase
	}
	if i := p.emptyAccept - 1; i >= 0 {
		return pipelineErr(src, i, "accept", "an empty content-type filter: leave accept out to give the step every input, or list the types it takes (for example accept = [\"text/*\"])")
	}
	if i := p.emptyInput - 1; i >= 0 {
		return pipelineErr(src, i, "input", "input \"\" is neither %q nor a step of this pipeline (leave input out for %q, the default)", InputDocument, InputDocument)
	}
	if p.zeroAttempts {
		return pipelineErr(src, -1, "max_attempts", "max_attempts 0: want 1 to %d (1: no retries; leave it out for the default, %d)", MaxAttemptsLimit, DefaultAttempts)
	}
	if b := p.badParams; b != nil {
		return pipelineErr(src, b.step, "params", "want a table of parameters, for example params = { size = 800 }, got %s", b.kind)
	}
	return nil
}

// badParams is a step's params that is not a table.
type badParams struct {
	step int
	kind string // "a string", "an array", ...
}

// shadowSteps returns the first step whose params is not a table, or
// nil, and 1 + the first step that says input = "", or 0. The decoder
// drops a params that is not a table without a word (the step would run
// with its plugin's defaults), and decodes input = "" as no input, so src
// is decoded again with params as anything and input as a pointer to see
// them.
func shadowSteps(src []byte) (bad *badParams, emptyInput int) {
	var shadow struct {
		Steps []struct {
			Params any     `toml:"params"`
			Input  *string `toml:"input"`
		} `toml:"steps"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(src)).Decode(&shadow); err != nil {
		return nil, 0
	}
	for i, s := range shadow.Steps {
		if _, table := s.Params.(map[string]any); bad == nil && s.Params != nil && !table {
			bad = &badParams{step: i, kind: tomlKind(s.Params)}
		}
		if emptyInput == 0 && s.Input != nil && *s.Input == "" {
			emptyInput = i + 1
		}
	}
	return bad, emptyInput
}

func (p *Pipeline) validate(src []byte) error {
	if !validPipelineName(p.Name) {
		return pipelineErr(src, -1, "name", "%s", badPipelineName(p.Name))
	}
	if err := validateOptionalText("description", p.Description, 1024); err != nil {
		return pipelineErr(src, -1, "description", "%v", err)
	}
	switch {
	case p.MaxAttempts == 0:
		p.MaxAttempts = DefaultAttempts
	case p.MaxAttempts < 1 || p.MaxAttempts > MaxAttemptsLimit:
		return pipelineErr(src, -1, "max_attempts", "max_attempts %d: want 1 to %d", p.MaxAttempts, MaxAttemptsLimit)
	}
	if p.MaxDerived < 1 || p.MaxDerived > MaxDerivedLimit {
		return pipelineErr(src, -1, "max_derived", "max_derived %d: want 1 to %d, the most documents one job may derive, all steps together (leave it out for the default, %d)", p.MaxDerived, MaxDerivedLimit, DefaultDerived)
	}
	if len(p.Steps) == 0 {
		return pipelineErr(src, -1, "steps", "a pipeline needs at least one [[steps]]")
	}
	if len(p.Steps) > MaxPipelineSteps { // at the first step too many
		return docex.Errorf(docex.ErrInvalid, "%s: %d steps, more than %d", lineWhere(keyLine(src, MaxPipelineSteps, ""), "steps"), len(p.Steps), MaxPipelineSteps)
	}
	index := map[string]int{}
	for i := range p.Steps {
		s := &p.Steps[i]
		if !validPipelineName(s.Name) || s.Name == InputDocument {
			return pipelineErr(src, i, "name", "step name %q: want a-z, 0-9, '-' and '_', starting with a letter (not %q)", s.Name, InputDocument)
		}
		if _, dup := index[s.Name]; dup {
			return pipelineErr(src, i, "name", "duplicate step name %q", s.Name)
		}
		index[s.Name] = i
		if !validPipelineName(s.Plugin) {
			hint := "" // plugin names are lower case: "Chunk" is chunk
			if lower := strings.ToLower(s.Plugin); validPipelineName(lower) {
				hint = fmt.Sprintf(" (did you mean %q?)", lower)
			}
			return pipelineErr(src, i, "plugin", "plugin name %q is not valid%s", s.Plugin, hint)
		}
		if s.Input == "" {
			s.Input = InputDocument
		}
		if s.Accept == nil {
			s.Accept = []string{}
		} else if len(s.Accept) == 0 && p.emptyAccept == 0 {
			p.emptyAccept = i + 1
		}
		for _, a := range s.Accept {
			if !validMediaGlob(a) {
				return pipelineErr(src, i, "accept", "content-type filter %q: want type/subtype, type/* or */*", a)
			}
		}
		params, err := canonicalParams(s.RawParams)
		if err != nil {
			key := "params"
			// The parameter's own key (a name that needs quoting is
			// reported at params).
			if pe, ok := errors.AsType[*paramError](err); ok && validParamName(pe.name) {
				key += "." + pe.name
			}
			return pipelineErr(src, i, key, "%v", err)
		}
		s.Params = params
		s.canonical = s.CanonicalParams()
	}
	for i, s := range p.Steps {
		if s.Input == InputDocument {
			continue
		}
		if _, ok := index[s.Input]; !ok {
			names := []string{InputDocument}
			for _, o := range p.Steps {
				names = append(names, o.Name)
			}
			return pipelineErr(src, i, "input", "input %q is neither %q nor a step of this pipeline%s", s.Input, InputDocument, spell.Suggest(s.Input, names))
		}
		// Each step has one input, so following inputs from any step ends
		// at the document unless there is a cycle.
		seen := map[string]bool{s.Name: true}
		for cur := s.Input; cur != InputDocument; cur = p.Steps[index[cur]].Input {
			if seen[cur] {
				return pipelineErr(src, i, "input", "steps form a cycle through %q", cur)
			}
			seen[cur] = true
		}
	}
	return nil
}

// Order returns the steps in an order where every step comes after its
// input step (definition order among independent steps).
func (p *Pipeline) Order() []Step {
	done := map[string]bool{InputDocument: true}
	var out []Step
	for len(out) < len(p.Steps) {
		for _, s := range p.Steps {
			if !done[s.Name] && done[s.Input] {
				done[s.Name] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Accepts reports whether a step takes a document of contentType.
func (s Step) Accepts(contentType string) bool {
	if len(s.Accept) == 0 {
		return true
	}
	mt := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	typ, _, _ := strings.Cut(mt, "/")
	for _, a := range s.Accept {
		a = strings.ToLower(a)
		if a == "*/*" || a == mt || (strings.HasSuffix(a, "/*") && strings.TrimSuffix(a, "/*") == typ) {
			return true
		}
	}
	return false
}

// CanonicalParams returns the step's parameters as canonical JSON (keys
// sorted), the form recorded in lineage and hashed into the cache key.
func (s Step) CanonicalParams() string {
	if s.canonical != "" {
		return s.canonical
	}
	b, _ := json.Marshal(s.Params) // maps marshal with sorted keys
	return string(b)
}

func canonicalParams(raw map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	// In name order, so that of several bad parameters the same one is
	// named every time.
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		if !validParamName(k) {
			return nil, &paramError{name: k, msg: fmt.Sprintf("parameter name %q is not valid", k)}
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int64:
			s = strconv.FormatInt(x, 10)
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, &paramError{name: k, msg: fmt.Sprintf("parameter %q: not a finite number", k)}
			}
			s = strconv.FormatFloat(x, 'g', -1, 64)
		case bool:
			s = strconv.FormatBool(x)
		default:
			return nil, &paramError{name: k, msg: fmt.Sprintf("parameter %q: want a string, number or bool, not %s", k, tomlKind(v))}
		}
		if len(s) > maxStepParamBytes {
			return nil, &paramError{name: k, msg: fmt.Sprintf("parameter %q is longer than %d bytes", k, maxStepParamBytes)}
		}
		out[k] = s
	}
	return out, nil
}

// paramError is canonicalParams' error about parameter name.
type paramError struct{ name, msg string }

func (e *paramError) Error() string { return e.msg }

func validParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// badPipelineName says why s, which validPipelineName refuses, is not a
// pipeline name.
func badPipelineName(s string) string {
	return fmt.Sprintf("pipeline name %q: want 1 to %d bytes of a-z, 0-9, '-' and '_', starting with a letter", s, MaxPipelineName)
}

func validPipelineName(s string) bool {
	if len(s) < 1 || len(s) > MaxPipelineName || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validMediaGlob(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
		return false
	}
	token := func(t string) bool {
		if t == "*" {
			return true
		}
		for _, c := range []byte(t) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&-^_.+", c) >= 0) {
				return false
			}
		}
		return len(t) <= 127
	}
	return token(typ) && token(sub)
}

func validateOptionalText(what, s string, max int) error {
	if s == "" {
		return nil
	}
	return validateText(what, s, max)
}

// keyAlias returns " (did you mean KEY? ...)" when key is a name other
// tools give to a key of a pipeline (inStep: of a step), else "".
func keyAlias(key string, inStep bool) string {
	k := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(key))
	if inStep {
		switch k {
		case "content_type", "content_types", "contenttype", "type", "types", "mime", "mime_type", "mime_types", "filter", "only", "when", "match":
			return ` (did you mean "accept"? the content types a step takes, for example accept = ["text/*"])`
		case "parameters", "param", "args", "arguments", "with", "config", "options", "settings":
			return ` (did you mean "params"? for example params = { size = 800 })`
		case "uses", "use", "module", "run", "step", "plugin_name", "wasm":
			return ` (did you mean "plugin"? the name of an installed plugin: docex plugin list)`
		case "from", "source", "inputs", "after", "depends_on", "needs", "requires", "on":
			return ` (did you mean "input"? "document", the default, or the name of an earlier step)`
		case "retries", "max_retries", "attempts":
			return ` (a step has no such key: max_attempts, at the top of the file, sets a job's attempts)`
		case "max_derived", "max_documents", "max_outputs", "max_derived_documents", "max_fanout", "fanout_limit", "derived_limit":
			return ` (a step has no such key: max_derived, at the top of the file, bounds the documents a job derives, all steps together)`
		case "timeout":
			return ` (did you mean "retry_timeout"? a step's time limit is its plugin's: docex plugin show NAME)`
		}
		return ""
	}
	switch k {
	case "retries", "max_retries", "attempts", "retry":
		return ` (did you mean "max_attempts"?)`
	case "max_documents", "max_outputs", "max_derived_documents", "max_fanout", "fanout_limit", "derived_limit", "max_docs":
		return ` (did you mean "max_derived"? the most documents one job may derive, all steps together)`
	case "step", "stage", "stages", "pipeline", "tasks":
		return ` (did you mean "steps"? each step starts with a [[steps]] line)`
	case "desc", "summary", "about":
		return ` (did you mean "description"?)`
	}
	return ""
}

// pipelineWant words what a pipeline's key wants where the plain words
// ("an array") would not say how to write it (see spell.TOMLTypeError).
func pipelineWant(key, _ string) string {
	switch {
	case key == "steps":
		return "[[steps]] tables (an array of tables: each step starts with a [[steps]] line)"
	case strings.HasSuffix(key, ".accept"):
		return `an array of content types, for example accept = ["text/plain", "application/pdf"]`
	}
	return ""
}

// tomlKind names the TOML kind of a decoded value that is not a string,
// number or bool, for error messages.
func tomlKind(v any) string {
	switch v.(type) {
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date or time"
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a bool"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
