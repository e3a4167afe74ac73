package steps

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unsafe"
)

// Input is the document a step runs on.
type Input struct {
	Name        string
	ContentType string
	Size        int64
	Content     io.ReaderAt
}

// Reader returns a sequential reader over the whole content.
func (in Input) Reader() io.Reader { return io.NewSectionReader(in.Content, 0, in.Size) }

// ReadAll reads the whole content, refusing more than limit bytes with ErrLimit.
func (in Input) ReadAll(limit int64) ([]byte, error) {
	if in.Size > limit {
		return nil, Errorf(ErrLimit, "input is %d bytes, this format is read whole and the limit is %d", in.Size, limit)
	}
	b := make([]byte, in.Size)
	n, err := in.Content.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// Env is what a step sees of its invocation: the sandbox's host functions
// (through plugins/pdk) inside the guest, an in-memory double natively.
type Env interface {
	Input() Input
	// Param returns the invocation parameter and whether it was given.
	Param(name string) (string, bool)
	// SetMetadata sets metadata on the input document.
	SetMetadata(key string, v any) error
	// Emit creates a derived document with metadata (set in key order).
	// It does not write to data, which may be the input's or a string's
	// bytes (stringBytes).
	Emit(name, contentType string, data []byte, meta []KV) error
	Log(msg string)
}

// KV is one metadata entry of a derived document.
type KV struct {
	Key   string
	Value any
}

// Error kinds: every failure of a step wraps one of them, and its message
// starts with the kind ("limit: ...") so that the run's status message,
// which is all the engine keeps, still says which.
var (
	ErrParam       = errors.New("invalid parameter")
	ErrUnsupported = errors.New("unsupported")
	ErrMalformed   = errors.New("malformed input")
	ErrLimit       = errors.New("limit")
)

// Errorf returns an error wrapping kind with a formatted message.
func Errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}

// params reads and validates a step's parameters.
type params struct {
	env Env
	err error
}

func (p *params) str(name, def string) string {
	v, ok := p.env.Param(name)
	if !ok {
		return def
	}
	return v
}

func (p *params) oneOf(name, def string, allowed ...string) string {
	v := p.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

func (p *params) integer(name string, def, lo, hi int) int {
	s, ok := p.env.Param(name)
	if !ok {
		return def
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < lo || v > hi {
		p.fail(name, "%q is not an integer in [%d, %d]", s, lo, hi)
		return def
	}
	return v
}

func (p *params) boolean(name string, def bool) bool {
	s, ok := p.env.Param(name)
	if !ok {
		return def
	}
	v, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		p.fail(name, "%q is not true or false", s)
		return def
	}
	return v
}

func (p *params) fail(name, format string, args ...any) {
	if p.err == nil {
		p.err = Errorf(ErrParam, "%s: %s", name, fmt.Sprintf(format, args...))
	}
}

// derivedName builds a derived document's name from the input's: at most
// 255 bytes, no path separators.
func derivedName(input, suffix string) string {
	base := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, input)
	if base == "" || base == "." || base == ".." {
		base = "document"
	}
	if max := 255 - len(suffix); len(base) > max {
		base = truncateUTF8(base, max)
	}
	return base + suffix
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Step is one built-in step.
type Step struct {
	Name string
	Run  func(Env) error
	// Validate checks the step's parameters with the very code Run
	// starts with, reading nothing but them (Env.Param): the guest's
	// docex_validate_NAME. nil for a step without parameters.
	Validate func(Env) error
}

// All lists the built-in steps.
func All() []Step {
	return []Step{
		{"extract-text", ExtractText, ValidateExtractText},
		{"chunk", Chunk, ValidateChunk},
		{"redact-pii", RedactPII, ValidateRedactPII},
		{"csv-to-json", CSVToJSON, ValidateCSVToJSON},
		{"json-extract", JSONExtract, ValidateJSONExtract},
		{"stats", Stats, ValidateStats},
		{"detect-type", DetectType, nil},
	}
}

// Validate functions: each step's parameter check, what the step's Run
// does first. They return the error Run would return (ErrParam).
func ValidateExtractText(env Env) error { _, err := extractParams(env); return err }

// ValidateChunk checks chunk's parameters (see ValidateExtractText).
func ValidateChunk(env Env) error { _, err := chunkParams(env); return err }

// ValidateRedactPII checks redact-pii's parameters, compiling its patterns
// (see ValidateExtractText).
func ValidateRedactPII(env Env) error { _, err := redactParams(env); return err }

// ValidateCSVToJSON checks csv-to-json's parameters (see ValidateExtractText).
func ValidateCSVToJSON(env Env) error { _, _, _, err := csvParams(env, ","); return err }

// ValidateJSONExtract checks json-extract's parameters (see ValidateExtractText).
func ValidateJSONExtract(env Env) error { _, _, err := jsonExtractParams(env); return err }

// ValidateStats checks stats' parameters (see ValidateExtractText).
func ValidateStats(env Env) error { _, err := statsParams(env); return err }

// ParamMessage is what a step's Validate error says to the user: its text
// without the "invalid parameter: " prefix, so that it starts with the
// parameter's name ("kinds: unknown kind ...").
func ParamMessage(err error) string {
	return strings.TrimPrefix(err.Error(), ErrParam.Error()+": ")
}

// stringBytes returns s's bytes without copying them, for Emit, which
// does not write to them: the text a step emits may be most of its
// memory.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
