package backendtest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// genReader yields size pseudo-random bytes derived from seed, made as
// they are read (the test's input holds no memory), and calls atEOF, when
// set, the first time it reports the end.
type genReader struct {
	r     *rand.ChaCha8
	left  int
	atEOF func()
}

func newGenReader(seed uint64, size int, atEOF func()) *genReader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	s[8] = 0xd0
	return &genReader{r: rand.NewChaCha8(s), left: size, atEOF: atEOF}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		if g.atEOF != nil {
			g.atEOF()
			g.atEOF = nil
		}
		return 0, io.EOF
	}
	n := min(len(p), g.left)
	g.r.Read(p[:n])
	g.left -= n
	return n, nil
}

// genContent is what newGenReader(seed, size, nil) yields.
func genContent(seed uint64, size int) []byte {
	b, _ := io.ReadAll(newGenReader(seed, size, nil))
	return b
}

// liveHeap returns the bytes of the heap still in use after a full
// collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// packs returns the pack files of the namespace dir (filesystem content).
func packs(t *testing.T, dir string) []string {
	t.Helper()
	ps, err := filepath.Glob(filepath.Join(dir, "packs", "*.pack"))
	must(t, err)
	return ps
}

// testStagedMemory: an add holds at most engine.Config.MaxStagedMemory
// of staged content in memory (plus per-document bookkeeping), whatever
// its total size: past the bound the filesystem store writes what is
// staged into a pack, the database store into a spool file without a
// name. The guarantees of one add hold across such a spill: all or
// nothing (a failure after a spill adds nothing, and its packs are
// unreferenced: docex gc removes them; the database store leaves no file
// at all), content the tenant holds already or staged twice is written
// once, and content a spill released because the tenant held it, deleted
// before the transaction, fails the add with docex.ErrConflict instead of
// losing the bytes.
func (f *fixture) testStagedMemory(t *testing.T) {
	const (
		bound = 1 << 20
		size  = 8 << 10
		n     = 2048 // 16 MiB: 16 times the bound
	)
	be, cfg := f.config(t, true)
	cfg.MaxStagedMemory = bound
	cfg.MaxDocumentBytes = 64 << 10
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool) // where the database store spools (Unix)
	_, err := engine.Bootstrap(bg, be, cfg)
	must(t, err)
	eng, err := engine.New(bg, be, cfg)
	must(t, err)
	t.Cleanup(func() { eng.Close() })
	e := &env{t: t, be: be, cfg: cfg, eng: eng}
	e.tenant("acme")
	s := e.as("acme", "admin")
	acme, err := eng.Provisioner("").Get(bg, "acme")
	must(t, err)
	store := filepath.Join(cfg.ContentDir, "tenants", "acme", acme.Incarnation)
	fsStore := f.storage == engine.ContentFilesystem
	b := e.basket(s, "b")

	// The live heap, sampled while the documents are staged (every 64th
	// document's reader, at its end), grows by at most the bound plus
	// the bookkeeping of the staged documents (about 1 KiB each).
	var peak uint64
	docs := make([]engine.NewDocument, n)
	for i := range docs {
		var atEOF func()
		if i%64 == 63 {
			atEOF = func() { peak = max(peak, liveHeap()) }
		}
		docs[i] = engine.NewDocument{Name: fmt.Sprintf("d%04d", i), Content: newGenReader(uint64(i), size, atEOF)}
	}
	base := liveHeap()
	added, err := s.AddDocuments(bg, b.ID, docs)
	must(t, err)
	grew, most := int64(peak)-int64(base), int64(bound+n*1024+1<<20)
	t.Logf("the live heap grew by at most %d bytes while %d bytes were staged", grew, n*size)
	if grew > most {
		t.Errorf("the live heap grew by %d bytes while %d bytes of content were staged, want at most %d (a bound of %d)", grew, n*size, most, bound)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		got, err := s.ReadContent(bg, added[i].Document.ID)
		must(t, err)
		if string(got) != string(genContent(uint64(i), size)) || added[i].Duplicate {
			t.Fatalf("document %d: %d bytes read back, duplicate %v", i, len(got), added[i].Duplicate)
		}
	}
	if fsStore {
		// One pack per bound's worth (and the rest's).
		if ps := packs(t, store); len(ps) < n*size/bound || len(ps) > 2*n*size/bound {
			t.Errorf("%d packs for %d bytes with a bound of %d", len(ps), n*size, bound)
		}
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("%d files left in the spool directory", len(ents))
	}

	before := len(packs(t, store))
	// Adding it all again writes nothing (the tenant holds every
	// content); documents that repeat content staged before the spill
	// are duplicates of the first.
	b2 := e.basket(s, "b2")
	again := make([]engine.NewDocument, 300)
	for i := range again {
		again[i] = engine.NewDocument{Name: fmt.Sprint("again", i), Content: newGenReader(uint64(i%150), size, nil)}
	}
	out, err := s.AddDocuments(bg, b2.ID, again)
	must(t, err)
	for i, a := range out {
		if a.Duplicate != (i >= 150) {
			t.Fatalf("document %d: duplicate %v", i, a.Duplicate)
		}
	}
	if got := len(packs(t, store)); got != before {
		t.Errorf("%d packs after an add of content the tenant holds, want %d", got, before)
	}

	// A failure after a spill adds nothing: the last document too large,
	// the basket unknown.
	fresh := func(from int) []engine.NewDocument {
		docs := make([]engine.NewDocument, 300)
		for i := range docs {
			docs[i] = engine.NewDocument{Name: fmt.Sprint("f", i), Content: newGenReader(uint64(from+i), size, nil)}
		}
		return docs
	}
	b3 := e.basket(s, "b3")
	failing := append(fresh(100_000), engine.NewDocument{Name: "big", Content: newGenReader(1, 64<<10+1, nil)})
	_, err = s.AddDocuments(bg, b3.ID, failing)
	wantErr(t, err, docex.ErrTooLarge)
	_, err = s.AddDocuments(bg, "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b", fresh(200_000))
	wantErr(t, err, docex.ErrNotFound)
	got, err := s.Basket(bg, b3.ID)
	must(t, err)
	if got.DocumentCount != 0 {
		t.Fatalf("%d documents added by a failed add", got.DocumentCount)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("%d files left in the spool directory", len(ents))
	}
	if fsStore {
		left := len(packs(t, store)) - before
		if left < 4 {
			t.Fatalf("%d packs left by two failed adds of %d bytes each, want at least 4", left, 300*size)
		}
		rep, err := eng.Provisioner("ops").Sweep(bg, engine.SweepOptions{})
		must(t, err)
		if rep.Packs != left || len(packs(t, store)) != before {
			t.Fatalf("the sweep removed %d packs of the %d the failed adds left; %d remain, want %d", rep.Packs, left, len(packs(t, store)), before)
		}
		got, err := s.ReadContent(bg, added[n-1].Document.ID)
		must(t, err)
		if string(got) != string(genContent(n-1, size)) {
			t.Fatal("the sweep damaged a committed document")
		}
	}

	// Content a spill released because the tenant held it, whose last
	// document goes before the add's transaction: the add fails whole.
	held := e.add(s, b.ID, "held", "held content", nil)
	b4 := e.basket(s, "b4")
	racing := append([]engine.NewDocument{{Name: "same", Content: strings.NewReader("held content")}}, fresh(300_000)...)
	racing = append(racing, engine.NewDocument{Name: "last", Content: newGenReader(7, 10, func() {
		must(t, s.DeleteDocument(bg, held.ID))
	})})
	_, err = s.AddDocuments(bg, b4.ID, racing)
	wantErr(t, err, docex.ErrConflict)
	got, err = s.Basket(bg, b4.ID)
	must(t, err)
	if got.DocumentCount != 0 {
		t.Fatalf("%d documents added by a failed add", got.DocumentCount)
	}
}
