package s3store_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/s3test"
)

// TestRangedReads: a document's content in S3 is read at an offset with
// one ranged GET of the bytes asked for (engine OpenContent's
// UnverifiedReaderAt, which MCP's read_document uses for a page of a
// large document past its start); before 2026-12-08 S3 had no reads at
// an offset, and every page downloaded the object from byte 0 up to it.
// A server that answers with other bytes (no Range support) fails the
// read instead of giving them.
func TestRangedReads(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, err := r.s.CreateBasket(bg, "one")
	if err != nil {
		t.Fatal(err)
	}
	data := random(300 << 10)
	a := r.add(t, b.ID, data)

	open := func(t *testing.T) (io.ReaderAt, func()) {
		t.Helper()
		rc, _, err := r.s.OpenContent(bg, a.Document.ID)
		if err != nil {
			t.Fatal(err)
		}
		u, ok := rc.(interface{ UnverifiedReaderAt() (io.ReaderAt, bool) })
		if !ok {
			rc.Close()
			t.Fatal("the content reader has no UnverifiedReaderAt")
		}
		at, ok := u.UnverifiedReaderAt()
		if !ok {
			rc.Close()
			t.Fatal("S3 content has no reader at offsets")
		}
		return at, func() { rc.Close() }
	}

	at, done := open(t)
	var ranges []string
	r.reqs.hooks(nil, nil)
	r.reqs.faking(func(op string, req *http.Request) *http.Response {
		if op == "GET" {
			ranges = append(ranges, req.Header.Get("Range"))
		}
		return nil
	})
	r.reqs.take()
	for _, c := range []struct{ off, n int }{{200 << 10, 16 << 10}, {1, 1}, {len(data) - 10, 10}} {
		buf := make([]byte, c.n)
		if n, err := at.ReadAt(buf, int64(c.off)); err != nil || n != c.n || !bytes.Equal(buf, data[c.off:c.off+c.n]) {
			t.Fatalf("ReadAt(%d bytes at %d): %d, %v, same bytes %v", c.n, c.off, n, err, bytes.Equal(buf[:n], data[c.off:c.off+n]))
		}
	}
	// Past the end: the bytes there are, and io.EOF.
	buf := make([]byte, 100)
	if n, err := at.ReadAt(buf, int64(len(data)-40)); n != 40 || !errors.Is(err, io.EOF) || !bytes.Equal(buf[:n], data[len(data)-40:]) {
		t.Fatalf("ReadAt past the end: %d, %v", n, err)
	}
	done()
	r.reqs.want(t, "four reads at offsets", map[string]int{"GET": 4})
	want := []string{"bytes=204800-221183", "bytes=1-1", "bytes=307190-307199", "bytes=307160-307259"}
	if strings.Join(ranges, " ") != strings.Join(want, " ") {
		t.Fatalf("ranges asked %q, want %q", ranges, want)
	}

	// A server that ignores Range and sends the whole object.
	r.reqs.faking(func(op string, req *http.Request) *http.Response {
		if op != "GET" || req.Header.Get("Range") == "" {
			return nil
		}
		return &http.Response{StatusCode: 200, Request: req, Header: http.Header{"Content-Length": {"307200"}},
			ContentLength: int64(len(data)), Body: io.NopCloser(bytes.NewReader(data))}
	})
	defer r.reqs.faking(nil)
	at, done = open(t)
	defer done()
	buf = make([]byte, 16)
	if n, err := at.ReadAt(buf, 1000); !errors.Is(err, docex.ErrStorageUnavailable) || n != 0 || !strings.Contains(err.Error(), "ranged GETs") {
		t.Fatalf("a server without ranges: %d, %v; want storage_unavailable, no bytes", n, err)
	}
}
