package s3store_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3test"
	"github.com/google/uuid"
)

// counter counts S3 requests by operation; before, when set, runs before
// each request is sent; fake, when set and it returns a response, answers
// the request in the server's place (the request is not sent).
type counter struct {
	mu     sync.Mutex
	n      map[string]int
	before func(op string)
	after  func(op string, resp *http.Response)
	fake   func(op string, r *http.Request) *http.Response
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	op := r.Method
	switch {
	case r.Method == "HEAD" && !strings.Contains(strings.Trim(r.URL.Path, "/"), "/"):
		op = "HeadBucket" // path-style: /bucket
	case r.Method == "PUT" && q.Has("partNumber"):
		op = "UploadPart"
	case r.Method == "POST" && q.Has("uploads"):
		op = "CreateMultipartUpload"
	case r.Method == "POST" && q.Has("uploadId"):
		op = "CompleteMultipartUpload"
	case r.Method == "POST" && q.Has("delete"):
		op = "DeleteObjects"
	case r.Method == "GET" && (q.Has("list-type") || q.Has("uploads")):
		op = "LIST"
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op]++
	before, after, fake := c.before, c.after, c.fake
	c.mu.Unlock()
	if before != nil {
		before(op)
	}
	if fake != nil {
		if resp := fake(op, r); resp != nil {
			return resp, nil
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if after != nil && err == nil {
		after(op, resp)
	}
	return resp, err
}

func (c *counter) hooks(before func(string), after func(string, *http.Response)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before, c.after = before, after
}

// faking sets fake (nil: every request is sent again).
func (c *counter) faking(fake func(op string, r *http.Request) *http.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fake = fake
}

func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	if n == nil {
		n = map[string]int{}
	}
	return n
}

func (c *counter) want(t *testing.T, what string, want map[string]int) {
	t.Helper()
	got := c.take()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: requests %v, want %v", what, got, want)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// rig is an engine over SQLite with content in S3.
type rig struct {
	srv   *s3test.Server
	store *s3store.Store
	reqs  *counter
	eng   *engine.Engine
	s     *engine.Session
	be    *sqlite.Backend
}

func newRig(t *testing.T, srv *s3test.Server, mod func(*s3store.Config)) *rig {
	t.Helper()
	reqs := &counter{}
	store := newStore(t, srv, func(c *s3store.Config) {
		c.HTTPClient = &http.Client{Transport: reqs}
		if mod != nil {
			mod(c)
		}
	})
	be, err := sqlite.Open(bg, sqlite.Config{Dir: t.TempDir()})
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
	reqs.take()
	return &rig{srv: srv, store: store, reqs: reqs, eng: eng, be: be,
		s: eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})}
}

