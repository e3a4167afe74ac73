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
)

func basketURI(id string) string   { return basketPrefix + id }
func documentURI(id string) string { return documentPrefix + id }

func (s *Server) addResources() {
	s.srv.AddResource(&mcp.Resource{URI: basketsURI, Name: "baskets", Title: "Baskets",
		Description: "The tenant's baskets, as JSON.", MIMEType: "application/json"}, s.readResource)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: basketPrefix + "{id}", Name: "basket", Title: "Basket",
		Description: fmt.Sprintf("A basket and its first %d documents, as JSON.", basketResourceDocs), MIMEType: "application/json"}, s.readResource)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: documentPrefix + "{id}", Name: "document", Title: "Document",
		Description: fmt.Sprintf("A document's content: text when it is UTF-8, else bytes; at most %d bytes (read_document pages through more).", s.cfg.MaxResourceBytes)}, s.readResource)
}

// resourceErr maps engine errors to the protocol's: unknown, invisible and
// malformed ids are "resource not found", anything else keeps its message.
func (s *Server) resourceErr(uri string, err error) error {
	if errors.Is(err, docex.ErrNotFound) || errors.Is(err, docex.ErrInvalidID) {
		return mcp.ResourceNotFoundError(uri)
	}
	return s.toolError(err)
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
	docs, err := s.s.Documents(ctx, b.ID, docex.Page{Limit: basketResourceDocs})
	if err != nil {
		return nil, err
	}
	return jsonContents(map[string]any{"basket": basketOf(b), "documents": documentsOf(docs)})
}

func (s *Server) documentResource(ctx context.Context, id string) (*mcp.ResourceContents, error) {
	rc, d, err := s.s.OpenContent(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	limit := int64(s.cfg.MaxResourceBytes)
	data, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, fmt.Errorf("read document %s: %w", id, err)
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
		c.Meta = mcp.Meta{"truncated": true, "size": d.Size, "returned_bytes": len(data),
			"next": fmt.Sprintf("call read_document with id=%s offset=%d", d.ID, len(data))}
	}
	return c, nil
}

// listCursor is the position of a resources/list page: the first page
// holds docex://baskets and the baskets; later pages hold the documents
// of basket number Basket (in name order) from document number Doc on.
type listCursor struct {
	Basket int `json:"b"`
	Doc    int `json:"d"`
}

// listResources lists the tenant's baskets and documents as resources,
// listPage at a time. The middleware serves it instead of the SDK, so the
// SDK's SetCacheable does not see it: it sets cacheScope itself.
func (s *Server) listResources(ctx context.Context, req *mcp.ListResourcesRequest) (*mcp.ListResourcesResult, error) {
	res := &mcp.ListResourcesResult{Resources: []*mcp.Resource{}, Cacheable: mcp.Cacheable{CacheScope: cacheScope}}
	cur := listCursor{Basket: -1}
	if req.Params != nil && req.Params.Cursor != "" {
		data, err := base64.RawURLEncoding.DecodeString(req.Params.Cursor)
		if err != nil || json.Unmarshal(data, &cur) != nil || cur.Basket < 0 || cur.Doc < 0 {
			return nil, fmt.Errorf("invalid cursor %q: pass nextCursor from the previous page", req.Params.Cursor)
		}
	}
	if cur.Basket < 0 {
		res.Resources = append(res.Resources, &mcp.Resource{URI: basketsURI, Name: "baskets", Title: "Baskets", MIMEType: "application/json"})
		bs, err := s.s.Baskets(ctx, docex.Page{Limit: docex.MaxPageLimit})
		if err != nil {
			return nil, s.toolError(err)
		}
		for _, b := range bs {
			res.Resources = append(res.Resources, &mcp.Resource{URI: basketURI(b.ID), Name: b.Name, Title: "Basket " + b.Name,
				Description: fmt.Sprintf("%d documents", b.DocumentCount), MIMEType: "application/json"})
		}
		if len(bs) > 0 {
			res.NextCursor = encodeCursor(listCursor{})
		}
		return res, nil
	}
	for len(res.Resources) < listPage {
		bs, err := s.s.Baskets(ctx, docex.Page{Limit: 1, Offset: cur.Basket})
		if err != nil {
			return nil, s.toolError(err)
		}
		if len(bs) == 0 {
			return res, nil
		}
		want := listPage - len(res.Resources)
		docs, err := s.s.Documents(ctx, bs[0].ID, docex.Page{Limit: want, Offset: cur.Doc})
		if err != nil && !errors.Is(err, docex.ErrNotFound) { // a basket deleted meanwhile is skipped
			return nil, s.toolError(err)
		}
		for _, d := range docs {
			res.Resources = append(res.Resources, &mcp.Resource{URI: documentURI(d.ID), Name: d.Name, Title: bs[0].Name + "/" + d.Name,
				MIMEType: d.ContentType, Size: d.Size})
		}
		if len(docs) == want {
			cur.Doc += want
		} else {
			cur = listCursor{Basket: cur.Basket + 1}
		}
	}
	res.NextCursor = encodeCursor(cur)
	return res, nil
}

func encodeCursor(c listCursor) string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}
