package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Paging of listings.
const (
	defaultDocLimit    = 20
	maxDocLimit        = 100
	defaultBasketLimit = 100
	maxBasketLimit     = 1000
)

// ---- outputs ----

// basketOut is a basket as tools return it.
type basketOut struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	DocumentCount int64     `json:"document_count"`
	Bytes         int64     `json:"bytes"`
	CreatedAt     time.Time `json:"created_at"`
	URI           string    `json:"uri" jsonschema:"the basket as an MCP resource"`
}

func basketOf(b docex.Basket) basketOut {
	return basketOut{ID: b.ID, Name: b.Name, DocumentCount: b.DocumentCount, Bytes: b.Bytes, CreatedAt: b.CreatedAt, URI: basketURI(b.ID)}
}

// documentOut is a document record as tools return it.
type documentOut struct {
	ID          string                 `json:"id"`
	BasketID    string                 `json:"basket_id"`
	Name        string                 `json:"name"`
	ContentType string                 `json:"content_type"`
	Size        int64                  `json:"size" jsonschema:"content size in bytes"`
	Checksum    string                 `json:"checksum" jsonschema:"sha256 of the content"`
	CreatedAt   time.Time              `json:"created_at"`
	UpdatedAt   time.Time              `json:"updated_at"`
	Metadata    map[string]docex.Value `json:"metadata"`
	URI         string                 `json:"uri" jsonschema:"the document as an MCP resource"`
}

// recordOut is a document record as get_document, set_metadata and
// add_document return it (recordOf): its metadata bounded to
// recordMetaBytes, the keys left out named.
type recordOut struct {
	ID              string                 `json:"id"`
	BasketID        string                 `json:"basket_id"`
	Name            string                 `json:"name"`
	ContentType     string                 `json:"content_type"`
	Size            int64                  `json:"size" jsonschema:"content size in bytes"`
	Checksum        string                 `json:"checksum" jsonschema:"sha256 of the content"`
	CreatedAt       time.Time              `json:"created_at"`
	UpdatedAt       time.Time              `json:"updated_at"`
	Metadata        map[string]docex.Value `json:"metadata" jsonschema:"the metadata, but for the values of metadata_omitted"`
	MetadataOmitted []string               `json:"metadata_omitted,omitempty" jsonschema:"the metadata keys whose values were left out to keep the record within 1 MiB of metadata JSON (get_document with keys set to some of them gives their values); absent when none was"`
	URI             string                 `json:"uri" jsonschema:"the document as an MCP resource"`
}

// recordOf returns d as a document record: with keys (not nil), only
// its values of those keys; its values in key order while the
// metadata's JSON stays within recordMetaBytes, the keys of the values
// that do not fit in MetadataOmitted, in order (boundMeta).
func recordOf(d docex.Document, keys []string) recordOut {
	m := d.Metadata
	if keys != nil {
		m = map[string]docex.Value{}
		for _, k := range keys {
			if v, ok := d.Metadata[k]; ok {
				m[k] = v
			}
		}
	}
	r := documentOf(d)
	out := recordOut{ID: r.ID, BasketID: r.BasketID, Name: r.Name, ContentType: r.ContentType, Size: r.Size,
		Checksum: r.Checksum, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, URI: r.URI}
	out.Metadata, out.MetadataOmitted = boundMeta(m, recordMetaBytes)
	return out
}

// listedOut is a document record as listings return it (listedOf): its
// metadata bounded, the keys left out named.
type listedOut struct {
	ID              string                 `json:"id"`
	BasketID        string                 `json:"basket_id"`
	Name            string                 `json:"name"`
	ContentType     string                 `json:"content_type"`
	Size            int64                  `json:"size" jsonschema:"content size in bytes"`
	Checksum        string                 `json:"checksum" jsonschema:"sha256 of the content"`
	CreatedAt       time.Time              `json:"created_at"`
	UpdatedAt       time.Time              `json:"updated_at"`
	Metadata        map[string]docex.Value `json:"metadata" jsonschema:"the metadata, but for the values of metadata_omitted"`
	MetadataOmitted []string               `json:"metadata_omitted,omitempty" jsonschema:"the metadata keys whose values were left out to bound the listing (get_document with keys set to them gives their values); absent when none was"`
	URI             string                 `json:"uri" jsonschema:"the document as an MCP resource"`
}

func documentOf(d docex.Document) documentOut {
	m := d.Metadata
	if m == nil {
		m = map[string]docex.Value{}
	}
	return documentOut{ID: d.ID, BasketID: d.BasketID, Name: d.Name, ContentType: d.ContentType, Size: d.Size,
		Checksum: d.Checksum, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Metadata: m, URI: documentURI(d.ID)}
}

// Bounds of a listing (list_documents, find_documents, a basket
// resource): a document's metadata may hold 16 MiB, so a page of them
// would be gigabytes.
const (
	// listMetaBytes bounds the JSON of one document's metadata in a
	// listing (keys and values; MaxMetaValueLen is 64 KiB).
	listMetaBytes = 64 << 10
	// listBytes bounds the JSON of the documents of one listing: a
	// page stops before the document that would pass it (never before
	// the first), and its next_offset says where to go on.
	listBytes = 1 << 20
	// recordMetaBytes bounds the JSON of a document's metadata in a
	// document record (get_document, set_metadata, add_document): 16 MiB
	// of metadata whose values escape (< is \u003c) would be a reply of
	// hundreds of MB, which no client reads.
	recordMetaBytes = 1 << 20
)

// boundMeta returns m's values in key order while the JSON of those kept
// stays within limit (a value that would pass it is left out, the
// smaller ones after it are still kept), and the keys left out, in order
// (nil when none was).
func boundMeta(m map[string]docex.Value, limit int) (map[string]docex.Value, []string) {
	if m == nil {
		m = map[string]docex.Value{}
	}
	if metaBytes(m, limit) <= limit {
		return m, nil
	}
	kept := map[string]docex.Value{}
	var omitted []string
	used := 2 // {}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n := entryBytes(k, m[k])
		if used+n > limit {
			omitted = append(omitted, k)
			continue
		}
		kept[k], used = m[k], used+n
	}
	return kept, omitted
}

// listedOf returns d as a listing gives it: its metadata values in key
// order while the metadata's JSON stays within listMetaBytes; the keys of
// the values that do not fit are in MetadataOmitted, in order.
func listedOf(d docex.Document) listedOut {
	r := documentOf(d)
	out := listedOut{ID: r.ID, BasketID: r.BasketID, Name: r.Name, ContentType: r.ContentType, Size: r.Size,
		Checksum: r.Checksum, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Metadata: r.Metadata, URI: r.URI}
	out.Metadata, out.MetadataOmitted = boundMeta(r.Metadata, listMetaBytes)
	return out
}