func (r *rig) add(t *testing.T, basket string, data []byte) engine.Added {
	t.Helper()
	a, err := r.s.AddDocument(bg, basket, engine.NewDocument{Name: "d.bin", Content: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// objects lists the keys in the store's bucket but the claim marker
// (PREFIX/.docex-system, which engine.Bootstrap writes).
func objects(t *testing.T, srv *s3test.Server, bucket string) []string {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		if !strings.HasSuffix(*o.Key, "/.docex-system") {
			keys = append(keys, *o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// One PUT per new content before the transaction and one HEAD inside it
// (the object is still there), none for a dedup hit, one GET per read; the
// engine's first write reads the claim marker first (one GET per process,
// never again); a delete checks the bucket (one HEAD of it) before it
// changes anything, and costs one DELETE when the last reference goes;
// keys are tenant-scoped.
func TestRequestsPerOperation(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b1, _ := r.s.CreateBasket(bg, "one")
	b2, _ := r.s.CreateBasket(bg, "two")
	r.reqs.take()
	data := random(4096)
	first := r.add(t, b1.ID, random(4096))
	r.reqs.want(t, "the engine's first write", map[string]int{"GET": 1, "PUT": 1, "HEAD": 1})
	if err := r.s.DeleteDocument(bg, first.Document.ID); err != nil {
		t.Fatal(err)
	}
	r.reqs.take()
	a := r.add(t, b1.ID, data)
	r.reqs.want(t, "new content", map[string]int{"PUT": 1, "HEAD": 1})
	if dup := r.add(t, b1.ID, data); !dup.Duplicate {
		t.Fatal("not a duplicate")
	}
	r.reqs.want(t, "duplicate in the basket", map[string]int{})
	a2 := r.add(t, b2.ID, data)
	r.reqs.want(t, "dedup hit in another basket", map[string]int{})
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	r.reqs.want(t, "read", map[string]int{"GET": 1})
	tn, _ := r.eng.Provisioner("t").Get(bg, "acme")
	if keys := objects(t, srv, r.store.Bucket()); len(keys) != 1 || keys[0] != "docex/test/tenants/acme/"+tn.Incarnation+"/"+a.Document.Checksum[:2]+"/"+a.Document.Checksum {
		t.Fatalf("keys %v", keys)
	}
	if err := r.s.DeleteDocument(bg, a.Document.ID); err != nil {
		t.Fatal(err)
	}
	r.reqs.want(t, "delete of a shared content's first reference", map[string]int{"HeadBucket": 1})
	if err := r.s.DeleteDocument(bg, a2.Document.ID); err != nil {
		t.Fatal(err)
	}
	r.reqs.want(t, "delete of the last reference", map[string]int{"HeadBucket": 1, "DELETE": 1})
	if keys := objects(t, srv, r.store.Bucket()); len(keys) != 0 {
		t.Fatalf("keys left %v", keys)
	}
	// Tenant delete removes the prefix.
	r.add(t, b1.ID, random(100))
	r.add(t, b1.ID, random(100))
	if err := r.eng.Provisioner("t").Delete(bg, "acme"); err != nil {
		t.Fatal(err)
	}
	if keys := objects(t, srv, r.store.Bucket()); len(keys) != 0 {
		t.Fatalf("keys left after tenant delete %v", keys)
	}
}

// Large content goes up in parts before the transaction, each part with
// its checksum; a dedup hit on content the tenant holds costs no request
// (the engine leaves it out of Sync: docs/s3.md).
func TestMultipart(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b1, _ := r.s.CreateBasket(bg, "one")
	b2, _ := r.s.CreateBasket(bg, "two")
	r.reqs.take()
	data := random(2*s3store.MinPartSize + 12345)
	a := r.add(t, b1.ID, data)
	r.reqs.want(t, "new multipart content, the engine's first write (one GET of the claim marker)", map[string]int{"GET": 1, "HEAD": 1, "CreateMultipartUpload": 1, "UploadPart": 3, "CompleteMultipartUpload": 1})
	r.add(t, b2.ID, data)
	r.reqs.want(t, "multipart dedup hit", map[string]int{})
	// So does a doc update to content the tenant holds, here other
	// documents': the update only references it. (The replaced content
	// stays referenced by another document, so nothing is deleted either.)
	b3, _ := r.s.CreateBasket(bg, "three")
	a2 := r.add(t, b3.ID, []byte("small, then replaced"))
	r.add(t, b2.ID, []byte("small, then replaced"))
	r.reqs.take()
	if _, err := r.s.UpdateContent(bg, a2.Document.ID, bytes.NewReader(data), ""); err != nil {
		t.Fatal(err)
	}
	r.reqs.want(t, "update to held multipart content", map[string]int{})
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	// The large content's object (the bucket holds the small one too):
	// its metadata names its checksum.
	var key string
	for _, k := range objects(t, srv, r.store.Bucket()) {
		if strings.HasSuffix(k, a.Document.Checksum) {
			key = k
		}
	}
	if key == "" {
		t.Fatalf("no object for %s in %v", a.Document.Checksum, objects(t, srv, r.store.Bucket()))
	}
	head, err := srv.Client().HeadObject(bg, &s3.HeadObjectInput{Bucket: ptr(r.store.Bucket()), Key: ptr(key)})
	if err != nil || head.Metadata["docex-sha256"] != a.Document.Checksum {
		t.Fatalf("metadata %v, %v", head.Metadata, err)
	}
}

// The server checks the SHA-256 sent with an upload: bytes damaged on the
// way are refused, and nothing is stored.
func TestServerRejectsDamagedUpload(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	body := []byte("the bytes that arrive")
	wrong := contentkey.Sum([]byte("the bytes that were sent"))
	k := "x/" + wrong
	_, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader(body),
		ChecksumSHA256: ptr(b64sum(wrong))})
	if err == nil {
		t.Fatal("server accepted an upload whose checksum does not match")
	}
	if keys := objects(t, srv, bucket); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
}

// Check: reachable and writable, or a typed error naming the problem, and
// nothing left behind either way.
func TestCheck(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	cases := []struct {
		name string
		mod  func(*s3store.Config)
		want error
		msg  string
	}{
		{"ok", func(*s3store.Config) {}, nil, ""},
		{"no such bucket", func(c *s3store.Config) { c.Bucket = "docex-missing-bucket" }, s3store.ErrNoSuchBucket, "does not exist"},
		{"wrong secret", func(c *s3store.Config) {
			c.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret", "")
		}, docex.ErrStorageDenied, "credentials"},
		{"unknown key id", func(c *s3store.Config) {
			c.Credentials = credentials.NewStaticCredentialsProvider("nobody", srv.SecretKey, "")
		}, docex.ErrStorageDenied, "credentials"},
		{"endpoint unreachable", func(c *s3store.Config) { c.Endpoint = closed; c.RequestTimeout = 2 * time.Second }, docex.ErrStorageUnavailable, "unreachable"},
		{"wrong region", func(c *s3store.Config) { c.Region = "eu-west-1" }, docex.ErrInvalidConfig, "region"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := s3store.Config{Bucket: bucket, Prefix: "p", Endpoint: srv.Endpoint, PathStyle: true, Credentials: srv.Credentials()}
			c.mod(&cfg)
			s, err := s3store.New(bg, cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(bg)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Check = %v, want %v mentioning %q", err, c.want, c.msg)
			}
			if err != nil && strings.Contains(err.Error(), srv.SecretKey) {
				t.Fatal("the error shows the secret")
			}
			if errors.Is(err, s3store.ErrNoSuchBucket) && !errors.Is(err, docex.ErrInvalidConfig) {
				t.Fatalf("a missing bucket is not invalid_config: %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "StatusCode: 0") {
				t.Fatalf("the SDK's retry chain in the message: %v", err)
			}
			if keys := objects(t, srv, bucket); len(keys) != 0 {
				t.Fatalf("Check left %v", keys)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []s3store.Config{
		{Bucket: ""}, {Bucket: "UPPER"}, {Bucket: "a"}, {Bucket: "has_underscore"}, {Bucket: "a..b"},
		{Bucket: "ok-bucket", Prefix: "/lead"}, {Bucket: "ok-bucket", Prefix: "trail/"}, {Bucket: "ok-bucket", Prefix: "a/../b"},
		{Bucket: "ok-bucket", Prefix: "a//b"}, {Bucket: "ok-bucket", Prefix: "sp ace"}, {Bucket: "ok-bucket", Endpoint: "127.0.0.1:9000"},
		{Bucket: "ok-bucket", PartSize: 1 << 20},
	} {
		if _, err := s3store.New(bg, cfg); !errors.Is(err, docex.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// Clean aborts multipart uploads a crash left behind, only the tenant's
// and only older than the cutoff.
func TestCleanAbortsStaleUploads(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, nil)
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	other := docex.Tenant{ID: "globex", Incarnation: uuid.NewString()}
	for _, x := range []docex.Tenant{tn, other} {
		k := key(t, s, x, contentkey.Sum([]byte(x.ID)))
		if _, err := srv.Client().CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: ptr(s.Bucket()), Key: &k}); err != nil {
			t.Fatal(err)
		}
	}
	tc, _ := s.Tenant(tn)
	uploads := func() int {
		t.Helper()
		out, err := srv.Client().ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: ptr(s.Bucket())})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Uploads)
	}
	for _, dry := range []bool{true, false} {
		if names, err := tc.Clean(bg, time.Now().Add(-time.Hour), dry); err != nil || len(names) != 0 {
			t.Fatalf("Clean(past cutoff, dryRun %v) = %q, %v", dry, names, err)
		}
	}
	// A dry run names the upload and aborts nothing.
	dry, err := tc.Clean(bg, time.Now().Add(time.Hour), true)
	if err != nil || len(dry) != 1 || !strings.Contains(dry[0], "acme") {
		t.Fatalf("Clean(dry run) = %q, %v; want acme's upload", dry, err)
	}
	if n := uploads(); n != 2 {
		t.Fatalf("the dry run left %d of 2 uploads", n)
	}
	if names, err := tc.Clean(bg, time.Now().Add(time.Hour), false); err != nil || !slices.Equal(names, dry) {
		t.Fatalf("Clean = %q, %v; want what the dry run named, %q", names, err, dry)
	}
	out, err := srv.Client().ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: ptr(s.Bucket())})
	if err != nil || len(out.Uploads) != 1 || !strings.Contains(*out.Uploads[0].Key, "globex") {
		t.Fatalf("uploads left %+v, %v", out.Uploads, err)
	}
}

// Staging keeps small content in memory within the budget and spools the
// rest; discarding frees both.
func TestStagingMemoryBudget(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	s := newStore(t, srv, func(c *s3store.Config) { c.MemoryBudget = 2 << 20; c.SpoolDir = spool })
	tc, _ := s.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
	var staged []driver.Staged
	for range 6 {
		st, err := tc.Stage(bg, bytes.NewReader(random(600<<10)), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, st)
	}
	files, _ := os.ReadDir(spool)
	if len(files) < 3 || len(files) > 5 {
		t.Fatalf("%d of 6 stagings spooled with a 2 MiB budget, want 3 to 5", len(files))
	}
	big, err := tc.Stage(bg, bytes.NewReader(random(3<<20)), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	staged = append(staged, big)
	for _, st := range staged {
		st.Discard()
	}
	if files, _ := os.ReadDir(spool); len(files) != 0 {
		t.Fatalf("%d spool files left", len(files))
	}
	// The budget is whole again: small content is in memory.
	st, _ := tc.Stage(bg, bytes.NewReader(random(1000)), 1<<30)
	defer st.Discard()
	if files, _ := os.ReadDir(spool); len(files) != 0 {
		t.Fatal("budget not released")
	}
	// Spool files of a crashed process are removed by Clean; a dry run
	// names them and leaves them.
	stale := filepath.Join(spool, "docex-s3-stage-123")
	os.WriteFile(stale, []byte("x"), 0o600)
	if names, err := tc.Clean(bg, time.Now().Add(time.Hour), true); err != nil || !slices.Equal(names, []string{stale}) {
		t.Fatalf("Clean(dry run) = %q, %v", names, err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("the dry run removed the spool file: %v", err)
	}
	if names, err := tc.Clean(bg, time.Now().Add(time.Hour), false); err != nil || !slices.Equal(names, []string{stale}) {
		t.Fatalf("Clean = %q, %v", names, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("spool file after Clean: %v", err)
	}
}

// The server stops in the middle of a batch add: the add fails with a
// clear error, nothing is acknowledged, and what was uploaded is an orphan
// that gc removes once the server is back.
func TestServerStoppedMidAdd(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, _ := r.s.CreateBasket(bg, "b")
	// Three uploads succeed; the server is then stopped before a fourth
	// is sent, so that it fails however the uploads interleave (stopping
	// it after the third response let the other uploads finish first on
	// a loaded machine).
	var (
		mu           sync.Mutex
		puts, stored int
		three        = make(chan struct{})
		stop         sync.Once
	)
	r.reqs.hooks(func(op string) {
		if op != "PUT" {
			return
		}
		mu.Lock()
		puts++
		n := puts
		mu.Unlock()
		if n > 3 {
			<-three
			stop.Do(srv.Stop)
		}
	}, func(op string, resp *http.Response) {
		mu.Lock()
		defer mu.Unlock()
		if op == "PUT" && resp.StatusCode == 200 {
			if stored++; stored == 3 {
				close(three)
			}
		}
	})
	var docs []engine.NewDocument
	for i := range 10 {
		docs = append(docs, engine.NewDocument{Name: fmt.Sprint("d", i), Content: bytes.NewReader(random(64 << 10))})
	}
	_, err := r.s.AddDocuments(bg, b.ID, docs)
	if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("add with the server stopped: %v; want ErrStorageUnavailable naming the endpoint", err)
	}
	r.reqs.hooks(nil, nil)
	srv.Restart(t)
	listed, err := r.s.Documents(bg, b.ID, docex.Page{})
	if err != nil || len(listed) != 0 {
		t.Fatalf("documents after a failed add: %d, %v", len(listed), err)
	}
	orphans := len(objects(t, srv, r.store.Bucket()))
	if orphans < 3 {
		t.Fatalf("%d objects stored before the server stopped, want at least 3", orphans)
	}
	rep, err := r.eng.Provisioner("t").Sweep(bg, engine.SweepOptions{})
	if err != nil || rep.ContentFiles != orphans {
		t.Fatalf("sweep = %+v, %v; want %d orphans removed", rep, err, orphans)
	}
	if keys := objects(t, srv, r.store.Bucket()); len(keys) != 0 {
		t.Fatalf("left %v", keys)
	}
	// And the store works again.
	r.add(t, b.ID, random(100))
}

// TestSweepDryRun: for each kind of leftover docex gc removes from S3
// content (an object no document refers to, the objects of a deleted
// incarnation, a stale multipart upload, a spool file of a crashed
// process), a dry run reports what the sweep then reports and changes
// nothing: no object deleted, no upload aborted, no file removed. Two
// tenants share the spool directory: its file is counted once.
func TestSweepDryRun(t *testing.T) {
	srv := s3test.Start(t)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		// leave makes the leftover; spool is the store's spool directory.
		leave func(t *testing.T, r *rig, acme docex.Tenant, spool string)
		want  engine.SweepReport // counts; ContentDirs only its length
	}{
		{"nothing", func(*testing.T, *rig, docex.Tenant, string) {}, engine.SweepReport{}},
		{"unreferenced object", func(t *testing.T, r *rig, acme docex.Tenant, _ string) {
			k := key(t, r.store, acme, contentkey.Sum([]byte("orphan")))
			if _, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: ptr(r.store.Bucket()), Key: &k, Body: strings.NewReader("orphan")}); err != nil {
				t.Fatal(err)
			}
		}, engine.SweepReport{ContentFiles: 1}},
		{"objects of a deleted incarnation", func(t *testing.T, r *rig, acme docex.Tenant, _ string) {
			dead := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			for _, data := range []string{"one", "two"} {
				k := key(t, r.store, dead, contentkey.Sum([]byte(data)))
				if _, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: ptr(r.store.Bucket()), Key: &k, Body: strings.NewReader(data)}); err != nil {
					t.Fatal(err)
				}
			}
		}, engine.SweepReport{ContentDirs: []string{"?"}}},
		{"stale multipart upload", func(t *testing.T, r *rig, acme docex.Tenant, _ string) {
			k := key(t, r.store, acme, contentkey.Sum([]byte("never completed")))
			if _, err := srv.Client().CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: ptr(r.store.Bucket()), Key: &k}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond) // the server's times are in seconds
		}, engine.SweepReport{ContentFiles: 1}},
		{"spool file", func(t *testing.T, r *rig, _ docex.Tenant, spool string) {
			p := filepath.Join(spool, "docex-s3-stage-crashed")
			must(t, os.WriteFile(p, []byte("x"), 0o600))
			old := time.Now().Add(-time.Hour)
			must(t, os.Chtimes(p, old, old))
		}, engine.SweepReport{ContentFiles: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			spool := t.TempDir()
			r := newRig(t, srv, func(cfg *s3store.Config) { cfg.SpoolDir = spool })
			if _, err := r.eng.Provisioner("test").Create(bg, "globex", ""); err != nil {
				t.Fatal(err)
			}
			b, _ := r.s.CreateBasket(bg, "b")
			keep := r.add(t, b.ID, []byte("keep me"))
			acme, err := r.eng.Provisioner("test").Get(bg, "acme")
			must(t, err)
			c.leave(t, r, acme, spool)
			state := func() string {
				out, err := srv.Client().ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: ptr(r.store.Bucket())})
				must(t, err)
				files, _ := os.ReadDir(spool)
				return fmt.Sprintf("objects %v, %d uploads, %d spool files", objects(t, srv, r.store.Bucket()), len(out.Uploads), len(files))
			}
			before := state()
			p := r.eng.Provisioner("ops")
			dry, err := p.Sweep(bg, engine.SweepOptions{DryRun: true})
			must(t, err)
			if !dry.DryRun || dry.ContentFiles != c.want.ContentFiles || len(dry.ContentDirs) != len(c.want.ContentDirs) || dry.Packs != 0 || len(dry.Storage) != 0 {
				t.Fatalf("dry run reported %+v, want %+v", dry, c.want)
			}
			if after := state(); after != before {
				t.Fatalf("the dry run changed the store:\nbefore %s\nafter  %s", before, after)
			}
			real, err := p.Sweep(bg, engine.SweepOptions{})
			must(t, err)
			if real.DryRun || real.ContentFiles != dry.ContentFiles || !slices.Equal(real.ContentDirs, dry.ContentDirs) {
				t.Fatalf("the sweep reported %+v, the dry run %+v", real, dry)
			}
			if c.name != "nothing" && state() == before {
				t.Fatalf("the sweep left %s", before)
			}
			again, err := p.Sweep(bg, engine.SweepOptions{DryRun: true})
			must(t, err)
			if again.ContentFiles+len(again.ContentDirs) != 0 {
				t.Fatalf("dry run after the sweep: %+v", again)
			}
			got, err := r.s.ReadContent(bg, keep.Document.ID)
			if err != nil || string(got) != "keep me" {
				t.Fatalf("content after the sweep: %q, %v", got, err)
			}
		})
	}
}

