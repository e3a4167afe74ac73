package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// Bounds of a lineage walk, each way: Lineage lists at most
// MaxLineageEdges edges and MaxLineageDepth levels of ancestors, and as
// many of descendants, and sets Truncated when there were more.
const (
	MaxLineageDepth = 64
	MaxLineageEdges = 10000
)

// LineageEdge is one "derived from" relation: which step of which
// pipeline version, with which plugin module and parameters, produced
// Derived from Source. A direct run (Session.RunPlugin, docex run) has no
// pipeline, step or job: those are "" and Version 0. A document that was
// deleted is shown as gone. Deduplicated: the step's output had the
// content of a document the basket held already, and deduplicated onto
// it; the edge did not create Derived (driver.LineageEdge.Dedup).
type LineageEdge struct {
	SourceID     string            `json:"source_id"`
	SourceName   string            `json:"source_name"`
	SourceGone   bool              `json:"source_gone"`
	DerivedID    string            `json:"derived_id"`
	DerivedName  string            `json:"derived_name"`
	DerivedGone  bool              `json:"derived_gone"`
	Depth        int               `json:"depth"` // 1: a direct source or derivative
	Pipeline     string            `json:"pipeline"`
	Version      int               `json:"version"`
	Step         string            `json:"step"`
	Plugin       string            `json:"plugin"`
	ModuleSHA256 string            `json:"module_sha256"`
	Params       map[string]string `json:"params"`
	JobID        string            `json:"job_id"`
	CreatedAt    time.Time         `json:"created_at"`
	Deduplicated bool              `json:"deduplicated"`
}

// Lineage is a document's chain both ways.
type Lineage struct {
	DocumentID  string        `json:"document_id"`
	Name        string        `json:"name"`
	Gone        bool          `json:"gone"`
	Ancestors   []LineageEdge `json:"ancestors"`
	Descendants []LineageEdge `json:"descendants"`
	Truncated   bool          `json:"truncated"` // the chain is longer than listed (MaxLineageEdges, MaxLineageDepth)
}