// listedOfBound returns d, read with its metadata bounded in the store
// (engine.DocumentsMetaBound with listMetaBytes), as listedOf returns the
// whole document (metaOfBound).
func (s *Server) listedOfBound(ctx context.Context, d engine.BoundDocument) listedOut {
	if len(d.MetadataOmitted) == 0 {
		return listedOf(d.Document)
	}
	r := documentOf(d.Document)
	out := listedOut{ID: r.ID, BasketID: r.BasketID, Name: r.Name, ContentType: r.ContentType, Size: r.Size,
		Checksum: r.Checksum, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, URI: r.URI}
	out.Metadata, out.MetadataOmitted = s.metaOfBound(ctx, d, listMetaBytes)
	return out
}

// recordOfBound returns d, read with its metadata bounded in the store
// (engine.Session.DocumentMetaBound with recordMetaBytes; with keys,
// engine.Session.DocumentMetaKeys of those keys), as recordOf returns
// the whole document with the same keys (metaOfBound).
func (s *Server) recordOfBound(ctx context.Context, d engine.BoundDocument) recordOut {
	if len(d.MetadataOmitted) == 0 {
		return recordOf(d.Document, nil)
	}
	r := documentOf(d.Document)
	out := recordOut{ID: r.ID, BasketID: r.BasketID, Name: r.Name, ContentType: r.ContentType, Size: r.Size,
		Checksum: r.Checksum, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, URI: r.URI}
	out.Metadata, out.MetadataOmitted = s.metaOfBound(ctx, d, recordMetaBytes)
	return out
}

// metaOfBound returns the metadata of d, read with its metadata bounded
// in the store to limit (of the keys d has: all of the document's, or
// those of a DocumentMetaKeys), as boundMeta returns the whole
// document's (of the same keys) with limit: the same values kept, the
// same keys left out, in order. The store left out only values that
// boundMeta leaves out too, as long as every value it kept is kept here
// (its values have no JSON escapes to lengthen them). When one is not,
// and a value the store did not read comes after it, the values not read
// yet are read from that one on in rounds bounded to the room left
// (metaRounds), all in one engine.Session.DocumentMetaKeysRounds (one
// audit entry); should a round fail, the values not read stay left out.
func (s *Server) metaOfBound(ctx context.Context, d engine.BoundDocument, limit int) (map[string]docex.Value, []string) {
	return metaOfBoundWith(d, limit, func(rounds func(metaRead) error) error {
		return s.s.DocumentMetaKeysRounds(ctx, d.ID, rounds)
	})
}

// metaRead reads a document's values of keys bounded to metaBytes
// (engine.Session.DocumentMetaKeys).
type metaRead = func(keys []string, metaBytes int) (engine.BoundDocument, error)

// metaOfBoundWith is metaOfBound, its rounds read in withRounds
// (engine.Session.DocumentMetaKeysRounds of d).
func metaOfBoundWith(d engine.BoundDocument, limit int, withRounds func(rounds func(metaRead) error) error) (map[string]docex.Value, []string) {
	meta := map[string]docex.Value{}
	var omitted []string
	all := slices.Sorted(maps.Keys(d.Metadata))
	all = append(all, d.MetadataOmitted...)
	slices.Sort(all)
	used, dropped := 2, false // {}; whether a value the store read was left out
	for i, k := range all {
		v, read := d.Metadata[k]
		if !read {
			if dropped {
				ran := false
				err := withRounds(func(read metaRead) error {
					ran = true
					var err error
					meta, omitted, err = metaRounds(d.Metadata, all[i:], meta, omitted, used, limit, read)
					return err
				})
				if !ran { // the values not read are left out
					meta, omitted, _ = metaRounds(d.Metadata, all[i:], meta, omitted, used, limit, func([]string, int) (engine.BoundDocument, error) {
						return engine.BoundDocument{}, err
					})
				}
				return meta, omitted
			}
			omitted = append(omitted, k)
			continue
		}
		n := entryBytes(k, v)
		if used+n > limit {
			omitted, dropped = append(omitted, k), true
			continue
		}
		meta[k], used = v, used+n
	}
	return meta, omitted
}

// metaRounds goes on with boundMeta's rule over keys (sorted, from a key
// whose value the store did not read, after a value it read that was left
// out), meta and omitted holding what the rule gave for the keys before
// it, used the JSON bytes of meta, have the values read already. It
// reads the values of keys not read yet in rounds, each with read
// (engine.Session.DocumentMetaKeys) of all of them from the key it
// starts at, bounded to the room left then: a round's first key is read
// if its value may fit; a value a round did not read is left out as the
// store left it out, until a value that round read is left out (its JSON
// escapes); the next key whose value was not read then starts the next
// round. Each value is read once, but for a value kept whose round had
// ended when its turn came: to hold at most the values of one round
// besides those kept (at most limit bytes each, at their least length),
// such values are let go when the next round starts, their lengths
// kept, and read again at the end, in one more read. So memory stays
// O(limit), whatever the document holds.
//
// Rounds are snapshots of their own: a value that a later read finds
// gone is absent (neither kept nor left out); one set meanwhile is taken
// as that read finds it (one read again at the end that no longer fits
// is left out). Keys added meanwhile are not seen. Should a read fail,
// the values it would have read are left out, and metaRounds returns
// its error.
func metaRounds(have map[string]docex.Value, keys []string, meta map[string]docex.Value, omitted []string, used, limit int, read metaRead) (map[string]docex.Value, []string, error) {
	var (
		round   map[string]docex.Value // the values read by the current round
		sizes   = map[string]int{}     // the JSON bytes of values of earlier rounds, let go
		gone    = map[string]bool{}    // keys a round found no longer there
		later   []string               // keys kept whose values were let go
		dropped = true                 // a value the current round read was left out
		failed  error
	)
	for i := 0; i < len(keys); i++ {
		k := keys[i]
		if gone[k] {
			continue
		}
		v, ok := have[k]
		inRound := false
		if !ok {
			v, ok = round[k]
			inRound = ok
		}
		var n int
		switch size, let := sizes[k]; {
		case ok:
			n = entryBytes(k, v)
		case let:
			n = size
		case !dropped || failed != nil:
			// Not read, as the store (the current round) left it out:
			// its least length did not fit in the room it was given,
			// no more than the room left now.
			omitted = append(omitted, k)
			continue
		default:
			// A round from k, of the values not read yet.
			for rk, rv := range round {
				if rk >= k {
					sizes[rk] = entryBytes(rk, rv)
				}
			}
			round = nil
			var unread []string
			for _, u := range keys[i:] {
				if _, ok := have[u]; !ok && !gone[u] {
					if _, let := sizes[u]; !let {
						unread = append(unread, u)
					}
				}
			}
			rd, err := read(unread, limit-used+2) // from 2, for {}
			if err != nil {
				failed = err
			} else {
				round, dropped = rd.Metadata, false
				left := map[string]bool{}
				for _, o := range rd.MetadataOmitted {
					left[o] = true
				}
				for _, u := range unread {
					if _, ok := round[u]; !ok && !left[u] {
						gone[u] = true
					}
				}
			}
			i-- // k again
			continue
		}
		if used+n > limit {
			omitted = append(omitted, k)
			dropped = dropped || inRound
			continue
		}
		used += n
		if ok {
			meta[k] = v
		} else {
			later, sizes[k] = append(later, k), n
		}
	}
	if len(later) > 0 {
		n := 2
		for _, k := range later {
			n += sizes[k]
		}
		var rd engine.BoundDocument
		err := failed
		if err == nil {
			rd, err = read(later, n) // their least lengths fit, as they did
			failed = err
		}
		left := map[string]bool{}
		for _, o := range rd.MetadataOmitted {
			left[o] = true
		}
		for _, k := range later {
			used -= sizes[k]
			v, ok := rd.Metadata[k]
			if ok {
				if n := entryBytes(k, v); used+n <= limit {
					meta[k], used = v, used+n
					continue
				}
			}
			if ok || left[k] || err != nil { // else gone
				omitted = append(omitted, k)
			}
		}
		slices.Sort(omitted)
	}
	return meta, omitted, failed
}

