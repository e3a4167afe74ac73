package mcpserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// flipStored flips one bit of the stored copy of content (a content file
// or its range of a pack under the env's content directory), at byte at
// of content.
func (e *env) flipStored(t *testing.T, content []byte, at int) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(e.allow), "content")
	head := content[:min(len(content), 64)]
	var found string
	var off int
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if i := bytes.Index(b, head); i >= 0 {
			found, off = p, i
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no stored file holds %q", head)
	}
	b, err := os.ReadFile(found)
	must(t, err)
	b[off+at] ^= 0x01
	must(t, os.WriteFile(found, b, 0o600))
}

// TestReadDocumentChecksContent: read_document and a document resource
// never return damaged content as a result when they read it to the
// end: a document of up to VerifyReadBytes is read whole and checked,
// whatever page is asked for, and the page that reaches the end of a
// larger one checks all of it (a corrupt tool error naming the
// document). Before, read_document read just the page (io.ReadFull) and
// the resource at most MaxResourceBytes, so the content's checksum was
// never checked and a flipped byte came back as content (p19 H1).
func TestReadDocumentChecksContent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, cs := e.connect(t, user("will", "writer"), Config{MaxResourceBytes: 1024})

	small := []byte("small-doc " + strings.Repeat("0123456789", 300)) // 3010 bytes
	add, err := e.admin.AddDocument(ctx, e.basket.ID, engine.NewDocument{Name: "small.txt", Content: bytes.NewReader(small)})
	must(t, err)
	id := add.Document.ID
	p := call[struct {
		pageOut
		Verified bool `json:"verified"`
	}](t, cs, "read_document", map[string]any{"id": id, "max_bytes": 64})
	if !p.Verified || p.Text != string(small[:64]) {
		t.Fatalf("clean first page: %+v", p)
	}
	e.flipStored(t, small, 1500)
	for _, args := range []map[string]any{
		{"id": id, "max_bytes": 16384},              // the whole document
		{"id": id, "max_bytes": 64},                 // a first page before the damage
		{"id": id, "offset": 2000, "max_bytes": 64}, // a page after it
		{"id": id, "offset": 1480, "max_bytes": 64}, // the damaged page
	} {
		msg := callErr(t, cs, "read_document", args)
		if !strings.HasPrefix(msg, "corrupt:") || !strings.Contains(msg, id) || !strings.Contains(msg, "does not match its checksum") {
			t.Errorf("read_document %v: %s, want a corrupt error naming the document", args, msg)
		}
	}
	// As a resource: cut at 1 KiB, but read whole to be checked.
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: documentURI(id)})
	var rpc *jsonrpc.Error
	if !errors.As(err, &rpc) || rpc.Code != jsonrpc.CodeInternalError || !strings.Contains(rpc.Message, id) || !strings.Contains(string(rpc.Data), `"code":"corrupt"`) {
		t.Fatalf("resource of damaged content: %v", err)
	}
	// The same through the engine: errors.Is docex.ErrCorrupt.
	rc, _, err := e.admin.OpenContent(ctx, id)
	must(t, err)
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("engine read: %v", err)
	}
}

// TestReadDocumentLargeVerifiedLastPage: a document larger than
// VerifyReadBytes is checked by its last page only. The pages before it
// say verified false (and may return damaged bytes: that is what the
// field says); the last page fails with corrupt. With filesystem
// storage a page past byte 0 is read at its offset (p19 L8), not from
// byte 0: the engine's reader has UnverifiedReaderAt.
func TestReadDocumentLargeVerifiedLastPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, cs := e.connect(t, user("will", "writer"), Config{})

	big := make([]byte, VerifyReadBytes+100<<10)
	copy(big, "large-doc ")
	for i := 10; i < len(big); i++ {
		big[i] = byte('a' + i%26)
	}
	add, err := e.admin.AddDocument(ctx, e.basket.ID, engine.NewDocument{Name: "big.txt", Content: bytes.NewReader(big)})
	must(t, err)
	id := add.Document.ID
	type page struct {
		pageOut
		Verified bool `json:"verified"`
	}
	read := func(offset int) page {
		t.Helper()
		p := call[page](t, cs, "read_document", map[string]any{"id": id, "offset": offset, "max_bytes": 65536, "encoding": "base64"})
		raw, _ := base64.StdEncoding.DecodeString(p.Base64)
		p.Text = string(raw)
		return p
	}
	last := len(big) - 1000
	for _, c := range []struct {
		offset   int
		verified bool
	}{{0, false}, {1 << 20, false}, {last, true}} {
		p := read(c.offset)
		end := min(c.offset+65536, len(big))
		if p.Verified != c.verified || p.Text != string(big[c.offset:end]) || p.EOF != (end == len(big)) {
			t.Fatalf("page at %d: verified %v eof %v, %d bytes (want verified %v)", c.offset, p.Verified, p.EOF, len(p.Text), c.verified)
		}
	}
	rc, _, err := e.admin.OpenContent(ctx, id)
	must(t, err)
	ra, ok := rc.(interface{ UnverifiedReaderAt() (io.ReaderAt, bool) })
	if !ok {
		t.Fatal("the engine's content reader has no UnverifiedReaderAt")
	}
	if at, ok := ra.UnverifiedReaderAt(); !ok {
		t.Fatal("filesystem content has no reader at an offset")
	} else {
		b := make([]byte, 5)
		if _, err := at.ReadAt(b, 3<<20); err != nil || string(b) != string(big[3<<20:3<<20+5]) {
			t.Fatalf("ReadAt: %q %v", b, err)
		}
	}
	rc.Close()

	e.flipStored(t, big, 2<<20)
	if p := read(2 << 20); p.Verified || p.Text == string(big[2<<20:2<<20+65536]) {
		t.Fatalf("damaged page before the end: verified %v, content intact %v", p.Verified, p.Text == string(big[2<<20:2<<20+65536]))
	}
	if p := read(0); p.Verified || p.Text != string(big[:65536]) {
		t.Fatalf("first page: verified %v", p.Verified)
	}
	msg := callErr(t, cs, "read_document", map[string]any{"id": id, "offset": last, "max_bytes": 65536, "encoding": "base64"})
	if !strings.HasPrefix(msg, "corrupt:") || !strings.Contains(msg, id) {
		t.Fatalf("last page of damaged content: %s", msg)
	}
	// A resource of it is cut at 1 MiB, unchecked, and says so.
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: documentURI(id)})
	if err != nil || res.Contents[0].Meta["verified"] != false || res.Contents[0].Meta["truncated"] != true {
		t.Fatalf("resource of a large document: %v %v", err, fmt.Sprint(res.Contents[0].Meta))
	}
}
