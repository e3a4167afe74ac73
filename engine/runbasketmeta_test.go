package engine

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox"
)

// TestRunBasketDoesNotLoadMetadata: running a pipeline on a basket of
// 100 documents with 256 KiB of metadata each reads their ids (and
// whether each has derived_from), not their 25 MiB of metadata. Before,
// it read every document's metadata in full, in pages of 10,000 (a
// document may hold 16 MiB: gigabytes a page).
func TestRunBasketDoesNotLoadMetadata(t *testing.T) {
	ctx := context.Background()
	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(ctx) })
	s := acmeSession(t, sb)
	steps, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		if _, err := s.e.Provisioner("ops").InstallSystemPlugin(ctx, st.Manifest, st.Module); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreatePipeline(ctx, []byte("name = \"p\"\n[[steps]]\nname = \"x\"\nplugin = \"extract-text\"\n")); err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]docex.Value{}
	for _, k := range []string{"a", "b", "c", "d"} {
		meta[k] = docex.String(strings.Repeat(k, MaxMetaValueLen))
	}
	for i := range 100 {
		if _, err := s.AddDocument(ctx, b.ID, NewDocument{Name: fmt.Sprintf("d%d.txt", i), Content: strings.NewReader(fmt.Sprint(i)), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ids, err := s.RunPipeline(ctx, "p", RunTarget{BasketID: b.ID})
	runtime.ReadMemStats(&after)
	if err != nil || len(ids) != 100 {
		t.Fatalf("run: %d jobs, %v", len(ids), err)
	}
	// 100 jobs take a few hundred KiB; the metadata is 25 MiB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Fatalf("one basket run allocated %d bytes: it read the documents' metadata", n)
	}
}
