//go:build wasip1

// Command guest is the WebAssembly module of docex's built-in steps: one
// module, one export per step (docex_run_extract_text, ...), each named by
// its manifest's entry (plugins/builtin/manifests), and, for each step
// with parameters, its parameter check (docex_validate_extract_text, ...).
// Built by `make builtin`.
package main

import (
	"errors"

	"github.com/docex-dev/docex/plugins/builtin/internal/steps"
	"github.com/docex-dev/docex/plugins/pdk"
)

func main() {}

//go:wasmexport docex_run_extract_text
func extractText() int32 { return run(steps.ExtractText) }

//go:wasmexport docex_run_chunk
func chunk() int32 { return run(steps.Chunk) }

//go:wasmexport docex_run_redact_pii
func redactPII() int32 { return run(steps.RedactPII) }

//go:wasmexport docex_run_csv_to_json
func csvToJSON() int32 { return run(steps.CSVToJSON) }

//go:wasmexport docex_run_json_extract
func jsonExtract() int32 { return run(steps.JSONExtract) }

//go:wasmexport docex_run_stats
func stats() int32 { return run(steps.Stats) }

//go:wasmexport docex_run_detect_type
func detectType() int32 { return run(steps.DetectType) }

//go:wasmexport docex_validate_extract_text
func validateExtractText() int32 { return validate(steps.ValidateExtractText) }

//go:wasmexport docex_validate_chunk
func validateChunk() int32 { return validate(steps.ValidateChunk) }

//go:wasmexport docex_validate_redact_pii
func validateRedactPII() int32 { return validate(steps.ValidateRedactPII) }

//go:wasmexport docex_validate_csv_to_json
func validateCSVToJSON() int32 { return validate(steps.ValidateCSVToJSON) }

//go:wasmexport docex_validate_json_extract
func validateJSONExtract() int32 { return validate(steps.ValidateJSONExtract) }

//go:wasmexport docex_validate_stats
func validateStats() int32 { return validate(steps.ValidateStats) }

// validate runs a step's parameter check; the text logged on refusal
// starts with the parameter's name (steps.ParamMessage).
func validate(check func(steps.Env) error) int32 {
	return pdk.Validate(func() error {
		if err := check(env{}); err != nil {
			return errors.New(steps.ParamMessage(err))
		}
		return nil
	})
}

func run(step func(steps.Env) error) int32 {
	return pdk.Run(func() error { return step(env{}) })
}

// env is steps.Env over the pdk.
type env struct{}

func (env) Input() steps.Input {
	in := pdk.Input()
	name, _ := in.Name()
	ct, _ := in.ContentType()
	return steps.Input{Name: name, ContentType: ct, Size: max(in.Size(), 0), Content: in}
}

func (env) Param(name string) (string, bool) { return pdk.Param(name) }

func (env) SetMetadata(key string, v any) error { return pdk.SetMetadata(key, v) }

func (env) Emit(name, contentType string, data []byte, meta []steps.KV) error {
	d, err := pdk.Emit(name, contentType, data)
	if err != nil {
		return err
	}
	for _, kv := range meta {
		if err := d.SetMetadata(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func (env) Log(msg string) { pdk.Log(pdk.Info, msg) }
