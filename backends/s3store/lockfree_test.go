package s3store_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/backends/sqlite"
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
// inside the transaction (one HEAD), uploaded again outside it and
// confirmed (one HEAD), and the transaction runs again (one HEAD), so the
// committed document's content is there.
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
	r.reqs.want(t, "an add whose object was deleted before its transaction", map[string]int{"PUT": 2, "HEAD": 3})
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
}

// TestCommitHeadStallBounded: on SQLite, a server that stalls on the HEAD
// an add makes inside its transaction (under the content lock, to confirm
// that the object it uploaded before is still there) fails that add with
// storage_unavailable once its own bound passes (Config.CommitHeadTimeout,
// 3s by default), nothing added, and does not hold the tenant's write lock
// for the request timeout: another process's write of the same tenant,
// which waits for that lock at most its busy timeout, commits. Before, the
// HEAD was bounded by the request timeout only (30s by default, here 2
// minutes), longer than the busy timeout (here 30s): the other write
// failed with SQLITE_BUSY.
func TestCommitHeadStallBounded(t *testing.T) {
	srv := s3test.Start(t)
	proxy := s3test.StartProxy(t, srv.Addr())
	reqs := &counter{}
	store := newStore(t, srv, func(c *s3store.Config) {
		c.Endpoint, c.HTTPClient = "http://"+proxy.Addr, &http.Client{Transport: reqs}
		c.RequestTimeout = 2 * time.Minute
	})
	dir := t.TempDir()
	be, err := sqlite.Open(bg, sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentStore: store}
	if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(bg, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	if _, err := eng.Provisioner("test").Create(bg, "acme", ""); err != nil {
		t.Fatal(err)
	}
	admin := docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}}
	s := eng.As(admin)
	b, err := s.CreateBasket(bg, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "first", Content: strings.NewReader("the first write reads the claim marker")}); err != nil {
		t.Fatal(err)
	}
	// The other process: the same data directory, its own write
	// connection, a busy timeout far shorter than the request timeout.
	be2, err := sqlite.Open(bg, sqlite.Config{Dir: dir, BusyTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be2.Close() })
	eng2, err := engine.New(bg, be2, engine.Config{MultiTenancy: true, ContentStore: newStore(t, srv, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng2.Close() })

	held := make(chan struct{})
	var once sync.Once
	reqs.hooks(func(op string) {
		if op == "HEAD" { // the HEAD inside the transaction: its answer stalls
			once.Do(func() { proxy.SetDelay(time.Hour); close(held) })
		}
	}, nil)
	added := make(chan error, 1)
	go func() {
		_, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "stalled", Content: strings.NewReader("content whose HEAD stalls")})
		added <- err
	}()
	<-held
	if _, err := eng2.As(admin).CreateBasket(bg, "meanwhile"); err != nil {
		t.Errorf("another process's write while the add's HEAD stalled: %v", err)
	}
	err = <-added
	reqs.hooks(nil, nil)
	proxy.SetDelay(0)
	if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), "no answer within 3s") {
		t.Fatalf("add whose HEAD in its transaction stalled: %v; want storage_unavailable, no answer within 3s", err)
	}
	if docs, err := s.Documents(bg, b.ID, docex.Page{}); err != nil || len(docs) != 1 || docs[0].Name != "first" {
		t.Fatalf("documents after the failed add: %+v, %v; want the first only", docs, err)
	}
}

// TestReuploadHoldsNoWriteLock: on SQLite, the upload again of content
// whose object the HEAD inside the add's transaction found gone (here the
// server answers that HEAD 404) is made outside the transaction: another
// write of the same tenant commits while that upload is held, and the
// add then commits, its content there. Before, the upload again was made
// inside the transaction and held the tenant's write lock for as long as
// the server took (request_timeout_ms): the other write waited for it
// (from another process, it failed with SQLITE_BUSY after its busy
// timeout).
func TestReuploadHoldsNoWriteLock(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, err := r.s.CreateBasket(bg, "b")
	if err != nil {
		t.Fatal(err)
	}
	other := r.add(t, b.ID, []byte("another document"))
	r.reqs.take()
	var (
		mu        sync.Mutex
		headFaked bool
		once      sync.Once
	)
	held, release := make(chan struct{}), make(chan struct{})
	r.reqs.faking(func(op string, req *http.Request) *http.Response {
		mu.Lock()
		defer mu.Unlock()
		if op == "HEAD" && !headFaked && content(req) {
			headFaked = true // the HEAD inside the transaction: gone
			return answer(req, 404, nil, "")
		}
		return nil
	})
	r.reqs.hooks(func(op string) {
		mu.Lock()
		again := headFaked
		mu.Unlock()
		if op == "PUT" && again {
			once.Do(func() { close(held) })
			<-release
		}
	}, nil)
	data := random(4096)
	added := make(chan error, 1)
	var a engine.Added
	go func() {
		var err error
		a, err = r.s.AddDocument(bg, b.ID, engine.NewDocument{Name: "uploaded again", Content: bytes.NewReader(data)})
		added <- err
	}()
	<-held
	// The bound only ends the test instead of hanging it when the writes
	// wait for the add's write lock.
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
	close(release)
	if werr != nil {
		t.Errorf("writes while the upload again was held: %v", werr)
	}
	err = <-added
	r.reqs.hooks(nil, nil)
	r.reqs.faking(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.reqs.want(t, "an add whose object the HEAD in its transaction found gone", map[string]int{"PUT": 2, "HEAD": 3})
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
}

// TestReuploadBounded: content whose object the HEAD inside the add's
// transaction finds gone every time (here the server answers each of
// those HEADs 404, and the HEAD that confirms each upload again outside
// the transaction 200) fails the add after three transactions with
// storage_unavailable naming the object, nothing added: two uploads
// again, not one per try for ever.
func TestReuploadBounded(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, err := r.s.CreateBasket(bg, "b")
	if err != nil {
		t.Fatal(err)
	}
	r.add(t, b.ID, []byte("the first write reads the claim marker"))
	r.reqs.take()
	var (
		mu    sync.Mutex
		heads int
	)
	r.reqs.faking(func(op string, req *http.Request) *http.Response {
		if op != "HEAD" || !content(req) {
			return nil
		}
		mu.Lock()
		heads++
		inTx := heads%2 == 1 // in the transaction, then the confirmation, in turn
		mu.Unlock()
		if inTx {
			return answer(req, 404, nil, "")
		}
		return nil
	})
	_, err = r.s.AddDocument(bg, b.ID, engine.NewDocument{Name: "gone each time", Content: bytes.NewReader(random(4096))})
	r.reqs.faking(nil)
	want := "s3://" + r.store.Bucket() + "/docex/test/tenants/acme/"
	if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "was gone inside it") {
		t.Fatalf("add whose object is gone inside each transaction: %v; want storage_unavailable naming %s..., gone inside it", err, want)
	}
	r.reqs.want(t, "three transactions", map[string]int{"PUT": 3, "HEAD": 5})
	if docs, err := r.s.Documents(bg, b.ID, docex.Page{}); err != nil || len(docs) != 1 {
		t.Fatalf("documents after the failed add: %d, %v; want the first only", len(docs), err)
	}
}
