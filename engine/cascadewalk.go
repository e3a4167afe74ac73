package engine

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/docex-dev/docex/driver"
)

// cascadePage is how many documents derived from one document a cascade's
// walk reads at a time (driver.LineagePager).
const cascadePage = 1024

// cascadeWalk walks the documents derived from a cascade's source,
// directly or not, depth first a batch at a time, and yields each after
// every document derived from it (post-order): the order a cascade
// deletes them in. A batch is a page of the documents derived from the
// batch above it on the walk's path (the source alone at the top), read
// in the order of the lineage primary key (driver.LineagePager): a
// batch's documents are yielded once every page derived from them was
// walked. It follows the edges DescendantIDs follows:
// those that created their document and those into a document that is
// gone, not a deduplicated edge; an edge into a document of a batch on
// the path (a cycle through deduplicated edges into documents gone since,
// or a document derived twice) is not followed, as that batch walks the
// document's own, nor one into a document the walk reached before
// (walkSeen): a document reached by two paths is walked and yielded once,
// so that a walk's reads grow with the edges, not with the paths, which
// documents derived twice at several levels would multiply. It goes to
// any depth, and holds at most a page of ids per level of the path and a
// page yielded, and the set of the documents it reached, 16 bytes of each
// id (walkSeen), not their edges or names: each id on the path is one of
// a document reached, so the path holds no more ids than the set, and at
// most a page per level.
//
// A walk may span transactions (next is given the one it reads in): the
// documents it read in an earlier one are yielded as they were then
// (deleteCascaded deletes those still there), and a document derived
// meanwhile from one whose page was read is not seen (the cascade's last
// walk, in one transaction, sees it).
type cascadeWalk struct {
	page    int
	path    []walkFrame
	onPath  map[string]int // the ids of the path's batches (a count each)
	pending []walkChild    // a batch done, not yielded yet
	seen    *walkSeen      // the documents the walk reached, shared by its clones
	// held is how many document ids the walk holds; maxHeld the most it
	// held at once (tests).
	held, maxHeld int
}

// walkFrame is a batch of the walk's path: documents at one depth.
type walkFrame struct {
	docs              []walkChild // by id
	afterSrc, afterID string      // the last (source, derived) pair read from docs
	more              bool        // the pairs may go on after it
}

// walkChild is a document of a batch and whether it was there when read.
type walkChild struct {
	id   string
	live bool
}

// newCascadeWalk returns a walk from root, reading page derived documents
// at a time.
func newCascadeWalk(root string, page int) *cascadeWalk {
	w := &cascadeWalk{page: page}
	w.reset(root)
	return w
}

// reset starts the walk again from root.
func (w *cascadeWalk) reset(root string) {
	w.path = append(w.path[:0], walkFrame{docs: []walkChild{{id: root, live: true}}, more: true})
	w.onPath = map[string]int{root: 1}
	w.pending = nil
	w.seen = newWalkSeen()
	w.seen.mark(root)
	w.count()
}

// walkSeen is the set of the documents a walk reached, kept across the
// transactions it spans: each mark records the attempt (a transaction,
// tried once) that made it, and counts only when that attempt committed
// or is the current one, so that a transaction retried from a clone of
// the walk (deleteCascade) does not skip what a failed attempt reached.
// A UUID takes 16 bytes; another id, as read.
type walkSeen struct {
	ids       map[[16]byte]uint32
	other     map[string]uint32
	committed map[uint32]bool
	attempt   uint32
}

// newWalkSeen returns an empty set, its first attempt current.
func newWalkSeen() *walkSeen {
	return &walkSeen{ids: map[[16]byte]uint32{}, other: map[string]uint32{}, committed: map[uint32]bool{}, attempt: 1}
}

// uuidKey returns id's 16 bytes when id is a canonical UUID.
func uuidKey(id string) ([16]byte, bool) {
	u, err := uuid.Parse(id)
	return u, err == nil && len(id) == 36
}

func (s *walkSeen) get(id string) (uint32, bool) {
	if u, ok := uuidKey(id); ok {
		a, ok := s.ids[u]
		return a, ok
	}
	a, ok := s.other[id]
	return a, ok
}

// has reports whether id was marked by a committed attempt or by the
// current one.
func (s *walkSeen) has(id string) bool {
	a, ok := s.get(id)
	return ok && (a == s.attempt || s.committed[a])
}

func (s *walkSeen) mark(id string) {
	if u, ok := uuidKey(id); ok {
		s.ids[u] = s.attempt
		return
	}
	s.other[id] = s.attempt
}

// begin starts a new attempt (a transaction, or its retry): what an
// attempt that did not commit marked no longer counts. The set is shared
// by the walk's clones, so that no attempt number is given twice.
func (w *cascadeWalk) begin() { w.seen.attempt++ }

// commit records that the current attempt's transaction committed.
func (w *cascadeWalk) commit() { w.seen.committed[w.seen.attempt] = true }

// clone returns a copy of w that shares nothing with it that either
// changes: a transaction retried starts again from it.
func (w *cascadeWalk) clone() *cascadeWalk {
	c := *w
	c.path = slices.Clone(w.path)
	c.pending = slices.Clone(w.pending)
	c.onPath = maps.Clone(w.onPath)
	return &c
}

