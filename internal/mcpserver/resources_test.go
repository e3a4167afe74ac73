package mcpserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestResourcesListPages: resources/list gives at most listPage (100)
// resources a page, a nextCursor exactly when more follow, and the
// cursors reach every resource exactly once, in order: docex://baskets,
// the baskets by name, then each basket's documents, oldest first. Before,
// the first page held docex://baskets and every basket (up to 10,000),
// however many, and stopped there. A cursor that is not a nextCursor is an
// invalid params error (-32602); before, the error had code 0.
func TestResourcesListPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// alpha has basket "in" (one document); 149 more baskets, two of them
	// with documents, make 1 + 150 baskets + 1 + 120 + 3 documents: three
	// pages of 100, 100 and 75.
	want := []string{basketsURI}
	var names []string
	baskets := map[string]string{} // name: id
	for i := range 149 {
		names = append(names, fmt.Sprintf("b%03d", i))
	}
	names = append(names, "in")
	slices.Sort(names)
	for _, name := range names {
		if name == "in" {
			baskets[name] = e.basket.ID
		} else {
			b, err := e.admin.CreateBasket(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			baskets[name] = b.ID
		}
		want = append(want, basketURI(baskets[name]))
	}
	docsOf := map[string][]string{"in": {documentURI(e.doc.ID)}}
	for name, n := range map[string]int{"b007": 120, "b148": 3} {
		var docs []engine.NewDocument
		for i := range n {
			docs = append(docs, engine.NewDocument{Name: fmt.Sprintf("d%03d.txt", i), Content: strings.NewReader(fmt.Sprintf("%s %d", name, i))})
		}
		added, err := e.admin.AddDocuments(ctx, baskets[name], docs)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range added {
			docsOf[name] = append(docsOf[name], documentURI(a.Document.ID))
		}
	}
	for _, name := range names {
		want = append(want, docsOf[name]...)
	}
	if len(want) != 275 {
		t.Fatalf("the test expects 275 resources, has %d", len(want))
	}

	_, cs := e.connect(t, user("rita", "reader"), Config{})
	var got []string
	cursor := ""
	for page := 1; ; page++ {
		res, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cursor})
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, r := range res.Resources {
			got = append(got, r.URI)
		}
		if res.NextCursor == "" {
			if len(res.Resources) == 0 || len(res.Resources) > listPage {
				t.Errorf("last page %d: %d resources, want 1 to %d", page, len(res.Resources), listPage)
			}
			break
		}
		if len(res.Resources) != listPage {
			t.Fatalf("page %d: %d resources and a nextCursor, want %d", page, len(res.Resources), listPage)
		}
		if page > len(want) {
			t.Fatal("the cursors never end")
		}
		cursor = res.NextCursor
	}
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("%d resources, want %d; the first difference at %d: %s, want %s", len(got), len(want), i, got[i], want[i])
			}
		}
		t.Fatalf("%d resources, want %d", len(got), len(want))
	}

	// A listing of exactly one page has no nextCursor.
	_, beta := e.connect(t, docex.UserContext{UserID: "bob", TenantID: "beta", Roles: []string{"reader"}}, Config{})
	if res, err := beta.ListResources(ctx, nil); err != nil || len(res.Resources) != 3 || res.NextCursor != "" {
		t.Fatalf("beta's resources: %+v %v", res, err)
	}

	cursor64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, bad := range []string{"garbage!", cursor64(`{"s":0,"b":0}`), cursor64(`{"s":3,"b":0}`), cursor64(`{"s":1,"b":-1}`),
		cursor64(`{"s":1,"b":2,"d":5}`), cursor64(`{"s":2,"b":0,"d":-1}`), cursor64(`[1]`)} {
		_, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: bad})
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, "invalid cursor") ||
			!strings.Contains(rpcErr.Message, "nextCursor") {
			t.Errorf("cursor %s: %v, want an invalid params error (-32602) saying to pass nextCursor", bad, err)
		}
	}
}
