package postgres

// Benchmarks need a server (DOCEX_TEST_POSTGRES_DSN) and are slow to set
// up (thousands of tenants, 100k documents); run them with a fixed count:
//
//	go test -run '^$' -bench . -benchtime=200x ./backends/postgres/

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// seedTenants provisions ids prefix0000... with 4 workers, each with one
// basket named after the tenant.
func seedTenants(tb testing.TB, b *Backend, prefix string, n int) []string {
	tb.Helper()
	ids := make([]string, n)
	work := make(chan string)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 4 {
		wg.Go(func() {
			for id := range work {
				if err := b.CreateTenant(bg, docex.Tenant{ID: id, DisplayName: id, CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
					errs <- err
					continue
				}
				st, err := b.OpenTenant(bg, id)
				if err != nil {
					errs <- err
					continue
				}
				errs <- st.Write(bg, func(tx driver.Tx) error {
					return tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "basket-of-" + id, CreatedAt: time.Now()})
				})
				st.Close()
			}
		})
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%05d", prefix, i)
		work <- ids[i]
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

// BenchmarkProvisionTenant creates tenants on a system with 1 and with
// 1,000 tenants; the per-tenant time should not depend on the count.
func BenchmarkProvisionTenant(b *testing.B) {
	for _, existing := range []int{1, 1000} {
		be := bootstrapped(b, Config{MaxConns: 4}, true)
		seedTenants(b, be, "seed", existing-1) // plus the bootstrap tenant
		b.Run(fmt.Sprintf("existing=%d", existing), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("new%d-%d", existing, i)
				if err := be.CreateTenant(bg, docex.Tenant{ID: id, DisplayName: id, CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func meta3(i int) map[string]docex.Value {
	return map[string]docex.Value{
		"group": docex.String("g" + strconv.Itoa(i%100)),
		"n":     docex.Number(float64(i)),
		"even":  docex.Bool(i%2 == 0),
	}
}

// BenchmarkAddDocument adds a 4 KiB document with 3 metadata keys, through
// the driver (the statements the engine issues: content lock, duplicate
// check, content, document, audit) and through the engine.
func BenchmarkAddDocument(b *testing.B) {
	content := bytes.Repeat([]byte("docex 4k "), 4096/9+1)[:4096]
	b.Run("driver", func(b *testing.B) {
		be := bootstrapped(b, Config{}, true)
		st := openStore(b, be, "bench")
		bk := addBasket(b, st, "inbox")
		i := 0
		for b.Loop() {
			i++
			data := append(strconv.AppendInt(nil, int64(i), 10), content...)[:4096]
			h := sha256.Sum256(data)
			sum := hex.EncodeToString(h[:])
			now := time.Now()
			err := st.Write(bg, func(tx driver.Tx) error {
				if err := tx.LockContent(bg, sum); err != nil {
					return err
				}
				if _, err := tx.DocumentByChecksum(bg, bk.ID, sum); err == nil || !isNotFound(err) {
					return fmt.Errorf("duplicate check: %v", err)
				}
				if err := tx.PutContent(bg, sum, data); err != nil {
					return err
				}
				d := docex.Document{ID: newID(), BasketID: bk.ID, Name: "d.txt", ContentType: "text/plain", Size: 4096,
					Checksum: sum, Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now, Metadata: meta3(i)}
				if err := tx.InsertDocument(bg, d); err != nil {
					return err
				}
				return tx.AppendAudit(bg, docex.AuditEntry{ID: newID(), Time: now, TenantID: "bench", UserID: "u", Operation: "document.add", Target: d.ID, Outcome: docex.OutcomeOK})
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine", func(b *testing.B) {
		be := openBackend(b, Config{})
		cfg := engine.Config{MultiTenancy: true, ContentStorage: engine.ContentDatabase}
		if _, err := engine.Bootstrap(bg, be, cfg); err != nil {
			b.Fatal(err)
		}
		eng, err := engine.New(bg, be, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		if _, err := eng.Provisioner("bench").Create(bg, "bench", "Bench"); err != nil {
			b.Fatal(err)
		}
		s := eng.As(docex.UserContext{UserID: "u", TenantID: "bench", Roles: []string{"admin"}})
		bk, err := s.CreateBasket(bg, "inbox")
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			data := append(strconv.AppendInt(nil, int64(i), 10), content...)[:4096]
			if _, err := s.AddDocument(bg, bk.ID, engine.NewDocument{Name: "d.txt", Content: bytes.NewReader(data), Metadata: meta3(i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func isNotFound(err error) bool { return docex.KindOf(err) == docex.ErrNotFound }

// seedDocuments bulk-loads n documents with meta3 metadata into a new
// basket of st's schema with COPY, bypassing the driver, and sets the
// basket's counters.
func seedDocuments(b *testing.B, be *Backend, schema string, n int) string {
	b.Helper()
	basketID := newID()
	now := time.Now().UTC()
	docs := make([][]any, n)
	meta := make([][]any, 0, 3*n)
	for i := range docs {
		id := newID()
		docs[i] = []any{id, basketID, fmt.Sprintf("doc-%07d.txt", i), "text/plain", int64(100), fmt.Sprintf("%064x", i), docex.DocumentActive, now, now}
		for k, v := range meta3(i) {
			meta = append(meta, []any{id, basketID, k, int16(v.Type()), v.Canonical()})
		}
	}
	err := pgx.BeginFunc(bg, be.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(bg, `INSERT INTO `+quote(schema)+`.baskets (id, name, created_at, doc_count, bytes) VALUES ($1, 'big', now(), $2, $3)`, basketID, n, int64(100*n)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(bg, pgx.Identifier{schema, "documents"}, []string{"id", "basket_id", "name", "content_type", "size", "checksum", "status", "created_at", "updated_at"}, pgx.CopyFromRows(docs)); err != nil {
			return err
		}
		_, err := tx.CopyFrom(bg, pgx.Identifier{schema, "metadata"}, []string{"document_id", "basket_id", "key", "vtype", "value"}, pgx.CopyFromRows(meta))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	exec(b, be, `ANALYZE `+quote(schema)+`.documents; ANALYZE `+quote(schema)+`.metadata`)
	return basketID
}

// BenchmarkFind100k finds by metadata in a basket of 100,000 documents.
func BenchmarkFind100k(b *testing.B) {
	be := bootstrapped(b, Config{}, true)
	st := openStore(b, be, "big")
	basketID := seedDocuments(b, be, "docex_t_big", 100_000)
	cases := []struct {
		name    string
		filters []docex.MetaFilter
		page    docex.Page
		total   int64
	}{
		{"1-of-100k", []docex.MetaFilter{{Key: "n", Value: docex.Number(54321)}}, docex.Page{}, 1},
		{"1000-of-100k/page100", []docex.MetaFilter{{Key: "group", Value: docex.String("g42")}}, docex.Page{Limit: 100}, 1000},
		{"and-2/page100-by-name", []docex.MetaFilter{{Key: "group", Value: docex.String("g42")}, {Key: "even", Value: docex.Bool(true)}}, docex.Page{Limit: 100, Order: docex.OrderName}, 1000},
		{"50000-of-100k/page100", []docex.MetaFilter{{Key: "even", Value: docex.Bool(true)}}, docex.Page{Limit: 100}, 50000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				docs, total, err := st.FindDocuments(bg, basketID, c.filters, c.page)
				if err != nil {
					b.Fatal(err)
				}
				if total != c.total || len(docs) == 0 {
					b.Fatalf("total %d (%d docs), want %d", total, len(docs), c.total)
				}
			}
		})
	}
	b.Run("list/page100", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Documents(bg, basketID, docex.Page{Limit: 100, Offset: 5000}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReadsRoundRobin opens a store and lists its baskets, alternately
// for one fixed tenant and for the next of 1,000 tenants in turn, through a
// pool of 4 connections. It reports both latencies and their ratio.
func BenchmarkReadsRoundRobin(b *testing.B) {
	be := bootstrapped(b, Config{MaxConns: 4}, true)
	ids := seedTenants(b, be, "rr", 1000)
	read := func(id string) time.Duration {
		start := time.Now()
		st, err := be.OpenTenant(bg, id)
		if err != nil {
			b.Fatal(err)
		}
		if err := onlyBasket(st, "basket-of-"+id); err != nil {
			b.Fatal(err)
		}
		st.Close()
		return time.Since(start)
	}
	var one, rr time.Duration
	i := 0
	for b.Loop() {
		one += read(ids[0])
		rr += read(ids[i%len(ids)])
		i++
	}
	b.ReportMetric(float64(one.Microseconds())/float64(i), "us/read-one-tenant")
	b.ReportMetric(float64(rr.Microseconds())/float64(i), "us/read-round-robin")
	b.ReportMetric(float64(rr)/float64(one), "ratio")
}
