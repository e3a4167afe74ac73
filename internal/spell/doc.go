// Package spell words the errors of strict parsers (pipeline definitions,
// docex.yaml, plugin manifests) for the person who wrote the file: the
// known name closest to a misspelt one ("unknown key "imput" (did you
// mean "input"?)"), and a TOML type mismatch as what the key wants and
// what it got ("want an integer, got a string").
package spell
