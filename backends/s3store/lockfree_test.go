package s3store_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3test"
)

// TestUploadHoldsNoWriteLock: on SQLite, an add whose upload is held (the
// server stalls) does not hold the tenant's write lock: another write of
// the same tenant (a basket created, metadata set) commits while the
// upload is still held, for content in memory and for spooled content of
// one part. Before, content up to one part was uploaded inside the add's
// transaction, and the other write waited for the busy timeout and failed
// with SQLITE_BUSY.
func TestUploadHoldsNoWriteLock(t *testing.T) {
	srv := s3test.Start(t)
	for _, c := range []struct {
		name string
		size int
	}{
		{"in memory", 4096},
		{"spooled", 2 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, srv, nil)
			b, err := r.s.CreateBasket(bg, "b")
			if err != nil {
				t.Fatal(err)
			}
			other := r.add(t, b.ID, []byte("another document"))
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			r.reqs.hooks(func(op string) {
				if op == "PUT" {
					once.Do(func() { close(held) })
					<-release
				}
			}, nil)
			data := random(c.size)
			added := make(chan error, 1)
			var a engine.Added
			go func() {
				var err error
				a, err = r.s.AddDocument(bg, b.ID, engine.NewDocument{Name: "stalled", Content: bytes.NewReader(data)})
				added <- err
			}()
			<-held
			// The upload is held until release: these writes must
			// commit meanwhile. The bound only ends the test instead of
			// hanging it when they wait for the add (on SQLite in the same
			// process they wait for its write lock as long as it is held).
			wrote := make(chan error, 1)
			go func() {
				_, err := r.s.CreateBasket(bg, "meanwhile")
				if err == nil {
					_, err = r.s.SetMetadata(bg, other.Document.ID, map[string]docex.Value{"k": docex.String("v")})
				}
				wrote <- err
			}()
			var werr error
			select {
			case werr = <-wrote:
			case <-time.After(2 * time.Minute):
				werr = errors.New("still waiting after 2 minutes")
			}
			select {
			case err := <-added:
				t.Errorf("the add ended (%v) while its upload was held", err)
			default:
			}
			close(release)
			r.reqs.hooks(nil, nil)
			if werr != nil {
				t.Fatalf("writes while an upload was held: %v", werr)
			}
			if err := <-added; err != nil {
				t.Fatal(err)
			}
			got, err := r.s.ReadContent(bg, a.Document.ID)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestUploadDeletedBeforeCommit: an object the add uploaded before its
// transaction and something deleted before the transaction ran (a
// concurrent release of the same content, docex gc) is found missing
// inside the transaction (one HEAD) and uploaded again, so the committed
// document's content is there.
func TestUploadDeletedBeforeCommit(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, _ := r.s.CreateBasket(bg, "b")
	r.add(t, b.ID, []byte("the first write reads the claim marker"))
	r.reqs.take()
	data := random(4096)
	var once sync.Once
	bucket := r.store.Bucket()
	r.reqs.hooks(func(op string) {
		if op != "HEAD" {
			return
		}
		// The HEAD inside the transaction: delete the object first.
		once.Do(func() {
			for _, k := range objects(t, srv, bucket) {
				if !strings.HasSuffix(k, contentkey.Sum(data)) {
					continue
				}
				if _, err := srv.Client().DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil {
					t.Error(err)
				}
			}
		})
	}, nil)
	a := r.add(t, b.ID, data)
	r.reqs.hooks(nil, nil)
	r.reqs.want(t, "an add whose object was deleted before its transaction", map[string]int{"PUT": 2, "HEAD": 1})
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
}
