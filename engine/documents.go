package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/tenancy"
)

// Limits on user-supplied labels (bytes).
const (
	MaxBasketNameLen   = 128
	MaxDocumentNameLen = 1024
	MaxMetaKeyLen      = 256
	MaxMetaValueLen    = 64 << 10
	MaxMetaKeys        = 256 // per call
)

// CreateBasket creates a basket with a name unique in the tenant. It needs
// the write action; it returns docex.ErrExists when the name is taken and
// docex.ErrInvalid for a bad name.
func (s *Session) CreateBasket(ctx context.Context, name string) (docex.Basket, error) {
	if err := validateText("basket name", name, MaxBasketNameLen); err != nil {
		return docex.Basket{}, err
	}
	st, err := s.open(ctx, tenancy.ActionWrite, "basket.create", name)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	b := docex.Basket{ID: newID(), Name: name, CreatedAt: s.e.now()}
	err = s.write(ctx, st, "basket.create", name, func(tx driver.Tx) error { return tx.InsertBasket(ctx, b) })
	return b, err
}

// Basket returns a basket by id (with its stats), or docex.ErrNotFound.
func (s *Session) Basket(ctx context.Context, id string) (docex.Basket, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "basket.get", id)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	return st.Basket(ctx, id)
}

// BasketByName returns a basket by name (with its stats), or docex.ErrNotFound.
func (s *Session) BasketByName(ctx context.Context, name string) (docex.Basket, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "basket.get", name)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	return st.BasketByName(ctx, name)
}

// Baskets lists the tenant's baskets ordered by name.
func (s *Session) Baskets(ctx context.Context, page docex.Page) ([]docex.Basket, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "basket.list", "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Baskets(ctx, page)
}

