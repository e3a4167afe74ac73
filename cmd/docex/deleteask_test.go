package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// ttyReader and ttyBuffer stand in for a terminal's standard input and
// standard error (see terminal).
type ttyReader struct{ io.Reader }

func (ttyReader) IsTerminal() bool { return true }

type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

// TestDocDeleteAsks: on a terminal, deleting a document with derived
// documents and neither --cascade nor --keep-derived asks which; the
// answer decides, and anything but c or k (an empty line, the end of
// input, a typo) deletes nothing. Off a terminal, or with --json, it
// does not ask.
func TestDocDeleteAsks(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	var files []string
	for i := range 6 {
		files = append(files, h.file(fmt.Sprintf("d%d.txt", i), fmt.Sprintf("%d document number %d", i, i)))
	}
	docs := documents(decode[[]added](t, h.ok(with(append([]string{"doc", "add", "inbox", "--json"}, files...)...)...).stdout))
	h.ok(with("pipeline", "run", "three", "--basket", "inbox", "--wait")...)
	// asked runs doc delete ID on a terminal that answers answer.
	asked := func(answer string, args ...string) (result, string) {
		t.Helper()
		errb := &ttyBuffer{}
		var out bytes.Buffer
		full := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "doc", "delete"}, with(args...)...)
		err := runIO(context.Background(), full, ttyReader{strings.NewReader(answer)}, &out, errb, func(k string) string { return h.env[k] })
		return result{code: exitCode(err), stdout: out.String(), stderr: errb.String()}, errb.String()
	}
	exists := func(id string) bool {
		return h.run(with("doc", "get", id)...).code == 0
	}
	descendants := func(id string) []string {
		lin := decode[struct {
			Descendants []struct {
				DerivedID string `json:"derived_id"`
			} `json:"descendants"`
		}](t, h.ok(with("doc", "lineage", id, "--json")...).stdout)
		var ids []string
		seen := map[string]bool{}
		for _, d := range lin.Descendants {
			if !seen[d.DerivedID] {
				seen[d.DerivedID] = true
				ids = append(ids, d.DerivedID)
			}
		}
		return ids // (an edge per job that derived it: once each here)
	}
	for i, tc := range []struct {
		answer            string
		code              int
		deleted, derived  bool // the document is gone; its descendants are
		wantOut, wantWarn string
	}{
		{answer: "c\n", deleted: true, derived: true, wantOut: "and 4 derived document(s)"},
		{answer: " Cascade \n", deleted: true, derived: true},
		{answer: "k\n", deleted: true, wantOut: "deleted document"},
		{answer: "\n", code: exitConflict, wantWarn: "not deleted"},
		{answer: "", code: exitConflict, wantWarn: "not deleted"},
		{answer: "yes\n", code: exitConflict, wantWarn: "not deleted"},
	} {
		id := docs[i].ID
		ds := descendants(id)
		if len(ds) != 4 {
			t.Fatalf("%s: %d descendants before the delete, want 4", id, len(ds))
		}
		r, tty := asked(tc.answer, id)
		if r.code != tc.code {
			t.Fatalf("answer %q: exit %d, want %d\nstdout: %s\nstderr: %s", tc.answer, r.code, tc.code, r.stdout, r.stderr)
		}
		if !strings.Contains(tty, "4 derived document(s)") || !strings.Contains(tty, "[c]") {
			t.Errorf("answer %q: the question was %q", tc.answer, tty)
		}
		if !strings.Contains(r.stdout, tc.wantOut) || !strings.Contains(r.stderr, tc.wantWarn) {
			t.Errorf("answer %q: stdout %q, stderr %q", tc.answer, r.stdout, r.stderr)
		}
		if exists(id) == tc.deleted {
			t.Errorf("answer %q: document exists %v", tc.answer, !tc.deleted)
		}
		for _, d := range ds {
			if exists(d) == tc.derived {
				t.Errorf("answer %q: derived %s exists %v", tc.answer, d, !tc.derived)
			}
		}
	}
	// --json, or a standard input that is not a terminal: no question.
	id := docs[3].ID
	errb := &ttyBuffer{}
	full := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "doc", "delete", id, "--json"}, u...)
	if err := runIO(context.Background(), full, ttyReader{strings.NewReader("c\n")}, io.Discard, errb, func(k string) string { return h.env[k] }); exitCode(err) != exitConflict || strings.Contains(errb.String(), "[c]") {
		t.Errorf("--json on a terminal: exit %d, stderr %q", exitCode(err), errb.String())
	}
	full = append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "doc", "delete", id}, u...)
	errb = &ttyBuffer{}
	if err := runIO(context.Background(), full, strings.NewReader("c\n"), io.Discard, errb, func(k string) string { return h.env[k] }); exitCode(err) != exitConflict || strings.Contains(errb.String(), "[c]") {
		t.Errorf("piped standard input: exit %d, stderr %q", exitCode(err), errb.String())
	}
	if !exists(id) {
		t.Errorf("%s deleted without an answer", id)
	}
}