// metaBytes is about the length of m's JSON (at least it: keys are
// counted escaped, values as they marshal), or some length past limit.
func metaBytes(m map[string]docex.Value, limit int) int {
	n := 2
	for k, v := range m {
		n += entryBytes(k, v)
		if n > limit {
			return n
		}
	}
	return n
}

// entryBytes is the length of `"k":v,` in JSON as it is sent: with <, >
// and & escaped (\u003c), as json.Marshal writes them (v.MarshalJSON
// does not).
func entryBytes(k string, v docex.Value) int {
	kj, _ := json.Marshal(k)
	vj, _ := json.Marshal(v)
	return len(kj) + 1 + len(vj) + 1
}

// listingOf appends docs to out as a listing gives them (listedOf) while
// the JSON of out stays within listBytes, used being what out holds
// already (the first document of a listing is kept whatever its size),
// and returns out, the bytes it holds, and whether docs was cut short.
func (s *Server) listingOf(ctx context.Context, out []listedOut, used int, docs []engine.BoundDocument) ([]listedOut, int, bool) {
	for i, d := range docs {
		o := s.listedOfBound(ctx, d)
		data, err := json.Marshal(o)
		n := len(data) + 1 // and a comma
		if err == nil && len(out) > 0 && used+n > listBytes {
			return out, used, i < len(docs)
		}
		out, used = append(out, o), used+n
	}
	return out, used, false
}

// ---- registration ----

// toolFunc is a tool's logic: an error becomes an isError result through
// toolError. res may carry extra content (nil: the output's JSON).
type toolFunc[In, Out any] func(ctx context.Context, in In) (res *mcp.CallToolResult, out Out, err error)

// addTool registers a tool with schemas inferred from In and Out (metadata
// values typed as string, number or boolean) and adjusted by tweak.
func addTool[In, Out any](s *Server, t *mcp.Tool, tweak func(in, out *jsonschema.Schema), fn toolFunc[In, Out]) {
	in, err := jsonschema.For[In](&s.schemas)
	if err == nil {
		var out *jsonschema.Schema
		if out, err = jsonschema.For[Out](&s.schemas); err == nil {
			t.InputSchema, t.OutputSchema = in, out
		}
	}
	if err != nil {
		s.initErr = errors.Join(s.initErr, fmt.Errorf("tool %s: %w", t.Name, err)) // New returns it
		return
	}
	if tweak != nil {
		tweak(in, t.OutputSchema.(*jsonschema.Schema))
	}
	if s.inputs == nil {
		s.inputs = map[string]*jsonschema.Schema{}
	}
	s.inputs[t.Name] = in
	mcp.AddTool(s.srv, t, func(ctx context.Context, _ *mcp.CallToolRequest, args In) (*mcp.CallToolResult, Out, error) {
		res, o, err := fn(ctx, args)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) && docex.Code(err) != docex.Code(docex.ErrInterrupted) {
				// The call was cancelled, whatever the operation made of it
				// (a plugin run: plugin_failed): interrupted, as the CLI.
				err = fmt.Errorf("%w: %w", docex.ErrInterrupted, err)
			}
			return nil, o, s.toolError(err)
		}
		return res, o, nil
	})
}

// Tool annotations (MCP's hints to clients; docs/agents.md lists each
// tool's). Every tool is closed-world: it works on this tenant's data
// only, and plugins have no network. destructiveHint is given even where
// readOnlyHint makes it meaningless, so that no client takes the
// protocol's default (true) for a tool that changes nothing.

// readOnly annotates a tool that changes nothing (its call is audited,
// which is no change of the data).
func readOnly(title string) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, ReadOnlyHint: true, DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)}
}

// writes annotates a tool that changes data: destructive when it may
// overwrite or remove what exists (not only add), idempotent when calling
// it again with the same arguments changes nothing more.
func writes(title string, destructive, idempotent bool) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, DestructiveHint: ptr(destructive), IdempotentHint: idempotent, OpenWorldHint: ptr(false)}
}

// maxSafeInteger is the largest integer a JSON number holds exactly
// (2^53-1), the maximum of an integer argument without one of its own:
// a larger one fails the schema, naming the argument and the bound,
// instead of failing to unmarshal into the Go int.
const maxSafeInteger = 1<<53 - 1

// limits sets minimum/maximum on integer properties (hi 0: maxSafeInteger).
func limits(s *jsonschema.Schema, prop string, lo, hi float64) {
	p := s.Properties[prop]
	if hi <= 0 {
		hi = maxSafeInteger
	}
	p.Minimum, p.Maximum = &lo, &hi
}

func enum(s *jsonschema.Schema, prop string, vals ...any) { s.Properties[prop].Enum = vals }

func pageLimit(limit, def, hi int) (int, error) {
	if limit == 0 {
		return def, nil
	}
	if limit < 0 || limit > hi {
		return 0, docex.Errorf(docex.ErrInvalid, "limit %d: want 1 to %d", limit, hi)
	}
	return limit, nil
}

// nextOffset is the offset of the next page, or nil after the last one,
// of a listing of total items.
func nextOffset(offset, got, limit int, total int64) *int {
	if got < limit || int64(offset+got) >= total {
		return nil
	}
	n := offset + got
	return &n
}

// pageNext is nextOffset of a page that kept of the got documents read
// (listingOf): when it cut the page short, the next page starts at the
// first document left out.
func pageNext(offset, kept, got, limit int, total int64) *int {
	if kept < got {
		return ptr(offset + kept)
	}
	return nextOffset(offset, got, limit, total)
}

func parseOrder(s string) (docex.Order, error) {
	switch s {
	case "", "created":
		return docex.OrderCreated, nil
	case "-created":
		return docex.OrderCreatedDesc, nil
	case "name":
		return docex.OrderName, nil
	}
	return 0, docex.Errorf(docex.ErrInvalid, "order %q: want created, -created or name", s)
}