// DeleteBasket deletes a basket (admin). It returns docex.ErrBasketNotEmpty
// for a basket with documents unless force is set, in which case the
// documents and their content go too.
func (s *Session) DeleteBasket(ctx context.Context, id string, force bool) error {
	st, err := s.open(ctx, tenancy.ActionDeleteBasket, "basket.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	var sums []string
	err = s.write(ctx, st, "basket.delete", id, func(tx driver.Tx) error {
		b, err := tx.Basket(ctx, id)
		if err != nil {
			return err
		}
		if b.DocumentCount > 0 && !force {
			return docex.Errorf(docex.ErrBasketNotEmpty, "basket %q holds %d documents (use force)", b.Name, b.DocumentCount)
		}
		sums = sums[:0]
		for off := 0; int64(off) < b.DocumentCount; off += docex.MaxPageLimit {
			docs, err := tx.Documents(ctx, id, docex.Page{Limit: docex.MaxPageLimit, Offset: off})
			if err != nil {
				return err
			}
			for _, d := range docs {
				sums = append(sums, d.Checksum)
			}
		}
		if err := tx.DeleteBasket(ctx, id); err != nil {
			return err
		}
		if s.e.cfg.ContentStorage == ContentDatabase {
			return dropUnreferenced(ctx, tx, sums)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.e.cfg.ContentStorage == ContentFilesystem {
		s.releaseContent(ctx, st, sums...)
	}
	return nil
}

func dropUnreferenced(ctx context.Context, tx driver.Tx, sums []string) error {
	for _, sum := range sums {
		if err := tx.LockContent(ctx, sum); err != nil {
			return err
		}
		n, err := tx.ContentRefs(ctx, sum)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := tx.DeleteContent(ctx, sum); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseContent removes filesystem content no document references any
// more. The reference check and the removal happen under the content lock,
// so a concurrent add of the same content cannot lose it. Failures leave an
// orphan for Sweep.
func (s *Session) releaseContent(ctx context.Context, st driver.TenantStore, sums ...string) {
	bs, err := s.e.blobStore(st.Tenant())
	if err != nil {
		return
	}
	for _, sum := range sums {
		_ = st.Write(ctx, func(tx driver.Tx) error {
			if err := tx.LockContent(ctx, sum); err != nil {
				return err
			}
			n, err := tx.ContentRefs(ctx, sum)
			if err != nil || n > 0 {
				return err
			}
			return bs.Remove(sum)
		})
	}
}

// NewDocument is a document to add.
type NewDocument struct {
	// Name is the document's original name (required, at most
	// MaxDocumentNameLen bytes). It is a label only: storage never
	// derives a path from it.
	Name string
	// ContentType is the MIME type; detected from the name and the
	// content when empty.
	ContentType string
	// Content is read to the end (at most Config.MaxDocumentBytes).
	Content io.Reader
	// Metadata is set on a newly added document.
	Metadata map[string]docex.Value
}

// Added is the outcome of adding one document.
type Added struct {
	Document docex.Document `json:"document"`
	// Duplicate is true when the basket held a document with the same
	// content already; Document is that existing document and nothing was
	// added (the attempt is audited as such).
	Duplicate bool `json:"duplicate"`
}

// AddDocument adds a document to a basket (write action). Content with the
// checksum of a document already in the basket is not stored again: the
// existing document is returned with Duplicate set. It returns
// docex.ErrNotFound for an unknown basket, docex.ErrTooLarge for content
// over the limit, docex.ErrInvalid for a bad name or metadata; on any error
// nothing is added.
func (s *Session) AddDocument(ctx context.Context, basketID string, nd NewDocument) (Added, error) {
	out, err := s.AddDocuments(ctx, basketID, []NewDocument{nd})
	if err != nil {
		return Added{}, err
	}
	return out[0], nil
}

// AddFile adds the file at path under its base name. Errors as AddDocument.
func (s *Session) AddFile(ctx context.Context, basketID, path string, meta map[string]docex.Value) (Added, error) {
	f, err := os.Open(path)
	if err != nil {
		return Added{}, docex.Errorf(docex.ErrInvalid, "open %s: %v", path, err)
	}
	defer f.Close()
	return s.AddDocument(ctx, basketID, NewDocument{Name: filepath.Base(path), Content: f, Metadata: meta})
}

type staged struct {
	nd   NewDocument
	sum  string
	size int64
	ct   string
	blob *blobstore.Staged // filesystem storage
	data []byte            // database storage
}

// AddDocuments adds documents to a basket in one transaction: all are
// added, or none. Errors as AddDocument.
func (s *Session) AddDocuments(ctx context.Context, basketID string, docs []NewDocument) ([]Added, error) {
	for i := range docs {
		if err := validateText("document name", docs[i].Name, MaxDocumentNameLen); err != nil {
			return nil, err
		}
		if docs[i].Content == nil {
			return nil, docex.Errorf(docex.ErrInvalid, "document %q has no content", docs[i].Name)
		}
		if err := validateMeta(docs[i].Metadata); err != nil {
			return nil, err
		}
	}
	st, err := s.open(ctx, tenancy.ActionWrite, "document.add", basketID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return s.addDocumentsTo(ctx, st, basketID, docs)
}

// addDocumentsTo adds validated documents through an open store.
func (s *Session) addDocumentsTo(ctx context.Context, st driver.TenantStore, basketID string, docs []NewDocument) ([]Added, error) {
	var bs *blobstore.Store
	var err error
	if s.e.cfg.ContentStorage == ContentFilesystem {
		if bs, err = s.e.blobStore(st.Tenant()); err != nil {
			return nil, err
		}
	}
	items := make([]staged, len(docs))
	defer func() {
		for _, it := range items {
			if it.blob != nil {
				it.blob.Discard()
			}
		}
	}()
	for i, nd := range docs {
		it := &items[i]
		it.nd = nd
		var head []byte
		if bs != nil {
			b, err := bs.StageDeferred(ctx, nd.Content, s.e.cfg.MaxDocumentBytes)
			if err != nil {
				return nil, err
			}
			it.blob, it.sum, it.size, head = b, b.Checksum, b.Size, b.Head
		} else {
			data, err := io.ReadAll(io.LimitReader(nd.Content, s.e.cfg.MaxDocumentBytes+1))
			if err != nil {
				return nil, fmt.Errorf("read content: %w", err)
			}
			if int64(len(data)) > s.e.cfg.MaxDocumentBytes {
				return nil, docex.Errorf(docex.ErrTooLarge, "document %q is larger than the limit of %d bytes", nd.Name, s.e.cfg.MaxDocumentBytes)
			}
			h := sha256.Sum256(data)
			it.sum, it.size, it.data, head = hex.EncodeToString(h[:]), int64(len(data)), data, data[:min(512, len(data))]
		}
		it.ct = detectContentType(nd.ContentType, nd.Name, head)
	}

	if bs != nil {
		// One round of concurrent fsyncs for the whole batch.
		staged := make([]*blobstore.Staged, len(items))
		for i := range items {
			staged[i] = items[i].blob
		}
		if err := blobstore.SyncAll(staged); err != nil {
			return nil, err
		}
	}
	now := s.e.now()
	out := make([]Added, len(items))
	err = s.writeAudit(ctx, st, "document.add", basketID, false, func(tx driver.Tx) error {
		if _, err := tx.Basket(ctx, basketID); err != nil {
			return err
		}
		// Names linked in this transaction become durable before it
		// commits, each directory once.
		var dirs []string
		for i := range items {
			it := &items[i]
			if err := tx.LockContent(ctx, it.sum); err != nil {
				return err
			}
			existing, err := tx.DocumentByChecksum(ctx, basketID, it.sum)
			if err == nil {
				out[i] = Added{Document: existing, Duplicate: true}
				if err := tx.AppendAudit(ctx, s.entryDetail("document.add", existing.ID, "duplicate content; existing document returned")); err != nil {
					return err
				}
				continue
			}
			if !errors.Is(err, docex.ErrNotFound) {
				return err
			}
			if it.blob != nil {
				dir, err := it.blob.Link()
				if err != nil {
					return err
				}
				dirs = append(dirs, dir)
			} else if err := tx.PutContent(ctx, it.sum, it.data); err != nil {
				return err
			}
			d := docex.Document{
				ID: newID(), BasketID: basketID, Name: it.nd.Name, ContentType: it.ct,
				Size: it.size, Checksum: it.sum, Status: docex.DocumentActive,
				CreatedAt: now, UpdatedAt: now, Metadata: cloneMeta(it.nd.Metadata),
			}
			if err := tx.InsertDocument(ctx, d); err != nil {
				return err
			}
			out[i] = Added{Document: d}
			if err := tx.AppendAudit(ctx, s.entryDetail("document.add", d.ID, "")); err != nil {
				return err
			}
		}
		if bs != nil {
			return bs.SyncDirs(dirs...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Session) entryDetail(op, target, detail string) docex.AuditEntry {
	e := s.entry(op, target, docex.OutcomeOK, nil)
	e.Detail = detail
	return e
}

func cloneMeta(m map[string]docex.Value) map[string]docex.Value {
	out := make(map[string]docex.Value, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func validateMeta(m map[string]docex.Value) error {
	if len(m) > MaxMetaKeys {
		return docex.Errorf(docex.ErrInvalid, "%d metadata keys, more than %d", len(m), MaxMetaKeys)
	}
	for k, v := range m {
		if err := validateMetaKey(k); err != nil {
			return err
		}
		if !v.Valid() {
			return docex.Errorf(docex.ErrInvalid, "metadata %q: value must be a string, a finite number or a bool", k)
		}
		if v.Type() == docex.TypeString && len(v.Str()) > MaxMetaValueLen {
			return docex.Errorf(docex.ErrInvalid, "metadata %q: value is %d bytes, longer than %d", k, len(v.Str()), MaxMetaValueLen)
		}
	}
	return nil
}

func validateMetaKey(k string) error { return validateText("metadata key", k, MaxMetaKeyLen) }

// detectContentType returns given when set, else the type for the name's
// extension, else a sniffed type.
func detectContentType(given, name string, head []byte) string {
	if given != "" {
		return given
	}
	if ext := strings.ToLower(filepath.Ext(name)); ext != "" {
		if t := builtinTypes[ext]; t != "" {
			return t
		}
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
	}
	return http.DetectContentType(head)
}

// builtinTypes makes detection of common document types independent of the
// machine's MIME database.
var builtinTypes = map[string]string{
	".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
	".csv": "text/csv; charset=utf-8", ".json": "application/json", ".html": "text/html; charset=utf-8",
	".htm": "text/html; charset=utf-8", ".xml": "application/xml", ".pdf": "application/pdf",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".png":  "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
	".yaml": "application/yaml", ".yml": "application/yaml", ".zip": "application/zip",
}

// Document returns a document with its metadata, or docex.ErrNotFound
// (also for an id of another tenant).
func (s *Session) Document(ctx context.Context, id string) (docex.Document, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "document.get", id)
	if err != nil {
		return docex.Document{}, err
	}
	defer st.Close()
	return st.Document(ctx, id)
}

// DocumentIn returns a document only if it belongs to the basket, and
// docex.ErrNotFound otherwise.
func (s *Session) DocumentIn(ctx context.Context, basketID, id string) (docex.Document, error) {
	d, err := s.Document(ctx, id)
	if err != nil {
		return d, err
	}
	if d.BasketID != basketID {
		return docex.Document{}, docex.Errorf(docex.ErrNotFound, "document %s is not in basket %s", id, basketID)
	}
	return d, nil
}

// Documents lists a basket's documents with their metadata. It returns
// docex.ErrNotFound for an unknown basket.
func (s *Session) Documents(ctx context.Context, basketID string, page docex.Page) ([]docex.Document, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.list", basketID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Basket(ctx, basketID); err != nil {
		return nil, err
	}
	return st.Documents(ctx, basketID, page)
}

// FindDocuments returns the documents of a basket whose metadata matches
// every filter, and the total number of matches. It returns docex.ErrInvalid
// without filters and docex.ErrNotFound for an unknown basket.
func (s *Session) FindDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, 0, err
	}
	if len(filters) == 0 || len(filters) > 16 {
		return nil, 0, docex.Errorf(docex.ErrInvalid, "find needs 1 to 16 metadata filters, got %d", len(filters))
	}
	for _, f := range filters {
		if err := validateMeta(map[string]docex.Value{f.Key: f.Value}); err != nil {
			return nil, 0, err
		}
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.find", basketID)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	if _, err := st.Basket(ctx, basketID); err != nil {
		return nil, 0, err
	}
	return st.FindDocuments(ctx, basketID, filters, page)
}

// OpenContent streams a document's content. The caller closes the reader.
// It returns docex.ErrNotFound for an unknown document.
func (s *Session) OpenContent(ctx context.Context, id string) (io.ReadCloser, docex.Document, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "document.read", id)
	if err != nil {
		return nil, docex.Document{}, err
	}
	defer st.Close()
	d, err := st.Document(ctx, id)
	if err != nil {
		return nil, d, err
	}
	if s.e.cfg.ContentStorage == ContentDatabase {
		rc, err := st.OpenContent(ctx, d.Checksum)
		return rc, d, err
	}
	bs, err := s.e.blobStore(st.Tenant())
	if err != nil {
		return nil, d, err
	}
	f, err := bs.Open(d.Checksum)
	if err != nil {
		return nil, d, fmt.Errorf("document %s: %w", id, err)
	}
	return f, d, nil
}

// ReadContent returns a document's whole content. Errors as OpenContent.
func (s *Session) ReadContent(ctx context.Context, id string) ([]byte, error) {
	rc, _, err := s.OpenContent(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	return buf.Bytes(), err
}

// UpdateContent replaces a document's content, keeping its id, name and
// metadata; the checksum, size and content type are rewritten. contentType
// "" keeps the detected type. It returns docex.ErrNotFound for an unknown
// document, docex.ErrDuplicateContent when another document of the basket
// has the new content, docex.ErrTooLarge over the limit.
func (s *Session) UpdateContent(ctx context.Context, id string, r io.Reader, contentType string) (docex.Document, error) {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.update", id)
	if err != nil {
		return docex.Document{}, err
	}
	defer st.Close()
	var (
		blob *blobstore.Staged
		data []byte
		sum  string
		size int64
		head []byte
		bs   *blobstore.Store
	)
	if s.e.cfg.ContentStorage == ContentFilesystem {
		if bs, err = s.e.blobStore(st.Tenant()); err != nil {
			return docex.Document{}, err
		}
		if blob, err = bs.Stage(ctx, r, s.e.cfg.MaxDocumentBytes); err != nil {
			return docex.Document{}, err
		}
		defer blob.Discard()
		sum, size, head = blob.Checksum, blob.Size, blob.Head
	} else {
		data, err = io.ReadAll(io.LimitReader(r, s.e.cfg.MaxDocumentBytes+1))
		if err != nil {
			return docex.Document{}, fmt.Errorf("read content: %w", err)
		}
		if int64(len(data)) > s.e.cfg.MaxDocumentBytes {
			return docex.Document{}, docex.Errorf(docex.ErrTooLarge, "content is larger than the limit of %d bytes", s.e.cfg.MaxDocumentBytes)
		}
		h := sha256.Sum256(data)
		sum, size, head = hex.EncodeToString(h[:]), int64(len(data)), data[:min(512, len(data))]
	}
	var old, upd docex.Document
	now := s.e.now()
	err = s.write(ctx, st, "document.update", id, func(tx driver.Tx) error {
		var err error
		if old, err = tx.Document(ctx, id); err != nil {
			return err
		}
		if err := tx.LockContent(ctx, sum); err != nil {
			return err
		}
		if blob != nil {
			if err := blob.Commit(); err != nil {
				return err
			}
		} else if err := tx.PutContent(ctx, sum, data); err != nil {
			return err
		}
		ct := contentType
		if ct == "" {
			ct = detectContentType("", old.Name, head)
		}
		if err := tx.UpdateContent(ctx, id, size, sum, ct, now); err != nil {
			return err
		}
		if blob == nil && old.Checksum != sum {
			if err := dropUnreferenced(ctx, tx, []string{old.Checksum}); err != nil {
				return err
			}
		}
		upd, err = tx.Document(ctx, id)
		return err
	})
	if err != nil {
		return docex.Document{}, err
	}
	if blob != nil && old.Checksum != sum {
		s.releaseContent(ctx, st, old.Checksum)
	}
	return upd, nil
}

// DeleteDocument deletes a document, its metadata and (when no other
// document shares it) its content. It returns docex.ErrNotFound for an
// unknown document.
func (s *Session) DeleteDocument(ctx context.Context, id string) error {
	return s.deleteDocument(ctx, "", id)
}

// DeleteDocumentIn deletes a document only if it belongs to the basket;
// docex.ErrNotFound otherwise.
func (s *Session) DeleteDocumentIn(ctx context.Context, basketID, id string) error {
	if basketID == "" {
		return docex.Errorf(docex.ErrInvalid, "basket id is empty")
	}
	return s.deleteDocument(ctx, basketID, id)
}

func (s *Session) deleteDocument(ctx context.Context, basketID, id string) error {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	var sum string
	err = s.write(ctx, st, "document.delete", id, func(tx driver.Tx) error {
		d, err := tx.Document(ctx, id)
		if err != nil {
			return err
		}
		if basketID != "" && d.BasketID != basketID {
			return docex.Errorf(docex.ErrNotFound, "document %s is not in basket %s", id, basketID)
		}
		sum = d.Checksum
		if err := tx.DeleteDocument(ctx, id); err != nil {
			return err
		}
		if s.e.cfg.ContentStorage == ContentDatabase {
			return dropUnreferenced(ctx, tx, []string{sum})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.e.cfg.ContentStorage == ContentFilesystem {
		s.releaseContent(ctx, st, sum)
	}
	return nil
}

// SetMetadata sets metadata keys on a document and returns the updated
// document. It returns docex.ErrNotFound for an unknown document and
// docex.ErrInvalid for bad keys or values.
func (s *Session) SetMetadata(ctx context.Context, id string, kv map[string]docex.Value) (docex.Document, error) {
	if len(kv) == 0 {
		return docex.Document{}, docex.Errorf(docex.ErrInvalid, "no metadata to set")
	}
	if err := validateMeta(kv); err != nil {
		return docex.Document{}, err
	}
	st, err := s.open(ctx, tenancy.ActionWrite, "metadata.set", id)
	if err != nil {
		return docex.Document{}, err
	}
	defer st.Close()
	var d docex.Document
	err = s.write(ctx, st, "metadata.set", id, func(tx driver.Tx) error {
		if err := tx.SetMetadata(ctx, id, kv, s.e.now()); err != nil {
			return err
		}
		var err error
		d, err = tx.Document(ctx, id)
		return err
	})
	return d, err
}

// Metadata returns one metadata value of a document. It returns
// docex.ErrNotFound when the document or the key does not exist.
func (s *Session) Metadata(ctx context.Context, id, key string) (docex.Value, error) {
	if err := validateMetaKey(key); err != nil {
		return docex.Value{}, err
	}
	d, err := s.Document(ctx, id)
	if err != nil {
		return docex.Value{}, err
	}
	v, ok := d.Metadata[key]
	if !ok {
		return docex.Value{}, docex.Errorf(docex.ErrNotFound, "document %s has no metadata key %q", id, key)
	}
	return v, nil
}

// DeleteMetadata removes one key. It returns docex.ErrNotFound when the
// document or the key does not exist.
func (s *Session) DeleteMetadata(ctx context.Context, id, key string) error {
	if err := validateMetaKey(key); err != nil {
		return err
	}
	st, err := s.open(ctx, tenancy.ActionWrite, "metadata.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	return s.write(ctx, st, "metadata.delete", id+"/"+key, func(tx driver.Tx) error {
		return tx.DeleteMetadata(ctx, id, key, s.e.now())
	})
}

// Audit lists the tenant's audit log, newest first (audit.read action).
func (s *Session) Audit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error) {
	page, err := page.Normalize()
	if err != nil {
		return nil, err
	}
	st, err := s.open(ctx, tenancy.ActionReadAudit, "audit.list", "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Audit(ctx, page)
}