// TestDocDeleteAsksCountsAll: the question counts every document
// derived from the one deleted when its lineage has more than 10,000
// edges (engine.MaxLineageEdges): here 10,000 edges into documents that
// are gone (not counted) and two documents, one derived from the other,
// below. Before, it counted the documents of the first 10,000 edges of
// its lineage: at most 1 of the 2.
func TestDocDeleteAsksCountsAll(t *testing.T) {
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "alice", "--roles", "admin"}
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("basket", "create", "in")...)
	docs := documents(decode[[]added](t, h.ok(with("doc", "add", "in", "--json", h.file("root.txt", "root"), h.file("a.txt", "a"), h.file("b.txt", "b"))...).stdout))
	root, a, b := docs[0].ID, docs[1].ID, docs[2].ID
	ctx := context.Background()
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return h.env[k] }}
	c.g.config = filepath.Join(h.dir, "docex.yaml")
	sys, err := c.system(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sys.be.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	edge := func(src, der string) driver.LineageEdge {
		return driver.LineageEdge{SourceID: src, DerivedID: der, Step: "s", Pipeline: "p", Version: 1,
			Plugin: "x", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: time.Now().UTC()}
	}
	err = st.Write(ctx, func(tx driver.Tx) error {
		for i := range engine.MaxLineageEdges {
			if err := tx.InsertLineage(ctx, edge(root, fmt.Sprintf("00000000-0000-7000-8000-%012d", i))); err != nil {
				return err
			}
		}
		// Edges that created a and b: at their documents' times.
		for _, e := range [][2]string{{root, a}, {a, b}} {
			d, err := tx.Document(ctx, e[1])
			if err != nil {
				return err
			}
			ed := edge(e[0], e[1])
			ed.CreatedAt = d.CreatedAt
			if err := tx.InsertLineage(ctx, ed); err != nil {
				return err
			}
		}
		return nil
	})
	st.Close()
	sys.close()
	if err != nil {
		t.Fatal(err)
	}
	errb := &ttyBuffer{}
	full := append([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "doc", "delete", root}, u...)
	err = runIO(ctx, full, ttyReader{strings.NewReader("\n")}, io.Discard, errb, func(k string) string { return h.env[k] })
	if exitCode(err) != exitConflict || !strings.Contains(errb.String(), fmt.Sprintf("document %s has 2 derived document(s)", root)) {
		t.Fatalf("doc delete on a terminal: exit %d, stderr %q; want exit %d, the question naming 2 derived documents", exitCode(err), errb.String(), exitConflict)
	}
}

