//go:build wasip1

// Command lookup is a test plugin: it looks up other documents of its tenant
// by the "name" parameter (or by metadata "key"="value"), reads them, and
// records what it found.
package main

import (
	"fmt"
	"io"

	"github.com/docex-dev/docex/plugins/pdk"
)

func main() {}

//go:wasmexport docex_run
func docexRun() int32 { return pdk.Run(lookup) }

func lookup() error {
	var docs []pdk.Doc
	var err error
	if name, ok := pdk.Param("name"); ok {
		docs, err = pdk.LookupByName(name, 16)
	} else {
		k, _ := pdk.Param("key")
		v, _ := pdk.Param("value")
		docs, err = pdk.LookupByMetadata(k, v, 16)
	}
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if _, ok := pdk.Param("panic"); ok {
		panic("lookup plugin asked to panic")
	}
	if _, ok := pdk.Param("spin"); ok {
		spin()
	}
	total := 0
	names := ""
	for _, d := range docs {
		n, err := d.Name()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(d.Reader())
		if err != nil {
			return err
		}
		total += len(b)
		names += n + ";"
		if a, err := d.Metadata("author"); err == nil {
			pdk.SetMetadata("author", a)
		}
	}
	pdk.Logf("found %d documents", len(docs))
	if err := pdk.SetMetadata("found", len(docs)); err != nil {
		return err
	}
	if err := pdk.SetMetadata("names", names); err != nil {
		return err
	}
	return pdk.SetMetadata("total_bytes", total)
}

// spin never returns: a runaway Go guest must still be stopped.
func spin() {
	n := 0
	for {
		n++
	}
}