// Lineage returns what a document was derived from (ancestors, nearest
// first) and what was derived from it (descendants), transitively (read
// action). A deleted document with recorded lineage is shown as gone; an
// id without document or lineage is docex.ErrNotFound, a malformed one
// docex.ErrInvalidID.
func (s *Session) Lineage(ctx context.Context, docID string) (Lineage, error) {
	if err := checkID("document", docID); err != nil {
		return Lineage{}, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.lineage", docID)
	if err != nil {
		return Lineage{}, err
	}
	defer st.Close()
	l, err := lineageOf(ctx, st, docID)
	s.readDone(ctx, st, "document.lineage", docID, err)
	return l, err
}

func lineageOf(ctx context.Context, st driver.TenantStore, docID string) (Lineage, error) {
	out := Lineage{DocumentID: docID, Ancestors: []LineageEdge{}, Descendants: []LineageEdge{}}
	names := map[string]string{}
	gone := map[string]bool{}
	br, _ := st.(driver.BatchReader)
	// known reads the names of the documents of ids not read yet: in one
	// statement when the store has driver.BatchReader, else one by one.
	// A document that is not there is gone.
	known := func(ids []string) error {
		var need []string
		asked := map[string]bool{}
		for _, id := range ids {
			if _, ok := names[id]; !ok && !gone[id] && !asked[id] {
				asked[id] = true
				need = append(need, id)
			}
		}
		if len(need) == 0 {
			return nil
		}
		if br != nil {
			docs, err := br.DocumentsByID(ctx, need)
			if err != nil {
				return err
			}
			for _, id := range need {
				if d, ok := docs[id]; ok {
					names[id] = d.Name
				} else {
					gone[id] = true
				}
			}
			return nil
		}
		for _, id := range need {
			d, err := st.Document(ctx, id)
			switch {
			case errors.Is(err, docex.ErrNotFound):
				gone[id] = true
			case err != nil:
				return err
			default:
				names[id] = d.Name
			}
		}
		return nil
	}
	if err := known([]string{docID}); err != nil {
		return out, err
	}
	out.Name, out.Gone = names[docID], gone[docID]
	walk := func(up bool) ([]LineageEdge, error) {
		var edges []LineageEdge
		seen := map[string]bool{docID: true}
		frontier := []string{docID}
		for depth := 1; len(frontier) > 0 && depth <= MaxLineageDepth; depth++ {
			list, err := lineageLevel(ctx, st, frontier, up)
			if err != nil {
				return nil, err
			}
			cut := false // this walk's own: the other's truncation does not end it
			if room := MaxLineageEdges - len(edges); len(list) > room {
				list, cut, out.Truncated = list[:room], true, true
			}
			ids := make([]string, 0, 2*len(list))
			for _, e := range list {
				ids = append(ids, e.SourceID, e.DerivedID)
			}
			if err := known(ids); err != nil {
				return nil, err
			}
			var next []string
			for _, e := range list {
				le := LineageEdge{SourceID: e.SourceID, DerivedID: e.DerivedID, Depth: depth, Pipeline: e.Pipeline, Version: e.Version,
					Step: e.Step, Plugin: e.Plugin, ModuleSHA256: e.ModuleSHA256, Params: map[string]string{}, JobID: e.JobID, CreatedAt: e.CreatedAt, Deduplicated: e.Dedup}
				_ = json.Unmarshal([]byte(e.Params), &le.Params)
				le.SourceName, le.SourceGone = names[e.SourceID], gone[e.SourceID]
				le.DerivedName, le.DerivedGone = names[e.DerivedID], gone[e.DerivedID]
				edges = append(edges, le)
				other := e.DerivedID
				if up {
					other = e.SourceID
				}
				if !seen[other] {
					seen[other] = true
					next = append(next, other)
				}
			}
			if cut {
				return edges, nil
			}
			frontier = next
		}
		// The walk stopped at MaxLineageDepth: truncated only if a
		// document at that depth has edges further on.
		if len(frontier) > 0 {
			further, err := lineageLevel(ctx, st, frontier, up)
			if err != nil {
				return nil, err
			}
			out.Truncated = out.Truncated || len(further) > 0
		}
		return edges, nil
	}
	var err error
	if out.Ancestors, err = walk(true); err != nil {
		return out, err
	}
	if out.Descendants, err = walk(false); err != nil {
		return out, err
	}
	if out.Gone && len(out.Ancestors) == 0 && len(out.Descendants) == 0 {
		return out, docex.Errorf(docex.ErrNotFound, "document %q not found", docID)
	}
	if out.Ancestors == nil {
		out.Ancestors = []LineageEdge{}
	}
	if out.Descendants == nil {
		out.Descendants = []LineageEdge{}
	}
	return out, nil
}

// DescendantIDs returns the ids of the existing documents derived,
// directly or not, from a document (read action), deepest first: those a
// cascading delete deletes (DeleteDocumentCascade), reached by the edges
// that are not Deduplicated (edges into documents that are gone are
// followed; those documents are not listed). A document's depth is the
// fewest such edges from the document to it, and each is listed once;
// the documents of one depth come in the order of the lineage's key
// (source id, then derived id) within each read. Every one is listed,
// however many edges the lineage has (Lineage stops at MaxLineageEdges)
// or levels (DeleteDocumentCascadeEach deletes them all too): the walk reads a level a
// page at a time, at most cascadePage sources and cascadePage derived
// documents per read (driver.LineagePager; else each source's edges,
// driver.Reader.Lineage), and holds the ids it reached (16 bytes each in
// its set, walkSeen), not their edges or names. A document that was
// deleted with lineage recorded has its descendants listed; an id
// without document or lineage is docex.ErrNotFound, a malformed one
// docex.ErrInvalidID. Before, it listed those of the first 10,000 edges
// of Lineage (MaxLineageEdges) and 64 levels.
func (s *Session) DescendantIDs(ctx context.Context, docID string) ([]string, error) {
	if err := checkID("document", docID); err != nil {
		return nil, err
	}
	st, err := s.open(ctx, tenancy.ActionRead, "document.lineage", docID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ids, err := descendantIDsIn(ctx, st, docID, cascadePage)
	s.readDone(ctx, st, "document.lineage", docID, err)
	return ids, err
}

// descendantIDsIn is DescendantIDs read from r, page sources and derived
// documents per read.
func descendantIDsIn(ctx context.Context, r driver.Reader, docID string, page int) ([]string, error) {
	seen := newWalkSeen()
	seen.mark(docID)
	var levels [][]string // the live documents of each level
	derived := false      // docID has derived documents, gone or not
	for frontier := []string{docID}; len(frontier) > 0; {
		var level, live []string
		for off := 0; off < len(frontier); off += page {
			srcs := frontier[off:min(off+page, len(frontier))]
			afterSrc, afterID := "", ""
			for {
				refs, paged, err := derivedAfter(ctx, r, srcs, afterSrc, afterID, page)
				if err != nil {
					return nil, err
				}
				derived = derived || len(refs) > 0
				var check []string // not paged: which are there is read after
				for _, ref := range refs {
					if ref.Dedup || seen.has(ref.ID) {
						continue
					}
					seen.mark(ref.ID)
					level = append(level, ref.ID)
					if !paged {
						check = append(check, ref.ID)
					} else if !ref.Gone {
						live = append(live, ref.ID)
					}
				}
				if len(check) > 0 {
					there, err := documentsThere(ctx, r, check)
					if err != nil {
						return nil, err
					}
					for _, id := range check {
						if there[id] {
							live = append(live, id)
						}
					}
				}
				if len(refs) < page {
					break
				}
				afterSrc, afterID = refs[len(refs)-1].SourceID, refs[len(refs)-1].ID
			}
		}
		levels, frontier = append(levels, live), level
	}
	if !derived {
		// No derived documents: an unknown id is not found, a document
		// gone with ancestors recorded has none.
		if _, err := r.Document(ctx, docID); errors.Is(err, docex.ErrNotFound) {
			srcs, _, err := r.Lineage(ctx, docID)
			if err != nil {
				return nil, err
			}
			if len(srcs) == 0 {
				return nil, docex.Errorf(docex.ErrNotFound, "document %q not found", docID)
			}
		} else if err != nil {
			return nil, err
		}
	}
	n := 0
	for _, l := range levels {
		n += len(l)
	}
	ids := make([]string, 0, n)
	for i := len(levels) - 1; i >= 0; i-- {
		ids = append(ids, levels[i]...)
	}
	return ids, nil
}

// documentsThere returns which of ids are documents: in one read when r
// has driver.BatchReader, else one by one.
func documentsThere(ctx context.Context, r driver.Reader, ids []string) (map[string]bool, error) {
	there := make(map[string]bool, len(ids))
	if br, ok := r.(driver.BatchReader); ok {
		docs, err := br.DocumentsByID(ctx, ids)
		if err != nil {
			return nil, err
		}
		for id := range docs {
			there[id] = true
		}
		return there, nil
	}
	for _, id := range ids {
		_, err := r.Document(ctx, id)
		switch {
		case errors.Is(err, docex.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			there[id] = true
		}
	}
	return there, nil
}

// CascadeChunk is the most documents one transaction of a cascading
// delete (DeleteDocumentCascade) deletes.
const CascadeChunk = 500

// DeleteDocumentCascade deletes a document and every document derived
// from it, directly or not (write action), and returns the ids deleted
// (DeleteDocumentCascadeEach, whose deleted it gathers). On error, the
// ids deleted before are not returned.
func (s *Session) DeleteDocumentCascade(ctx context.Context, id string) ([]string, error) {
	deleted := []string{}
	err := s.DeleteDocumentCascadeEach(ctx, id, func(ids []string) error {
		deleted = append(deleted, ids...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// DeleteDocumentCascadeEach deletes a document and every document derived
// from it, directly or not (write action). Lineage keeps the edges and
// shows the documents as gone. Each deletion is audited (document.delete,
// with the cascade's source in the detail, cascade_from).
//
// The documents are walked depth first, a page of the documents derived
// from a level of the walk at a time (cascadeWalk), and each is deleted
// after (or with) every document derived from it, however deep the tree
// (DescendantIDs lists the same documents): the walk holds a page per
// level of its path and the set of the documents it reached (16 bytes
// each), not their edges or names. A document with fewer than
// CascadeChunk descendants goes with them in one transaction: all of them
// or none. A larger cascade deletes CascadeChunk documents per
// transaction, each document with its metadata, its audit entry and
// (database content) its content in the same transaction; the last transaction
// walks the lineage again, with each document locked, and deletes what is
// left with the source, so that documents a job derived meanwhile go too
// (if more than CascadeChunk are left, it deletes a chunk of them and the
// cascade goes on). A cascade interrupted between two transactions (a
// crash, an error) leaves the source and some of its descendants, never
// part of a document; running it again finishes it, as lineage keeps the
// edges of the documents deleted. Content outside the database is
// released after each transaction commits, content a crash kept from
// being released is left for docex gc (as DeleteDocument's).
//
// deleted is called after each transaction commits with the ids it
// deleted (none, possibly), descendants first and the source last (a
// source another call deleted during a larger cascade is not listed); an
// error deleted returns stops the cascade there and is returned. It
// returns docex.ErrNotFound, having deleted nothing, for an unknown
// document; the content store's
// error, having deleted nothing, when the store cannot remove content now
// (DeleteBasket). On any other error a larger cascade may have deleted
// some descendants, which deleted was given.
func (s *Session) DeleteDocumentCascadeEach(ctx context.Context, id string, deleted func(ids []string) error) error {
	return s.deleteCascade(ctx, id, cascadePage, deleted)
}

// deleteCascade is DeleteDocumentCascadeEach, its walk reading page
// derived documents at a time.
func (s *Session) deleteCascade(ctx context.Context, id string, page int, deleted func(ids []string) error) error {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.delete", id)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkID("document", id); err != nil {
		return s.failed(ctx, st, "document.delete", id, err)
	}
	if err := s.probeContent(ctx, st, "document.delete", id); err != nil {
		return err
	}
	tc, err := s.e.tenantContent(st.Tenant())
	if err != nil {
		return err
	}
	w := newCascadeWalk(id, page)
	// collect gathers in tx the next documents of w that are there, up
	// to limit of them; finished is true when the walk is over.
	collect := func(ctx context.Context, tx driver.Tx, w *cascadeWalk, limit int, lock bool) (ids []string, finished bool, err error) {
		for len(ids) < limit {
			d, live, ok, err := w.next(ctx, tx, lock)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				return ids, true, nil
			}
			if live {
				ids = append(ids, d)
			}
		}
		return ids, false, nil
	}
	// lockRoot locks the source before its derived documents are read
	// (a locked walk).
	lockRoot := func(ctx context.Context, tx driver.Tx) error {
		_, err := tx.LockDocuments(ctx, []string{id}, true)
		return err
	}
	// The first transaction: the source exists; a cascade that fits in
	// one transaction is done there; a larger one deletes its first chunk
	// and its walk goes on in the next. Before, a larger one was walked
	// to its end first, to refuse a tree more than MaxLineageDepth levels
	// deep before deleting anything; the walk now goes to any depth.
	var chunk, sums []string
	done := false
	err = s.writeAudit(ctx, st, "document.delete", id, false, func(tx driver.Tx) error {
		if _, err := tx.Document(ctx, id); err != nil {
			return err
		}
		if err := lockRoot(ctx, tx); err != nil {
			return err
		}
		w.reset(id)
		ids, finished, err := collect(ctx, tx, w, CascadeChunk, true)
		if err != nil {
			return err
		}
		if done = finished; done {
			ids = append(ids, id)
		}
		chunk, sums, err = s.deleteCascaded(ctx, tx, tc, id, ids)
		return err
	})
	if err != nil {
		return err
	}
	w.commit()
	s.releaseAfter(ctx, st, tc, sums...)
	if err := deleted(chunk); err != nil {
		return err
	}
	// The next: each deletes the next chunk of the walk (the documents
	// of it still there). When the walk is over, the last walk starts, in
	// the same transaction, from the source, with each document locked (a
	// job that derived documents from one meanwhile committed first and
	// is seen); when it ends in that transaction, what it found is deleted
	// with the source. A source another call deleted meanwhile is not
	// there to delete; its descendants still go.
	last := false // w is the last walk
	for !done {
		saved, savedLast := w.clone(), last
		err := s.writeAudit(ctx, st, "document.delete", id, false, func(tx driver.Tx) error {
			*w, last = *saved.clone(), savedLast // a retried transaction starts again
			w.begin()
			chunk, sums, done = nil, nil, false
			if last {
				if err := lockRoot(ctx, tx); err != nil {
					return err
				}
			}
			// del deletes ids, adding them to chunk and their contents
			// to sums.
			del := func(ids []string) error {
				ds, ss, err := s.deleteCascaded(ctx, tx, tc, id, ids)
				chunk = append(chunk, ds...)
				for _, sum := range ss {
					if !slices.Contains(sums, sum) {
						sums = append(sums, sum)
					}
				}
				return err
			}
			for {
				ids, finished, err := collect(ctx, tx, w, CascadeChunk-len(chunk), last)
				if err != nil {
					return err
				}
				switch {
				case !finished:
					// A chunk: a last walk that found more goes on as
					// a walk of chunks, and another last walk follows.
					last = false
					return del(ids)
				case last:
					done = true
					return del(append(ids, id))
				}
				// The walk is over: what it found is deleted before the
				// last walk starts, which finds it gone.
				if err := del(ids); err != nil {
					return err
				}
				last = true
				w.reset(id)
				if err := lockRoot(ctx, tx); err != nil {
					return err
				}
			}
		})
		if err != nil {
			return err
		}
		w.commit()
		s.releaseAfter(ctx, st, tc, sums...)
		if err := deleted(chunk); err != nil {
			return err
		}
	}
	return nil
}

// deleteCascaded deletes in tx, for the cascading delete of root, the
// documents of ids that exist (locked first: a content update in flight
// commits before, and the content released is the one the document has),
// each with a document.delete audit entry naming root (cascade_from), and
// the contents no document refers to any more when the content store is
// part of tx (dropInTx). It deletes them in few statements when tx is a
// driver.DeleteBatchTx, one by one otherwise. It returns the ids deleted,
// in the order of ids, and their contents' checksums (each once), for
// releaseAfter; on error, the transaction must be rolled back.
func (s *Session) deleteCascaded(ctx context.Context, tx driver.Tx, tc driver.TenantContent, root string, ids []string) (deleted, sums []string, err error) {
	live, err := tx.LockDocuments(ctx, ids, true)
	if err != nil {
		return nil, nil, err
	}
	audit := make([]docex.AuditEntry, 0, len(live))
	seen := make(map[string]bool, len(live))
	seenSum := map[string]bool{}
	for _, d := range ids {
		sum, ok := live[d]
		if !ok || seen[d] {
			continue // gone already; its descendants were walked
		}
		seen[d] = true
		deleted = append(deleted, d)
		audit = append(audit, s.entryDetail("document.delete", d, map[string]any{"cascade_from": root}))
		if !seenSum[sum] {
			seenSum[sum] = true
			sums = append(sums, sum)
		}
	}
	if bt, ok := tx.(driver.DeleteBatchTx); ok {
		err = bt.DeleteDocuments(ctx, deleted, audit)
	} else {
		for i, d := range deleted {
			if err = tx.DeleteDocument(ctx, d); err != nil {
				break
			}
			if err = tx.AppendAudit(ctx, audit[i]); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if deleted == nil {
		deleted = []string{}
	}
	return deleted, sums, s.dropInTx(ctx, tx, tc, sums...)
}

// liveDescendantsIn returns how many documents derived from docID,
// directly or not, exist, read in tx with each locked, by a cascade's
// walk (cascadeWalk: its memory does not follow the tree), at any
// depth.
func liveDescendantsIn(ctx context.Context, tx driver.Tx, docID string) (int, error) {
	w := newCascadeWalk(docID, cascadePage)
	n := 0
	for {
		_, live, ok, err := w.next(ctx, tx, true)
		if err != nil || !ok {
			return n, err
		}
		if live {
			n++
		}
	}
}

// lineageLevel returns the edges into the documents of ids (up: their
// sources) or out of them, the edges of each id in the order
// driver.Reader.Lineage gives them and the ids' in the order of ids: in
// one read when r has driver.LineageBatchReader, else one per id.
func lineageLevel(ctx context.Context, r driver.Reader, ids []string, up bool) ([]driver.LineageEdge, error) {
	lb, ok := r.(driver.LineageBatchReader)
	if !ok {
		var out []driver.LineageEdge
		for _, id := range ids {
			srcs, ders, err := r.Lineage(ctx, id)
			if err != nil {
				return nil, err
			}
			if up {
				out = append(out, srcs...)
			} else {
				out = append(out, ders...)
			}
		}
		return out, nil
	}
	all, err := lb.LineageAmong(ctx, ids, up)
	if err != nil {
		return nil, err
	}
	by := make(map[string][]driver.LineageEdge, len(ids))
	for _, e := range all {
		k := e.SourceID
		if up {
			k = e.DerivedID
		}
		by[k] = append(by[k], e)
	}
	out := make([]driver.LineageEdge, 0, len(all))
	for _, id := range ids {
		out = append(out, by[id]...)
		delete(by, id) // an id given twice is listed once
	}
	return out, nil
}
