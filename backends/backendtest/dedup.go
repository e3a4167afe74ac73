package backendtest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// testDedupLineage: a step's output that deduplicates onto a document
// the basket held already records its lineage edge, marked deduplicated,
// and that document stays what it was. An original the user added is
// not deleted by a cascade from the step's input (a), stays an original
// for pipeline run --basket (b), and two runs deduplicating onto each
// other's input (A -> X, X -> A) make no document its own ancestor
// through the edges that created it (c): lineage shows both edges and
// ends, a cascade from X deletes X alone. Through a direct run
// (Session.RunPlugin) and a pipeline job; and two jobs of one batch
// deriving the same new content record one creating edge and one
// deduplicated.
func (f *fixture) testDedupLineage(t *testing.T) {
	e := f.pipeEnv(t)
	e.tenant("acme")
	admin, writer := e.as("acme", "admin"), e.as("acme", "writer")
	e.install(admin, "upper", "derive")
	_, err := admin.CreatePipeline(bg, []byte("name = \"up\"\n[[steps]]\nname = \"u\"\nplugin = \"upper\"\n"))
	must(t, err)
	_, err = admin.CreatePipeline(bg, []byte("name = \"low\"\n[[steps]]\nname = \"d\"\nplugin = \"derive\"\nparams = { title = \"loop\" }\n"))
	must(t, err)
	_, err = admin.CreatePipeline(bg, []byte("name = \"same\"\n[[steps]]\nname = \"d\"\nplugin = \"derive\"\nparams = { title = \"SAME\" }\n"))
	must(t, err)
	// edgeOf returns the edges of the lineage of id from src to der
	// (ancestors and descendants).
	edgeOf := func(id, src, der string) []engine.LineageEdge {
		t.Helper()
		l, err := writer.Lineage(bg, id)
		must(t, err)
		var out []engine.LineageEdge
		for _, ed := range append(l.Ancestors, l.Descendants...) {
			if ed.SourceID == src && ed.DerivedID == der {
				out = append(out, ed)
			}
		}
		return out
	}
	// originals returns the documents pipeline run --basket enqueues a
	// job for, sorted (the jobs are cancelled).
	originals := func(basketID string) []string {
		t.Helper()
		ids, err := writer.RunPipeline(bg, "up", engine.RunTarget{BasketID: basketID})
		must(t, err)
		var docs []string
		for _, id := range ids {
			j, err := writer.Job(bg, id)
			must(t, err)
			docs = append(docs, j.DocumentID)
			must(t, writer.CancelJob(bg, id))
		}
		slices.Sort(docs)
		return docs
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	exists := func(id string) bool {
		t.Helper()
		_, err := writer.Document(bg, id)
		if err != nil && !errors.Is(err, docex.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	// (a), (b): X uploaded, then A, whose upper-case text is X's.
	b, err := writer.CreateBasket(bg, "casc")
	must(t, err)
	x := e.add(writer, b.ID, "UP.txt", "QUARTERLY REPORT\n", nil)
	a := e.add(writer, b.ID, "low.txt", "quarterly report\n", nil)
	res, err := writer.RunPlugin(bg, "upper", a.ID, nil)
	must(t, err)
	if len(res.Derived) != 1 || res.Derived[0].ID != x.ID {
		t.Fatalf("upper of %s derived %+v, want X %s (deduplicated)", a.ID, res.Derived, x.ID)
	}
	if ed := edgeOf(a.ID, a.ID, x.ID); len(ed) != 1 || !ed[0].Deduplicated {
		t.Fatalf("lineage of A: edges A -> X %+v, want one, deduplicated", ed)
	}
	if ed := edgeOf(x.ID, a.ID, x.ID); len(ed) != 1 || !ed[0].Deduplicated {
		t.Fatalf("lineage of X: edges A -> X %+v, want one, deduplicated", ed)
	}
	// A summary created from A: a descendant, derived, and one still
	// when its derived_from metadata is deleted (the edge's time is the
	// document's).
	res, err = writer.RunPlugin(bg, "derive", a.ID, map[string]string{"title": "Q3 summary"})
	must(t, err)
	if len(res.Derived) != 1 {
		t.Fatalf("derive derived %+v", res.Derived)
	}
	sum := res.Derived[0]
	if ed := edgeOf(a.ID, a.ID, sum.ID); len(ed) != 1 || ed[0].Deduplicated {
		t.Fatalf("lineage of A: edges A -> summary %+v, want one, not deduplicated", ed)
	}
	must(t, writer.DeleteMetadata(bg, sum.ID, "derived_from"))
	ds, err := writer.DescendantIDs(bg, a.ID)
	must(t, err)
	if !slices.Equal(ds, []string{sum.ID}) {
		t.Fatalf("descendants of A %v, want the summary %s alone (not X %s)", ds, sum.ID, x.ID)
	}
	if got, want := originals(b.ID), sorted(a.ID, x.ID); !slices.Equal(got, want) {
		t.Fatalf("pipeline run --basket ran %v, want the originals %v (X is one: A's output deduplicated onto it)", got, want)
	}
	// The same through a pipeline job: upper of A deduplicates onto X.
	ids, err := writer.RunPipeline(bg, "up", engine.RunTarget{DocumentIDs: []string{a.ID}})
	must(t, err)
	if st := e.work(admin, []string{"acme"}, ids); st.Succeeded != 1 {
		t.Fatalf("job up of A: %+v", st)
	}
	if ed := edgeOf(x.ID, a.ID, x.ID); len(ed) != 2 || !ed[0].Deduplicated || !ed[1].Deduplicated {
		t.Fatalf("lineage of X: edges A -> X %+v, want the run's and the job's, deduplicated", ed)
	}
	if got, want := originals(b.ID), sorted(a.ID, x.ID); !slices.Equal(got, want) {
		t.Fatalf("after the job, pipeline run --basket ran %v, want the originals %v", got, want)
	}
	gone, err := writer.DeleteDocumentCascade(bg, a.ID)
	must(t, err)
	if !slices.Equal(gone, []string{sum.ID, a.ID}) || !exists(x.ID) || exists(sum.ID) {
		t.Fatalf("doc delete A --cascade deleted %v, want the summary and A (X %s kept)", gone, x.ID)
	}
	if ed := edgeOf(x.ID, a.ID, x.ID); len(ed) != 2 || !ed[0].SourceGone || !ed[0].Deduplicated {
		t.Fatalf("lineage of X after A's cascade: %+v, want A's edges, A gone", ed)
	}

	// (c): A2 "loop"; derive(A2, LOOP) creates X2; derive(X2, loop)
	// deduplicates onto A2, directly and by a job.
	lb, err := writer.CreateBasket(bg, "loop")
	must(t, err)
	a2 := e.add(writer, lb.ID, "a2.txt", "loop", nil)
	res, err = writer.RunPlugin(bg, "derive", a2.ID, map[string]string{"title": "LOOP"})
	must(t, err)
	if len(res.Derived) != 1 || res.Derived[0].ID == a2.ID {
		t.Fatalf("derive LOOP of A2 derived %+v", res.Derived)
	}
	x2 := res.Derived[0]
	res, err = writer.RunPlugin(bg, "derive", x2.ID, map[string]string{"title": "loop"})
	must(t, err)
	if len(res.Derived) != 1 || res.Derived[0].ID != a2.ID {
		t.Fatalf("derive loop of X2 derived %+v, want A2 %s (deduplicated)", res.Derived, a2.ID)
	}
	ids, err = writer.RunPipeline(bg, "low", engine.RunTarget{DocumentIDs: []string{x2.ID}})
	must(t, err)
	if st := e.work(admin, []string{"acme"}, ids); st.Succeeded != 1 {
		t.Fatalf("job low of X2: %+v", st)
	}
	l, err := writer.Lineage(bg, a2.ID)
	must(t, err)
	if l.Truncated || len(l.Ancestors) != 3 || len(l.Descendants) != 3 {
		t.Fatalf("lineage of A2: %d ancestors, %d descendants, truncated %t; want 3, 3 (A2 -> X2 and X2 -> A2 twice)", len(l.Ancestors), len(l.Descendants), l.Truncated)
	}
	for _, ed := range append(l.Ancestors, l.Descendants...) {
		if created := ed.SourceID == a2.ID; ed.Deduplicated == created {
			t.Fatalf("lineage of A2: edge %s -> %s deduplicated %t", ed.SourceID, ed.DerivedID, ed.Deduplicated)
		}
	}
	for _, c := range []struct {
		id   string
		want []string
	}{{a2.ID, []string{x2.ID}}, {x2.ID, nil}} {
		ds, err := writer.DescendantIDs(bg, c.id)
		must(t, err)
		if !slices.Equal(ds, c.want) {
			t.Fatalf("descendants of %s: %v, want %v", c.id, ds, c.want)
		}
	}
	if got := originals(lb.ID); !slices.Equal(got, []string{a2.ID}) {
		t.Fatalf("pipeline run --basket loop ran %v, want A2 %s alone", got, a2.ID)
	}
	// A2 is no descendant of X2: the cascade deletes X2 alone (before,
	// it deleted A2 too).
	gone, err = writer.DeleteDocumentCascade(bg, x2.ID)
	must(t, err)
	if !slices.Equal(gone, []string{x2.ID}) || !exists(a2.ID) {
		t.Fatalf("doc delete X2 --cascade deleted %v, want X2 alone (A2 %s kept)", gone, a2.ID)
	}

	// Two jobs of one batch deriving the same new document: one edge
	// created it, the other deduplicated onto it.
	sb, err := writer.CreateBasket(bg, "same")
	must(t, err)
	s1 := e.add(writer, sb.ID, "s1.txt", "one", nil)
	s2 := e.add(writer, sb.ID, "s2.txt", "two", nil)
	ids, err = writer.RunPipeline(bg, "same", engine.RunTarget{DocumentIDs: []string{s1.ID, s2.ID}})
	must(t, err)
	if st := e.workBatch(admin, []string{"acme"}, ids, 2); st.Succeeded != 2 {
		t.Fatalf("jobs same: %+v", st)
	}
	outs := derivedOf(t, writer, s1.ID)
	if len(outs) != 1 {
		t.Fatalf("s1 derived %+v", outs)
	}
	l, err = writer.Lineage(bg, outs[0].DerivedID)
	must(t, err)
	creating := 0
	for _, ed := range l.Ancestors {
		if !ed.Deduplicated {
			creating++
		}
	}
	if len(l.Ancestors) != 2 || creating != 1 {
		t.Fatalf("the summary of s1 and s2: ancestors %+v, want 2 edges, 1 creating", l.Ancestors)
	}

	// The backend's reads agree: DerivedAmong and Dedup, in a
	// transaction and out of one.
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	check := func(r driver.Reader) error {
		br, ok := r.(driver.BatchReader)
		if !ok {
			return nil
		}
		got, err := br.DerivedAmong(bg, []string{x.ID, a2.ID, s1.ID, outs[0].DerivedID})
		if err != nil {
			return err
		}
		if len(got) != 1 || !got[outs[0].DerivedID] {
			t.Errorf("DerivedAmong = %v, want the summary of s1 and s2 alone", got)
		}
		srcs, _, err := r.Lineage(bg, x.ID)
		if err != nil {
			return err
		}
		if len(srcs) != 2 || !srcs[0].Dedup || !srcs[1].Dedup {
			t.Errorf("Lineage of X: %+v, want 2 edges, Dedup", srcs)
		}
		return nil
	}
	must(t, check(st))
	must(t, st.Write(bg, func(tx driver.Tx) error { return check(tx) }))

	// (d): a pipeline run twice on one document. The second job's steps
	// are cache hits whose outputs deduplicate onto the documents the
	// first job created: the first job's edges created them, the
	// second's did not (before, a document's derived_from naming the
	// edge's source made every later edge from it creating).
	_, err = admin.CreatePipeline(bg, []byte("name = \"twice\"\n[[steps]]\nname = \"u\"\nplugin = \"upper\"\n"+
		"[[steps]]\nname = \"d\"\nplugin = \"derive\"\ninput = \"u\"\nparams = { title = \"twice summary\" }\n"))
	must(t, err)
	tb, err := writer.CreateBasket(bg, "twice")
	must(t, err)
	src := e.add(writer, tb.ID, "t.txt", "run me twice\n", nil)
	var jobs []string
	for range 2 {
		ids, err := writer.RunPipeline(bg, "twice", engine.RunTarget{DocumentIDs: []string{src.ID}})
		must(t, err)
		if st := e.work(admin, []string{"acme"}, ids); st.Succeeded != 1 {
			t.Fatalf("job twice of %s: %+v", src.ID, st)
		}
		jobs = append(jobs, ids[0])
	}
	l, err = writer.Lineage(bg, src.ID)
	must(t, err)
	made := map[string]bool{} // the documents the first job created
	for _, ed := range l.Descendants {
		if ed.Deduplicated != (ed.JobID == jobs[1]) || ed.DerivedGone {
			t.Errorf("lineage of %s: edge %s -> %s of job %s deduplicated %t, want %t (jobs %v)",
				src.ID, ed.SourceID, ed.DerivedID, ed.JobID, ed.Deduplicated, ed.JobID == jobs[1], jobs)
		}
		if ed.JobID == jobs[0] {
			made[ed.DerivedID] = true
		}
	}
	if len(l.Descendants) != 4 || len(made) != 2 {
		t.Fatalf("lineage of %s: descendants %+v, want 4 edges (2 steps, 2 jobs) into 2 documents", src.ID, l.Descendants)
	}
	if got := originals(tb.ID); !slices.Equal(got, []string{src.ID}) {
		t.Fatalf("pipeline run --basket twice ran %v, want %s alone (the derived documents are no originals)", got, src.ID)
	}
	for id := range made {
		srcs, _, err := st.Lineage(bg, id)
		must(t, err)
		if len(srcs) != 2 || srcs[0].JobID != jobs[0] || srcs[0].Dedup || srcs[1].JobID != jobs[1] || !srcs[1].Dedup {
			t.Fatalf("driver Lineage of %s: %+v, want job %s's edge creating, job %s's Dedup", id, srcs, jobs[0], jobs[1])
		}
	}
	gone, err = writer.DeleteDocumentCascade(bg, src.ID)
	must(t, err)
	slices.Sort(gone)
	want := []string{src.ID}
	for id := range made {
		want = append(want, id)
	}
	if slices.Sort(want); !slices.Equal(gone, want) {
		t.Fatalf("doc delete %s --cascade deleted %v, want it and what its job created %v", src.ID, gone, want)
	}
	for _, id := range want {
		if exists(id) {
			t.Fatalf("%s still exists after the cascade", id)
		}
	}

	// Edges written before 2026-12-06, whose time is not their
	// document's: the first from a source into a document whose
	// derived_from names that source created it (earliest created_at,
	// then job_id, step), a later one did not.
	lg, err := writer.CreateBasket(bg, "legacy")
	must(t, err)
	ls := e.add(writer, lg.ID, "src.txt", "legacy source", nil)
	byTime := e.add(writer, lg.ID, "d1.txt", "legacy one", map[string]docex.Value{"derived_from": docex.String(ls.ID)})
	byKey := e.add(writer, lg.ID, "d2.txt", "legacy two", map[string]docex.Value{"derived_from": docex.String(ls.ID)})
	legacy := func(der docex.Document, job string, after time.Duration) driver.LineageEdge {
		return driver.LineageEdge{SourceID: ls.ID, DerivedID: der.ID, JobID: job, Step: "s", Pipeline: "p", Version: 1,
			Plugin: "upper", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: der.CreatedAt.Add(after)}
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		for _, ed := range []driver.LineageEdge{
			legacy(byTime, "j3", 5*time.Millisecond), legacy(byTime, "j1", -time.Microsecond), legacy(byTime, "j2", 5*time.Millisecond),
			legacy(byKey, "k2", time.Millisecond), legacy(byKey, "k1", time.Millisecond),
		} {
			if err := tx.InsertLineage(bg, ed); err != nil {
				return err
			}
		}
		return nil
	}))
	for _, c := range []struct {
		der      docex.Document
		creating string
	}{{byTime, "j1"}, {byKey, "k1"}} {
		srcs, _, err := st.Lineage(bg, c.der.ID)
		must(t, err)
		n := 0
		for _, ed := range srcs {
			if ed.Dedup == (ed.JobID == c.creating) {
				t.Errorf("legacy edge %s -> %s of job %s: Dedup %t", ed.SourceID, ed.DerivedID, ed.JobID, ed.Dedup)
			}
			if !ed.Dedup {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("legacy edges into %s: %+v, want one creating (job %s)", c.der.ID, srcs, c.creating)
		}
	}
	if got := originals(lg.ID); !slices.Equal(got, []string{ls.ID}) {
		t.Fatalf("pipeline run --basket legacy ran %v, want %s alone", got, ls.ID)
	}
	gone, err = writer.DeleteDocumentCascade(bg, ls.ID)
	must(t, err)
	if slices.Sort(gone); !slices.Equal(gone, sorted(ls.ID, byTime.ID, byKey.ID)) {
		t.Fatalf("doc delete %s --cascade deleted %v, want it, %s and %s", ls.ID, gone, byTime.ID, byKey.ID)
	}
}
