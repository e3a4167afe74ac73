package driver

import (
	"context"
	"slices"
	"strings"

	"github.com/docex-dev/docex"
)

// MetaBoundReader is implemented by tenant stores that list documents
// with each document's metadata bounded in the store: a document may
// hold 16 MiB + 64 KiB of metadata, and a listing that gives only a
// part of it (the MCP listings) need not read the rest. The pages are
// those of Documents and FindDocuments (the same documents in the same
// order, the same errors, one snapshot); each document's metadata holds
// the values BoundMeta keeps within metaBytes, and MetadataOmitted names
// the keys of the others, whose values are not read.
type MetaBoundReader interface {
	DocumentsMetaBound(ctx context.Context, basketID string, page docex.Page, metaBytes int) ([]BoundDocument, error)
	FindDocumentsMetaBound(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page, metaBytes int) ([]BoundDocument, int64, error)
}

// DocumentMetaBoundReader is implemented by tenant stores that read one
// document with its metadata bounded in the store, as MetaBoundReader's
// listings bound each document's: the document of Document (the same
// errors: docex.ErrNotFound, "document \"ID\" not found"), its metadata
// holding the values BoundMeta keeps within metaBytes, MetadataOmitted
// naming the keys of the others, whose values are not read (the MCP
// get_document: a document may hold 16 MiB + 64 KiB of metadata, and its
// record gives 1 MiB of it).
type DocumentMetaBoundReader interface {
	DocumentMetaBound(ctx context.Context, id string, metaBytes int) (BoundDocument, error)
}

// DocumentMetaKeysReader is implemented by tenant stores that read one
// document with only the values of some keys of its metadata, bounded as
// DocumentMetaBoundReader bounds them: the document of Document (the
// same errors), its metadata holding the values of keys (those the
// document has; a key given twice counts once, an empty keys gives none)
// that BoundMeta keeps within metaBytes, MetadataOmitted naming the keys
// of the others; the values of other keys are not read, nor their
// lengths (the MCP get_document with keys).
type DocumentMetaKeysReader interface {
	DocumentMetaKeys(ctx context.Context, id string, keys []string, metaBytes int) (BoundDocument, error)
}

// BoundDocument is a document with its metadata bounded
// (MetaBoundReader): Metadata holds the values kept, MetadataOmitted the
// keys of the values left out, in key order (nil when none was).
type BoundDocument struct {
	docex.Document
	MetadataOmitted []string
}

// MetaSize is a stored metadata value's key, type and length in bytes
// (of its canonical text, docex.Value.Canonical), read without the value.
type MetaSize struct {
	Key   string
	Type  docex.ValueType
	Bytes int
}

// MetaEntryBytes is at most the length of `"key":value,` in JSON for a
// value of type typ whose canonical text is n bytes long: a string's JSON
// is its bytes quoted, escaping only lengthens it; a number's JSON may be
// shorter than its canonical text (1e-07 is 1e-7), so it counts 1.
func MetaEntryBytes(key string, typ docex.ValueType, n int) int {
	v := n
	switch typ {
	case docex.TypeString:
		v = n + 2
	case docex.TypeNumber:
		v = 1
	}
	return len(key) + 2 + 1 + v + 1
}

// BoundMeta returns which of a document's values a listing bounded to
// metaBytes of metadata JSON reads: in key order (bytewise), each value
// whose MetaEntryBytes would bring the total (from 2, for `{}`) past
// metaBytes is left out and the smaller ones after it are still kept.
// Counting each entry at its least, it keeps at least every value that
// the same rule over the exact JSON lengths keeps, as long as that rule
// keeps every value BoundMeta keeps (the values have no escapes): a
// caller that applies the exact rule to what was read gets its result.
// It returns the keys kept and the keys left out (nil when none was),
// both in key order; sizes is sorted in place.
func BoundMeta(sizes []MetaSize, metaBytes int) (keep, omitted []string) {
	slices.SortFunc(sizes, func(a, b MetaSize) int { return strings.Compare(a.Key, b.Key) })
	used := 2
	keep = make([]string, 0, len(sizes))
	for _, m := range sizes {
		n := MetaEntryBytes(m.Key, m.Type, m.Bytes)
		if used+n > metaBytes {
			omitted = append(omitted, m.Key)
			continue
		}
		keep, used = append(keep, m.Key), used+n
	}
	return keep, omitted
}

// BoundDocuments applies BoundMeta to documents whose metadata was read
// in full (a store that is not a MetaBoundReader): the values left out
// are dropped.
func BoundDocuments(docs []docex.Document, metaBytes int) []BoundDocument {
	out := make([]BoundDocument, len(docs))
	for i, d := range docs {
		sizes := make([]MetaSize, 0, len(d.Metadata))
		for k, v := range d.Metadata {
			sizes = append(sizes, MetaSize{Key: k, Type: v.Type(), Bytes: len(v.Canonical())})
		}
		_, omitted := BoundMeta(sizes, metaBytes)
		if omitted != nil {
			m := make(map[string]docex.Value, len(d.Metadata)-len(omitted))
			for k, v := range d.Metadata {
				m[k] = v
			}
			for _, k := range omitted {
				delete(m, k)
			}
			d.Metadata = m
		}
		out[i] = BoundDocument{Document: d, MetadataOmitted: omitted}
	}
	return out
}
