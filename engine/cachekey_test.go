package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox"
)

// TestCacheKeyHasNameAndType: a plugin sees its input's name and content
// type without any capability (doc_name, doc_content_type), and
// extract-text computes with both (its format by the type, its output's
// name from the input's), so runs on the same bytes under another name or
// type share no call and no cache entry. Before, the key was the content
// alone: of two documents with the same bytes, hr/ceo-salaries-2024.html
// (text/html) and public/memo.txt (text/markdown), run in one batch,
// public's took hr's call: its text was extracted as HTML and named
// ceo-salaries-2024.html.txt, hr's document name in basket public. A run
// in a later batch could take hr's cache entry the same way (a metadata-only
// result: a derived one is used only where its documents are). Runs on the
// same bytes, name and type still share (TestSharedRuns).
func TestCacheKeyHasNameAndType(t *testing.T) {
	ctx := context.Background()
	sb, err := sandbox.New(ctx, sandbox.Config{CacheDir: builtin.TestCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(ctx) })
	e := acmeSession(t, sb).e
	steps, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		if _, err := e.Provisioner("ops").InstallSystemPlugin(ctx, st.Manifest, st.Module); err != nil {
			t.Fatal(err)
		}
	}
	s := e.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	if _, err := s.CreatePipeline(ctx, []byte("name = \"p\"\n[[steps]]\nname = \"x\"\nplugin = \"extract-text\"\n")); err != nil {
		t.Fatal(err)
	}
	const content = "<p>Hello *world*</p>\n"
	baskets := map[string]string{}
	add := func(basket, name, ctype string) docex.Document {
		t.Helper()
		if baskets[basket] == "" {
			bk, err := s.CreateBasket(ctx, basket)
			if err != nil {
				t.Fatal(err)
			}
			baskets[basket] = bk.ID
		}
		d, err := s.AddDocument(ctx, baskets[basket], NewDocument{Name: name, ContentType: ctype, Content: strings.NewReader(content)})
		if err != nil {
			t.Fatal(err)
		}
		return d.Document
	}
	// run runs the pipeline on docs as one batch and returns, per
	// document, its job's steps run and cached and its derived document.
	run := func(docs ...docex.Document) {
		t.Helper()
		var ids []string
		for _, d := range docs {
			j, err := s.RunPipeline(ctx, "p", RunTarget{DocumentIDs: []string{d.ID}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j[0])
		}
		runDirect(t, e, "acme", ids)
		for i, d := range docs {
			j, err := s.Job(ctx, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			if j.State != driver.JobSucceeded || j.Progress.StepsRun != 1 || j.Progress.StepsCached != 0 {
				t.Errorf("%s (%s): job %s, %d run, %d cached; want succeeded, the step run", d.Name, d.ContentType, j.State, j.Progress.StepsRun, j.Progress.StepsCached)
			}
			l, err := s.Lineage(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Descendants) != 1 {
				t.Fatalf("%s: %d descendants, want 1", d.Name, len(l.Descendants))
			}
			dd, err := s.Document(ctx, l.Descendants[0].DerivedID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(dd.Name, d.Name) || dd.BasketID != d.BasketID {
				t.Errorf("%s: derived %q in basket %s; want a name from its own and its basket %s", d.Name, dd.Name, dd.BasketID, d.BasketID)
			}
		}
	}
	// One batch: no shared call.
	run(add("hr", "ceo-salaries-2024.html", "text/html"), add("public", "memo.txt", "text/markdown"))
}

// TestCacheKeyParts: every part of the key counts, and parts cannot run
// into each other (each is length-prefixed).
func TestCacheKeyParts(t *testing.T) {
	doc := docex.Document{Checksum: "c", Name: "n", ContentType: "t"}
	base := cacheKey(doc, "m", "f", "p", "e")
	seen := map[string]string{base: "base"}
	for name, k := range map[string]string{
		"checksum":      cacheKey(docex.Document{Checksum: "c2", Name: "n", ContentType: "t"}, "m", "f", "p", "e"),
		"name":          cacheKey(docex.Document{Checksum: "c", Name: "n2", ContentType: "t"}, "m", "f", "p", "e"),
		"content type":  cacheKey(docex.Document{Checksum: "c", Name: "n", ContentType: "t2"}, "m", "f", "p", "e"),
		"module":        cacheKey(doc, "m2", "f", "p", "e"),
		"manifest":      cacheKey(doc, "m", "f2", "p", "e"),
		"params":        cacheKey(doc, "m", "f", "p2", "e"),
		"environment":   cacheKey(doc, "m", "f", "p", "e2"),
		"shifted":       cacheKey(docex.Document{Checksum: "c", Name: "n\x00t", ContentType: ""}, "m", "f", "p", "e"),
		"shifted again": cacheKey(docex.Document{Checksum: "c", Name: "", ContentType: "n\x00t"}, "m", "f", "p", "e"),
	} {
		if other, ok := seen[k]; ok {
			t.Errorf("%s gives the key of %s", name, other)
		}
		seen[k] = name
	}
	if cacheKey(doc, "m", "f", "p", "e") != base {
		t.Error("the key is not a function of its parts")
	}
}
