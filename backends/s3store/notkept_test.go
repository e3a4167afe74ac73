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

// answer is a response the test gives in the server's place; the
// request's body is read and discarded first, as a server would.
func answer(r *http.Request, status int, hdr http.Header, body string) *http.Response {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: hdr, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}
}

// content reports whether r is a request on a tenant's content object
// (not the claim marker, not a connectivity check).
func content(r *http.Request) bool { return strings.Contains(r.URL.Path, "/tenants/") }

// dropUploads answers the uploads of content objects (a PUT of the whole
// object, the completion of a multipart upload) with success without
// storing anything: a server that acknowledges an upload it does not keep.
func dropUploads(op string, r *http.Request) *http.Response {
	if !content(r) {
		return nil
	}
	switch op {
	case "PUT":
		hdr := http.Header{"Etag": {`"d41d8cd98f00b204e9800998ecf8427e"`}}
		if cs := r.Header.Get("x-amz-checksum-sha256"); cs != "" {
			hdr.Set("x-amz-checksum-sha256", cs)
		}
		return answer(r, 200, hdr, "")
	case "CompleteMultipartUpload":
		return answer(r, 200, http.Header{"Content-Type": {"application/xml"}},
			`<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><ETag>"d41d8cd98f00b204e9800998ecf8427e-2"</ETag></CompleteMultipartUploadResult>`)
	}
	return nil
}

// TestUploadAcknowledgedNotKept: a server that acknowledges every upload
// of the content and keeps none (a PUT, the completion of a multipart
// upload) fails the add with storage_unavailable naming the object and
// saying so, nothing added; before, the HEAD inside the transaction found
// the object missing, uploaded it again, and the add committed without
// confirming that second upload: acknowledged, and the content lost.
func TestUploadAcknowledgedNotKept(t *testing.T) {
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
			r.reqs.faking(dropUploads)
			data := random(c.size)
			_, err = r.s.AddDocument(bg, b.ID, engine.NewDocument{Name: "dropped", Content: bytes.NewReader(data)})
			r.reqs.faking(nil)
			if err == nil {
				t.Fatal("an add whose uploads the server acknowledged and did not keep was acknowledged")
			}
			want := "s3://" + r.store.Bucket() + "/docex/test/tenants/acme/"
			if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), "acknowledged an upload it did not keep") || !strings.Contains(err.Error(), want) {
				t.Fatalf("add: %v; want storage_unavailable naming %s..., acknowledged an upload it did not keep", err, want)
			}
			if docs, err := r.s.Documents(bg, b.ID, docex.Page{}); err != nil || len(docs) != 1 {
				t.Fatalf("documents after the failed add: %d, %v; want the first only", len(docs), err)
			}
			// The server keeping uploads again, the same add succeeds.
			a := r.add(t, b.ID, data)
			got, err := r.s.ReadContent(bg, a.Document.ID)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %d bytes, %v", len(got), err)
			}
		})
	}
}