// resolveBasket finds a basket by id when ref has the form of an id, else
// by name (engine.Session.ResolveBasket: names never have that form; one
// lookup, so one audit entry).
func (s *Server) resolveBasket(ctx context.Context, ref string) (docex.Basket, error) {
	return s.resolveBasketWith(ref, func() (docex.Basket, error) { return s.s.ResolveBasket(ctx, ref) })
}

// resolveBasketFor is resolveBasket for a write on the basket
// (engine.Session.ResolveBasketFor: a basket not found is audited as op's
// refusal, as the CLI's is; op "pipeline.run": the pipeline named, the
// basket as given in the detail).
func (s *Server) resolveBasketFor(ctx context.Context, op, ref, pipeline string) (docex.Basket, error) {
	return s.resolveBasketWith(ref, func() (docex.Basket, error) { return s.s.ResolveBasketFor(ctx, op, ref, pipeline) })
}

// resolveBasketWith refuses an empty ref, else returns resolve's basket,
// its not-found error worded for an agent.
func (s *Server) resolveBasketWith(ref string, resolve func() (docex.Basket, error)) (docex.Basket, error) {
	if strings.TrimSpace(ref) == "" {
		return docex.Basket{}, docex.Errorf(docex.ErrInvalid, "basket is empty: give a basket name or id (see list_baskets)")
	}
	b, err := resolve()
	if errors.Is(err, docex.ErrNotFound) {
		return b, docex.Errorf(docex.ErrNotFound, "no basket named or with id %q", ref)
	}
	return b, err
}

// ---- tools ----

type listBasketsIn struct {
	Limit  int `json:"limit,omitempty" jsonschema:"maximum number of baskets (default 100)"`
	Offset int `json:"offset,omitempty" jsonschema:"number of baskets to skip (use next_offset)"`
}

type listBasketsOut struct {
	Baskets    []basketOut `json:"baskets"`
	NextOffset *int        `json:"next_offset,omitempty" jsonschema:"offset of the next page; absent after the last page"`
}

type createBasketIn struct {
	Name string `json:"name" jsonschema:"basket name, unique in the tenant (at most 128 bytes)"`
}

type addDocumentIn struct {
	Basket      string                 `json:"basket" jsonschema:"basket name or id"`
	Name        string                 `json:"name,omitempty" jsonschema:"document name such as notes.txt (required with text or base64; default with path: the file's name)"`
	Text        *string                `json:"text,omitempty" jsonschema:"the content as text"`
	Base64      *string                `json:"base64,omitempty" jsonschema:"the content as standard base64, for binary files"`
	Path        string                 `json:"path,omitempty" jsonschema:"a file to add, under the directory this server may read"`
	ContentType string                 `json:"content_type,omitempty" jsonschema:"MIME type (default: detected from the name and content)"`
	Metadata    map[string]docex.Value `json:"metadata,omitempty" jsonschema:"metadata to set: key to string, number or boolean"`
}

type addDocumentOut struct {
	Document  recordOut `json:"document"`
	Duplicate bool      `json:"duplicate" jsonschema:"true when the basket already held this content: document is that existing document and nothing was added"`
}

type findDocumentsIn struct {
	Basket   string                 `json:"basket" jsonschema:"basket name or id"`
	Metadata map[string]docex.Value `json:"metadata" jsonschema:"conditions key to value; a document matches when all hold (1 to 16; values compare by type: 42 is not \"42\")"`
	Limit    int                    `json:"limit,omitempty" jsonschema:"maximum number of documents (default 20)"`
	Offset   int                    `json:"offset,omitempty" jsonschema:"number of documents to skip (use next_offset)"`
	Order    string                 `json:"order,omitempty" jsonschema:"created (default), -created (newest first) or name"`
}

type findDocumentsOut struct {
	Documents  []listedOut `json:"documents"`
	Total      int64       `json:"total" jsonschema:"number of matching documents"`
	NextOffset *int        `json:"next_offset,omitempty" jsonschema:"offset of the next page; absent after the last page"`
}

type listDocumentsIn struct {
	Basket string `json:"basket" jsonschema:"basket name or id"`
	Limit  int    `json:"limit,omitempty" jsonschema:"maximum number of documents (default 20)"`
	Offset int    `json:"offset,omitempty" jsonschema:"number of documents to skip (use next_offset)"`
	Order  string `json:"order,omitempty" jsonschema:"created (default), -created (newest first) or name"`
}

type listDocumentsOut struct {
	Documents  []listedOut `json:"documents"`
	NextOffset *int        `json:"next_offset,omitempty" jsonschema:"offset of the next page; absent after the last page"`
}

type getDocumentIn struct {
	ID   string   `json:"id" jsonschema:"document id"`
	Keys []string `json:"keys,omitempty" jsonschema:"only the metadata values of these keys (such as those of metadata_omitted); default every key"`
}

type readDocumentIn struct {
	ID       string `json:"id" jsonschema:"document id"`
	Offset   int64  `json:"offset,omitempty" jsonschema:"byte offset to start at (default 0; use next_offset of the previous page)"`
	MaxBytes int    `json:"max_bytes,omitempty" jsonschema:"page size in bytes (default 16384)"`
	Encoding string `json:"encoding,omitempty" jsonschema:"text (default: UTF-8 text) or base64 (raw bytes, for binary content)"`
}

type readDocumentOut struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size" jsonschema:"content size in bytes"`
	Offset      int64  `json:"offset" jsonschema:"byte offset of this page"`
	Length      int    `json:"length" jsonschema:"bytes in this page"`
	Text        string `json:"text" jsonschema:"the page as text (encoding text; empty otherwise)"`
	Base64      string `json:"base64" jsonschema:"the page as base64 (encoding base64; empty otherwise)"`
	EOF         bool   `json:"eof" jsonschema:"true when this page ends the content"`
	NextOffset  *int64 `json:"next_offset,omitempty" jsonschema:"offset of the next page; absent at the end"`
	Verified    bool   `json:"verified" jsonschema:"true when this call checked the whole content against its checksum (a document of up to 4 MiB, and the last page); false for the other pages of a larger document"`
}

type setMetadataIn struct {
	ID       string                 `json:"id" jsonschema:"document id"`
	Metadata map[string]docex.Value `json:"metadata" jsonschema:"keys to set: key to string, number or boolean (other keys are kept)"`
}

type pluginOut struct {
	Name         string     `json:"name"`
	Version      string     `json:"version"`
	Description  string     `json:"description"`
	System       bool       `json:"system" jsonschema:"installed for every tenant by the operator"`
	Capabilities []string   `json:"capabilities"`
	Accepts      []string   `json:"accepts" jsonschema:"the content types the plugin accepts (globs such as text/*; empty: any)"`
	Parameters   []paramOut `json:"parameters" jsonschema:"what run_plugin's params may set"`
}

