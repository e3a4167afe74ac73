package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3test"
)

// s3Keys lists the bucket's keys.
func s3Keys(t *testing.T, srv *s3test.Server, bucket string) []string {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	return keys
}

// s3ContentKeys lists the bucket's keys but the claim marker under the
// prefix docex.
func s3ContentKeys(t *testing.T, srv *s3test.Server, bucket string) []string {
	t.Helper()
	var keys []string
	for _, k := range s3Keys(t, srv, bucket) {
		if k != "docex/.docex-system" {
			keys = append(keys, k)
		}
	}
	return keys
}

func s3Config(database, bucket, endpoint string) string {
	return fmt.Sprintf(`config_version: 1
%s
storage:
  documents:
    type: s3
    s3:
      bucket: %s
      prefix: docex
      endpoint: %s
      path_style: true
      access_key_id_env: TEST_S3_KEY
      secret_access_key_env: TEST_S3_SECRET
      request_timeout_ms: 5000
`, database, bucket, endpoint)
}

// TestS3CLI runs the CLI end to end with content in a real S3 server
// (versitygw) and the SQLite backend.
func TestS3CLI(t *testing.T) {
	srv := s3test.Start(t)
	runS3CLI(t, srv, "", nil)
}

// TestS3PostgresCLI is the SaaS combination: PostgreSQL and S3.
func TestS3PostgresCLI(t *testing.T) {
	dsn := testPostgresDSN(t)
	srv := s3test.Start(t)
	schema := fmt.Sprintf("docex_s3cli_%d", time.Now().UnixNano()%1_000_000_000)
	prefix := fmt.Sprintf("s%d_", time.Now().UnixNano()%100000)
	db := fmt.Sprintf(`multi_tenancy:
  bootstrap_tenant:
    schema: %s
database:
  type: postgres
  postgres:
    dsn_env: PGTEST_DSN
    tenant_schema_prefix: %s`, schema, prefix)
	t.Cleanup(func() { dropSchemas(t, dsn, prefix+"acme", schema, schema+"_local", schema+"_jobs") }) // nothing left in a shared database
	runS3CLI(t, srv, db, map[string]string{"PGTEST_DSN": dsn})
}