func (w *cascadeWalk) count() {
	w.held = len(w.pending)
	for _, f := range w.path {
		w.held += len(f.docs)
	}
	w.maxHeld = max(w.maxHeld, w.held)
}

// next returns the next document of the walk, read in tx, and whether it
// was there when read; ok is false when the walk is over (the source
// itself is not yielded: its caller deletes it). With lock, the
// documents of each page are locked exclusively as they are read
// (driver.Tx.LockDocuments), before their own derived documents are read:
// a job deriving from one commits first and is seen, or finds it gone and
// writes nothing. It returns the store's error. Before, it refused a
// document more than MaxLineageDepth levels below the source.
func (w *cascadeWalk) next(ctx context.Context, tx driver.Tx, lock bool) (id string, live, ok bool, err error) {
	defer w.count()
	for len(w.pending) == 0 && len(w.path) > 0 {
		top := &w.path[len(w.path)-1]
		if top.more {
			kids, err := w.read(ctx, tx, top, lock)
			if err != nil {
				return "", false, false, err
			}
			if len(kids) > 0 {
				w.path = append(w.path, walkFrame{docs: kids, more: true})
				for _, k := range kids {
					w.onPath[k.id]++
				}
			}
			continue
		}
		f := w.path[len(w.path)-1]
		w.path = w.path[:len(w.path)-1]
		for _, d := range f.docs {
			if w.onPath[d.id]--; w.onPath[d.id] == 0 {
				delete(w.onPath, d.id)
			}
		}
		if len(w.path) > 0 {
			w.pending = f.docs
		}
	}
	if len(w.pending) == 0 {
		return "", false, false, nil
	}
	k := w.pending[0]
	w.pending = w.pending[1:]
	return k.id, k.live, true, nil
}

// read reads the next page of the pairs derived from f's documents and
// returns the derived documents the walk follows that are not on its
// path, by id, each once, locked with lock.
func (w *cascadeWalk) read(ctx context.Context, tx driver.Tx, f *walkFrame, lock bool) ([]walkChild, error) {
	srcs := make([]string, len(f.docs))
	for i, d := range f.docs {
		srcs[i] = d.id
	}
	refs, pagerRead, err := derivedAfter(ctx, tx, srcs, f.afterSrc, f.afterID, w.page)
	if err != nil {
		return nil, err
	}
	f.more = len(refs) == w.page
	if len(refs) > 0 {
		f.afterSrc, f.afterID = refs[len(refs)-1].SourceID, refs[len(refs)-1].ID
	}
	var kids []walkChild
	for _, r := range refs {
		if !r.Dedup && w.onPath[r.ID] == 0 && !w.seen.has(r.ID) {
			kids = append(kids, walkChild{id: r.ID, live: !r.Gone})
		}
	}
	slices.SortFunc(kids, func(a, b walkChild) int { return strings.Compare(a.id, b.id) })
	kids = slices.CompactFunc(kids, func(a, b walkChild) bool { return a.id == b.id })
	for _, k := range kids {
		w.seen.mark(k.id)
	}
	if len(kids) == 0 || !lock && pagerRead {
		return kids, nil
	}
	// Locked (lock), and which are there read again with the lock held
	// (or first: driver.Reader.Lineage does not say).
	ids := make([]string, len(kids))
	for i, k := range kids {
		ids[i] = k.id
	}
	live, err := tx.LockDocuments(ctx, ids, lock)
	if err != nil {
		return nil, err
	}
	for i := range kids {
		_, kids[i].live = live[kids[i].id]
	}
	return kids, nil
}

// derivedAfter returns the pairs (source, derived document) of the edges
// out of sources after (afterSrc, afterID), at most limit, in order
// (driver.LineagePager): in one read when r has driver.LineagePager,
// else from all the edges of each source (driver.Reader.Lineage), which
// then are read once per page and do not say which documents are gone
// (Gone false): paged is false then.
func derivedAfter(ctx context.Context, r driver.Reader, sources []string, afterSrc, afterID string, limit int) (refs []driver.DerivedRef, paged bool, err error) {
	if lp, ok := r.(driver.LineagePager); ok {
		refs, err := lp.DerivedAfter(ctx, sources, afterSrc, afterID, limit)
		return refs, true, err
	}
	srcs := slices.Clone(sources)
	slices.Sort(srcs)
	srcs = slices.Compact(srcs)
	out := []driver.DerivedRef{}
	for _, src := range srcs {
		if src < afterSrc {
			continue
		}
		_, ders, err := r.Lineage(ctx, src)
		if err != nil {
			return nil, false, err
		}
		slices.SortFunc(ders, func(a, b driver.LineageEdge) int { return strings.Compare(a.DerivedID, b.DerivedID) })
		for _, e := range ders {
			if src == afterSrc && e.DerivedID <= afterID {
				continue
			}
			if n := len(out); n > 0 && out[n-1].SourceID == src && out[n-1].ID == e.DerivedID {
				out[n-1].Dedup = out[n-1].Dedup && e.Dedup
				continue
			}
			if len(out) == limit {
				return out, false, nil
			}
			out = append(out, driver.DerivedRef{SourceID: src, ID: e.DerivedID, Dedup: e.Dedup})
		}
	}
	return out, false, nil
}
