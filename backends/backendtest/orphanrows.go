package backendtest

import (
	"context"
	"testing"

	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// testOrphanContentRows: a delete killed between its commit and the
// release of its content (docex doc delete --cascade, kill -9) leaves
// content rows no document refers to: with filesystem storage, the
// locators saying which pack holds a content's bytes. docex gc (Sweep)
// removes them, and the packs they name (never a pack before its rows),
// and leaves a document that shares nothing intact: afterwards no such
// row is left and verify finds nothing damaged.
func (f *fixture) testOrphanContentRows(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	var gone []string
	for _, c := range []string{"one", "two", "three"} {
		gone = append(gone, e.add(s, b.ID, c+".txt", "orphaned content "+c, nil).ID)
	}
	kept := e.add(s, b.ID, "kept.txt", "kept content", nil)

	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	l, ok := st.(driver.UnreferencedContentLister)
	if !ok {
		t.Skip("the tenant store lists no unreferenced content rows")
	}
	// The documents' rows go, their content rows stay: what a cascade
	// killed after its commit leaves.
	must(t, st.Write(bg, func(tx driver.Tx) error {
		for _, id := range gone {
			if err := tx.DeleteDocument(context.Background(), id); err != nil {
				return err
			}
		}
		return nil
	}))
	orphans, err := l.UnreferencedContents(bg, "", 100)
	must(t, err)
	if len(orphans) != len(gone) {
		t.Fatalf("%d unreferenced content rows before the sweep, want %d", len(orphans), len(gone))
	}
	p := e.eng.Provisioner("ops")
	dry, err := p.Sweep(bg, engine.SweepOptions{DryRun: true})
	must(t, err)
	if dry.ContentFiles < len(gone) {
		t.Fatalf("dry run: %+v, want the %d content rows counted", dry, len(gone))
	}
	if orphans, err = l.UnreferencedContents(bg, "", 100); err != nil || len(orphans) != len(gone) {
		t.Fatalf("after the dry run: %d unreferenced rows (%v), want %d", len(orphans), err, len(gone))
	}
	rep, err := p.Sweep(bg, engine.SweepOptions{})
	must(t, err)
	if rep.ContentFiles < len(gone) {
		t.Fatalf("sweep: %+v, want the %d content rows removed", rep, len(gone))
	}
	orphans, err = l.UnreferencedContents(bg, "", 100)
	must(t, err)
	if len(orphans) != 0 {
		t.Fatalf("after the sweep: unreferenced content rows %v are left", orphans)
	}
	vr, err := p.Verify(bg, "acme")
	must(t, err)
	if len(vr.Damaged) != 0 || vr.Objects != 1 {
		t.Fatalf("verify after the sweep: %+v, want the one kept object and nothing damaged", vr)
	}
	if got := e.read(s, kept.ID); got != "kept content" {
		t.Fatalf("kept document reads %q", got)
	}
}