func runS3CLI(t *testing.T, srv *s3test.Server, database string, env map[string]string) {
	bucket := srv.Bucket(t)
	h := newHarness(t)
	h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
	h.env["DOCEX_NO_BUILTIN_STEPS"] = "1"
	for k, v := range env {
		h.env[k] = v
	}
	h.file("docex.yaml", s3Config(database, bucket, srv.Endpoint))
	r := h.ok("init")
	// It says where the content goes: not in the data directory.
	if !strings.Contains(r.stdout, "content in s3://"+bucket+"/docex/") {
		t.Fatalf("init: %s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, srv.SecretKey) {
		t.Fatal("init printed the secret")
	}
	if y, _ := os.ReadFile(filepath.Join(h.dir, "docex.yaml")); strings.Contains(string(y), srv.SecretKey) {
		t.Fatal("the secret is in docex.yaml")
	}
	// Init leaves one object: the claim marker naming the system.
	if keys := s3Keys(t, srv, bucket); len(keys) != 1 || keys[0] != "docex/.docex-system" {
		t.Fatalf("init left objects: %v", keys)
	}
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	f := h.file("a.txt", "content kept in S3")
	docs := documents(decode[[]added](t, h.ok(append([]string{"doc", "add", "b", f, "--json"}, u...)...).stdout))
	if r := h.ok(append([]string{"doc", "cat", docs[0].ID}, u...)...); r.stdout != "content kept in S3" {
		t.Fatalf("cat: %q", r.stdout)
	}
	sum := contentkey.Sum([]byte("content kept in S3"))
	keys := s3ContentKeys(t, srv, bucket)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "docex/tenants/acme/") || !strings.HasSuffix(keys[0], "/"+sum[:2]+"/"+sum) {
		t.Fatalf("keys %v", keys)
	}
	// A crash between upload and commit leaves an orphan: gc removes it.
	orphan := strings.TrimSuffix(keys[0], sum[:2]+"/"+sum) + contentkey.Sum([]byte("orphan"))[:2] + "/" + contentkey.Sum([]byte("orphan"))
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &orphan, Body: strings.NewReader("orphan")}); err != nil {
		t.Fatal(err)
	}
	h.ok("gc", "--grace", "0s")
	if keys := s3ContentKeys(t, srv, bucket); len(keys) != 1 || keys[0] == orphan {
		t.Fatalf("after gc: %v", keys)
	}
	// The server stopped: a clear error, exit 1, nothing acknowledged.
	srv.Stop()
	g := h.file("b.txt", "added while the server is down")
	r = h.want(exitInternal, append([]string{"doc", "add", "b", g}, u...)...)
	if !strings.Contains(r.stderr, "unreachable") || !strings.Contains(r.stderr, srv.Addr()) {
		t.Fatalf("server down: %s", r.stderr)
	}
	// Deletes are refused whole (exit 1) rather than leave objects behind.
	for _, args := range [][]string{
		append([]string{"doc", "delete", docs[0].ID}, u...),
		append([]string{"basket", "delete", "b", "--force"}, u...),
		{"tenant", "delete", "acme", "--yes"},
	} {
		r = h.want(exitInternal, args...)
		if !strings.Contains(r.stderr, "nothing was deleted") || !strings.Contains(r.stderr, srv.Addr()) {
			t.Fatalf("%v with the server down: %s", args, r.stderr)
		}
	}
	srv.Restart(t)
	if listed := decode[[]doc](t, h.ok(append([]string{"doc", "list", "b", "--json"}, u...)...).stdout); len(listed) != 1 {
		t.Fatalf("documents after a failed add and refused deletes: %+v", listed)
	}
	// Wrong credentials: exit 4 with a clear message, the secret unprinted.
	bad := &harness{t: t, dir: h.dir, env: map[string]string{"TEST_S3_KEY": srv.AccessKey, "TEST_S3_SECRET": "wrong-secret-value"}}
	for k, v := range env {
		bad.env[k] = v
	}
	r = bad.want(exitDenied, append([]string{"doc", "cat", docs[0].ID}, u...)...)
	if !strings.Contains(r.stderr, "denied") || strings.Contains(r.stderr, "wrong-secret-value") {
		t.Fatalf("wrong credentials: %s", r.stderr)
	}
	// Delete: the object goes after the reference; tenant delete empties
	// the tenant's prefix.
	h.ok(append([]string{"doc", "delete", docs[0].ID}, u...)...)
	if keys := s3ContentKeys(t, srv, bucket); len(keys) != 0 {
		t.Fatalf("after delete: %v", keys)
	}
	h.ok(append([]string{"doc", "add", "b", f}, u...)...)
	h.ok("tenant", "delete", "acme", "--yes")
	if keys := s3ContentKeys(t, srv, bucket); len(keys) != 0 {
		t.Fatalf("after tenant delete: %v", keys)
	}
}