// A server that answers slower than the request timeout: the add fails
// with ErrStorageUnavailable once the timeout passes, and nothing is
// acknowledged.
func TestSlowServerTimesOut(t *testing.T) {
	srv := s3test.Start(t)
	proxy := s3test.StartProxy(t, srv.Addr())
	bucket := srv.Bucket(t)
	s, err := s3store.New(bg, s3store.Config{Bucket: bucket, Endpoint: "http://" + proxy.Addr, PathStyle: true,
		Credentials: srv.Credentials(), RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	be, _ := sqlite.Open(bg, sqlite.Config{Dir: t.TempDir()})
	defer be.Close()
	cfg := engine.Config{MultiTenancy: true, ContentStore: s}
	engine.Bootstrap(bg, be, cfg)
	eng, err := engine.New(bg, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	eng.Provisioner("t").Create(bg, "acme", "")
	ss := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})
	bk, _ := ss.CreateBasket(bg, "b")
	proxy.SetDelay(time.Hour)
	_, err = ss.AddDocument(bg, bk.ID, engine.NewDocument{Name: "slow", Content: strings.NewReader("slow server")})
	if !errors.Is(err, docex.ErrStorageUnavailable) {
		t.Fatalf("add through a stalled server: %v, want ErrStorageUnavailable", err)
	}
	proxy.SetDelay(0)
	if docs, err := ss.Documents(bg, bk.ID, docex.Page{}); err != nil || len(docs) != 0 {
		t.Fatalf("acknowledged %d documents, %v", len(docs), err)
	}
	// A read that stalls is bounded the same way.
	a, err := ss.AddDocument(bg, bk.ID, engine.NewDocument{Name: "ok", Content: strings.NewReader("fine")})
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetDelay(time.Hour)
	if _, err := ss.ReadContent(bg, a.Document.ID); !errors.Is(err, docex.ErrStorageUnavailable) {
		t.Fatalf("read through a stalled server: %v", err)
	}
}

// An object damaged in the bucket fails the read loudly.
func TestDamagedObjectFailsRead(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, _ := r.s.CreateBasket(bg, "b")
	a := r.add(t, b.ID, []byte("original content"))
	k := objects(t, srv, r.store.Bucket())[0]
	srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: ptr(r.store.Bucket()), Key: &k, Body: strings.NewReader("damaged content!")})
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("read of a damaged object: %q, %v; want ErrCorrupt", got, err)
	}
	rc, _, err := r.s.OpenContent(bg, a.Document.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("streamed read: %v", err)
	}
}

