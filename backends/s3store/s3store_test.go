package s3store_test

import (
	"bytes"
	"context"
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
	})
}

func ptr[T any](v T) *T { return &v }