// TestS3InitErrors: init names what is wrong and creates nothing.
func TestS3InitErrors(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	closed := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	cases := []struct {
		name, bucket, endpoint, secret string
		code                           int
		msg                            string
		hint                           []string // what the hint line says to do
	}{
		{"no such bucket", "docex-no-such-bucket", srv.Endpoint, srv.SecretKey, exitInvalid, "does not exist", []string{"create the bucket", "storage.documents.s3.bucket"}},
		{"access denied", bucket, srv.Endpoint, "not-the-secret", exitDenied, "denied", []string{"TEST_S3_KEY", "TEST_S3_SECRET"}},
		{"endpoint unreachable", bucket, closed, srv.SecretKey, exitInternal, "unreachable", []string{"storage.documents.s3.endpoint", "running"}},
		{"credentials unset", bucket, srv.Endpoint, "", exitInvalid, "TEST_S3_SECRET", []string{"export TEST_S3_KEY and TEST_S3_SECRET"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, c.secret
			h.file("docex.yaml", s3Config("", c.bucket, c.endpoint))
			r := h.want(c.code, "init")
			if !strings.Contains(r.stderr, c.msg) || (c.secret != "" && strings.Contains(r.stderr, c.secret)) {
				t.Fatalf("stderr %q, want it to mention %q and not the secret", r.stderr, c.msg)
			}
			_, hint, _ := strings.Cut(r.stderr, "\nhint: ")
			for _, w := range c.hint {
				if !strings.Contains(hint, w) {
					t.Errorf("hint %q lacks %q (stderr %q)", hint, w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "fix that key") || strings.Contains(r.stderr, "StatusCode: 0") {
				t.Errorf("stderr: %q", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(h.dir, "docex-data")); !os.IsNotExist(err) {
				t.Fatalf("init created the data directory: %v", err)
			}
		})
	}
	if keys := s3Keys(t, srv, bucket); len(keys) != 0 {
		t.Fatalf("objects left %v", keys)
	}
	// Credentials written into docex.yaml are refused.
	h := newHarness(t)
	h.file("docex.yaml", s3Config("", bucket, srv.Endpoint)+"      secret_access_key: inline\n")
	if r := h.want(exitInvalid, "init"); !strings.Contains(r.stderr, "never written") {
		t.Fatalf("inline secret: %s", r.stderr)
	}
}

// TestS3SharedPrefix: two systems (two data directories) configured with
// one bucket and prefix. The second init is refused (exit 2) and writes
// nothing; a system whose docex.yaml is pointed at another's prefix after
// its own init refuses gc and verify, and the first system's objects stay.
func TestS3SharedPrefix(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	cfg := s3Config("", bucket, srv.Endpoint)
	system := func() *harness {
		h := newHarness(t)
		h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
		return h
	}
	a := system()
	a.file("docex.yaml", cfg)
	a.ok("init")
	a.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	a.ok(append([]string{"basket", "create", "b"}, u...)...)
	docs := documents(decode[[]added](t, a.ok(append([]string{"doc", "add", "b", a.file("a.txt", "system A's object"), "--json"}, u...)...).stdout))
	before := s3Keys(t, srv, bucket)

	b := system()
	b.file("docex.yaml", cfg)
	r := b.want(exitInvalid, "init")
	for _, want := range []string{"s3://" + bucket + "/docex/", "is not this system's", "give each system its own bucket/prefix"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("second init: stderr lacks %q: %s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(b.dir, "docex-data", "system.db")); !os.IsNotExist(err) {
		t.Fatalf("the refused init created its system database: %v", err)
	}
	// The review's repro: B initialised on a prefix of its own, then its
	// docex.yaml names A's.
	b.file("docex.yaml", strings.Replace(cfg, "prefix: docex", "prefix: other", 1))
	b.ok("init")
	b.ok("tenant", "create", "other")
	b.file("docex.yaml", cfg)
	for _, args := range [][]string{{"gc", "--dry-run", "--grace", "0s"}, {"gc", "--grace", "0s"}, {"verify"}} {
		if r := b.want(exitInvalid, args...); !strings.Contains(r.stderr, "is not this system's") {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	after := s3Keys(t, srv, bucket)
	var aKeys []string
	for _, k := range after {
		if strings.HasPrefix(k, "docex/") {
			aKeys = append(aKeys, k)
		}
	}
	if strings.Join(aKeys, "\n") != strings.Join(before, "\n") {
		t.Fatalf("system A's objects changed: %v, then %v", before, aKeys)
	}
	if r := a.ok(append([]string{"doc", "cat", docs[0].ID}, u...)...); r.stdout != "system A's object" {
		t.Fatalf("cat: %q", r.stdout)
	}
	a.ok("gc", "--grace", "0s")
	a.ok("verify")
}