// With the bucket out of reach (the server stopped), doc delete, a cascade, basket delete --force and tenant delete fail with
// the content store's error and change nothing, rather than delete the
// documents and leave their objects behind; once it is back they work
// and leave no object.
func TestDeleteRefusedWhileStoreDown(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, _ := r.s.CreateBasket(bg, "b")
	a := r.add(t, b.ID, random(100))
	r.add(t, b.ID, random(100))
	keys := objects(t, srv, r.store.Bucket())
	deletes := []struct {
		name string
		run  func() error
	}{
		{"doc delete", func() error { return r.s.DeleteDocument(bg, a.Document.ID) }},
		{"doc delete --cascade", func() error { _, err := r.s.DeleteDocumentCascade(bg, a.Document.ID); return err }},
		{"basket delete --force", func() error { return r.s.DeleteBasket(bg, b.ID, true) }},
		{"tenant delete", func() error { return r.eng.Provisioner("ops").Delete(bg, "acme") }},
	}
	srv.Stop()
	for _, d := range deletes {
		err := d.run()
		if !errors.Is(err, docex.ErrStorageUnavailable) || !strings.Contains(err.Error(), "nothing was deleted") {
			t.Errorf("%s with the server stopped: %v; want ErrStorageUnavailable, nothing deleted", d.name, err)
		}
	}
	srv.Restart(t)
	if _, err := r.s.Document(bg, a.Document.ID); err != nil {
		t.Fatalf("the document after refused deletes: %v", err)
	}
	if got, err := r.s.ReadContent(bg, a.Document.ID); err != nil || len(got) != 100 {
		t.Fatalf("its content after refused deletes: %d bytes, %v", len(got), err)
	}
	if got := objects(t, srv, r.store.Bucket()); !slices.Equal(got, keys) {
		t.Fatalf("objects after refused deletes: %v, want %v", got, keys)
	}
	entries, err := r.s.Audit(bg, docex.Page{})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, e := range entries {
		if e.Operation == "document.delete" || e.Operation == "basket.delete" {
			if e.Outcome != docex.OutcomeError {
				t.Errorf("audit %s: outcome %s", e.Operation, e.Outcome)
			}
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d failed deletes audited, want 3", failed)
	}

	// Back: the deletes work and leave nothing.
	if _, err := r.s.DeleteDocumentCascade(bg, a.Document.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.Provisioner("ops").Delete(bg, "acme"); err != nil {
		t.Fatal(err)
	}
	if got := objects(t, srv, r.store.Bucket()); len(got) != 0 {
		t.Fatalf("objects left after the deletes: %v", got)
	}
}

// TestStagingBudgetCountsContent: small content staged in memory counted
// the 64 KiB buffer it was read into against the memory budget, not its
// size, so that with a 2 MiB budget 16 documents of 8 KiB were held in
// memory and the rest each got a spool file of its own. Content now
// keeps a buffer of its size: about 128 of 300 stay in memory (each
// staging first reserves 1 MiB, the largest content kept in memory).
func TestStagingBudgetCountsContent(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	s := newStore(t, srv, func(c *s3store.Config) { c.MemoryBudget = 2 << 20; c.SpoolDir = spool })
	tc, _ := s.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
	var staged []driver.Staged
	defer func() {
		for _, st := range staged {
			st.Discard()
		}
	}()
	for range 300 {
		st, err := tc.Stage(bg, bytes.NewReader(random(8<<10)), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, st)
	}
	files, _ := os.ReadDir(spool)
	if len(files) > 200 {
		t.Fatalf("%d of 300 stagings of 8 KiB spooled with a 2 MiB budget, want at most 200 (about 128 fit)", len(files))
	}
}

// TestStageSizedBuffer: content whose reader tells its size (a file, the
// CLI's) is staged in a buffer of exactly that size, allocated once, and
// the store counts that size against its budget; content over 1 MiB that
// tells its size goes to a spool file without a buffer. Before, a 900 kB
// file grew a 64 KiB buffer by append (to a capacity other than its size,
// garbage on the way).
func TestStageSizedBuffer(t *testing.T) {
	spool := t.TempDir()
	s, err := s3store.New(bg, s3store.Config{Bucket: "docex-b", Endpoint: "http://127.0.0.1:1", PathStyle: true, SpoolDir: spool,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := s.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
	file := func(size int) *os.File {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, random(size), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	st, err := tc.Stage(bg, file(900_000), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.MemHeld(); got != 900_000 {
		t.Errorf("a 900,000-byte file staged: %d bytes counted against the budget, want 900000 (a buffer of its size)", got)
	}
	if files, _ := os.ReadDir(spool); len(files) != 0 {
		t.Errorf("%d spool files for content in memory", len(files))
	}
	big, err := tc.Stage(bg, file(1<<20+1), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.MemHeld(); got != 900_000 {
		t.Errorf("a file over 1 MiB staged too: %d bytes counted, want 900000", got)
	}
	if files, _ := os.ReadDir(spool); len(files) != 1 || big.Size() != 1<<20+1 {
		t.Errorf("%d spool files, size %d, for a file over 1 MiB", len(files), big.Size())
	}
	st.Discard()
	big.Discard()
	if got := s.MemHeld(); got != 0 {
		t.Errorf("%d bytes counted after Discard", got)
	}
}

// TestSpoolDirUnusable: a spool directory that is a regular file, or
// missing and impossible to create (under a regular file), fails the
// staging of content over 1 MiB with docex.ErrStorageUnavailable and
// driver.ErrSpool, naming the directory and storage.documents.s3.spool_dir;
// the memory reserved is released. Before, the error was untyped
// (internal): "s3 spool: mkdir ...".
func TestSpoolDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "spool")} {
		s, err := s3store.New(bg, s3store.Config{Bucket: "docex-b", Endpoint: "http://127.0.0.1:1", PathStyle: true, SpoolDir: dir,
			Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
		if err != nil {
			t.Fatal(err)
		}
		tc, _ := s.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
		for _, r := range []io.Reader{bytes.NewReader(random(2 << 20)), io.MultiReader(bytes.NewReader(random(2 << 20)))} {
			_, err = tc.Stage(bg, r, 1<<30)
			if !errors.Is(err, docex.ErrStorageUnavailable) || !errors.Is(err, driver.ErrSpool) ||
				!strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "storage.documents.s3.spool_dir") {
				t.Fatalf("staging 2 MiB with the spool directory %s: %v; want ErrStorageUnavailable and ErrSpool naming it and storage.documents.s3.spool_dir", dir, err)
			}
			if docex.Code(err) != "storage_unavailable" {
				t.Errorf("code %q, want storage_unavailable", docex.Code(err))
			}
			if got := s.MemHeld(); got != 0 {
				t.Errorf("%d bytes counted after the failed staging", got)
			}
		}
	}
}

// TestPlantedObjectNotAdopted: an object planted at the key of new large
// content, junk of the right size with the right checksum in its metadata
// (x-amz-meta-docex-sha256), is replaced by the add's upload, never
// adopted: the document reads back its own bytes. Before, Sync adopted it
// on its HEAD and the add succeeded with its bytes never stored.
func TestPlantedObjectNotAdopted(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, _ := r.s.CreateBasket(bg, "b")
	data := random(2*s3store.MinPartSize + 12345) // multipart: parts of MinPartSize
	sum := contentkey.Sum(data)
	acme, err := r.eng.Provisioner("").Get(bg, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := contentkey.Tenant(acme)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := contentkey.Object(sum)
	key := "docex/test/" + ns + "/" + obj // newStore's prefix
	junk := make([]byte, len(data))
	if _, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: ptr(r.store.Bucket()), Key: &key, Body: bytes.NewReader(junk),
		Metadata: map[string]string{"docex-sha256": sum}}); err != nil {
		t.Fatal(err)
	}
	a := r.add(t, b.ID, data)
	got, err := r.s.ReadContent(bg, a.Document.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back after an add over a planted object: %d bytes, %v; want the add's %d bytes", len(got), err, len(data))
	}
}

// TestSDKLogsNothing: the SDK's client logs nowhere (its default logger
// printed "SDK ... WARN ..." lines on stderr, ahead of a command's --json
// error). Before, its logger was the SDK's standard logger on stderr.
func TestSDKLogsNothing(t *testing.T) {
	s, err := s3store.New(bg, s3store.Config{Bucket: "docex", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := s.Logger().(logging.Nop); !ok {
		t.Fatalf("SDK logger %T, want logging.Nop", l)
	}
}

// TestTooManyParts: content that takes more parts than S3 allows in one
// upload is refused as too large (too_large, exit 2), before any request.
// Before, the refusal was untyped (internal).
func TestTooManyParts(t *testing.T) {
	s, err := s3store.New(bg, s3store.Config{Bucket: "docex", Endpoint: "http://127.0.0.1:1", PartSize: s3store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	err = s.PutMultipartParts(bg, 10001*s3store.MinPartSize, 10001)
	if !errors.Is(err, docex.ErrTooLarge) || !strings.Contains(err.Error(), "part_size_mib") {
		t.Fatalf("10,001 parts: %v, want ErrTooLarge naming part_size_mib", err)
	}
}

// TestSweepCheckObjects: the object a docex init killed between its
// check's PUT and DELETE left under PREFIX/.docex-check/ is removed by
// docex gc once older than the grace period, counted in content_files
// (a dry run counts it and deletes nothing); a younger one stays. Before,
// gc never removed it.
func TestSweepCheckObjects(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	bucket := r.store.Bucket()
	k := "docex/test/.docex-check/" + uuid.NewString()
	if _, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: strings.NewReader("docex connectivity check\n")}); err != nil {
		t.Fatal(err)
	}
	p := r.eng.Provisioner("t")
	for _, c := range []struct {
		opts engine.SweepOptions
		n    int
		left bool
	}{
		{engine.SweepOptions{Grace: time.Hour}, 0, true},
		{engine.SweepOptions{DryRun: true}, 1, true},
		{engine.SweepOptions{}, 1, false},
	} {
		rep, err := p.Sweep(bg, c.opts)
		if err != nil || rep.ContentFiles != c.n {
			t.Fatalf("sweep %+v: %+v, %v; want %d content files", c.opts, rep, err, c.n)
		}
		if got := slices.Contains(objects(t, srv, bucket), k); got != c.left {
			t.Fatalf("sweep %+v: check object there %v, want %v", c.opts, got, c.left)
		}
	}
}
