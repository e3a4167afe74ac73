package s3store_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// stallServer stands in for an S3 server that stalls listings: a LIST
// gets its status line and headers and, with partial, the start of its
// XML, then nothing, the connection held open until the test ends. It
// counts the listings it received.
func stallServer(t *testing.T, partial bool) (*httptest.Server, func() int) {
	t.Helper()
	done := make(chan struct{})
	var mu sync.Mutex
	lists := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodGet || !(q.Has("list-type") || q.Has("uploads")) {
			http.Error(w, "not here", http.StatusNotImplemented)
			return
		}
		mu.Lock()
		lists++
		mu.Unlock()
		if partial {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>docex-b</Name><IsTruncated>false</IsTruncated><Contents><Key>docex/`))
			w.(http.Flusher).Flush()
		}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return lists }
}

// TestListStalls: a listing (docex gc's and verify's sweeps, a tenant's
// delete, Clean's multipart uploads) through a server that stalls, before
// its answer or partway through its body, fails with
// ErrStorageUnavailable after the request timeout (per attempt: the SDK
// makes up to three), instead of hanging.
func TestListStalls(t *testing.T) {
	for _, partial := range []bool{false, true} {
		name := map[bool]string{false: "no answer", true: "partial body"}[partial]
		t.Run(name, func(t *testing.T) {
			srv, lists := stallServer(t, partial)
			s, err := s3store.New(bg, s3store.Config{Bucket: "docex-b", Prefix: "docex", Endpoint: srv.URL, PathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""), RequestTimeout: time.Second, SpoolDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			tc, err := s.Tenant(docex.Tenant{ID: "acme", Incarnation: uuid.NewString()})
			if err != nil {
				t.Fatal(err)
			}
			ops := map[string]func(context.Context) error{
				"List": func(ctx context.Context) error {
					return tc.List(ctx, time.Now(), func(string) error { return nil })
				},
				"Incarnations": func(ctx context.Context) error {
					return s.Incarnations(ctx, func(driver.StoredIncarnation) error { return nil })
				},
				"Clean": func(ctx context.Context) error {
					_, err := tc.Clean(ctx, time.Now(), true)
					return err
				},
			}
			for op, fn := range ops {
				before := lists()
				start := time.Now()
				err := within(t, op, 2*time.Minute, fn)
				if !errors.Is(err, docex.ErrStorageUnavailable) || docex.Code(err) != "storage_unavailable" {
					t.Errorf("%s through a stalled server: %v (code %s); want storage_unavailable", op, err, docex.Code(err))
				} else if !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "1s") {
					t.Errorf("%s: error %q does not name the endpoint and the request timeout", op, err)
				}
				if lists() == before {
					t.Errorf("%s sent no listing", op)
				}
				// Reported, not asserted (a loaded machine may take
				// longer; a hang is caught by within).
				t.Logf("%s failed after %v, %d listings (request timeout 1s): %v", op, time.Since(start), lists()-before, err)
			}
		})
	}
}

// within runs fn, failing the test when it does not return within limit
// (a hang). The limit is far above any bound the store sets; the
// context fn gets is never cancelled before it.
func within(t *testing.T, what string, limit time.Duration, fn func(context.Context) error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn(bg) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s did not return within %v", what, limit)
		return nil
	}
}
