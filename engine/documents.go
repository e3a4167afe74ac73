package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

// Limits on user-supplied labels (bytes).
const (
	MaxBasketNameLen   = 128
	MaxDocumentNameLen = 1024
	MaxMetaKeyLen      = 256
	MaxMetaValueLen    = 64 << 10
	MaxMetaKeys        = 256 // per call
)

// Limits on a document's metadata in total, whatever the number of calls
// that set it: a write (doc meta set, a plugin run or a pipeline step
// setting its input's metadata, MCP set_metadata) that would leave a
// document with more keys, or more bytes of keys and values, is refused
// with docex.ErrInvalid and writes nothing. A value counts the bytes of
// its stored text (a number or a bool: its text form, such as 3.5 or
// true). MaxDocumentMetaBytes is the most one call may set
// (MaxMetaKeys keys of MaxMetaKeyLen bytes with values of MaxMetaValueLen
// bytes: 16 MiB + 64 KiB), so a new document's metadata, which one call
// sets, is always within both limits.
const (
	MaxDocumentMetaKeys  = 1024
	MaxDocumentMetaBytes = MaxMetaKeys * (MaxMetaKeyLen + MaxMetaValueLen)
)

// CreateBasket creates a basket with a name unique in the tenant. It needs
// the write action; it returns docex.ErrExists when the name is taken and
// docex.ErrInvalid for a bad name, including a name that has the form of
// a basket id (so a name can never stand for another basket's id).
func (s *Session) CreateBasket(ctx context.Context, name string) (docex.Basket, error) {
	st, err := s.open(ctx, tenancy.ActionWrite, "basket.create", name)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	if err := validateBasketName(name); err != nil {
		return docex.Basket{}, s.failed(ctx, st, "basket.create", name, err)
	}
	b := docex.Basket{ID: newID(), Name: name, CreatedAt: s.e.now()}
	err = s.write(ctx, st, "basket.create", name, func(tx driver.Tx) error { return tx.InsertBasket(ctx, b) })
	return b, err
}

// validateBasketName returns docex.ErrInvalid for a name that is empty,
// too long, not printable text or of the form of an id.
func validateBasketName(name string) error {
	if err := validateText("basket name", name, MaxBasketNameLen); err != nil {
		return err
	}
	if _, err := uuid.Parse(name); err == nil {
		return docex.Errorf(docex.ErrInvalid, "basket name %q has the form of an id: choose a name that does not", name)
	}
	return nil
}

// Basket returns a basket by id (with its stats), docex.ErrNotFound, or
// docex.ErrInvalidID for a malformed id.
func (s *Session) Basket(ctx context.Context, id string) (docex.Basket, error) {
	if err := checkID("basket", id); err != nil {
		return docex.Basket{}, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "basket.get", id)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	b, err := st.Basket(ctx, id)
	err = s.readDone(ctx, st, "basket.get", id, err)
	return b, err
}

// BasketByName returns a basket by name (with its stats), or docex.ErrNotFound.
func (s *Session) BasketByName(ctx context.Context, name string) (docex.Basket, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "basket.get", name)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	b, err := st.BasketByName(ctx, name)
	err = s.readDone(ctx, st, "basket.get", name, err)
	return b, err
}

// ResolveBasket returns the basket ref names: ref is a basket id when it
// has the form of one (any form uuid.Parse accepts), else a basket name.
// The two never collide, since CreateBasket refuses names of that form. It
// returns docex.ErrNotFound when there is no such basket, and
// docex.ErrInvalidID for an id-shaped ref that is not an id's canonical
// form (upper case, braces, urn:uuid:, no hyphens), as Basket does.
func (s *Session) ResolveBasket(ctx context.Context, ref string) (docex.Basket, error) {
	if _, err := uuid.Parse(ref); err == nil {
		return s.Basket(ctx, ref)
	}
	return s.BasketByName(ctx, ref)
}

// ResolveBasketFor is ResolveBasket for a write on the basket: op is
// "basket.bind", "basket.unbind", "basket.delete" or "pipeline.run", and
// pipeline the pipeline named ("basket.bind", "pipeline.run"; ignored
// otherwise). A basket not found, or an id-shaped ref that is not an id's
// canonical form, refuses the write, audited as op's refusal once the
// caller's role for op is checked: outcome error, the target ref as given
// ("pipeline.run": the pipeline, with ref in the detail {"basket"}), and
// "basket.bind"'s detail {"pipeline"}. The lookup itself is not audited as
// a read, even in a session that audits reads (op's own entry records the
// call). It returns the basket, or ResolveBasket's error, or the
// session's denial for op (audited); docex.ErrInvalid for another op.
func (s *Session) ResolveBasketFor(ctx context.Context, op, ref, pipeline string) (docex.Basket, error) {
	action, target, detail := tenancy.ActionManagePipelines, ref, map[string]any(nil)
	switch op {
	case "basket.bind":
		detail = map[string]any{"pipeline": pipeline}
	case "basket.unbind":
	case "basket.delete":
		action = tenancy.ActionDeleteBasket
	case "pipeline.run":
		action, target, detail = tenancy.ActionRunPipeline, pipeline, map[string]any{"basket": ref}
	default:
		return docex.Basket{}, docex.Errorf(docex.ErrInvalid, "ResolveBasketFor: operation %q is not a write on a basket", op)
	}
	b, err := s.lookupBasket(ctx, ref)
	if errors.Is(err, docex.ErrNotFound) || errors.Is(err, docex.ErrInvalidID) {
		return b, s.refuseDetail(ctx, action, op, target, detail, err)
	}
	return b, err
}

// ResolveBasketForAdd is ResolveBasket for an add to the basket: the
// lookup is part of the add, so it is not audited as a read of its own,
// even in a session that audits reads. It returns the basket, or
// ResolveBasket's error (docex.ErrNotFound, docex.ErrInvalidID)
// unaudited: the caller records the refused add with RefuseAdd.
func (s *Session) ResolveBasketForAdd(ctx context.Context, ref string) (docex.Basket, error) {
	return s.lookupBasket(ctx, ref)
}

// lookupBasket is ResolveBasket without its audit entry as a read (a
// denial of the read is audited): the lookup a write makes of the basket
// it names, which that write's own entry records.
func (s *Session) lookupBasket(ctx context.Context, ref string) (docex.Basket, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "basket.get", ref)
	if err != nil {
		return docex.Basket{}, err
	}
	defer st.Close()
	if _, perr := uuid.Parse(ref); perr == nil {
		if err := checkID("basket", ref); err != nil {
			return docex.Basket{}, err
		}
		return st.Basket(ctx, ref)
	}
	return st.BasketByName(ctx, ref)
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
	bs, err := st.Baskets(ctx, page)
	err = s.readDone(ctx, st, "basket.list", "", err)
	return bs, err
}

