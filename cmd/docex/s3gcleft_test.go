package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3test"
	"github.com/google/uuid"
)

// TestS3GCDeadPrefixLeft: a prefix of a deleted tenant (or an old
// incarnation) that docex gc cannot delete, because the store fails the
// DELETE or the LIST under that prefix, is named in gc's output (the
// human lines and --json "content_dirs_left", with the store's error) and
// gc exits 1, storage_unavailable (docs/s3.md, docs/json.md); the next
// gc, with the store working again, deletes it. Before, gc left it
// unmentioned and exited 0.
func TestS3GCDeadPrefixLeft(t *testing.T) {
	srv := s3test.Start(t)
	proxy := s3test.StartFaultProxy(t, srv.Endpoint)
	bucket := srv.Bucket(t)
	h := newHarness(t)
	h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
	h.env["DOCEX_NO_BUILTIN_STEPS"] = "1"
	h.file("docex.yaml", s3Config("", bucket, proxy.Endpoint))
	h.ok("init")
	h.ok("tenant", "create", "acme")
	u := []string{"--tenant", "acme", "--user", "u", "--roles", "admin"}
	h.ok(append([]string{"basket", "create", "b"}, u...)...)
	h.ok(append([]string{"doc", "add", "b", h.file("a.txt", "live content")}, u...)...)
	live := s3ContentKeys(t, srv, bucket)
	if len(live) != 1 {
		t.Fatalf("keys: %v", live)
	}

	type left struct {
		Location string `json:"location"`
		Error    string `json:"error"`
	}
	type report struct {
		DryRun          bool     `json:"dry_run"`
		ContentDirs     []string `json:"content_dirs"`
		ContentDirsLeft []left   `json:"content_dirs_left"`
	}
	sum := contentkey.Sum([]byte("dead"))
	for _, c := range []struct {
		name string
		fail func(dead string) func(*http.Request) bool
	}{
		// DeleteObjects (POST ?delete) answered 503.
		{"delete", func(string) func(*http.Request) bool {
			return func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("delete") }
		}},
		// The listing of the dead prefix's objects (ListObjectsV2)
		// answered 503.
		{"list", func(dead string) func(*http.Request) bool {
			return func(r *http.Request) bool {
				q := r.URL.Query()
				return r.Method == http.MethodGet && q.Get("list-type") == "2" && q.Get("prefix") == dead
			}
		}},
		// The listing of its multipart uploads answered 503.
		{"uploads", func(dead string) func(*http.Request) bool {
			return func(r *http.Request) bool {
				q := r.URL.Query()
				return r.Method == http.MethodGet && q.Has("uploads") && q.Get("prefix") == dead
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &harness{t: t, dir: h.dir, env: h.env}
			// What a tenant deleted while the store failed leaves: its
			// incarnation's prefix.
			dead := "docex/tenants/acme/" + uuid.NewString() + "/"
			key := dead + sum[:2] + "/" + sum
			if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("dead")}); err != nil {
				t.Fatal(err)
			}
			where := "s3://" + bucket + "/" + dead
			proxy.Fail(c.fail(dead))
			before := proxy.Failed()

			r := h.want(exitInternal, "gc", "--json")
			rep := decode[report](t, r.stdout)
			if rep.DryRun || len(rep.ContentDirs) != 0 || len(rep.ContentDirsLeft) != 1 || rep.ContentDirsLeft[0].Location != where ||
				!strings.Contains(rep.ContentDirsLeft[0].Error, "unavailable") {
				t.Fatalf("gc --json with the store failing: stdout %s; want content_dirs_left naming %s and the store's error", r.stdout, where)
			}
			e := decode[errorJSON](t, r.stderr).Error
			if e.Code != "storage_unavailable" || e.Kind != "internal" || !strings.Contains(e.Message, where) || !strings.HasPrefix(e.Hint, "the content store refused to remove them") {
				t.Fatalf("gc --json with the store failing: stderr %s; want storage_unavailable naming %s", r.stderr, where)
			}
			if proxy.Failed() == before {
				t.Fatal("the proxy failed no request")
			}

			r = h.want(exitInternal, "gc")
			if !strings.Contains(r.stdout, "could not remove 1 stale content directories") || !strings.Contains(r.stdout, where) ||
				!strings.Contains(r.stderr, where) || !strings.Contains(r.stderr, "hint: the content store refused to remove them") ||
				strings.Contains(r.stderr, "mount the volume") {
				t.Fatalf("gc with the store failing: stdout %q, stderr %q; want the prefix named on both", r.stdout, r.stderr)
			}
			if keys := s3ContentKeys(t, srv, bucket); !slices.Contains(keys, key) {
				t.Fatalf("the dead prefix went while the store failed: %v", keys)
			}

			// The store works again: the next gc deletes it.
			proxy.Fail(nil)
			rep = decode[report](t, h.ok("gc", "--json").stdout)
			if len(rep.ContentDirs) != 1 || rep.ContentDirs[0] != where || rep.ContentDirsLeft == nil || len(rep.ContentDirsLeft) != 0 {
				t.Fatalf("gc with the store working: %+v; want %s in content_dirs and content_dirs_left []", rep, where)
			}
			if keys := s3ContentKeys(t, srv, bucket); !slices.Equal(keys, live) {
				t.Fatalf("after gc: %v, want %v", keys, live)
			}
		})
	}
}