type paramOut struct {
	Name        string   `json:"name"`
	Type        string   `json:"type" jsonschema:"string, int, number or bool (run_plugin takes every value as a string)"`
	Required    bool     `json:"required"`
	Description string   `json:"description"`
	Min         string   `json:"min,omitempty" jsonschema:"smallest value of an int or number"`
	Max         string   `json:"max,omitempty" jsonschema:"largest value of an int or number"`
	Values      []string `json:"values,omitempty" jsonschema:"the values a string may take"`
	LessThan    string   `json:"less_than,omitempty" jsonschema:"the parameter this one must be less than when both are given"`
}

type listPluginsOut struct {
	Plugins []pluginOut `json:"plugins"`
}

type runPluginIn struct {
	Plugin     string            `json:"plugin" jsonschema:"plugin name (see list_plugins)"`
	DocumentID string            `json:"document_id" jsonschema:"id of the document to run it on"`
	Params     map[string]string `json:"params,omitempty" jsonschema:"plugin parameters"`
}

type logLine struct {
	Level string `json:"level"`
	Text  string `json:"text"`
}

type runPluginOut struct {
	Plugin   string      `json:"plugin"`
	Status   string      `json:"status"`
	Message  string      `json:"message"`
	Document listedOut   `json:"document" jsonschema:"the input document with the metadata the plugin set, bounded as in a listing (get_document with keys gives the values left out)"`
	Derived  []listedOut `json:"derived" jsonschema:"the first documents the plugin derived, in the input's basket, as listed records: at most 100 and 1 MiB of JSON (derived_total says how many there are; derived_next how to list them all)"`
	// DerivedTotal is how many distinct documents the run derived (the
	// engine's RunResult.Derived, each document once): more than
	// len(Derived) when the reply's bound cut it.
	DerivedTotal int `json:"derived_total" jsonschema:"how many distinct documents the run derived (created, or found in the basket already; a document the run emitted several times counts once); more than derived holds when it was cut"`
	// DerivedNext is what find_documents takes to page through them all.
	DerivedNext *derivedNext   `json:"derived_next,omitempty" jsonschema:"when derived holds fewer than derived_total: the arguments of a find_documents call that pages through the documents the plugin derived from this document (these and those of earlier runs); absent otherwise"`
	Logs        []logLine      `json:"logs"`
	Report      map[string]any `json:"report" jsonschema:"resources the run used"`
}

// derivedNext is a find_documents call's arguments: the documents whose
// derived_from is the input and derived_by the plugin (the engine sets
// both on every document a plugin derives).
type derivedNext struct {
	Basket   string            `json:"basket" jsonschema:"the input's basket id"`
	Metadata map[string]string `json:"metadata" jsonschema:"derived_from (the input's id) and derived_by (the plugin)"`
}

// maxDerivedListed bounds the derived records of a run_plugin reply (and
// listBytes their JSON): a chunking plugin may derive thousands.
const maxDerivedListed = maxDocLimit

// distinctDocs returns ds with each document once, at its first place:
// a run that emits the same content several times derives one document.
func distinctDocs(ds []docex.Document) []docex.Document {
	seen := make(map[string]bool, len(ds))
	out := make([]docex.Document, 0, len(ds))
	for _, d := range ds {
		if !seen[d.ID] {
			seen[d.ID] = true
			out = append(out, d)
		}
	}
	return out
}

// derivedOf returns the first of ds as listed records, at most
// maxDerivedListed and listBytes of JSON (the first always given), and
// never nil.
func derivedOf(ds []docex.Document) []listedOut {
	out := []listedOut{}
	used := 0
	for _, d := range ds {
		if len(out) == maxDerivedListed {
			break
		}
		o := listedOf(d)
		data, err := json.Marshal(o)
		n := len(data) + 1 // and a comma
		if err == nil && len(out) > 0 && used+n > listBytes {
			break
		}
		out, used = append(out, o), used+n
	}
	return out
}

