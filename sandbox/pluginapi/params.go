package pluginapi

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ParameterSpec declares one invocation parameter ([parameters.NAME]).
// Values are passed to the plugin as strings; Check validates one against
// the declaration.
type ParameterSpec struct {
	// Type is "string" (default), "int", "number" or "bool".
	Type        string `toml:"type"`
	Required    bool   `toml:"required"`
	Description string `toml:"description"`
	// Min and Max bound an int or number parameter, inclusive (absent: no
	// bound). An int's bounds are whole numbers of magnitude below 2^53.
	Min *float64 `toml:"min"`
	Max *float64 `toml:"max"`
	// Values lists the values a string parameter may take (absent: any).
	Values []string `toml:"values"`
	// LessThan names another int or number parameter that this one (int
	// or number) must be smaller than when both are given (chunk's
	// overlap: less_than = "size"); "" for none. See
	// Manifest.CheckRelations.
	LessThan string `toml:"less_than"`
}

// Limits of a parameter declaration and of a value.
const (
	maxParamValues     = 256
	maxParamValueBytes = 64 << 10
	maxExactInt        = 1<<53 - 1
)

// validate checks a declaration whose Type is set ("" is not).
func (p ParameterSpec) validate() error {
	switch p.Type {
	case "string", "int", "number", "bool":
	default:
		return fmt.Errorf("unknown type %q (want string, int, number or bool)", p.Type)
	}
	if err := checkText("description", p.Description, 1024); err != nil {
		if bidiIn(p.Description) {
			return err
		}
		return errors.New("description too long or not printable")
	}
	for _, b := range []struct {
		key string
		v   *float64
	}{{"min", p.Min}, {"max", p.Max}} {
		switch {
		case b.v == nil:
		case p.Type != "int" && p.Type != "number":
			return fmt.Errorf("%s applies to int and number parameters, not %s", b.key, p.Type)
		case math.IsNaN(*b.v) || math.IsInf(*b.v, 0):
			return fmt.Errorf("%s must be a finite number", b.key)
		case p.Type == "int" && (*b.v != math.Trunc(*b.v) || math.Abs(*b.v) > maxExactInt):
			return fmt.Errorf("%s of an int parameter must be a whole number of magnitude below 2^53, not %s", b.key, formatBound(*b.v))
		}
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		return fmt.Errorf("min %s is greater than max %s", formatBound(*p.Min), formatBound(*p.Max))
	}
	if p.LessThan != "" && p.Type != "int" && p.Type != "number" {
		return fmt.Errorf("less_than applies to int and number parameters, not %s", p.Type)
	}
	if p.Values != nil {
		if p.Type != "string" {
			return fmt.Errorf("values applies to string parameters, not %s", p.Type)
		}
		if len(p.Values) == 0 || len(p.Values) > maxParamValues {
			return fmt.Errorf("values: want 1-%d values", maxParamValues)
		}
		for i, v := range p.Values {
			if bidiIn(v) {
				return checkText(fmt.Sprintf("values[%d]", i), v, 1024)
			}
			if !printable(v, 1024) {
				return fmt.Errorf("values[%d]: too long or not printable", i)
			}
			if slices.Contains(p.Values[:i], v) {
				return fmt.Errorf("values[%d]: %q appears twice", i, v)
			}
		}
	}
	return nil
}

// Check validates one value of the parameter: its type (strconv syntax:
// an int is base 10, a bool is what strconv.ParseBool accepts), its bounds
// (a bounded number is never NaN) and, for a string parameter with Values,
// membership. It returns a plain error saying what is wrong with v, at
// most 64 KiB of v long; callers wrap it (ErrInvalidParams, a pipeline's
// line and key).
func (p ParameterSpec) Check(v string) error {
	if len(v) > maxParamValueBytes {
		return fmt.Errorf("value is longer than %d bytes", maxParamValueBytes)
	}
	typ := p.Type
	if typ == "" {
		typ = "string"
	}
	switch typ {
	case "int":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a valid int", v)
		}
		if p.Min != nil && n < int64(*p.Min) {
			return fmt.Errorf("%d is less than the minimum %s", n, formatBound(*p.Min))
		}
		if p.Max != nil && n > int64(*p.Max) {
			return fmt.Errorf("%d is greater than the maximum %s", n, formatBound(*p.Max))
		}
	case "number":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a valid number", v)
		}
		if (p.Min != nil || p.Max != nil) && math.IsNaN(f) {
			return fmt.Errorf("%q is not a number in range", v)
		}
		if p.Min != nil && f < *p.Min {
			return fmt.Errorf("%s is less than the minimum %s", v, formatBound(*p.Min))
		}
		if p.Max != nil && f > *p.Max {
			return fmt.Errorf("%s is greater than the maximum %s", v, formatBound(*p.Max))
		}
	case "bool":
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not a valid bool", v)
		}
	default:
		if p.Values != nil && !slices.Contains(p.Values, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(p.Values, ", "))
		}
	}
	return nil
}

// CheckRelations checks what the manifest declares between parameters
// (less_than) on the values given in params, each of which has passed
// ParameterSpec.Check: a relation with a parameter not given is not
// checked (the plugin applies its own default, and checks it itself). It
// returns the name of the parameter at fault and a plain error saying
// why, or "" and nil; parameters are visited in name order.
func (m *Manifest) CheckRelations(params map[string]string) (string, error) {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		spec, ok := m.Parameters[k]
		if !ok || spec.LessThan == "" {
			continue
		}
		other, given := params[spec.LessThan]
		if !given {
			continue
		}
		a, errA := strconv.ParseFloat(params[k], 64)
		b, errB := strconv.ParseFloat(other, 64)
		if errA != nil || errB != nil {
			continue // Check refused it already
		}
		less := a < b
		if spec.Type == "int" && m.Parameters[spec.LessThan].Type == "int" {
			x, errX := strconv.ParseInt(params[k], 10, 64)
			y, errY := strconv.ParseInt(other, 10, 64)
			less = errX == nil && errY == nil && x < y
		}
		if !less {
			return k, fmt.Errorf("%s must be less than %s (%s)", params[k], spec.LessThan, other)
		}
	}
	return "", nil
}

func formatBound(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Clone returns a copy of p that shares no memory with it.
func (p ParameterSpec) Clone() ParameterSpec {
	c := p
	if p.Min != nil {
		v := *p.Min
		c.Min = &v
	}
	if p.Max != nil {
		v := *p.Max
		c.Max = &v
	}
	c.Values = slices.Clone(p.Values)
	return c
}
