package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
)

// contentFDs counts the process's descriptors open on files under dir
// (Linux: /proc/self/fd); it skips the test elsewhere.
func contentFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// TestLookupFilesBounded: a run whose guest looks up and reads 40
// different documents (filesystem storage, 100 KiB each, so each is a
// file of its own) holds at most 8 of their files open at once
// (docs/isolation.md, the descriptor budget), and reads the right bytes
// when it comes back to a file that was closed. Each looked-up document
// used to hold its descriptor until the run ended: the fdhog probe's 300
// documents held 325 descriptors, and a few such runs in one worker
// exhausted a 1,024 limit for every tenant.
func TestLookupFilesBounded(t *testing.T) {
	const docs, size = 40, 100 << 10
	ctx := context.Background()
	be, dir := engine.OpenTestSQLite(t)
	contentDir := filepath.Join(dir, "content")
	cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem, ContentDir: contentDir, NoContentSync: true, Sandbox: testSandbox(t)}
	eng := startEngine(t, be, cfg, "alpha")
	s := eng.As(docex.UserContext{UserID: "ann", TenantID: "alpha", Roles: []string{"admin"}})
	basket, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var want []byte
	for i := range docs {
		c := byte('A' + i%26)
		a, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "d" + string(rune('a'+i/26)) + string(c) + ".txt",
			Content: strings.NewReader(strings.Repeat(string(c), size-1) + string(rune('0'+i%10)))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.Document.ID)
		want = append(want, byte('0'+i%10))
	}
	want = append(want, want...)
	before := contentFDs(t, contentDir)
	contents, done, err := s.LookedUpForTest(ctx, basket.ID, ids)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for range 2 { // in order, twice over: the second pass reopens files
		for _, c := range contents {
			b := make([]byte, 1)
			if _, err := c.ReadAt(b, size-1); err != nil {
				t.Fatal(err)
			}
			got = append(got, b[0])
		}
	}
	held := contentFDs(t, contentDir) - before
	done()
	if string(got) != string(want) {
		t.Errorf("read %q, want %q", got, want)
	}
	t.Logf("%d looked-up documents read twice over: %d content descriptors held at the end of the run", docs, held)
	if held > 8 {
		t.Errorf("reading %d looked-up documents held %d content descriptors, want at most 8", docs, held)
	}
	if after := contentFDs(t, contentDir) - before; after != 0 {
		t.Errorf("%d content descriptors still open after the run", after)
	}
}

// BenchmarkLookupRead: one content_read's host side, a 4 KiB ReadAt of a
// looked-up document (filesystem storage, 1 MiB files), for a guest that
// reads 1 document, 8 documents in turn (the files a run keeps open), and
// 9 in turn (one past them: every read reopens its file, without hashing
// it again).
func BenchmarkLookupRead(b *testing.B) {
	for _, n := range []int{1, 8, 9} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			ctx := context.Background()
			be, dir := engine.OpenTestSQLite(b)
			cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentFilesystem, ContentDir: filepath.Join(dir, "content"), NoContentSync: true, Sandbox: testSandbox(b)}
			eng := startEngine(b, be, cfg, "alpha")
			s := eng.As(docex.UserContext{UserID: "ann", TenantID: "alpha", Roles: []string{"admin"}})
			basket, err := s.CreateBasket(ctx, "in")
			if err != nil {
				b.Fatal(err)
			}
			var ids []string
			for i := range n {
				a, err := s.AddDocument(ctx, basket.ID, engine.NewDocument{Name: "d" + string(rune('a'+i)) + ".txt", Content: strings.NewReader(strings.Repeat(string(rune('a'+i)), 1<<20))})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, a.Document.ID)
			}
			contents, done, err := s.LookedUpForTest(ctx, basket.ID, ids)
			if err != nil {
				b.Fatal(err)
			}
			defer done()
			buf := make([]byte, 4096)
			for _, c := range contents { // the first read verifies each file
				if _, err := c.ReadAt(buf, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := range b.N {
				if _, err := contents[i%n].ReadAt(buf, int64(i%256)*4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
