package s3store_test

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/s3test"
	"github.com/google/uuid"
)

// BenchmarkContent measures adds and reads of 4 KiB and 1 MiB documents
// through the engine (SQLite backend, synchronous full) with content on
// the filesystem (the baseline) and in S3 (versitygw on loopback), in one
// run, and the S3 requests each add costs. Run with:
//
//	go test -run ^$ -bench BenchmarkContent -benchtime 200x ./backends/s3store
func BenchmarkContent(b *testing.B) {
	srv := s3test.Start(b)
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, storage := range []string{"filesystem", "s3"} {
			name := fmt.Sprintf("%s/%dKiB", storage, size>>10)
			b.Run(name+"/add", func(b *testing.B) { benchContent(b, srv, storage, size, false) })
			b.Run(name+"/add-dedup", func(b *testing.B) { benchContent(b, srv, storage, size, true) })
			b.Run(name+"/read", func(b *testing.B) { benchRead(b, srv, storage, size) })
		}
	}
}

func benchEngine(b *testing.B, srv *s3test.Server, storage string) (*engine.Session, *counter) {
	b.Helper()
	dir := b.TempDir()
	be, err := sqlite.Open(bg, sqlite.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	reqs := &counter{}
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content")}
	if storage == "s3" {
		cfg.ContentStore = newStore(b, srv, func(c *s3store.Config) {
			c.HTTPClient = &http.Client{Transport: reqs}
			c.PartSize = s3store.DefaultPartSize
		})
	}
	if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(bg, be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	eng.Provisioner("b").Create(bg, "acme", "")
	return eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}}), reqs
}

func benchContent(b *testing.B, srv *s3test.Server, storage string, size int, dedup bool) {
	s, reqs := benchEngine(b, srv, storage)
	bk, _ := s.CreateBasket(bg, "b")
	other, _ := s.CreateBasket(bg, "other")
	datas := make([][]byte, b.N)
	for i := range datas {
		datas[i] = random(size)
		if dedup { // the content is in the tenant already, in another basket
			if _, err := s.AddDocument(bg, other.ID, engine.NewDocument{Name: "d", Content: bytes.NewReader(datas[i])}); err != nil {
				b.Fatal(err)
			}
		}
	}
	reqs.take()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.AddDocument(bg, bk.ID, engine.NewDocument{Name: "d", Content: bytes.NewReader(datas[i])}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := reqs.take()
	total := 0
	for _, v := range n {
		total += v
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
	b.ReportMetric(float64(n["PUT"])/float64(b.N), "PUT/add")
	b.ReportMetric(float64(total)/float64(b.N), "requests/add")
}

func benchRead(b *testing.B, srv *s3test.Server, storage string, size int) {
	s, _ := benchEngine(b, srv, storage)
	bk, _ := s.CreateBasket(bg, "b")
	const docs = 20
	ids := make([]string, docs)
	for i := range ids {
		a, err := s.AddDocument(bg, bk.ID, engine.NewDocument{Name: "d", Content: bytes.NewReader(random(size))})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = a.Document.ID
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.ReadContent(bg, ids[i%docs]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkClaimCheck measures the read of the claim marker (one GET) that
// the first write of each process costs (engine: checkClaimOnce), to
// compare with an add (BenchmarkContent). Run with:
//
//	go test -run ^$ -bench BenchmarkClaimCheck -benchtime 200x ./backends/s3store
func BenchmarkClaimCheck(b *testing.B) {
	srv := s3test.Start(b)
	store := newStore(b, srv, nil)
	id := uuid.NewString()
	if err := store.Claim(bg, id); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := store.CheckClaim(bg, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
