package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/docex-dev/docex"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Resource URIs.
const (
	basketsURI     = "docex://baskets"
	basketPrefix   = "docex://baskets/"
	documentPrefix = "docex://documents/"
	// listPage is the number of resources in one resources/list page.
	listPage = 100
	// basketResourceDocs is the number of documents a basket resource lists.
	basketResourceDocs = 1000
	// listScanBaskets bounds the baskets one resources/list call goes
	// through for their documents (listPage at a time): past it, the page
	// ends with a nextCursor, though it may hold fewer than listPage.
	listScanBaskets = 1000
)

func basketURI(id string) string   { return basketPrefix + id }
func documentURI(id string) string { return documentPrefix + id }

func (s *Server) addResources() {
	s.srv.AddResource(&mcp.Resource{URI: basketsURI, Name: "baskets", Title: "Baskets",
		Description: "The tenant's baskets, as JSON.", MIMEType: "application/json"}, s.readResource)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: basketPrefix + "{id}", Name: "basket", Title: "Basket",
		Description: fmt.Sprintf("A basket and its first documents (at most %d, and 1 MiB of JSON; next_offset says where list_documents goes on), as JSON.", basketResourceDocs), MIMEType: "application/json"}, s.readResource)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: documentPrefix + "{id}", Name: "document", Title: "Document",
		Description: fmt.Sprintf("A document's content: text when it is UTF-8, else bytes; at most %d bytes (read_document pages through more).", s.cfg.MaxResourceBytes)}, s.readResource)
}

func (s *Server) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	var (
		res *mcp.ResourceContents
		err error
	)
	switch {
	case uri == basketsURI:
		res, err = s.basketsResource(ctx)
	case strings.HasPrefix(uri, basketPrefix):
		res, err = s.basketResource(ctx, strings.TrimPrefix(uri, basketPrefix))
	case strings.HasPrefix(uri, documentPrefix):
		res, err = s.documentResource(ctx, strings.TrimPrefix(uri, documentPrefix))
	default:
		err = docex.Errorf(docex.ErrNotFound, "no resource %s", uri)
	}
	if err != nil {
		return nil, s.resourceErr(uri, err)
	}
	res.URI = uri
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{res}}, nil
}

func jsonContents(v any) (*mcp.ResourceContents, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return &mcp.ResourceContents{MIMEType: "application/json", Text: string(data)}, nil
}

func (s *Server) basketsResource(ctx context.Context) (*mcp.ResourceContents, error) {
	bs, err := s.s.Baskets(ctx, docex.Page{Limit: docex.MaxPageLimit})
	if err != nil {
		return nil, err
	}
	out := make([]basketOut, len(bs))
	for i, b := range bs {
		out[i] = basketOf(b)
	}
	return jsonContents(map[string]any{"baskets": out})
}

func (s *Server) basketResource(ctx context.Context, id string) (*mcp.ResourceContents, error) {
	b, err := s.s.Basket(ctx, id)
	if err != nil {
		return nil, err
	}
	// Read a page of maxDocLimit at a time, as list_documents at its
	// largest, and stop once the listing is full (listingOf).
	out := []listedOut{}
	used := 0
	for len(out) < basketResourceDocs {
		want := min(maxDocLimit, basketResourceDocs-len(out))
		docs, err := s.s.DocumentsMetaBound(ctx, b.ID, docex.Page{Limit: want, Offset: len(out)}, listMetaBytes)
		if err != nil {
			return nil, err
		}
		var cut bool
		if out, used, cut = s.listingOf(ctx, out, used, docs); cut || len(docs) < want {
			break
		}
	}
	body := map[string]any{"basket": basketOf(b), "documents": out}
	if int64(len(out)) < b.DocumentCount {
		body["next_offset"] = len(out)
		body["next"] = fmt.Sprintf("call list_documents with basket=%s offset=%d", b.ID, len(out))
	}
	return jsonContents(body)
}

func (s *Server) documentResource(ctx context.Context, id string) (*mcp.ResourceContents, error) {
	rc, d, err := s.s.OpenContent(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	limit := min(int64(s.cfg.MaxResourceBytes), d.Size)
	data := make([]byte, limit)
	// The reader's errors name the document.
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, err
	}
	// Content returned whole, or of up to VerifyReadBytes, is read to its
	// end to check it against its checksum (damage is an error, not a
	// result); longer content returned in part is not checked.
	verified := d.Size <= max(limit, VerifyReadBytes)
	if verified {
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return nil, err
		}
	}
	truncated := d.Size > int64(len(data))
	if truncated {
		data = data[:completeRunes(data)]
	}
	c := &mcp.ResourceContents{MIMEType: d.ContentType}
	if utf8.Valid(data) {
		c.Text = string(data)
	} else {
		c.Blob = data
	}
	if truncated {
		c.Meta = mcp.Meta{"truncated": true, "size": d.Size, "returned_bytes": len(data), "verified": verified,
			"next": fmt.Sprintf("call read_document with id=%s offset=%d", d.ID, len(data))}
	}
	return c, nil
}