// DeleteBasket deletes a basket (admin). It returns docex.ErrBasketNotEmpty
// for a basket with documents unless force is set, in which case the
// documents and their content go too. When the content store cannot
// remove content now (S3 unreachable: driver.ContentProber) it returns the
// store's error (docex.ErrStorageUnavailable, ...) and deletes nothing.
func (s *Session) DeleteBasket(ctx context.Context, id string, force bool) error {
	st, err := s.open(ctx, tenancy.ActionDeleteBasket, "basket.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkID("basket", id); err != nil {
		return s.failed(ctx, st, "basket.delete", id, err)
	}
	if err := s.probeContent(ctx, st, "basket.delete", id); err != nil {
		return err
	}
	tc, err := s.e.tenantContent(st.Tenant())
	if err != nil {
		return err
	}
	var sums []string
	err = s.write(ctx, st, "basket.delete", id, func(tx driver.Tx) error {
		// Locked: a document added while the count is read must not be
		// removed by a delete without force, nor left unreleased by one
		// with it.
		b, err := tx.LockBasket(ctx, id, true)
		if err != nil {
			return err
		}
		if b.DocumentCount > 0 && !force {
			return docex.Errorf(docex.ErrBasketNotEmpty, "basket %q is not empty: it holds %s", b.Name, plural(b.DocumentCount, "document"))
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
		return s.dropInTx(ctx, tx, tc, sums...)
	})
	if err != nil {
		return err
	}
	s.releaseAfter(ctx, st, tc, sums...)
	return nil
}

// dropInTx removes, inside the transaction that removed references to
// them, contents no document refers to any more, when the content store is
// part of that transaction (database content).
func (s *Session) dropInTx(ctx context.Context, tx driver.Tx, tc driver.TenantContent, sums ...string) error {
	if !s.e.content.InTransaction() {
		return nil
	}
	_, err := deleteUnreferenced(ctx, tx, tc, sums)
	return err
}

// releaseAfter removes, after the transaction that removed references to
// them committed, contents of a store outside the database that no
// document refers to any more, releaseBatch of them per transaction.
// Failures leave orphans for Sweep; each batch's is given to the
// session's ContentRemovalFailed.
func (s *Session) releaseAfter(ctx context.Context, st driver.TenantStore, tc driver.TenantContent, sums ...string) {
	if s.e.content.InTransaction() {
		return
	}
	for len(sums) > 0 {
		n := min(len(sums), releaseBatch)
		if _, err := releaseUnreferenced(ctx, st, tc, sums[:n]); err != nil && s.opts.ContentRemovalFailed != nil {
			s.opts.ContentRemovalFailed(err)
		}
		sums = sums[n:]
	}
}

// releaseBatch bounds the contents one release transaction checks and
// removes: a basket of 20,000 documents deleted with --force took 20,000
// transactions, each with its own commit, before contents were released
// in batches.
const releaseBatch = 256

// releaseIfUnreferenced removes the content with checksum sum in a
// transaction of its own when no document of the tenant refers to it, and
// reports whether it did. The transaction is never shared with other
// writes (WriteIsolated): the removal acts on the reference count it
// reads, so that count must be committed state, not another write's that
// could still roll back.
func releaseIfUnreferenced(ctx context.Context, st driver.TenantStore, tc driver.TenantContent, sum string) (bool, error) {
	removed := false
	err := st.WriteIsolated(ctx, func(tx driver.Tx) error {
		var err error
		removed, err = deleteIfUnreferenced(ctx, tx, tc, sum)
		return err
	})
	return removed && err == nil, err
}

// releaseUnreferenced is releaseIfUnreferenced for several contents in
// one transaction (their locks taken in one statement and their
// references counted in one when the backend can: driver.ChecksumTx). It
// returns how many it removed. When that transaction fails, each content
// is tried again in a transaction of its own, so that one failure does
// not keep the others.
func releaseUnreferenced(ctx context.Context, st driver.TenantStore, tc driver.TenantContent, sums []string) (int, error) {
	if len(sums) == 1 {
		removed, err := releaseIfUnreferenced(ctx, st, tc, sums[0])
		return b2i(removed), err
	}
	removed := 0
	err := st.WriteIsolated(ctx, func(tx driver.Tx) error {
		var err error
		removed, err = deleteUnreferenced(ctx, tx, tc, sums)
		return err
	})
	if err == nil {
		return removed, nil
	}
	removed = 0
	var first error
	for _, sum := range sums {
		r, err := releaseIfUnreferenced(ctx, st, tc, sum)
		removed += b2i(r)
		if first == nil {
			first = err
		}
	}
	return removed, first
}

// deleteUnreferenced is deleteIfUnreferenced for several contents: their
// locks taken in one statement and their references counted in one when
// tx is a driver.ChecksumTx (a backend may bound the locks one
// transaction holds only when it sees them together). It returns how many
// it deleted.
func deleteUnreferenced(ctx context.Context, tx driver.Tx, tc driver.TenantContent, sums []string) (int, error) {
	removed := 0
	ct, ok := tx.(driver.ChecksumTx)
	if !ok || len(sums) == 1 {
		for _, sum := range sums {
			r, err := deleteIfUnreferenced(ctx, tx, tc, sum)
			if err != nil {
				return removed, err
			}
			removed += b2i(r)
		}
		return removed, nil
	}
	if err := ct.LockContents(ctx, sums); err != nil {
		return 0, err
	}
	refs, err := ct.ContentRefsOf(ctx, sums)
	if err != nil {
		return 0, err
	}
	done := make(map[string]bool, len(sums))
	for _, sum := range sums {
		if refs[sum] > 0 || done[sum] {
			continue
		}
		done[sum] = true
		if err := tc.Delete(ctx, tx, sum); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// deleteIfUnreferenced deletes the content with checksum sum when no
// document of the tenant refers to it, and reports whether it did. The
// reference check and the removal happen under the content lock, so a
// concurrent add of the same content cannot lose it.
func deleteIfUnreferenced(ctx context.Context, tx driver.Tx, tc driver.TenantContent, sum string) (bool, error) {
	if err := tx.LockContent(ctx, sum); err != nil {
		return false, err
	}
	n, err := tx.ContentRefs(ctx, sum)
	if err != nil || n > 0 {
		return false, err
	}
	return true, tc.Delete(ctx, tx, sum)
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
// nothing is added, and the error is audited (AddDocuments).
func (s *Session) AddDocument(ctx context.Context, basketID string, nd NewDocument) (Added, error) {
	out, err := s.AddDocuments(ctx, basketID, []NewDocument{nd})
	if err != nil {
		return Added{}, err
	}
	return out[0], nil
}

// stageContent reads r, at most Config.MaxDocumentBytes of it, into the
// tenant's content store (not yet synced). It returns docex.ErrTooLarge,
// leaving nothing behind, for larger content.
func (s *Session) stageContent(ctx context.Context, tc driver.TenantContent, r io.Reader, name string) (driver.Staged, error) {
	c, err := tc.Stage(ctx, r, s.e.cfg.MaxDocumentBytes)
	if err != nil {
		return nil, fmt.Errorf("document %q: %w", name, err)
	}
	return c, nil
}

// putNew stores, inside tx, the staged contents the tenant has no
// reference to yet (each checksum once), with their content locks held.
// Content the tenant already holds is not stored again: a dedup hit costs
// the store nothing.
type putNew struct {
	staged []driver.Staged
	seen   map[string]bool
}

// add queues c for Put when nothing refers to its checksum; the caller
// holds the content lock.
func (p *putNew) add(ctx context.Context, tx driver.Tx, c driver.Staged) error {
	if p.seen[c.Checksum()] {
		return nil
	}
	n, err := tx.ContentRefs(ctx, c.Checksum())
	if err != nil {
		return err
	}
	return p.addKnown(c, n)
}

// addKnown is add with n the number of references to c's checksum. It
// returns docex.ErrConflict for content a spill released because the
// tenant held it (reliant) when nothing refers to it any more.
func (p *putNew) addKnown(c driver.Staged, n int64) error {
	sum := c.Checksum()
	if p.seen[sum] || n > 0 {
		return nil
	}
	if r, ok := c.(*reliant); ok {
		return docex.Errorf(docex.ErrConflict, "document %q: its content was stored when the add began and has been deleted since; add it again", r.name)
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[sum] = true
	p.staged = append(p.staged, c)
	return nil
}

func (p *putNew) put(ctx context.Context, tx driver.Tx, tc driver.TenantContent) error {
	if len(p.staged) == 0 {
		return nil
	}
	return tc.Put(ctx, tx, p.staged)
}

func discardAll(cs []driver.Staged) {
	for _, c := range cs {
		if c != nil {
			c.Discard()
		}
	}
}

// AddDocuments adds documents to a basket in one transaction: all are
// added, or none. Errors as AddDocument. Every failure after the
// caller's role is checked (a bad name, content over the limit, an
// unknown basket, ...) is audited as one document.add entry, outcome
// error, with the error's text and the basket as target; a caller who
// may not write gets the denial, whatever the documents.
func (s *Session) AddDocuments(ctx context.Context, basketID string, docs []NewDocument) ([]Added, error) {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.add", basketID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := validateNewDocuments(basketID, docs); err != nil {
		return nil, s.failed(ctx, st, "document.add", basketID, err)
	}
	return s.addDocumentsTo(ctx, st, basketID, docs, s.enqueueBound(ctx, basketID)) // a bound basket's jobs commit with the documents
}

// validateNewDocuments returns docex.ErrInvalidID for a malformed basket
// id and docex.ErrInvalid for a document without a valid name, without
// content, or with bad metadata or content type.
func validateNewDocuments(basketID string, docs []NewDocument) error {
	if err := checkID("basket", basketID); err != nil {
		return err
	}
	for i := range docs {
		if err := validateText("document name", docs[i].Name, MaxDocumentNameLen); err != nil {
			return err
		}
		if docs[i].Content == nil {
			return docex.Errorf(docex.ErrInvalid, "document %q has no content", docs[i].Name)
		}
		if err := validateMeta(docs[i].Metadata); err != nil {
			return err
		}
		if docs[i].ContentType != "" {
			if _, err := ParseContentType(docs[i].ContentType); err != nil {
				return err
			}
		}
	}
	return nil
}

// addDocumentsTo adds validated documents through an open store. extra,
// when not nil, runs in the same transaction after the documents are
// added (with the outcome of each), so that a caller's further writes
// commit with them or not at all. Any failure is audited (document.add,
// target basketID), in a transaction of its own: nothing is added.
func (s *Session) addDocumentsTo(ctx context.Context, st driver.TenantStore, basketID string, docs []NewDocument, extra func(tx driver.Tx, added []Added) error) ([]Added, error) {
	sd, err := s.stageDocuments(ctx, st, docs)
	if err != nil {
		return nil, s.failed(ctx, st, "document.add", basketID, err)
	}
	defer sd.discard()
	var out []Added
	err = s.writeAudit(ctx, st, "document.add", basketID, false, func(tx driver.Tx) error {
		var err error
		if out, err = sd.insert(ctx, tx, basketID); err != nil {
			return err
		}
		if extra != nil {
			return extra(tx, out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stagedDocs is new documents whose content is staged and durable, ready
// to be inserted inside a transaction; discard releases the staging.
type stagedDocs struct {
	s     *Session
	tc    driver.TenantContent
	docs  []NewDocument
	items []driver.Staged
	cts   []string
	// basketChecked: the transaction that inserts the documents found
	// their basket already (insert does not look it up again).
	basketChecked bool
	// spilled holds the checksums spill wrote out or released.
	spilled map[string]bool
}

// spiller is a content namespace that holds staged content in memory
// until Sync or Put (the filesystem store's packed content, the database
// store's): Held returns the bytes a staged content holds in memory, and
// Spill writes what staged hold in memory out (a pack; a spool file) and
// releases that memory.
type spiller interface {
	Held(driver.Staged) int64
	Spill(ctx context.Context, staged []driver.Staged) error
}

// reliant is staged content a spill released without writing it out: the
// tenant held its checksum then, or an earlier document of the batch has
// it. It is never synced nor put; should nothing refer to its checksum
// any more when the transaction runs, the add fails (putNew.addKnown).
type reliant struct {
	driver.Staged
	name string
}

// spill writes out the content of items [from, to) that tc (sp) holds in
// memory and releases it: each checksum once, and not the content the
// tenant holds already (read from r, as syncNew does), which is only
// released. Errors as Spill's.
func (sd *stagedDocs) spill(ctx context.Context, r driver.Reader, sp spiller, from, to int) error {
	if sd.spilled == nil {
		sd.spilled = map[string]bool{}
	}
	rely := func(i int) {
		sd.items[i].Discard()
		sd.items[i] = &reliant{Staged: sd.items[i], name: sd.docs[i].Name}
	}
	var (
		idx  []int
		sums []string
	)
	for i := from; i < to; i++ {
		sum := sd.items[i].Checksum()
		if sd.spilled[sum] {
			rely(i)
			continue
		}
		sd.spilled[sum] = true
		idx, sums = append(idx, i), append(sums, sum)
	}
	if cr, ok := r.(driver.ContentRefsReader); ok && len(sums) > 0 {
		// A failed read only costs the writes it would have saved.
		if refs, err := cr.ContentRefsOf(ctx, sums); err == nil {
			idx = slices.DeleteFunc(idx, func(i int) bool {
				if refs[sd.items[i].Checksum()] > 0 {
					rely(i)
					return true
				}
				return false
			})
		}
	}
	items := make([]driver.Staged, len(idx))
	for k, i := range idx {
		items[k] = sd.items[i]
	}
	return sp.Spill(ctx, items)
}

// stageDocuments stages docs' content outside any transaction (filesystem
// storage: written and fsynced; database storage: read into memory),
// holding at most Config.MaxStagedMemory of it in memory (spill).
func (s *Session) stageDocuments(ctx context.Context, st driver.TenantStore, docs []NewDocument) (*stagedDocs, error) {
	sd, err := s.stageDocumentsUnsynced(ctx, st, docs)
	if err != nil {
		return nil, err
	}
	if err := syncStaged(ctx, st, []*stagedDocs{sd}); err != nil {
		sd.discard()
		return nil, err
	}
	return sd, nil
}

// stageDocumentsUnsynced is stageDocuments without the final Sync: the
// caller syncs (syncStaged) before it puts the content, so that the
// staged documents of several calls can share one pack and one flush.
func (s *Session) stageDocumentsUnsynced(ctx context.Context, st driver.TenantStore, docs []NewDocument) (*stagedDocs, error) {
	if err := s.e.checkClaimOnce(ctx); err != nil {
		return nil, err
	}
	tc, err := s.e.tenantContent(st.Tenant())
	if err != nil {
		return nil, err
	}
	sd := &stagedDocs{s: s, tc: tc, docs: docs, items: make([]driver.Staged, len(docs)), cts: make([]string, len(docs))}
	// Content staged in memory is written out each time it passes
	// MaxStagedMemory, unless the last document is staged (Sync and Put
	// take the rest).
	sp, _ := tc.(spiller)
	var held int64
	from := 0
	for i, nd := range docs {
		if sd.items[i], err = s.stageContent(ctx, tc, nd.Content, nd.Name); err != nil {
			sd.discard()
			return nil, err
		}
		ct := ""
		if nd.ContentType != "" {
			if ct, err = ParseContentType(nd.ContentType); err != nil {
				sd.discard()
				return nil, err
			}
		}
		sd.cts[i] = detectContentType(ct, nd.Name, sd.items[i].Head())
		if sp == nil || i == len(docs)-1 {
			continue
		}
		if held += sp.Held(sd.items[i]); held > s.e.cfg.MaxStagedMemory {
			if err := sd.spill(ctx, st, sp, from, i+1); err != nil {
				sd.discard()
				return nil, err
			}
			from, held = i+1, 0
		}
	}
	return sd, nil
}

func (sd *stagedDocs) discard() { discardAll(sd.items) }

// syncStaged makes the content staged by several unsynced stagedDocs of
// one tenant durable in one Sync (one pack and one flush for small
// contents); nil entries are skipped. Content that will not be put is
// left out: a checksum staged twice is synced once, and content the
// tenant holds already (read from r, when it counts references in one
// read: driver.ContentRefsReader) not at all, so that an output that
// deduplicates onto an existing document writes no pack file for docex
// gc to remove. Should the tenant's last reference go meanwhile, the
// transaction puts the content all the same: Put makes unsynced content
// durable itself.
func syncStaged(ctx context.Context, r driver.Reader, sds []*stagedDocs) error {
	var (
		tc    driver.TenantContent
		items []driver.Staged
	)
	for _, sd := range sds {
		if sd == nil {
			continue
		}
		tc = sd.tc
		items = append(items, sd.items...)
	}
	return syncNew(ctx, r, tc, items)
}

// syncNew makes the content staged in tc durable in one Sync, leaving out
// what will not be put: syncStaged for staged content other than new
// documents' (doc update's).
func syncNew(ctx context.Context, r driver.Reader, tc driver.TenantContent, staged []driver.Staged) error {
	var items []driver.Staged
	seen := map[string]bool{}
	for _, it := range staged {
		if _, ok := it.(*reliant); ok {
			continue
		}
		if !seen[it.Checksum()] {
			seen[it.Checksum()] = true
			items = append(items, it)
		}
	}
	if tc == nil || len(items) == 0 {
		return nil
	}
	if cr, ok := r.(driver.ContentRefsReader); ok {
		sums := make([]string, len(items))
		for i, it := range items {
			sums[i] = it.Checksum()
		}
		// A failed read only costs the write it would have saved.
		if refs, err := cr.ContentRefsOf(ctx, sums); err == nil {
			items = slices.DeleteFunc(items, func(it driver.Staged) bool { return refs[it.Checksum()] > 0 })
		}
	}
	if len(items) == 0 {
		return nil
	}
	return tc.Sync(ctx, items)
}

// insert adds the staged documents to basketID inside tx, each with its
// audit entry; a document whose content the basket already holds is
// returned as a duplicate instead. Content the tenant holds no reference
// to yet is put, in one batch, before it returns, so it is readable and
// durable when tx commits.
func (sd *stagedDocs) insert(ctx context.Context, tx driver.Tx, basketID string) ([]Added, error) {
	var td *txDocs
	if bt, ok := tx.(driver.BatchTx); ok && len(sd.items) > 1 {
		td = newTxDocs(bt)
		if err := td.resolve(ctx, tx, []*stagedDocs{sd}, []string{basketID}); err != nil {
			return nil, err
		}
	}
	var puts putNew
	out, err := sd.insertIn(ctx, tx, basketID, td, &puts)
	if err == nil && td != nil {
		err = td.flush(ctx, tx)
	} else if err == nil {
		err = puts.put(ctx, tx, sd.tc)
	}
	return out, err
}

// txDocs gathers the new documents, their audit entries and the content
// to put of several insertIn calls in one transaction (a driver.BatchTx),
// for flush to write together in multi-row statements; a checksum added
// earlier in the same transaction is found in pending, not by
// DocumentByChecksum.
type txDocs struct {
	bt      driver.BatchTx
	pending map[string]docex.Document // by basket id + "/" + checksum
	newDocs []docex.Document
	entries []docex.AuditEntry
	puts    putNew
	tc      driver.TenantContent // the content store of the documents (one tenant)

	// With resolved (resolve), the content locks of the documents to add
	// are held, and known and refs tell what DocumentByChecksum and
	// ContentRefs would.
	resolved bool
	known    map[string]docex.Document // by basket id + "/" + checksum
	refs     map[string]int64
	stale    map[string]bool          // ids of known documents changed since (touched)
	held     map[string]*heldMetadata // by document id: what holdMeta held for it since

	// meta is the metadata the runs set on their inputs, held for one
	// driver.MetadataBatchTx call (flushMeta) before the transaction next
	// reads documents, and at flush; metaAt is the latest time of them.
	meta   []driver.MetadataSet
	metaAt time.Time
}

// setMeta sets kv on document d inside tx. In a step transaction (td not
// nil) it is held for one batch call with the other runs' when the
// backend batches (holdMeta), so that the sets on one document keep their
// order; set at once instead, d is marked touched. Errors as
// SetMetadata's.
func (td *txDocs) setMeta(ctx context.Context, tx driver.Tx, d docex.Document, kv map[string]docex.Value, at time.Time) error {
	if td != nil && td.holdMeta(tx, d.ID, kv, at) {
		return nil
	}
	if err := setMetaChecked(ctx, tx, d.ID, kv, at); err != nil {
		return err
	}
	if td != nil {
		td.touched(d)
	}
	return nil
}

// setMetaChecked sets kv on document id inside tx (driver.Tx.SetMetadata)
// and then checks the document's metadata in total (checkMetaTotals).
// Errors as SetMetadata's and checkMetaTotals's; on error the caller
// rolls tx back.
func setMetaChecked(ctx context.Context, tx driver.Tx, id string, kv map[string]docex.Value, at time.Time) error {
	if err := tx.SetMetadata(ctx, id, kv, at); err != nil {
		return err
	}
	return checkMetaTotals(ctx, tx, []string{id})
}

// checkMetaTotals reads the metadata totals of the documents of ids
// inside tx, after a write of their metadata, in one driver call. It
// returns docex.ErrInvalid, naming the document, the limit and the
// total, when one holds more than MaxDocumentMetaKeys keys or
// MaxDocumentMetaBytes bytes (the caller then rolls tx back: nothing is
// written), and the driver's error when the read fails.
func checkMetaTotals(ctx context.Context, tx driver.Tx, ids []string) error {
	totals, err := tx.MetadataTotals(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids { // the first over its limit in the order written
		t := totals[id]
		if t.Keys > MaxDocumentMetaKeys {
			return docex.Errorf(docex.ErrInvalid, "document %q: metadata would have %d keys, more than %d a document may have", id, t.Keys, MaxDocumentMetaKeys)
		}
		if t.Bytes > MaxDocumentMetaBytes {
			return docex.Errorf(docex.ErrInvalid, "document %q: metadata would be %d bytes of keys and values, more than %d a document may have", id, t.Bytes, MaxDocumentMetaBytes)
		}
	}
	return nil
}

// heldMetadata is the metadata held for one document in a transaction:
// the values of its sets, later ones over earlier ones, and the latest
// time.
type heldMetadata struct {
	values map[string]docex.Value
	at     time.Time
}

// over returns d as the transaction will hold it once h is set: its
// metadata with h's values over it, updated at h's time (the batch call
// writes its latest time, which may be a few microseconds later).
func (h *heldMetadata) over(d docex.Document) docex.Document {
	meta := make(map[string]docex.Value, len(d.Metadata)+len(h.values))
	maps.Copy(meta, d.Metadata)
	maps.Copy(meta, h.values)
	d.Metadata, d.UpdatedAt = meta, h.at
	return d
}

// holdMeta holds kv for document id when tx sets metadata in batches
// (driver.MetadataBatchTx) and reports whether it did. A document the
// transaction resolved (known) is then taken with the held values over
// it (heldMetadata.over), not read again.
func (td *txDocs) holdMeta(tx driver.Tx, id string, kv map[string]docex.Value, at time.Time) bool {
	if _, ok := tx.(driver.MetadataBatchTx); !ok {
		return false
	}
	td.meta = append(td.meta, driver.MetadataSet{DocumentID: id, Values: kv})
	if at.After(td.metaAt) {
		td.metaAt = at
	}
	if td.held == nil {
		td.held = map[string]*heldMetadata{}
	}
	h := td.held[id]
	if h == nil {
		h = &heldMetadata{values: make(map[string]docex.Value, len(kv))}
		td.held[id] = h
	}
	maps.Copy(h.values, kv)
	if at.After(h.at) {
		h.at = at
	}
	return true
}

// flushMeta sets the held metadata (holdMeta); the transaction's reads of
// documents after it see them, and checks the documents' metadata in
// total in one more driver call. Errors as SetMetadataBatch's and
// checkMetaTotals's.
func (td *txDocs) flushMeta(ctx context.Context, tx driver.Tx) error {
	if td == nil || len(td.meta) == 0 {
		return nil
	}
	sets := td.meta
	td.meta = nil
	if err := tx.(driver.MetadataBatchTx).SetMetadataBatch(ctx, sets, td.metaAt); err != nil {
		return err
	}
	ids := make([]string, 0, len(sets))
	seen := make(map[string]bool, len(sets))
	for _, set := range sets {
		if !seen[set.DocumentID] {
			seen[set.DocumentID] = true
			ids = append(ids, set.DocumentID)
		}
	}
	return checkMetaTotals(ctx, tx, ids)
}

// touched records that metadata was set on document d inside the
// transaction, not held: its resolved copy (known) is stale, and insertIn
// reads it again.
func (td *txDocs) touched(d docex.Document) {
	if td.stale == nil {
		td.stale = map[string]bool{}
	}
	td.stale[d.ID] = true
}

// resolve takes, when tx is a driver.ChecksumTx, the content locks of the
// documents sds will add to the baskets in basketIDs (sds[i] to
// basketIDs[i]), and reads the basket's documents and the tenant's
// references with their checksums, in a few statements. Errors as the
// driver's.
func (td *txDocs) resolve(ctx context.Context, tx driver.Tx, sds []*stagedDocs, basketIDs []string) error {
	ct, ok := tx.(driver.ChecksumTx)
	if !ok || len(sds) == 0 {
		return nil
	}
	var all []string
	byBasket := map[string][]string{}
	var baskets []string
	for i, sd := range sds {
		b := basketIDs[i]
		if _, ok := byBasket[b]; !ok {
			baskets = append(baskets, b)
		}
		for _, it := range sd.items {
			all = append(all, it.Checksum())
			byBasket[b] = append(byBasket[b], it.Checksum())
		}
	}
	if err := ct.LockContents(ctx, all); err != nil {
		return err
	}
	td.known = map[string]docex.Document{}
	for _, b := range baskets {
		docs, err := ct.DocumentsByChecksums(ctx, b, byBasket[b])
		if err != nil {
			return err
		}
		for sum, d := range docs {
			td.known[b+"/"+sum] = d
		}
	}
	refs, err := ct.ContentRefsOf(ctx, all)
	if err != nil {
		return err
	}
	td.refs, td.resolved = refs, true
	return nil
}

func newTxDocs(bt driver.BatchTx) *txDocs {
	return &txDocs{bt: bt, pending: map[string]docex.Document{}}
}

// flush inserts the gathered documents and audit entries, then puts the
// new content. Errors as the driver's.
func (td *txDocs) flush(ctx context.Context, tx driver.Tx) error {
	if err := td.flushMeta(ctx, tx); err != nil {
		return err
	}
	if len(td.newDocs) > 0 || len(td.entries) > 0 {
		if err := td.bt.InsertDocuments(ctx, td.newDocs, td.entries); err != nil {
			return err
		}
	}
	td.newDocs, td.entries = nil, nil
	if td.tc == nil {
		return nil
	}
	err := td.puts.put(ctx, tx, td.tc)
	td.puts = putNew{}
	return err
}

// insertIn is insert, the content to put left in puts; with td the
// documents, their audit entries and the content to put are left in td
// instead, for its flush (the caller's).
func (sd *stagedDocs) insertIn(ctx context.Context, tx driver.Tx, basketID string, td *txDocs, puts *putNew) ([]Added, error) {
	s := sd.s
	if !sd.basketChecked {
		if _, err := tx.Basket(ctx, basketID); err != nil {
			return nil, err
		}
	}
	now := s.e.now()
	out := make([]Added, len(sd.items))
	batching := td != nil
	if batching {
		puts, td.tc = &td.puts, sd.tc
	}
	audit := func(e docex.AuditEntry) error {
		if batching {
			td.entries = append(td.entries, e)
			return nil
		}
		return tx.AppendAudit(ctx, e)
	}
	resolved := batching && td.resolved
	for i, it := range sd.items {
		if !resolved {
			if err := tx.LockContent(ctx, it.Checksum()); err != nil {
				return nil, err
			}
		}
		var (
			existing docex.Document
			ok       bool
			err      error
		)
		if batching {
			existing, ok = td.pending[basketID+"/"+it.Checksum()]
		}
		switch {
		case ok:
		case resolved:
			if existing, ok = td.known[basketID+"/"+it.Checksum()]; !ok {
				err = docex.ErrNotFound
			} else if td.stale[existing.ID] {
				if err = td.flushMeta(ctx, tx); err == nil {
					existing, err = tx.DocumentByChecksum(ctx, basketID, it.Checksum())
				}
			} else if h := td.held[existing.ID]; h != nil {
				// A step that tags its input and derives the same bytes
				// (redact-pii on a chunk with nothing to redact): the
				// input as its held metadata leaves it, with no flush and
				// no read of it (four round trips on PostgreSQL).
				existing = h.over(existing)
			}
		default:
			if err = td.flushMeta(ctx, tx); err == nil {
				existing, err = tx.DocumentByChecksum(ctx, basketID, it.Checksum())
			}
		}
		if err == nil {
			out[i] = Added{Document: existing, Duplicate: true}
			if err := audit(s.entryDetail("document.add", existing.ID, map[string]any{"duplicate": true, "name": sd.docs[i].Name})); err != nil {
				return nil, err
			}
			continue
		}
		if !errors.Is(err, docex.ErrNotFound) {
			return nil, err
		}
		if resolved {
			if err := puts.addKnown(it, td.refs[it.Checksum()]); err != nil {
				return nil, err
			}
		} else if err := puts.add(ctx, tx, it); err != nil {
			return nil, err
		}
		d := docex.Document{
			ID: newID(), BasketID: basketID, Name: sd.docs[i].Name, ContentType: sd.cts[i],
			Size: it.Size(), Checksum: it.Checksum(), Status: docex.DocumentActive,
			CreatedAt: now, UpdatedAt: now, Metadata: cloneMeta(sd.docs[i].Metadata),
		}
		out[i] = Added{Document: d}
		if batching {
			td.pending[basketID+"/"+d.Checksum] = d
			td.newDocs = append(td.newDocs, d)
		} else if err := tx.InsertDocument(ctx, d); err != nil {
			return nil, err
		}
		if err := audit(s.entryDetail("document.add", d.ID, nil)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Session) entryDetail(op, target string, detail map[string]any) docex.AuditEntry {
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
	for _, k := range slices.Sorted(maps.Keys(m)) { // the first bad key by name, every time
		v := m[k]
		if err := validateMetaKey(k); err != nil {
			return err
		}
		if !v.Valid() {
			return docex.Errorf(docex.ErrInvalid, "metadata %q: value must be a string, a finite number or a bool", k)
		}
		if v.Type() != docex.TypeString {
			continue
		}
		// One rule for every backend: PostgreSQL cannot store invalid
		// UTF-8 or NUL in text, so neither backend accepts them.
		switch str := v.Str(); {
		case len(str) > MaxMetaValueLen:
			return docex.Errorf(docex.ErrInvalid, "metadata %q: value is %d bytes, longer than %d", k, len(str), MaxMetaValueLen)
		case !utf8.ValidString(str):
			return docex.Errorf(docex.ErrInvalid, "metadata %q: value is not valid UTF-8", k)
		case strings.IndexByte(str, 0) >= 0:
			return docex.Errorf(docex.ErrInvalid, "metadata %q: value contains a NUL byte", k)
		}
	}
	return nil
}

func validateMetaKey(k string) error { return validateText("metadata key", k, MaxMetaKeyLen) }

// MaxContentTypeLen bounds a content type (bytes).
const MaxContentTypeLen = 255

// ParseContentType checks a content type and returns it in canonical form
// (mime.FormatMediaType: lowercase type, subtype and parameter names): a
// media type "type/subtype" with optional parameters (RFC 2045 syntax), at
// most MaxContentTypeLen bytes of printable ASCII. It returns an error
// matching docex.ErrInvalid. Every content type stored, given by a caller,
// detected or set by a plugin, passes it.
func ParseContentType(ct string) (string, error) {
	if ct == "" || len(ct) > MaxContentTypeLen {
		return "", docex.Errorf(docex.ErrInvalid, "content type is %d bytes: want 1 to %d", len(ct), MaxContentTypeLen)
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return "", docex.Errorf(docex.ErrInvalid, "content type %.80q: only printable ASCII is allowed", ct)
		}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/") {
		return "", docex.Errorf(docex.ErrInvalid, "content type %q is not a media type (want type/subtype, e.g. text/plain; charset=utf-8)", ct)
	}
	out := mime.FormatMediaType(mt, params)
	if out == "" || len(out) > MaxContentTypeLen {
		return "", docex.Errorf(docex.ErrInvalid, "content type %q is not a media type (want type/subtype, e.g. text/plain; charset=utf-8)", ct)
	}
	return out, nil
}

// detectContentType returns given when set (already checked), else the type
// for the name's extension, else a sniffed type; a detected type the
// machine's MIME database spells badly becomes application/octet-stream.
func detectContentType(given, name string, head []byte) string {
	if given != "" {
		return given
	}
	if ct, ok := ContentTypeByName(name); ok {
		return ct
	}
	if ct, err := ParseContentType(http.DetectContentType(head)); err == nil {
		return ct
	}
	return "application/octet-stream"
}

// ContentTypeByName returns the content type a file name's extension
// gives (normalised, as ParseContentType does), the one a document of
// that name is stored with when no type is given; false when the name
// has no extension, or one known neither to docex nor to the machine's
// MIME database (then the content decides).
func ContentTypeByName(name string) (string, bool) {
	ext := strings.ToLower(filepath.Ext(name))
	if ext == "" {
		return "", false
	}
	t := builtinTypes[ext]
	if t == "" {
		t = mime.TypeByExtension(ext)
	}
	if t == "" {
		return "", false
	}
	ct, err := ParseContentType(t)
	return ct, err == nil
}

// builtinTypes makes detection of common document types independent of the
// machine's MIME database.
var builtinTypes = map[string]string{
	".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8", ".markdown": "text/markdown; charset=utf-8",
	".csv": "text/csv; charset=utf-8", ".tsv": "text/tab-separated-values; charset=utf-8", ".json": "application/json", ".html": "text/html; charset=utf-8",
	".htm": "text/html; charset=utf-8", ".xml": "application/xml", ".pdf": "application/pdf",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".png":  "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
	".yaml": "application/yaml", ".yml": "application/yaml", ".zip": "application/zip",
}

// Document returns a document with its metadata, or docex.ErrNotFound
// (also for an id of another tenant).
func (s *Session) Document(ctx context.Context, id string) (docex.Document, error) {
	if err := checkID("document", id); err != nil {
		return docex.Document{}, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.get", id)
	if err != nil {
		return docex.Document{}, err
	}
	defer st.Close()
	d, err := st.Document(ctx, id)
	err = s.readDone(ctx, st, "document.get", id, err)
	return d, err
}

// DocumentMetaBound is Document with the document's metadata bounded in
// the store (driver.DocumentMetaBoundReader), as DocumentsMetaBound
// bounds each listed document's: a value whose key and value (at the
// least length of their JSON, driver.BoundMeta) would bring the metadata
// past metaBytes is left out, and is not read. Audited as Document.
func (s *Session) DocumentMetaBound(ctx context.Context, id string, metaBytes int) (BoundDocument, error) {
	return s.boundDocument(ctx, id, func(st driver.TenantStore) (BoundDocument, error) {
		if r, ok := st.(driver.DocumentMetaBoundReader); ok {
			return r.DocumentMetaBound(ctx, id, metaBytes)
		}
		full, err := st.Document(ctx, id)
		if err != nil {
			return BoundDocument{}, err
		}
		return driver.BoundDocuments([]docex.Document{full}, metaBytes)[0], nil
	})
}

// DocumentMetaKeys is DocumentMetaBound of the values of keys only
// (driver.DocumentMetaKeysReader): the metadata holds the values of those
// keys the document has (an empty keys gives none) that fit in metaBytes,
// MetadataOmitted the keys of the others; the values of other keys are
// not read. Audited as Document.
func (s *Session) DocumentMetaKeys(ctx context.Context, id string, keys []string, metaBytes int) (BoundDocument, error) {
	return s.boundDocument(ctx, id, func(st driver.TenantStore) (BoundDocument, error) {
		return metaKeys(ctx, st, id, keys, metaBytes)
	})
}

// DocumentMetaKeysRounds reads document id as DocumentMetaKeys does, in
// as many rounds as rounds makes, with one audit entry for them all (as
// Document, one entry whatever the number of rounds): rounds is called
// once, with read, which returns what DocumentMetaKeys of keys bounded to
// metaBytes returns (its errors too: docex.ErrNotFound for a document
// gone), each call of read a snapshot of its own (a value set between two
// of them is read as it is at the second). It returns rounds's error,
// which the audit entry records (nil: success), or Document's error for
// an invalid id or a tenant that cannot be read (then rounds is not
// called). read must not be used once rounds has returned.
func (s *Session) DocumentMetaKeysRounds(ctx context.Context, id string, rounds func(read func(keys []string, metaBytes int) (BoundDocument, error)) error) error {
	_, err := s.boundDocument(ctx, id, func(st driver.TenantStore) (BoundDocument, error) {
		return BoundDocument{}, rounds(func(keys []string, metaBytes int) (BoundDocument, error) {
			return metaKeys(ctx, st, id, keys, metaBytes)
		})
	})
	return err
}

// metaKeys is DocumentMetaKeys in st.
func metaKeys(ctx context.Context, st driver.TenantStore, id string, keys []string, metaBytes int) (BoundDocument, error) {
	if r, ok := st.(driver.DocumentMetaKeysReader); ok {
		return r.DocumentMetaKeys(ctx, id, keys, metaBytes)
	}
	full, err := st.Document(ctx, id)
	if err != nil {
		return BoundDocument{}, err
	}
	m := map[string]docex.Value{}
	for _, k := range keys {
		if v, ok := full.Metadata[k]; ok {
			m[k] = v
		}
	}
	full.Metadata = m
	return driver.BoundDocuments([]docex.Document{full}, metaBytes)[0], nil
}

// boundDocument reads document id with read, audited as Document.
func (s *Session) boundDocument(ctx context.Context, id string, read func(driver.TenantStore) (BoundDocument, error)) (BoundDocument, error) {
	if err := checkID("document", id); err != nil {
		return BoundDocument{}, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.get", id)
	if err != nil {
		return BoundDocument{}, err
	}
	defer st.Close()
	d, err := read(st)
	err = s.readDone(ctx, st, "document.get", id, err)
	return d, err
}

// DocumentIn returns a document only if it belongs to the basket, and
// docex.ErrNotFound otherwise.
func (s *Session) DocumentIn(ctx context.Context, basketID, id string) (docex.Document, error) {
	if err := checkID("basket", basketID); err != nil {
		return docex.Document{}, err
	}
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
	var docs []docex.Document
	_, err := s.listIn(ctx, "document.list", basketID, nil, page, func(st driver.TenantStore, page docex.Page) (int64, error) {
		var err error
		docs, err = st.Documents(ctx, basketID, page)
		return 0, err
	})
	if err != nil {
		return nil, err
	}
	return docs, nil
}

// listIn checks a listing's arguments (basketID, page; filters for
// "document.find": 1 to 16, each a valid metadata value), then calls read
// with the tenant's store, opened for op, once the basket is found, and
// audits the read (readDone). It returns read's total, or the first error.
func (s *Session) listIn(ctx context.Context, op, basketID string, filters []docex.MetaFilter, page docex.Page, read func(st driver.TenantStore, page docex.Page) (int64, error)) (int64, error) {
	if err := checkID("basket", basketID); err != nil {
		return 0, err
	}
	page, err := page.Normalize()
	if err != nil {
		return 0, err
	}
	if op == "document.find" {
		if len(filters) == 0 || len(filters) > 16 {
			return 0, docex.Errorf(docex.ErrInvalid, "find needs 1 to 16 metadata filters, got %d", len(filters))
		}
		for _, f := range filters {
			if err := validateMeta(map[string]docex.Value{f.Key: f.Value}); err != nil {
				return 0, err
			}
		}
	}
	st, err := s.open(ctx, tenancy.ActionRead, op, basketID)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var total int64
	_, err = st.Basket(ctx, basketID)
	if err == nil {
		total, err = read(st, page)
	}
	return total, s.readDone(ctx, st, op, basketID, err)
}

// FindDocuments returns the documents of a basket whose metadata matches
// every filter, and the total number of matches. It returns docex.ErrInvalid
// without filters and docex.ErrNotFound for an unknown basket.
func (s *Session) FindDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error) {
	var docs []docex.Document
	total, err := s.listIn(ctx, "document.find", basketID, filters, page, func(st driver.TenantStore, page docex.Page) (total int64, err error) {
		docs, total, err = st.FindDocuments(ctx, basketID, filters, page)
		return total, err
	})
	if err != nil {
		return nil, 0, err
	}
	return docs, total, nil
}

// BoundDocument is a listed document whose metadata is bounded
// (DocumentsMetaBound): MetadataOmitted names the keys whose values were
// left out, in key order (nil when none was).
type BoundDocument = driver.BoundDocument

// DocumentsMetaBound is Documents with each document's metadata bounded
// in the store: a value whose key and value (at the least length of their
// JSON, driver.BoundMeta) would bring the document's metadata past
// metaBytes is left out, and is not read. Document returns every value.
func (s *Session) DocumentsMetaBound(ctx context.Context, basketID string, page docex.Page, metaBytes int) ([]BoundDocument, error) {
	var docs []BoundDocument
	_, err := s.listIn(ctx, "document.list", basketID, nil, page, func(st driver.TenantStore, page docex.Page) (int64, error) {
		r, ok := st.(driver.MetaBoundReader)
		if !ok {
			all, err := st.Documents(ctx, basketID, page)
			docs = driver.BoundDocuments(all, metaBytes)
			return 0, err
		}
		var err error
		docs, err = r.DocumentsMetaBound(ctx, basketID, page, metaBytes)
		return 0, err
	})
	if err != nil {
		return nil, err
	}
	return docs, nil
}

// FindDocumentsMetaBound is FindDocuments with each document's metadata
// bounded in the store, as DocumentsMetaBound's.
func (s *Session) FindDocumentsMetaBound(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page, metaBytes int) ([]BoundDocument, int64, error) {
	var docs []BoundDocument
	total, err := s.listIn(ctx, "document.find", basketID, filters, page, func(st driver.TenantStore, page docex.Page) (total int64, err error) {
		r, ok := st.(driver.MetaBoundReader)
		if !ok {
			var all []docex.Document
			all, total, err = st.FindDocuments(ctx, basketID, filters, page)
			docs = driver.BoundDocuments(all, metaBytes)
			return total, err
		}
		docs, total, err = r.FindDocumentsMetaBound(ctx, basketID, filters, page, metaBytes)
		return total, err
	})
	if err != nil {
		return nil, 0, err
	}
	return docs, total, nil
}

// OpenContent streams a document's content. The caller closes the reader.
// It returns docex.ErrNotFound for an unknown document. The content is
// checked against its checksum as it is read: the read that reaches its
// end fails with docex.ErrCorrupt when it differs (a reader closed before
// the end checked nothing). The reader has a method UnverifiedReaderAt()
// (io.ReaderAt, bool) for reads at an offset, without the check, when the
// store has them (filesystem storage; S3, a ranged GET per read).
func (s *Session) OpenContent(ctx context.Context, id string) (io.ReadCloser, docex.Document, error) {
	if err := checkID("document", id); err != nil {
		return nil, docex.Document{}, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.read", id)
	if err != nil {
		return nil, docex.Document{}, err
	}
	defer st.Close()
	d, err := st.Document(ctx, id)
	var rc io.ReadCloser
	if err == nil {
		rc, err = s.openContent(ctx, st, d)
	}
	err = s.readDone(ctx, st, "document.read", id, err)
	if rc != nil {
		rc = &contentReader{ReadCloser: rc, docID: d.ID}
	}
	return rc, d, err
}

// contentReader names the document in its read errors (contentError), as
// in those of opening its content: a store that fails partway through
// (an S3 connection lost) is reported as one that fails at the start.
type contentReader struct {
	io.ReadCloser
	docID string
}

func (r *contentReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = &contentError{docID: r.docID, err: err}
	}
	return n, err
}

// UnverifiedReaderAt returns the content's reader for reads at an offset
// when its store has one (filesystem storage: the content's file, or its
// range of a pack, whose size was checked at the open; S3: a ranged GET
// per ReadAt, under the context of the open), ok false otherwise
// (database storage). What it reads is not checked against the
// content's checksum: reading the ReadCloser to its end does that. Its
// errors do not name the document. The ReadCloser's Close releases it
// (S3: a ReadAt after it may still be made).
func (r *contentReader) UnverifiedReaderAt() (ra io.ReaderAt, ok bool) {
	v, isV := r.ReadCloser.(*contentkey.Verifier)
	if !isV {
		return nil, false
	}
	if ra, ok = v.Reopened(); ok {
		return ra, true
	}
	return v.Ranged()
}

// openContent opens the content of d from the configured storage.
func (s *Session) openContent(ctx context.Context, st driver.TenantStore, d docex.Document) (io.ReadCloser, error) {
	tc, err := s.e.tenantContent(st.Tenant())
	if err != nil {
		return nil, err
	}
	rc, err := tc.Open(ctx, st, d.Checksum, d.Size)
	if errors.Is(err, docex.ErrNotFound) {
		// The document is there but its content is not: damaged storage
		// (exit 1), not an unknown document (exit 3); unless a concurrent
		// delete removed the document and then its content.
		if _, derr := st.Document(ctx, d.ID); derr == nil {
			// Unless storage.documents no longer names this system's
			// store: then that is the error.
			if cerr := s.e.checkClaimOnce(ctx); errors.Is(cerr, driver.ErrUnclaimed) || errors.Is(cerr, driver.ErrOtherSystem) {
				return nil, &contentError{docID: d.ID, err: cerr}
			}
			return nil, &contentError{docID: d.ID, err: docex.Errorf(docex.ErrCorrupt, "%v", err)}
		}
	}
	if err != nil {
		return nil, &contentError{docID: d.ID, err: err}
	}
	return rc, nil
}

// contentError is a failure to open a document's content: "document ID:
// the store's error". A step error whose input is that document names it
// already and says the store's error alone (stepError.Error).
type contentError struct {
	docID string
	err   error
}

func (e *contentError) Error() string { return fmt.Sprintf("document %s: %v", e.docID, e.err) }
func (e *contentError) Unwrap() error { return e.err }

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
// "" detects the type as an add of a document of the same name does (the
// name's extension, else the new content); a caller that knows the new
// content's file name passes ContentTypeByName's type. When the content
// changed and the document is an original (no step derived it) of a
// basket bound to a pipeline, a job for it is enqueued in the same
// transaction, as for an add. It
// returns docex.ErrNotFound for an unknown document,
// docex.ErrDuplicateContent when another document of the basket has the
// new content, docex.ErrTooLarge over the limit. Every failure after the
// caller's role is checked is audited, as AddDocuments audits its own
// (document.update, outcome error, the document as target); nothing is
// changed.
func (s *Session) UpdateContent(ctx context.Context, id string, r io.Reader, contentType string) (docex.Document, error) {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.update", id)
	if err != nil {
		return docex.Document{}, err
	}
	defer st.Close()
	fail := func(err error) (docex.Document, error) {
		return docex.Document{}, s.failed(ctx, st, "document.update", id, err)
	}
	if err := checkID("document", id); err != nil {
		return fail(err)
	}
	if contentType != "" {
		if contentType, err = ParseContentType(contentType); err != nil {
			return fail(err)
		}
	}
	if err := s.e.checkClaimOnce(ctx); err != nil {
		return fail(err)
	}
	tc, err := s.e.tenantContent(st.Tenant())
	if err != nil {
		return fail(err)
	}
	c, err := s.stageContent(ctx, tc, r, id)
	if err != nil {
		return fail(err)
	}
	defer c.Discard()
	// Content the tenant holds already (another document's, or this
	// one's) is not written here: the transaction finds it referenced and
	// puts nothing.
	if err := syncNew(ctx, st, tc, []driver.Staged{c}); err != nil {
		return fail(err)
	}
	sum := c.Checksum()
	var old, upd docex.Document
	now := s.e.now()
	err = s.write(ctx, st, "document.update", id, func(tx driver.Tx) error {
		// Its basket (shared), then the document, locked before it is
		// read, in the order a basket delete locks them: an update of
		// the document, or a delete of its basket, in flight commits
		// first, and the content this update replaces (and releases) is
		// the one the document has; a basket delete that comes later
		// releases the new one. The shared lock also makes a bind or
		// unbind in flight commit first (enqueueBound, below).
		pre, err := tx.Document(ctx, id)
		if err != nil {
			return err
		}
		if _, err := tx.LockBasket(ctx, pre.BasketID, false); err != nil {
			return err
		}
		if _, err := tx.LockDocuments(ctx, []string{id}, true); err != nil {
			return err
		}
		if old, err = tx.Document(ctx, id); err != nil {
			return err
		}
		if err := tx.LockContent(ctx, sum); err != nil {
			return err
		}
		var puts putNew
		if err := puts.add(ctx, tx, c); err != nil {
			return err
		}
		if err := puts.put(ctx, tx, tc); err != nil {
			return err
		}
		ct := contentType
		if ct == "" {
			ct = detectContentType("", old.Name, c.Head())
		}
		if err := tx.UpdateContent(ctx, id, c.Size(), sum, ct, now); err != nil {
			return err
		}
		if old.Checksum != sum {
			if err := s.dropInTx(ctx, tx, tc, old.Checksum); err != nil {
				return err
			}
		}
		if upd, err = tx.Document(ctx, id); err != nil {
			return err
		}
		if old.Checksum == sum {
			return nil
		}
		// New content of an original document in a bound basket is
		// processed like an added document: its job commits with the
		// update (a document a step derived is not: its source's job
		// makes it).
		derived, err := derivedAmong(ctx, tx, []string{id})
		if err != nil || derived[id] {
			return err
		}
		return s.enqueueBound(ctx, old.BasketID)(tx, []Added{{Document: upd}})
	})
	if err != nil {
		return docex.Document{}, err
	}
	if old.Checksum != sum {
		s.releaseAfter(ctx, st, tc, old.Checksum)
	}
	return upd, nil
}

// DeleteDocument deletes a document, its metadata and (when no other
// document shares it) its content. Documents derived from it stay, their
// lineage saying the source is gone. It returns docex.ErrNotFound for an
// unknown document, and the content store's error, having deleted
// nothing, when the store cannot remove content now (DeleteBasket).
func (s *Session) DeleteDocument(ctx context.Context, id string) error {
	return s.deleteDocument(ctx, "", id, false)
}

// DeleteUnderivedDocument is DeleteDocument for a document no live
// document derives from, directly or not. The check is made in the
// deleting transaction, with the document locked first: a job deriving
// from it commits before and is counted, or finds it gone and writes
// nothing. It returns an error wrapping docex.ErrHasDerived (a conflict)
// that says how many documents derive from it, having deleted nothing,
// and otherwise the errors of DeleteDocument.
func (s *Session) DeleteUnderivedDocument(ctx context.Context, id string) error {
	return s.deleteDocument(ctx, "", id, true)
}

// DeleteDocumentIn deletes a document only if it belongs to the basket;
// docex.ErrNotFound otherwise.
func (s *Session) DeleteDocumentIn(ctx context.Context, basketID, id string) error {
	if basketID == "" {
		return docex.Errorf(docex.ErrInvalid, "basket id is empty")
	}
	return s.deleteDocument(ctx, basketID, id, false)
}

// deleteDocument deletes document id (only from basketID when not empty;
// with underived, only when no live document derives from it).
func (s *Session) deleteDocument(ctx context.Context, basketID, id string, underived bool) error {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkID("document", id); err != nil {
		return s.failed(ctx, st, "document.delete", id, err)
	}
	if basketID != "" {
		if err := checkID("basket", basketID); err != nil {
			return s.failed(ctx, st, "document.delete", id, err)
		}
	}
	if err := s.probeContent(ctx, st, "document.delete", id); err != nil {
		return err
	}
	tc, err := s.e.tenantContent(st.Tenant())
	if err != nil {
		return err
	}
	var sum string
	err = s.write(ctx, st, "document.delete", id, func(tx driver.Tx) error {
		// Locked before it is read: a content update in flight commits
		// first, and the content released is the one the document has.
		if _, err := tx.LockDocuments(ctx, []string{id}, true); err != nil {
			return err
		}
		d, err := tx.Document(ctx, id)
		if err != nil {
			return err
		}
		if basketID != "" && d.BasketID != basketID {
			return docex.Errorf(docex.ErrNotFound, "document %s is not in basket %s", id, basketID)
		}
		if underived {
			if n, err := liveDescendantsIn(ctx, tx, id); err != nil || n > 0 {
				if err == nil {
					err = docex.Errorf(docex.ErrHasDerived, "document %s has %d derived document(s)", id, n)
				}
				return err
			}
		}
		sum = d.Checksum
		if err := tx.DeleteDocument(ctx, id); err != nil {
			return err
		}
		return s.dropInTx(ctx, tx, tc, sum)
	})
	if err != nil {
		return err
	}
	s.releaseAfter(ctx, st, tc, sum)
	return nil
}

// SetMetadata sets metadata keys on a document and returns the updated
// document. It returns docex.ErrNotFound for an unknown document and
// docex.ErrInvalid for bad keys or values, or when the document would
// then have more than MaxDocumentMetaKeys keys or MaxDocumentMetaBytes
// bytes of metadata (nothing is set).
func (s *Session) SetMetadata(ctx context.Context, id string, kv map[string]docex.Value) (docex.Document, error) {
	st, err := s.open(ctx, tenancy.ActionWrite, "metadata.set", id)
	if err != nil {
		return docex.Document{}, err
	}
	defer st.Close()
	if err := checkID("document", id); err != nil {
		return docex.Document{}, s.failed(ctx, st, "metadata.set", id, err)
	}
	if len(kv) == 0 {
		return docex.Document{}, s.failed(ctx, st, "metadata.set", id, docex.Errorf(docex.ErrInvalid, "no metadata to set"))
	}
	if err := validateMeta(kv); err != nil {
		return docex.Document{}, s.failed(ctx, st, "metadata.set", id, err)
	}
	var d docex.Document
	err = s.write(ctx, st, "metadata.set", id, func(tx driver.Tx) error {
		if err := setMetaChecked(ctx, tx, id, kv, s.e.now()); err != nil {
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
	if err := checkID("document", id); err != nil {
		return docex.Value{}, err
	}
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
	st, err := s.open(ctx, tenancy.ActionWrite, "metadata.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkID("document", id); err != nil {
		return s.failed(ctx, st, "metadata.delete", id+"/"+key, err)
	}
	if err := validateMetaKey(key); err != nil {
		return s.failed(ctx, st, "metadata.delete", id+"/"+key, err)
	}
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
	log, err := st.Audit(ctx, page)
	err = s.readDone(ctx, st, "audit.list", "", err)
	return log, err
}

// plural returns "1 document", "2 documents".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
