package steps

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxJSONInput is the largest JSON document json-extract reads.
const MaxJSONInput = 32 << 20

// MaxJSONFields is the most fields json-extract takes: the host takes 256
// metadata keys per invocation and the step always sets json_fields_found.
const MaxJSONFields = 255

// maxMetaValue is the most bytes of a metadata value the host takes.
const maxMetaValue = 64 << 10

// field is one requested value: metadata key <- path.
type field struct {
	key  string
	path []any // string (object key) or int (array index)
}

// parseFields reads "key=path,path,..." where a path is dotted object keys
// with [N] array indexes ("items[0].price"); a bare path is also the key.
func parseFields(s string) ([]field, error) {
	var out []field
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, path, ok := strings.Cut(part, "=")
		if !ok {
			path = key
		}
		key, path = strings.TrimSpace(key), strings.TrimSpace(path)
		if key == "" || len(key) > 256 || !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool {
			return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' ||
				r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' // the host's rule (tenancy.IsBidiControl)
		}) {
			return nil, Errorf(ErrParam, "fields: bad metadata key %q", key)
		}
		if key == "json_fields_found" {
			return nil, Errorf(ErrParam, "fields: the key json_fields_found is the step's own count: name the field another key (KEY=PATH)")
		}
		if seen[key] {
			return nil, Errorf(ErrParam, "fields: the key %q is given twice: name each field once (KEY=PATH)", key)
		}
		p, err := parsePath(path)
		if err != nil {
			return nil, err
		}
		seen[key] = true
		out = append(out, field{key, p})
		if len(out) > MaxJSONFields {
			return nil, Errorf(ErrParam, "fields: at most %d", MaxJSONFields)
		}
	}
	if len(out) == 0 {
		return nil, Errorf(ErrParam, "fields: no field given")
	}
	return out, nil
}

func parsePath(s string) ([]any, error) {
	var out []any
	for _, seg := range strings.Split(s, ".") {
		name := seg
		var idx []int
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name = seg[:i]
			rest := seg[i:]
			for rest != "" {
				j := strings.IndexByte(rest, ']')
				if rest[0] != '[' || j < 0 {
					return nil, Errorf(ErrParam, "fields: bad path %q", s)
				}
				n, err := strconv.Atoi(rest[1:j])
				if err != nil || n < 0 {
					return nil, Errorf(ErrParam, "fields: bad index in %q", s)
				}
				idx = append(idx, n)
				rest = rest[j+1:]
			}
		}
		if name == "" && (len(out) > 0 || len(idx) == 0) {
			return nil, Errorf(ErrParam, "fields: empty segment in path %q", s)
		}
		if name != "" {
			out = append(out, name)
		}
		for _, n := range idx {
			out = append(out, n)
		}
	}
	return out, nil
}

func lookupPath(v any, path []any) (any, bool) {
	for _, seg := range path {
		switch s := seg.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[s]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || s >= len(a) {
				return nil, false
			}
			v = a[s]
		}
	}
	return v, true
}

// JSONExtract copies selected fields of a JSON document into typed
// metadata: strings, numbers and booleans as such; objects and arrays as
// their compact JSON text; null and missing fields are skipped (or fail
// the run with required=true).
func JSONExtract(env Env) error {
	fields, required, err := jsonExtractParams(env)
	if err != nil {
		return err
	}
	data, err := env.Input().ReadAll(MaxJSONInput)
	if err != nil {
		return err
	}
	if err := checkJSONDepth(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Errorf(ErrMalformed, "json: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(ErrMalformed, "json: data after the top-level value")
	}
	found := 0
	for _, f := range fields {
		v, ok := lookupPath(doc, f.path)
		if !ok || v == nil {
			if required {
				return Errorf(ErrMalformed, "field %q not found", f.key)
			}
			continue
		}
		var mv any
		switch x := v.(type) {
		case string:
			// Checked here, not refused by the host without a kind: a
			// metadata value is at most 64 KiB and a string holds no NUL
			// (docs/plugin-abi.md). The decoder made it valid UTF-8.
			if len(x) > maxMetaValue {
				return Errorf(ErrLimit, "field %q is a string of %d bytes, limit %d", f.key, len(x), maxMetaValue)
			}
			if strings.IndexByte(x, 0) >= 0 {
				return Errorf(ErrMalformed, "field %q is a string holding a NUL character, which metadata strings may not hold", f.key)
			}
			mv = x
		case bool:
			mv = x
		case json.Number:
			n, err := x.Float64()
			if err != nil {
				if len(x) > maxMetaValue {
					return Errorf(ErrLimit, "field %q is a number of %d bytes, limit %d", f.key, len(x), maxMetaValue)
				}
				mv = x.String()
			} else {
				mv = n
			}
		default:
			b, _ := json.Marshal(x)
			if len(b) > maxMetaValue {
				return Errorf(ErrLimit, "field %q is %d bytes of JSON, limit %d", f.key, len(b), maxMetaValue)
			}
			mv = string(b)
		}
		if err := env.SetMetadata(f.key, mv); err != nil {
			return err
		}
		found++
	}
	return env.SetMetadata("json_fields_found", found)
}

// checkJSONDepth returns ErrLimit when arrays and objects in data nest
// deeper than MaxJSONDepth, as extract-text's JSON reader does (brackets
// inside strings do not count; the syntax is the decoder's to check).
func checkJSONDepth(data []byte) error {
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxJSONDepth {
				return Errorf(ErrLimit, "json nesting deeper than %d", MaxJSONDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// jsonExtractParams reads json-extract's parameters: the fields and
// whether they are required.
func jsonExtractParams(env Env) ([]field, bool, error) {
	p := params{env: env}
	spec, ok := env.Param("fields")
	if !ok {
		p.fail("fields", "required")
	}
	required := p.boolean("required", false)
	if p.err != nil {
		return nil, false, p.err
	}
	fields, err := parseFields(spec)
	if err != nil {
		return nil, false, err
	}
	return fields, required, nil
}
