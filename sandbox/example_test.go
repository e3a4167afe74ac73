package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// Load a plugin directory, run it on a document, and read the result.
func Example() {
	ctx := context.Background()
	sb, err := sandbox.New(ctx, sandbox.Config{}) // set CacheDir in production
	if err != nil {
		panic(err)
	}
	defer sb.Close(ctx)

	raw, module, err := pluginapi.ReadPluginDir("../testplugins/derive")
	if err != nil {
		panic(err)
	}
	manifest, err := pluginapi.ParseManifest(raw)
	if err != nil {
		panic(err)
	}
	p, err := sb.Load(ctx, manifest, module) // checks the sha256, compiles once per module
	if err != nil {
		panic(err)
	}
	text := "Quarterly results were good."
	res, err := p.Run(ctx, pluginapi.Call{
		TenantID: "acme",
		UserID:   "ann",
		Input:    pluginapi.Document{Name: "q3.txt", ContentType: "text/plain", Size: int64(len(text)), Content: strings.NewReader(text)},
		Params:   map[string]string{"title": "Q3 summary"},
	})
	if err != nil {
		fmt.Println("run failed, persist nothing:", err)
		return
	}
	fmt.Println(res.Status, res.Metadata["derived"])
	for _, d := range res.Derived {
		fmt.Printf("%s (%s): %s\n", d.Name, d.ContentType, d.Content)
	}
	fmt.Println(res.Logs[0].Level, res.Logs[0].Text)
	// Output:
	// ok true
	// summary.txt (text/plain): Q3 summary
	// info deriving summary
}

// A runaway plugin is stopped at its timeout_ms and reported as
// pluginapi.ErrPluginTimeout, which also matches context.DeadlineExceeded.
func ExamplePlugin_Run_timeout() {
	ctx := context.Background()
	sb, _ := sandbox.New(ctx, sandbox.Config{})
	defer sb.Close(ctx)
	raw, mod, _ := pluginapi.ReadPluginDir("../testplugins/loop")
	m, _ := pluginapi.ParseManifest(raw)
	p, _ := sb.Load(ctx, m, mod)

	res, err := p.Run(ctx, pluginapi.Call{TenantID: "acme"})
	fmt.Println(errors.Is(err, pluginapi.ErrPluginTimeout), errors.Is(err, context.DeadlineExceeded))
	fmt.Println(res.Status, res.Metadata == nil, res.Report.InstanceRetired)
	// Output:
	// true true
	// error true true
}
