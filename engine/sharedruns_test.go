package engine

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/testplugins"
)

// TestSharedRuns: the runs of one batch on identical content share one
// plugin call: of two jobs on equal documents in two baskets, run as one
// batch, one runs each step and the other counts it as cached, yet each
// derives its own documents, in its own basket, with its own lineage.
// Runs on different content do not share. The step cache entries of the
// shared calls are written once (lastPerKey).
func TestSharedRuns(t *testing.T) {
	ctx := context.Background()
	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	s := acmeSession(t, sb)
	e := s.e
	for _, name := range []string{"split", "upper", "tag"} {
		fsys, err := testplugins.Dir(name)
		if err != nil {
			t.Fatal(err)
		}
		manifest, err := fs.ReadFile(fsys, "plugin.toml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := pluginapi.ParseManifest(manifest)
		if err != nil {
			t.Fatal(err)
		}
		module, err := fs.ReadFile(fsys, m.Module)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.InstallPlugin(ctx, manifest, module); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreatePipeline(ctx, []byte("name = \"three\"\n[[steps]]\nname = \"split\"\nplugin = \"split\"\n"+
		"[[steps]]\nname = \"upper\"\nplugin = \"upper\"\ninput = \"split\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\ninput = \"upper\"\n")); err != nil {
		t.Fatal(err)
	}
	baskets := map[string]string{}
	for _, name := range []string{"one", "two"} {
		bk, err := s.CreateBasket(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		baskets[name] = bk.ID
	}
	var docs []docex.Document
	for _, c := range []struct{ basket, content string }{{"one", "the same words"}, {"two", "the same words"}, {"two", "other words here"}} {
		d, err := s.AddDocument(ctx, baskets[c.basket], NewDocument{Name: "a.txt", Content: strings.NewReader(c.content)})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d.Document)
	}
	ids, err := s.RunPipeline(ctx, "three", RunTarget{DocumentIDs: []string{docs[0].ID, docs[1].ID, docs[2].ID}})
	if err != nil {
		t.Fatal(err)
	}
	// One batch, run directly: no queue timing decides what shares.
	r := &jobRunner{e: e, worker: "test", retryBase: time.Millisecond, suspendedWait: time.Second, runs: newFairSlots(2)}
	batch := make([]*pending, len(ids))
	for i, id := range ids {
		batch[i] = &pending{ctx: ctx, d: driver.Delivery{TenantID: "acme", JobID: id}, done: make(chan struct{})}
	}
	for i, out := range r.handleBatch(ctx, "acme", batch) {
		if out.Kind != driver.Done {
			t.Fatalf("job %d: outcome %+v", i, out)
		}
	}
	var run, cached [3]int
	for i, id := range ids {
		j, err := s.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != driver.JobSucceeded {
			t.Fatalf("job %d: %+v", i, j)
		}
		run[i], cached[i] = j.Progress.StepsRun, j.Progress.StepsCached
	}
	if run[0]+run[1] != 5 || cached[0]+cached[1] != 5 {
		t.Errorf("equal documents: steps run %d+%d, cached %d+%d; want 5 run and 5 shared in all", run[0], run[1], cached[0], cached[1])
	}
	if run[2] != 5 || cached[2] != 0 {
		t.Errorf("the other document: %d steps run, %d cached; want 5 and 0", run[2], cached[2])
	}
	for _, d := range docs[:2] {
		l, err := s.Lineage(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Descendants) != 4 {
			t.Fatalf("document of basket %s: %d descendants, want 4", d.BasketID, len(l.Descendants))
		}
		for _, edge := range l.Descendants {
			dd, err := s.Document(ctx, edge.DerivedID)
			if err != nil {
				t.Fatal(err)
			}
			if dd.BasketID != d.BasketID || dd.Metadata["derived_from"].Str() != edge.SourceID {
				t.Errorf("descendant %s: basket %s, derived_from %v; want basket %s, source %s", dd.ID, dd.BasketID, dd.Metadata["derived_from"], d.BasketID, edge.SourceID)
			}
		}
	}
}

func TestLastPerKey(t *testing.T) {
	in := []driver.CacheEntry{{Key: "a", Result: []byte("1")}, {Key: "b", Result: []byte("2")}, {Key: "a", Result: []byte("3")}}
	got := lastPerKey(in)
	if len(got) != 2 || got[0].Key != "a" || string(got[0].Result) != "3" || got[1].Key != "b" {
		t.Fatalf("lastPerKey = %+v", got)
	}
	if len(lastPerKey(nil)) != 0 {
		t.Fatal("lastPerKey(nil) not empty")
	}
}
