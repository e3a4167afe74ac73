package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/contenttest"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3test"
)

var bg = context.Background()

func newStore(t testing.TB, srv *s3test.Server, mod func(*s3store.Config)) *s3store.Store {
	t.Helper()
	cfg := s3store.Config{
		Bucket: srv.Bucket(t), Prefix: "docex/test", Endpoint: srv.Endpoint, PathStyle: true,
		Credentials: srv.Credentials(), SpoolDir: t.TempDir(), PartSize: s3store.MinPartSize,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := s3store.New(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func key(t testing.TB, s *s3store.Store, tn docex.Tenant, sum string) string {
	ns, err := contentkey.Tenant(tn)
	if err != nil {
		t.Fatal(err)
	}
	return "docex/test/" + ns + "/" + sum[:2] + "/" + sum
}

// TestConformance runs the content-store suite against a real S3 server.
func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	contenttest.Run(t, contenttest.Harness{
		New: func(t *testing.T) driver.ContentStore { return newStore(t, srv, nil) },
		Corrupt: func(t *testing.T, st driver.ContentStore, tn docex.Tenant, _ driver.Tx, sum string, data []byte) {
			s := st.(*s3store.Store)
			k := key(t, s, tn, sum)
			if _, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: ptr(s.Bucket()), Key: &k, Body: bytes.NewReader(data)}); err != nil {
				t.Fatalf("corrupt %s: %v", k, err)
			}
		},
		SyncUploads: true,
	})
}

func ptr[T any](v T) *T { return &v }

// Two systems claiming one prefix at once: the second, whose look found
// the prefix unclaimed before the first's marker landed, is refused
// (conditional PUT), and the first's marker stays; the first keeps its
// prefix. Concurrent claims leave exactly one system with the prefix.
func TestClaimRace(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	on := func(c *s3store.Config) { c.Bucket = bucket }
	first, second := newStore(t, srv, on), newStore(t, srv, on)
	if err := first.Claim(bg, "system-one"); err != nil {
		t.Fatal(err)
	}
	err := second.ClaimUnchecked(bg, "system-two")
	if !errors.Is(err, docex.ErrInvalidConfig) || !strings.Contains(err.Error(), "system-one") {
		t.Fatalf("second claim: %v, want ErrInvalidConfig naming system-one", err)
	}
	if err := first.CheckClaim(bg, "system-one"); err != nil {
		t.Fatalf("the first system lost its prefix: %v", err)
	}

	// Many at once, on a fresh prefix: one wins, every other is refused,
	// and the marker names the winner.
	const n = 8
	stores := make([]*s3store.Store, n)
	for i := range stores {
		stores[i] = newStore(t, srv, func(c *s3store.Config) { c.Bucket, c.Prefix = bucket, "docex/race" })
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.ClaimUnchecked(bg, fmt.Sprintf("system-%d", i))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("systems %d and %d both hold the prefix", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, docex.ErrInvalidConfig):
			t.Fatalf("system %d: %v, want ErrInvalidConfig", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no system holds the prefix: %v", errs)
	}
	for i, s := range stores {
		if err := s.CheckClaim(bg, fmt.Sprintf("system-%d", i)); (err == nil) != (i == winner) {
			t.Fatalf("system %d (winner %d) CheckClaim: %v", i, winner, err)
		}
	}
}

// noConditions answers a conditional PUT as a server without conditional
// writes does: 501 Not Implemented.
type noConditions struct{ next http.RoundTripper }

func (n noConditions) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Header.Get("If-None-Match") != "" {
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`
		return &http.Response{StatusCode: http.StatusNotImplemented, Status: "501 Not Implemented", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	return n.next.RoundTrip(r)
}

// A server without conditional writes gets a plain PUT of the marker, read
// back: the claim still succeeds, and a second system is still refused.
func TestClaimWithoutConditionalWrites(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	on := func(c *s3store.Config) {
		c.Bucket = bucket
		c.HTTPClient = &http.Client{Transport: noConditions{http.DefaultTransport}}
	}
	first, second := newStore(t, srv, on), newStore(t, srv, on)
	if err := first.Claim(bg, "system-one"); err != nil {
		t.Fatal(err)
	}
	if err := first.CheckClaim(bg, "system-one"); err != nil {
		t.Fatal(err)
	}
	if err := second.Claim(bg, "system-two"); !errors.Is(err, docex.ErrInvalidConfig) {
		t.Fatalf("second claim: %v, want ErrInvalidConfig", err)
	}
}