// listCursor is the position of a resource in the order resources/list
// gives them: docex://baskets (Section 0), the baskets by name (Section
// 1, Basket their index), then the documents of each basket in turn,
// oldest first (Section 2, Basket and Doc their indexes). A nextCursor is
// the position of the first resource of the next page.
type listCursor struct {
	Section int `json:"s"`
	Basket  int `json:"b"`
	Doc     int `json:"d,omitempty"`
}

// listResources lists the tenant's baskets and documents as resources,
// listPage at a time: a page has nextCursor when more resources follow,
// or when it went through listScanBaskets baskets for their documents
// without filling the page (it then ends there, and may be empty). The middleware serves it instead of the SDK, so the SDK's
// SetCacheable does not see it: it sets cacheScope itself. A cursor that
// is not a nextCursor is a JSON-RPC invalid params error (-32602); an
// engine error is rpcError's.
func (s *Server) listResources(ctx context.Context, req *mcp.ListResourcesRequest) (*mcp.ListResourcesResult, error) {
	var pos listCursor
	if req.Params != nil && req.Params.Cursor != "" {
		var err error
		if pos, err = decodeCursor(req.Params.Cursor); err != nil {
			return nil, err
		}
	}
	// One resource more than a page says whether another page follows.
	const need = listPage + 1
	var (
		items = []*mcp.Resource{} // never null: an empty page is []
		at    []listCursor        // each item's position
	)
	if pos.Section == 0 {
		items = append(items, &mcp.Resource{URI: basketsURI, Name: "baskets", Title: "Baskets", MIMEType: "application/json"})
		at = append(at, pos)
		pos = listCursor{Section: 1}
	}
	for pos.Section == 1 && len(items) < need {
		want := need - len(items)
		bs, err := s.s.Baskets(ctx, docex.Page{Limit: want, Offset: pos.Basket})
		if err != nil {
			return nil, s.rpcError(err)
		}
		for _, b := range bs {
			items = append(items, &mcp.Resource{URI: basketURI(b.ID), Name: b.Name, Title: "Basket " + b.Name,
				Description: fmt.Sprintf("%d documents", b.DocumentCount), MIMEType: "application/json"})
			at = append(at, pos)
			pos.Basket++
		}
		if len(bs) < want {
			pos = listCursor{Section: 2}
		}
	}
	scanned, cut := 0, false
	for pos.Section == 2 && len(items) < need {
		if scanned >= listScanBaskets {
			cut = true
			break
		}
		bs, err := s.s.Baskets(ctx, docex.Page{Limit: listPage, Offset: pos.Basket})
		if err != nil {
			return nil, s.rpcError(err)
		}
		scanned += len(bs)
		for _, b := range bs {
			if b.DocumentCount == 0 && pos.Doc == 0 {
				// Empty (by its counter): no read of its documents, no
				// audited call for it.
				pos.Basket++
				continue
			}
			want := need - len(items)
			// A resource has no metadata: read none of it (a document
			// may hold 16 MiB of it).
			docs, err := s.s.DocumentsMetaBound(ctx, b.ID, docex.Page{Limit: want, Offset: pos.Doc}, 0)
			if err != nil && !errors.Is(err, docex.ErrNotFound) { // a basket deleted meanwhile is skipped
				return nil, s.rpcError(err)
			}
			for _, d := range docs {
				items = append(items, &mcp.Resource{URI: documentURI(d.ID), Name: d.Name, Title: b.Name + "/" + d.Name,
					MIMEType: d.ContentType, Size: d.Size})
				at = append(at, pos)
				pos.Doc++
			}
			if len(docs) == want {
				break // the page and the one more are there
			}
			pos.Basket, pos.Doc = pos.Basket+1, 0
		}
		if len(bs) < listPage {
			break // no basket left
		}
	}
	res := &mcp.ListResourcesResult{Resources: items, Cacheable: mcp.Cacheable{CacheScope: cacheScope}}
	if len(items) > listPage {
		res.Resources, res.NextCursor = items[:listPage], encodeCursor(at[listPage])
	} else if cut {
		res.NextCursor = encodeCursor(pos)
	}
	return res, nil
}

// decodeCursor returns the position a nextCursor gives, or an invalid
// params error (-32602, data {"code": "invalid", "kind": "invalid"}).
func decodeCursor(cursor string) (listCursor, error) {
	var c listCursor
	data, err := base64.RawURLEncoding.DecodeString(cursor)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil || c.Section < 1 || c.Section > 2 || c.Basket < 0 || c.Doc < 0 || (c.Section == 1 && c.Doc != 0) {
		return c, wireError(jsonrpc.CodeInvalidParams,
			fmt.Sprintf("invalid cursor %q: pass the nextCursor of the previous page, or no cursor for the first page", cursor),
			errorData{Code: "invalid", Kind: "invalid"})
	}
	return c, nil
}

func encodeCursor(c listCursor) string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}