func (s *Server) addTools() {
	addTool(s, &mcp.Tool{Name: "list_baskets", Description: "List the baskets (document collections) of this tenant, by name.",
		Annotations: readOnly("List baskets")},
		func(in, _ *jsonschema.Schema) {
			limits(in, "limit", 1, maxBasketLimit)
			limits(in, "offset", 0, 0)
		},
		func(ctx context.Context, in listBasketsIn) (*mcp.CallToolResult, listBasketsOut, error) {
			limit, err := pageLimit(in.Limit, defaultBasketLimit, maxBasketLimit)
			if err != nil {
				return nil, listBasketsOut{}, err
			}
			// One more than the page: whether there is a next page (a page
			// exactly full may be the last).
			bs, err := s.s.Baskets(ctx, docex.Page{Limit: limit + 1, Offset: in.Offset})
			if err != nil {
				return nil, listBasketsOut{}, err
			}
			more := len(bs) > limit
			bs = bs[:min(len(bs), limit)]
			out := listBasketsOut{Baskets: make([]basketOut, len(bs))}
			if more {
				out.NextOffset = ptr(in.Offset + limit)
			}
			for i, b := range bs {
				out.Baskets[i] = basketOf(b)
			}
			return nil, out, nil
		})

	addTool(s, &mcp.Tool{Name: "create_basket", Description: "Create a basket. Needs the writer role.",
		Annotations: writes("Create basket", false, true)}, nil,
		func(ctx context.Context, in createBasketIn) (*mcp.CallToolResult, basketOut, error) {
			b, err := s.s.CreateBasket(ctx, in.Name)
			if err != nil {
				return nil, basketOut{}, err
			}
			return nil, basketOf(b), nil
		})

	addTool(s, &mcp.Tool{Name: "add_document", Description: fmt.Sprintf("Add a document to a basket from exactly one of: text, base64 (at most %d bytes either way), or path (a file under the directory this server may read%s). Needs the writer role. Content already in the basket is not added twice.", s.cfg.MaxInlineBytes, s.pathNote()),
		Annotations: writes("Add document", false, true)},
		// No maxLength on text and base64: the SDK's refusal of one quotes
		// the whole value, and it counts characters where the limit is in
		// bytes. addDocument checks the bytes and says too_large.
		nil,
		func(ctx context.Context, in addDocumentIn) (*mcp.CallToolResult, addDocumentOut, error) {
			a, err := s.addDocument(ctx, in)
			if err != nil {
				return nil, addDocumentOut{}, err
			}
			return nil, addDocumentOut{Document: recordOf(a.Document, nil), Duplicate: a.Duplicate}, nil
		})

	addTool(s, &mcp.Tool{Name: "find_documents", Description: "Find the documents of a basket whose metadata equals every given key/value. A page holds at most 1 MiB: metadata values past 64 KiB a document are left out (metadata_omitted; get_document has them), and a page may stop before limit: go on with offset=next_offset while it is given.",
		Annotations: readOnly("Find documents")},
		func(in, _ *jsonschema.Schema) {
			limits(in, "limit", 1, maxDocLimit)
			limits(in, "offset", 0, 0)
			enum(in, "order", "created", "-created", "name")
			in.Properties["metadata"].MinProperties = ptr(1)
			in.Properties["metadata"].MaxProperties = ptr(16)
		},
		func(ctx context.Context, in findDocumentsIn) (*mcp.CallToolResult, findDocumentsOut, error) {
			limit, err := pageLimit(in.Limit, defaultDocLimit, maxDocLimit)
			if err != nil {
				return nil, findDocumentsOut{}, err
			}
			order, err := parseOrder(in.Order)
			if err != nil {
				return nil, findDocumentsOut{}, err
			}
			filters := make([]docex.MetaFilter, 0, len(in.Metadata))
			for _, k := range slices.Sorted(maps.Keys(in.Metadata)) { // a bad filter named the same every time
				filters = append(filters, docex.MetaFilter{Key: k, Value: in.Metadata[k]})
			}
			b, err := s.resolveBasket(ctx, in.Basket)
			if err != nil {
				return nil, findDocumentsOut{}, err
			}
			docs, total, err := s.s.FindDocumentsMetaBound(ctx, b.ID, filters, docex.Page{Limit: limit, Offset: in.Offset, Order: order}, listMetaBytes)
			if err != nil {
				return nil, findDocumentsOut{}, err
			}
			out, _, _ := s.listingOf(ctx, []listedOut{}, 0, docs)
			return nil, findDocumentsOut{Documents: out, Total: total, NextOffset: pageNext(in.Offset, len(out), len(docs), limit, total)}, nil
		})

	addTool(s, &mcp.Tool{Name: "list_documents", Description: "List the documents of a basket with their metadata. A page holds at most 1 MiB: metadata values past 64 KiB a document are left out (metadata_omitted; get_document has them), and a page may stop before limit: go on with offset=next_offset while it is given.",
		Annotations: readOnly("List documents")},
		func(in, _ *jsonschema.Schema) {
			limits(in, "limit", 1, maxDocLimit)
			limits(in, "offset", 0, 0)
			enum(in, "order", "created", "-created", "name")
		},
		func(ctx context.Context, in listDocumentsIn) (*mcp.CallToolResult, listDocumentsOut, error) {
			limit, err := pageLimit(in.Limit, defaultDocLimit, maxDocLimit)
			if err != nil {
				return nil, listDocumentsOut{}, err
			}
			order, err := parseOrder(in.Order)
			if err != nil {
				return nil, listDocumentsOut{}, err
			}
			b, err := s.resolveBasket(ctx, in.Basket)
			if err != nil {
				return nil, listDocumentsOut{}, err
			}
			docs, err := s.s.DocumentsMetaBound(ctx, b.ID, docex.Page{Limit: limit, Offset: in.Offset, Order: order}, listMetaBytes)
			if err != nil {
				return nil, listDocumentsOut{}, err
			}
			out, _, _ := s.listingOf(ctx, []listedOut{}, 0, docs)
			return nil, listDocumentsOut{Documents: out, NextOffset: pageNext(in.Offset, len(out), len(docs), limit, b.DocumentCount)}, nil
		})

	addTool(s, &mcp.Tool{Name: "get_document", Description: "Get a document's record: name, type, size, checksum and metadata (not its content: see read_document). The metadata is bounded to 1 MiB of JSON: values past it are left out and their keys listed in metadata_omitted; call again with keys set to some of them for their values.",
		Annotations: readOnly("Get document")},
		func(in, _ *jsonschema.Schema) {
			in.Properties["keys"].MaxItems = ptr(engine.MaxDocumentMetaKeys)
		},
		func(ctx context.Context, in getDocumentIn) (*mcp.CallToolResult, recordOut, error) {
			if in.Keys == nil {
				// Only the values that may fit are read from the store.
				d, err := s.s.DocumentMetaBound(ctx, in.ID, recordMetaBytes)
				if err != nil {
					return nil, recordOut{}, err
				}
				return nil, s.recordOfBound(ctx, d), nil
			}
			// Only the values of keys that may fit are read from the store.
			d, err := s.s.DocumentMetaKeys(ctx, in.ID, in.Keys, recordMetaBytes)
			if err != nil {
				return nil, recordOut{}, err
			}
			return nil, s.recordOfBound(ctx, d), nil
		})

	// A call without max_bytes gets DefaultReadBytes, or the most when
	// the server allows less.
	defPage := min(DefaultReadBytes, s.cfg.MaxReadBytes)
	addTool(s, &mcp.Tool{Name: "read_document", Description: fmt.Sprintf("Read a page of a document's content: at most max_bytes (default %d, at most %d) from offset. While eof is false, call again with offset=next_offset for the next page.", defPage, s.cfg.MaxReadBytes),
		Annotations: readOnly("Read document")},
		func(in, _ *jsonschema.Schema) {
			limits(in, "offset", 0, 0)
			limits(in, "max_bytes", MinReadBytes, float64(s.cfg.MaxReadBytes))
			in.Properties["max_bytes"].Description = fmt.Sprintf("page size in bytes (default %d)", defPage)
			enum(in, "encoding", "text", "base64")
		},
		s.readDocument)

	addTool(s, &mcp.Tool{Name: "set_metadata", Description: "Set metadata keys on a document (other keys are kept). Needs the writer role.",
		Annotations: writes("Set metadata", true, true)},
		func(in, _ *jsonschema.Schema) {
			in.Properties["metadata"].MinProperties = ptr(1)
			in.Properties["metadata"].MaxProperties = ptr(engine.MaxMetaKeys)
		},
		func(ctx context.Context, in setMetadataIn) (*mcp.CallToolResult, recordOut, error) {
			d, err := s.s.SetMetadata(ctx, in.ID, in.Metadata)
			if err != nil {
				return nil, recordOut{}, err
			}
			return nil, recordOf(d, nil), nil
		})

	addTool(s, &mcp.Tool{Name: "list_plugins", Description: "List the plugins (sandboxed document steps) this tenant can run with run_plugin.",
		Annotations: readOnly("List plugins")}, nil,
		func(ctx context.Context, _ struct{}) (*mcp.CallToolResult, listPluginsOut, error) {
			ps, err := s.s.Plugins(ctx)
			if err != nil {
				return nil, listPluginsOut{}, err
			}
			out := listPluginsOut{Plugins: make([]pluginOut, len(ps))}
			for i, p := range ps {
				params := make([]paramOut, len(p.Parameters))
				for j, pp := range p.Parameters {
					params[j] = paramOut{Name: pp.Name, Type: pp.Type, Required: pp.Required, Description: pp.Description,
						Min: pp.Min, Max: pp.Max, Values: pp.Values, LessThan: pp.LessThan}
				}
				accepts := p.AcceptedContentTypes
				if accepts == nil {
					accepts = []string{}
				}
				out.Plugins[i] = pluginOut{Name: p.Name, Version: p.Version, Description: p.Description, System: p.System,
					Capabilities: p.Capabilities, Accepts: accepts, Parameters: params}
			}
			return nil, out, nil
		})

	addTool(s, &mcp.Tool{Name: "run_plugin", Description: "Run a plugin on a document, in the sandbox. On success the metadata it sets and the documents it derives are saved. Needs the writer role. Records are bounded as in a listing: metadata values past 64 KiB a document are left out (metadata_omitted; get_document has them), and derived holds at most 100 records and 1 MiB: derived_total says how many the run derived, and when there are more, derived_next gives the find_documents arguments that page through them.",
		Annotations: writes("Run plugin", true, false)}, nil,
		func(ctx context.Context, in runPluginIn) (*mcp.CallToolResult, runPluginOut, error) {
			r, err := s.s.RunPlugin(ctx, in.Plugin, in.DocumentID, in.Params)
			if err != nil {
				return nil, runPluginOut{}, err
			}
			derived := distinctDocs(r.Derived)
			out := runPluginOut{Plugin: r.Plugin, Status: r.Status, Message: r.Message, Document: listedOf(r.Document),
				Derived: derivedOf(derived), DerivedTotal: len(derived), Logs: make([]logLine, len(r.Logs)), Report: map[string]any{}}
			if len(out.Derived) < out.DerivedTotal {
				out.DerivedNext = &derivedNext{Basket: r.Document.BasketID,
					Metadata: map[string]string{"derived_from": r.Document.ID, "derived_by": r.Plugin}}
			}
			for i, l := range r.Logs {
				out.Logs[i] = logLine{Level: l.Level, Text: l.Text}
			}
			if data, err := json.Marshal(r.Report); err == nil {
				_ = json.Unmarshal(data, &out.Report)
			}
			return nil, out, nil
		})
}

