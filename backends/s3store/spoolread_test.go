package s3store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/s3test"
	"github.com/google/uuid"
)

// spoolFiles returns the spool files in dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "docex-s3-stage-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantSpoolRead checks the error of an upload whose spool file could not
// be read back: storage_unavailable and driver.ErrSpool, naming the file,
// the content and its object.
func wantSpoolRead(t *testing.T, what string, err error, path, sum string) {
	t.Helper()
	if !errors.Is(err, docex.ErrStorageUnavailable) || !errors.Is(err, driver.ErrSpool) || docex.Code(err) != "storage_unavailable" {
		t.Fatalf("%s: %v (code %s); want storage_unavailable and driver.ErrSpool", what, err, docex.Code(err))
	}
	for _, want := range []string{path, sum, "s3://", "storage.documents.s3.spool_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q lacks %q", what, err, want)
		}
	}
}

// TestSpoolFileGone: a spool file removed, replaced by a directory, or
// truncated between staging and the upload (a single PUT, or a multipart
// upload's parts) fails the upload with storage_unavailable and
// driver.ErrSpool naming the file, the content and its object, and
// stores nothing (no object, no multipart upload left). It used to be an
// untyped "s3 spool: open ..." (internal), or the SDK's error for a
// short body.
func TestSpoolFileGone(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	s := newStore(t, srv, func(c *s3store.Config) { c.SpoolDir = spool })
	tc, err := s.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		size   int
		damage func(path string) error
	}{
		{"removed", 2 << 20, os.Remove},
		{"a directory", 2 << 20, func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o700)
		}},
		{"truncated", 2 << 20, func(p string) error { return os.Truncate(p, 1<<20) }},
		{"truncated, multipart", 2*s3store.MinPartSize + 1, func(p string) error { return os.Truncate(p, s3store.MinPartSize+100) }},
	}
	for _, c := range cases {
		st, err := tc.Stage(bg, bytes.NewReader(random(c.size)), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		files := spoolFiles(t, spool)
		if len(files) != 1 {
			t.Fatalf("%s: spool files %q, want one", c.name, files)
		}
		if err := c.damage(files[0]); err != nil {
			t.Fatal(err)
		}
		err = tc.Sync(bg, []driver.Staged{st})
		if err == nil {
			err = tc.Put(bg, nil, []driver.Staged{st})
		}
		wantSpoolRead(t, c.name, err, files[0], st.Checksum())
		st.Discard()
		os.RemoveAll(files[0])
		if objs := objects(t, srv, s.Bucket()); len(objs) != 0 {
			t.Errorf("%s: objects stored: %q", c.name, objs)
		}
		out, err := srv.Client().ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: ptr(s.Bucket())})
		if err != nil || len(out.Uploads) != 0 {
			t.Errorf("%s: multipart uploads left: %d, %v", c.name, len(out.Uploads), err)
		}
	}
}

// TestAddSpoolFileTruncated: an add whose spool file is cut short while
// it uploads (after its multipart upload was created) fails with
// storage_unavailable naming the file, and adds nothing: no document, no
// object.
func TestAddSpoolFileTruncated(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	r := newRig(t, srv, func(c *s3store.Config) { c.SpoolDir = spool })
	b, _ := r.s.CreateBasket(bg, "b")
	r.add(t, b.ID, []byte("the engine's first write reads the claim marker"))
	before := objects(t, srv, r.store.Bucket())
	var path string
	r.reqs.hooks(func(op string) {
		if op == "CreateMultipartUpload" {
			files := spoolFiles(t, spool)
			if len(files) == 1 {
				path = files[0]
				os.Truncate(path, 100)
			}
		}
	}, nil)
	data := random(2*s3store.MinPartSize + 1)
	_, err := r.s.AddDocument(bg, b.ID, engine.NewDocument{Name: "big.bin", Content: bytes.NewReader(data)})
	r.reqs.hooks(nil, nil)
	if path == "" {
		t.Fatalf("no spool file to truncate; add: %v", err)
	}
	wantSpoolRead(t, "add", err, path, "")
	if docs, err := r.s.Documents(bg, b.ID, docex.Page{}); err != nil || len(docs) != 1 {
		t.Fatalf("%d documents after the failed add, %v; want the first one only", len(docs), err)
	}
	if after := objects(t, srv, r.store.Bucket()); len(after) != len(before) {
		t.Fatalf("objects %q after the failed add, want %q", after, before)
	}
	if files := spoolFiles(t, spool); len(files) != 0 {
		t.Errorf("spool files left: %q", files)
	}
}
