// Package spell suggests the known name closest to a misspelt one, for
// the errors of strict parsers (pipeline definitions, docex.yaml, plugin
// manifests): "unknown key "imput" (did you mean "input"?)".
package spell