// errPathRefused marks a path add_document may not read (a denial).
var errPathRefused = errors.New("path refused")

func pathRefused(format string, args ...any) error {
	return fmt.Errorf("%w: %w", docex.Errorf(docex.ErrDenied, format, args...), errPathRefused)
}

// noFileError marks a path add_document found no file at (not found, but
// not an id: its hint is not the one of ids).
type noFileError struct{ error }

func (e noFileError) Unwrap() error { return e.error }

func ptr[T any](v T) *T { return &v }

func (s *Server) pathNote() string {
	if s.root == nil {
		return "; this server was started without an allowed directory, so path is refused"
	}
	return ": " + s.rootDir[0]
}

// addDocument adds from exactly one of text, base64 and path. An add
// refused before the content reaches the engine (an unknown basket, no
// source or two, content over the inline limit, a path it may not or
// cannot read, no name) is audited as the add it was (Session.RefuseAdd,
// its target the basket as given); the engine audits the failures it
// meets itself (its target the basket's id).
func (s *Server) addDocument(ctx context.Context, in addDocumentIn) (engine.Added, error) {
	nd, closeFn, err := s.newDocument(in)
	if err != nil {
		return engine.Added{}, s.s.RefuseAdd(ctx, in.Basket, in.Path, err)
	}
	defer closeFn()
	// The lookup is the add's own (engine.Session.ResolveBasketForAdd): no
	// entry of its own, a role that may not write denied as the add.
	b, err := s.resolveBasketWith(in.Basket, func() (docex.Basket, error) { return s.s.ResolveBasketForAdd(ctx, in.Basket) })
	if err != nil {
		if errors.Is(err, docex.ErrNotFound) || errors.Is(err, docex.ErrInvalidID) || strings.TrimSpace(in.Basket) == "" {
			// Not found, or not named at all: a refused add. Any other
			// error is the session's own, audited already.
			return engine.Added{}, s.s.RefuseAdd(ctx, in.Basket, in.Path, err)
		}
		return engine.Added{}, err
	}
	return s.s.AddDocument(ctx, b.ID, nd)
}

// newDocument returns the document add_document's input describes, with
// the function that closes its file (a no-op without one).
func (s *Server) newDocument(in addDocumentIn) (engine.NewDocument, func(), error) {
	nothing := func() {}
	given := 0
	for _, set := range []bool{in.Text != nil, in.Base64 != nil, in.Path != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		return engine.NewDocument{}, nothing, docex.Errorf(docex.ErrInvalid, "give exactly one of text, base64 and path (got %d)", given)
	}
	nd := engine.NewDocument{Name: in.Name, ContentType: in.ContentType, Metadata: in.Metadata}
	closeFn := nothing
	switch {
	case in.Text != nil:
		if int64(len(*in.Text)) > s.cfg.MaxInlineBytes {
			return engine.NewDocument{}, nothing, docex.Errorf(docex.ErrTooLarge, "text is %d bytes, more than the limit of %d", len(*in.Text), s.cfg.MaxInlineBytes)
		}
		nd.Content = strings.NewReader(*in.Text)
	case in.Base64 != nil:
		data, err := s.decodeBase64(*in.Base64)
		if err != nil {
			return engine.NewDocument{}, nothing, err
		}
		nd.Content = strings.NewReader(string(data))
	default:
		// A path the agent may not read is audited like any denial
		// (errPathRefused, docex.ErrDenied).
		f, err := s.openAllowed(in.Path)
		if err != nil {
			return engine.NewDocument{}, nothing, err
		}
		nd.Content, closeFn = f, func() { f.Close() }
		if nd.Name == "" {
			nd.Name = filepath.Base(in.Path)
		}
	}
	if nd.Name == "" {
		closeFn()
		return engine.NewDocument{}, nothing, docex.Errorf(docex.ErrInvalid, "name is required with text or base64 (e.g. notes.txt)")
	}
	return nd, closeFn, nil
}

func (s *Server) decodeBase64(text string) ([]byte, error) {
	if int64(base64.StdEncoding.DecodedLen(len(text))) > s.cfg.MaxInlineBytes+2 {
		return nil, docex.Errorf(docex.ErrTooLarge, "base64 content decodes to about %d bytes, more than the limit of %d", base64.StdEncoding.DecodedLen(len(text)), s.cfg.MaxInlineBytes)
	}
	text = strings.TrimRight(text, "=")
	data, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil {
		return nil, docex.Errorf(docex.ErrInvalid, "base64 is not valid standard base64: %v", err)
	}
	if int64(len(data)) > s.cfg.MaxInlineBytes {
		return nil, docex.Errorf(docex.ErrTooLarge, "base64 content is %d bytes, more than the limit of %d", len(data), s.cfg.MaxInlineBytes)
	}
	return data, nil
}