// TestListsSayTheNextPage: a listing cut by --limit says so on stderr with
// the --offset of the next page (doc list: of how many); the last page, -q
// and --json say nothing.
func TestListsSayTheNextPage(t *testing.T) {
	h := newHarness(t)
	with := initAdmin(h, "acme")
	h.ok(with("basket", "create", "b")...)
	for i := range 3 {
		h.ok(with("doc", "add", "b", h.file(fmt.Sprintf("f%d.txt", i), fmt.Sprintf("file %d", i)), "--meta", "kind=note")...)
	}
	for _, tc := range []struct {
		args []string
		want string // "" : nothing on stderr
	}{
		{[]string{"doc", "list", "b", "--limit", "2"}, "showing documents 1 to 2 of 3; the next page: --offset 2\n"},
		{[]string{"doc", "list", "b", "--limit", "2", "--offset", "2"}, ""},
		{[]string{"doc", "list", "b", "--limit", "2", "-q"}, ""},
		{[]string{"doc", "list", "b", "--limit", "2", "--json"}, ""},
		{[]string{"doc", "list", "b", "--offset", "5"}, ""},
		{[]string{"doc", "find", "b", "--meta", "kind=note", "--limit", "1"}, "1 of 3 matching documents (1 to 1); the next page: --offset 1\n"},
		{[]string{"doc", "find", "b", "--meta", "kind=note"}, "3 of 3 matching documents\n"},
		{[]string{"job", "list", "--limit", "1"}, ""}, // no jobs
		{[]string{"audit", "list", "--limit", "2"}, "showing entries 1 to 2; there may be more: --offset 2\n"},
		{[]string{"basket", "list", "--limit", "1"}, "showing baskets 1 to 1; there may be more: --offset 1\n"},
		{[]string{"basket", "list", "--limit", "2"}, ""},
		{[]string{"basket", "list", "--limit", "1", "-q"}, ""},
	} {
		if r := h.ok(with(tc.args...)...); r.stderr != tc.want {
			t.Errorf("docex %s: stderr %q, want %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
	// basket list -q: the ids alone, one per line (before: an unknown flag).
	bs := decode[[]struct {
		ID string `json:"id"`
	}](t, h.ok(with("basket", "list", "--json")...).stdout)
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	if out := h.ok(with("basket", "list", "-q")...).stdout; len(ids) == 0 || out != strings.Join(ids, "\n")+"\n" {
		t.Errorf("basket list -q: %q, want the ids %q", out, ids)
	}
}

// TestRunSummaryFiltered: inputs a step's accept list skips are counted in
// the run summary (steps_filtered; "N filtered (accept)"), so a run that
// processed nothing does not read as plain success.
func TestRunSummaryFiltered(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("pipeline", "create", h.file("pdf.toml", "name = \"pdfonly\"\n[[steps]]\nname = \"t\"\nplugin = \"tag\"\naccept = [\"application/pdf\"]\n"))...)
	h.ok(with("basket", "create", "notes")...)
	h.ok(with("doc", "add", "notes", h.file("n1.txt", "one"), h.file("n2.txt", "two"))...)
	sum := decode[struct {
		Succeeded     int `json:"succeeded"`
		StepsRun      int `json:"steps_run"`
		StepsFiltered int `json:"steps_filtered"`
	}](t, h.ok(with("pipeline", "run", "pdfonly", "--basket", "notes", "--wait", "--json")...).stdout)
	if sum.Succeeded != 2 || sum.StepsRun != 0 || sum.StepsFiltered != 2 {
		t.Fatalf("summary %+v: want 2 done, nothing run, 2 filtered", sum)
	}
	if out := h.ok(with("pipeline", "run", "pdfonly", "--basket", "notes", "--wait")...).stdout; !strings.Contains(out, "2 done, 0 failed, 0 step run(s), 0 skipped (cache), 2 filtered (accept), ") {
		t.Fatalf("summary: %s", out)
	}
	// Nothing filtered: the line says nothing of it.
	if out := h.ok(with("pipeline", "run", "three", "--basket", "notes", "--wait")...).stdout; strings.Contains(out, "filtered") {
		t.Fatalf("summary: %s", out)
	}
}
