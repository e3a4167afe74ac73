// Package steps implements the built-in steps (docs/steps.md) as plain Go
// functions over Env, so that the same code runs inside the sandbox (the
// guest adapts Env to plugins/pdk) and natively in tests and benchmarks.
// Every failure wraps one of ErrParam, ErrUnsupported, ErrMalformed or
// ErrLimit, and its message starts with that kind.
package steps