// openAllowed opens a regular file inside AllowPath. The path may be
// relative to it or absolute; os.Root refuses any resolution (.., a
// symlink) that would leave the directory, without a window between check
// and open. A file of docex's own (Config.Protected) is refused too. A
// refused path is an error matching errPathRefused (docex.ErrDenied).
func (s *Server) openAllowed(path string) (*os.File, error) {
	if s.root == nil {
		return nil, pathRefused("adding from a path is disabled: the server was started without --allow-path; send the content as text or base64")
	}
	rel := path
	if filepath.IsAbs(path) {
		rel = ""
		for _, dir := range s.rootDir {
			if r, err := filepath.Rel(dir, filepath.Clean(path)); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				rel = r
				break
			}
		}
		if rel == "" {
			return nil, pathRefused("path %q is outside the allowed directory %s", path, s.rootDir[0])
		}
	}
	if rel = filepath.Clean(rel); rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, pathRefused("path %q is outside the allowed directory %s", path, s.rootDir[0])
	}
	// Resolve symlinks first, so that links that stay inside the directory
	// work (os.Root refuses absolute ones), then check where they lead.
	real := s.rootDir[1]
	resolved, err := filepath.EvalSymlinks(filepath.Join(real, rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil, noFileError{docex.Errorf(docex.ErrNotFound, "no file %q in the allowed directory %s", path, s.rootDir[0])}
	}
	if err == nil {
		rel, err = filepath.Rel(real, resolved)
		if err == nil && (rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))) {
			return nil, pathRefused("path %q leads outside the allowed directory %s", path, s.rootDir[0])
		}
		// docex's own files, which the directory may hold (--allow-path ~).
		if err == nil {
			if perr := s.checkPrivate(path, resolved, nil); perr != nil {
				return nil, perr
			}
		}
	}
	// os.Root opens beneath the directory only, so a link swapped in after
	// the check cannot lead out either. O_NONBLOCK: a FIFO must not hang
	// the server.
	var f *os.File
	if err == nil {
		f, err = s.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	if fdlimit.IsExhaustion(err) { // says nothing of the path
		return nil, fdlimit.Wrap(fmt.Errorf("path %q: %w", path, err))
	}
	if err != nil {
		return nil, pathRefused("path %q cannot be opened inside the allowed directory %s (it may not lead outside it, by .. or by a symlink): %v", path, s.rootDir[0], err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, docex.Errorf(docex.ErrInvalid, "path %q is not a regular file", path)
	}
	// Again on the file opened: a link swapped in since the check, a
	// protected directory mounted under another name, a hard link to the
	// configuration file.
	if err := s.checkPrivate(path, resolved, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readDocument returns one page of a document's content.
func (s *Server) readDocument(ctx context.Context, in readDocumentIn) (*mcp.CallToolResult, readDocumentOut, error) {
	var out readDocumentOut
	max := in.MaxBytes
	if max == 0 {
		max = min(DefaultReadBytes, s.cfg.MaxReadBytes)
	}
	if max < MinReadBytes || max > s.cfg.MaxReadBytes {
		return nil, out, docex.Errorf(docex.ErrTooLarge, "max_bytes %d: want %d to %d", in.MaxBytes, MinReadBytes, s.cfg.MaxReadBytes)
	}
	if in.Offset < 0 {
		return nil, out, docex.Errorf(docex.ErrInvalid, "offset %d is negative", in.Offset)
	}
	enc := in.Encoding
	if enc == "" {
		enc = "text"
	}
	if enc != "text" && enc != "base64" {
		return nil, out, docex.Errorf(docex.ErrInvalid, "encoding %q: want text or base64", in.Encoding)
	}
	rc, d, err := s.s.OpenContent(ctx, in.ID)
	if err != nil {
		return nil, out, err
	}
	defer rc.Close()
	out = readDocumentOut{ID: d.ID, Name: d.Name, ContentType: d.ContentType, Size: d.Size, Offset: in.Offset}
	if in.Offset > d.Size {
		return nil, readDocumentOut{}, docex.Errorf(docex.ErrInvalid, "offset %d is past the end of document %s (%d bytes)", in.Offset, d.ID, d.Size)
	}
	buf := make([]byte, min(int64(max), d.Size-in.Offset))
	// The content is checked against its checksum only by reading all of
	// it: for a document of up to VerifyReadBytes, and for the last page
	// (which never returns damaged content as the end of a document).
	// Other pages of a larger document are not checked (verified false);
	// they start at their offset when the store reads at an offset
	// (filesystem; S3, a ranged GET), else they read from byte 0 up to it.
	out.Verified = d.Size <= VerifyReadBytes || in.Offset+int64(len(buf)) == d.Size
	ra, ranged := rc.(interface{ UnverifiedReaderAt() (io.ReaderAt, bool) })
	var at io.ReaderAt
	if ranged {
		at, ranged = ra.UnverifiedReaderAt()
	}
	if !out.Verified && in.Offset > 0 && ranged {
		if _, err := io.ReadFull(io.NewSectionReader(at, in.Offset, int64(len(buf))), buf); err != nil {
			return nil, readDocumentOut{}, fmt.Errorf("document %s: read %d bytes at %d: %w", d.ID, len(buf), in.Offset, err)
		}
	} else {
		// The reader's errors name the document.
		if err := skip(rc, in.Offset); err != nil {
			return nil, readDocumentOut{}, err
		}
		if _, err := io.ReadFull(rc, buf); err != nil {
			return nil, readDocumentOut{}, err
		}
		if out.Verified {
			if _, err := io.Copy(io.Discard, rc); err != nil {
				return nil, readDocumentOut{}, err
			}
		}
	}
	if enc == "text" {
		// A page starts and ends on character boundaries: skip a partial
		// character at the start, leave one cut at the end for the next page.
		lead := 0
		for lead < len(buf) && lead < utf8.UTFMax-1 && !utf8.RuneStart(buf[lead]) {
			lead++
		}
		buf = buf[lead:]
		out.Offset += int64(lead)
		if end := in.Offset + int64(lead) + int64(len(buf)); end < d.Size {
			buf = buf[:completeRunes(buf)]
		}
		if !utf8.Valid(buf) {
			return nil, readDocumentOut{}, docex.Errorf(docex.ErrInvalid, "document %s (%s) is not UTF-8 text near byte %d: read it with encoding base64, or run a plugin that extracts its text", d.ID, d.ContentType, out.Offset)
		}
		out.Text = string(buf)
	} else {
		out.Base64 = base64.StdEncoding.EncodeToString(buf)
	}
	out.Length = len(buf)
	end := out.Offset + int64(len(buf))
	out.EOF = end >= d.Size
	res := &mcp.CallToolResult{}
	page := out.Text
	if enc == "base64" {
		page = out.Base64
	}
	res.Content = []mcp.Content{&mcp.TextContent{Text: page}}
	if !out.EOF {
		out.NextOffset = &end
		res.Content = append(res.Content, &mcp.TextContent{Text: fmt.Sprintf("[bytes %d-%d of %d; more follows: call read_document with id=%s offset=%d]", out.Offset, end, d.Size, d.ID, end)})
	} else {
		res.Content = append(res.Content, &mcp.TextContent{Text: fmt.Sprintf("[bytes %d-%d of %d; end of document]", out.Offset, end, d.Size)})
	}
	return res, out, nil
}

// completeRunes returns the length of b without a trailing incomplete
// UTF-8 sequence.
func completeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}

// skip advances r by n bytes, seeking when it can.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if sk, ok := r.(io.Seeker); ok {
		_, err := sk.Seek(n, io.SeekCurrent)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}
