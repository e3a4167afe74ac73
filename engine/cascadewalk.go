package engine

import (
	"context"
	"slices"
	"strings"

	"github.com/docex-dev/docex/driver"
)

// cascadePage is how many documents derived from one document a cascade's
// walk reads at a time (driver.LineagePager).
const cascadePage = 256

// cascadeWalk walks the documents derived from a cascade's source,
// directly or not, depth first, and yields each after every document
// derived from it (post-order): the order a cascade deletes them in. It
// follows the edges DescendantIDs follows (descendantsIn): those that
// created their document and those into a document that is gone, not a
// deduplicated edge; an edge back into a document on the walk's path (a
// cycle through deduplicated edges into documents gone since) is not
// followed. It holds the path from the source (at most MaxLineageDepth
// documents deep) and, for each document on it, the rest of one page of
// its derived documents (page of them): not the tree. A document reached
// by two paths is yielded twice (deleting it twice deletes it once).
//
// A walk may span transactions (next is given the one it reads in): the
// documents it read in an earlier one are yielded as they were then
// (deleteCascaded deletes those still there), and a document derived
// meanwhile from one whose page was read is not seen (the cascade's last
// walk, in one transaction, sees it).
type cascadeWalk struct {
	page int
	path []walkFrame
	// held is how many document ids the walk holds; maxHeld the most it
	// held at once (tests).
	held, maxHeld int
}

// walkFrame is a document on the walk's path.
type walkFrame struct {
	id    string
	live  bool        // it was there when read
	kids  []walkChild // the rest of the page of its derived documents read last
	after string      // the last id read of its derived documents
	more  bool        // its derived documents may go on after after
}

// walkChild is a derived document read and not walked yet.
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
	w.path = append(w.path[:0], walkFrame{id: root, live: true, more: true})
	w.count()
}

// clone returns a copy of w that shares nothing with it that either
// changes: a transaction retried starts again from it.
func (w *cascadeWalk) clone() *cascadeWalk {
	c := *w
	c.path = slices.Clone(w.path)
	for i := range c.path {
		c.path[i].kids = slices.Clone(c.path[i].kids)
	}
	return &c
}

func (w *cascadeWalk) count() {
	w.held = len(w.path)
	for _, f := range w.path {
		w.held += len(f.kids)
	}
	w.maxHeld = max(w.maxHeld, w.held)
}

// next returns the next document of the walk, read in tx, and whether it
// was there when read; ok is false when the walk is over (the source
// itself is not yielded: its caller deletes it). With lock, the
// documents of each page are locked exclusively as they are read
// (driver.Tx.LockDocuments), before their own derived documents are read:
// a job deriving from one commits first and is seen, or finds it gone and
// writes nothing. It returns tooDeepError, from the source's id, for a
// document more than MaxLineageDepth levels below the source, and the
// store's error otherwise.
func (w *cascadeWalk) next(ctx context.Context, tx driver.Tx, lock bool) (id string, live, ok bool, err error) {
	defer w.count()
	for len(w.path) > 0 {
		top := &w.path[len(w.path)-1]
		if len(top.kids) == 0 && top.more {
			if err := w.read(ctx, tx, top, lock); err != nil {
				return "", false, false, err
			}
			continue
		}
		if len(top.kids) > 0 {
			k := top.kids[0]
			top.kids = top.kids[1:]
			if len(w.path) > MaxLineageDepth {
				return "", false, false, tooDeepError{w.path[0].id}
			}
			w.path = append(w.path, walkFrame{id: k.id, live: k.live, more: true})
			continue
		}
		f := *top
		w.path = w.path[:len(w.path)-1]
		if len(w.path) == 0 {
			return "", false, false, nil
		}
		return f.id, f.live, true, nil
	}
	return "", false, false, nil
}

// read reads the next page of f's derived documents into f.kids: those
// the walk follows and that are not on its path, locked with lock.
func (w *cascadeWalk) read(ctx context.Context, tx driver.Tx, f *walkFrame, lock bool) error {
	refs, err := derivedAfter(ctx, tx, f.id, f.after, w.page)
	if err != nil {
		return err
	}
	f.more = len(refs) == w.page
	if len(refs) > 0 {
		f.after = refs[len(refs)-1].ID
	}
	ids := make([]string, 0, len(refs))
	for _, r := range refs {
		if !r.Dedup && !w.onPath(r.ID) {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// Locked (lock) or not, LockDocuments says which are there.
	live, err := tx.LockDocuments(ctx, ids, lock)
	if err != nil {
		return err
	}
	f.kids = make([]walkChild, len(ids))
	for i, id := range ids {
		_, ok := live[id]
		f.kids[i] = walkChild{id: id, live: ok}
	}
	return nil
}

func (w *cascadeWalk) onPath(id string) bool {
	for _, f := range w.path {
		if f.id == id {
			return true
		}
	}
	return false
}

// derivedAfter returns the documents derived from id whose ids sort after
// after, at most limit of them, by id (driver.LineagePager): in one read
// when r has driver.LineagePager, else from all of id's edges
// (driver.Reader.Lineage), which then are read once per page.
func derivedAfter(ctx context.Context, r driver.Reader, id, after string, limit int) ([]driver.DerivedRef, error) {
	if lp, ok := r.(driver.LineagePager); ok {
		return lp.DerivedAfter(ctx, id, after, limit)
	}
	_, ders, err := r.Lineage(ctx, id)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ders, func(a, b driver.LineageEdge) int { return strings.Compare(a.DerivedID, b.DerivedID) })
	var out []driver.DerivedRef
	for _, e := range ders {
		if e.DerivedID <= after {
			continue
		}
		if n := len(out); n > 0 && out[n-1].ID == e.DerivedID {
			out[n-1].Dedup = out[n-1].Dedup && e.Dedup
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, driver.DerivedRef{ID: e.DerivedID, Dedup: e.Dedup})
	}
	return out, nil
}
