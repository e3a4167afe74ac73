package s3store_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/s3test"
)

// flipUploads sends the uploads of content objects (a PUT, a part) to the
// server with one byte of their body flipped, their checksum headers
// unchanged: bytes damaged on the way, which the server refuses.
func flipUploads(op string, r *http.Request) *http.Response {
	if !content(r) || (op != "PUT" && op != "UploadPart") {
		return nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil
	}
	b[len(b)/2] ^= 0x01
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	r.GetBody = nil
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return answer(r, 502, nil, "")
	}
	return resp
}

// TestUploadDamagedInTransit: an upload (one PUT, a part of a multipart
// upload) whose bytes the server received damaged, and refused for their
// checksum, fails the add with storage_unavailable
// (s3store.ErrDamagedInTransit) naming the object, nothing added. Before,
// the refusal (XAmzContentSHA256Mismatch, BadDigest) was an untyped
// internal error.
func TestUploadDamagedInTransit(t *testing.T) {
	srv := s3test.Start(t)
	for _, c := range []struct {
		name string
		size int
	}{
		{"one PUT", 4096},
		{"multipart", 2*s3store.MinPartSize + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, srv, nil)
			b, err := r.s.CreateBasket(bg, "b")
			if err != nil {
				t.Fatal(err)
			}
			r.add(t, b.ID, []byte("the first write reads the claim marker"))
			r.reqs.faking(flipUploads)
			_, err = r.s.AddDocument(bg, b.ID, engine.NewDocument{Name: "damaged", Content: bytes.NewReader(random(c.size))})
			r.reqs.faking(nil)
			want := "s3://" + r.store.Bucket() + "/docex/test/tenants/acme/"
			if !errors.Is(err, docex.ErrStorageUnavailable) || !errors.Is(err, s3store.ErrDamagedInTransit) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "damaged on the way") {
				t.Fatalf("add of bytes damaged on the way: %v; want storage_unavailable, damaged on the way, naming %s...", err, want)
			}
			if docs, err := r.s.Documents(bg, b.ID, docex.Page{}); err != nil || len(docs) != 1 {
				t.Fatalf("documents after the failed add: %d, %v; want the first only", len(docs), err)
			}
		})
	}
}

// TestAnsweredErrorsNameObject: a read whose GET the server answers with
// an error the SDK retries (HTTP 429, 500, 503 SlowDown) until its
// attempts run out fails with storage_unavailable naming the object
// (s3://BUCKET/KEY) and the status the server answered. Before, the
// message named no object, and a 429 read "unreachable or not answering
// within 30s" although the server answered at once.
func TestAnsweredErrorsNameObject(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, err := r.s.CreateBasket(bg, "b")
	if err != nil {
		t.Fatal(err)
	}
	a := r.add(t, b.ID, []byte("a document read while the server refuses"))
	for _, c := range []struct {
		status int
		code   string
	}{
		{429, "TooManyRequests"},
		{500, "InternalError"},
		{503, "SlowDown"},
	} {
		r.reqs.faking(func(op string, req *http.Request) *http.Response {
			if op != "GET" || !content(req) {
				return nil
			}
			return answer(req, c.status, http.Header{"Content-Type": {"application/xml"}},
				`<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+c.code+`</Code><Message>injected</Message></Error>`)
		})
		r.reqs.take()
		_, err := r.s.ReadContent(bg, a.Document.ID)
		n := r.reqs.take()["GET"]
		r.reqs.faking(nil)
		want := "s3 get object s3://" + r.store.Bucket() + "/docex/test/tenants/acme/"
		answered := "answered HTTP " + strconv.Itoa(c.status)
		if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), answered) || strings.Contains(err.Error(), "not answering") {
			t.Errorf("read answered %d: %v; want storage_unavailable, %s..., %s", c.status, err, want, answered)
		}
		if n != 3 {
			t.Errorf("read answered %d: %d GETs, want 3", c.status, n)
		}
	}
}
