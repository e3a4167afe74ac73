package builtin_test

import (
	"fmt"

	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// The built-in steps share one module; each manifest names its entry.
func ExampleSteps() {
	steps, err := builtin.Steps()
	if err != nil {
		panic(err)
	}
	for _, s := range steps[:3] {
		m, _ := pluginapi.ParseManifest(s.Manifest)
		fmt.Println(m.Name, m.Entry, m.SHA256 == builtin.ModuleSHA256())
	}
	// Output:
	// extract-text docex_run_extract_text true
	// chunk docex_run_chunk true
	// redact-pii docex_run_redact_pii true
}
