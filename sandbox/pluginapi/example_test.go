package pluginapi_test

import (
	"errors"
	"fmt"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

func ExampleParseManifest() {
	m, err := pluginapi.ParseManifest([]byte(`
name = "wordcount"
version = "1.0.0"
abi_version = 1
module = "wordcount.wasm"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
capabilities = ["content.read", "metadata.write"]
accepted_content_types = ["text/*"]

[limits]
timeout_ms = 2000
`))
	if err != nil {
		panic(err)
	}
	limits, _ := m.Resolve(pluginapi.Limits{}) // operator ceilings
	fmt.Println(m.Name, m.Has(pluginapi.CapMetadataWrite), m.Accepts("text/markdown"), limits.Timeout)

	_, err = pluginapi.ParseManifest([]byte(`name = "x"` + "\nshell = true"))
	fmt.Println(errors.Is(err, pluginapi.ErrInvalidManifest), err)
	// Output:
	// wordcount true true 2s
	// true sandbox: invalid manifest: unknown key "shell"
}

// A manifest declares a parameter's type, bounds and values; Check is what
// pipeline create and the sandbox apply to each value.
func ExampleParameterSpec_Check() {
	m, err := pluginapi.ParseManifest([]byte(`
name = "chunker"
version = "1.0.0"
abi_version = 1
module = "chunker.wasm"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

[parameters.size]
type = "int"
min = 1
max = 4096

[parameters.mode]
values = ["fixed", "sentence"]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	size, mode := m.Parameters["size"], m.Parameters["mode"]
	fmt.Println(size.Check("512"))
	fmt.Println(size.Check("0"))
	fmt.Println(size.Check("big"))
	fmt.Println(mode.Check("words"))
	// Output:
	// <nil>
	// 0 is less than the minimum 1
	// "big" is not a valid int
	// "words" is not one of fixed, sentence
}
