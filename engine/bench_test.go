package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/google/uuid"
)

// Benchmarks of the engine over the SQLite backend. Every benchmark uses
// b.Loop, so its setup (including the 100k-document seed of
// BenchmarkFindByMetadata, done through the driver) runs once per
// benchmark, in a b.TempDir.
//
//	go test -run '^$' -bench . -benchtime 2s ./engine/
//
// BenchmarkBaselineSQLiteInsert is the yardstick: one raw database/sql
// INSERT per transaction in WAL mode, so that results read as "AddDocument
// costs N raw inserts".

var benchCtx = context.Background()

type benchEnv struct {
	be  *sqlite.Backend
	eng *engine.Engine
	s   *engine.Session
	bk  docex.Basket
}

// newBenchEnv bootstraps a multi-tenant engine with tenant "bench" and a
// basket.
func newBenchEnv(b *testing.B, storage, sync string, maxOpen int) *benchEnv {
	b.Helper()
	dir := b.TempDir()
	be, err := sqlite.Open(benchCtx, sqlite.Config{Dir: filepath.Join(dir, "data"), Synchronous: sync, MaxOpenTenants: maxOpen})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	// Content durability follows the database's: with synchronous=normal
	// both survive kill -9, neither is fsynced per write.
	cfg := engine.Config{MultiTenancy: true, ContentStorage: storage, ContentDir: filepath.Join(dir, "content"), NoContentSync: sync == "normal"}
	if _, err := engine.Bootstrap(benchCtx, be, cfg); err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(benchCtx, be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	if _, err := eng.Provisioner("bench").Create(benchCtx, "bench", ""); err != nil {
		b.Fatal(err)
	}
	s := eng.As(docex.UserContext{UserID: "bench", TenantID: "bench", Roles: []string{"admin"}})
	bk, err := s.CreateBasket(benchCtx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{be: be, eng: eng, s: s, bk: bk}
}

// contentGen yields distinct random documents.
type contentGen struct{ r *rand.ChaCha8 }

func newContentGen(seed byte) *contentGen {
	var s [32]byte
	s[0] = seed
	return &contentGen{r: rand.NewChaCha8(s)}
}

func (g *contentGen) next(size int) []byte {
	b := make([]byte, size)
	g.r.Read(b)
	return b
}

func benchMeta(i int) map[string]docex.Value {
	return map[string]docex.Value{
		"kind":  docex.String("invoice"),
		"n":     docex.Number(float64(i)),
		"final": docex.Bool(i%2 == 0),
	}
}

func reportRate(b *testing.B, n int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, unit)
	}
}

var benchModes = []struct{ storage, sync string }{
	{engine.ContentFilesystem, "full"},
	{engine.ContentFilesystem, "normal"},
	{engine.ContentDatabase, "full"},
	{engine.ContentDatabase, "normal"},
}

// BenchmarkAddDocument: one 4 KiB document with 3 metadata keys per call.
func BenchmarkAddDocument(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.storage+"/"+m.sync, func(b *testing.B) {
			env := newBenchEnv(b, m.storage, m.sync, 0)
			gen := newContentGen(1)
			n := 0
			for b.Loop() {
				data := gen.next(4 << 10)
				if _, err := env.s.AddDocument(benchCtx, env.bk.ID, engine.NewDocument{
					Name: "doc.bin", Content: bytes.NewReader(data), Metadata: benchMeta(n),
				}); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.SetBytes(4 << 10)
			reportRate(b, n, "docs/s")
		})
	}
}

// BenchmarkAddDocumentsBatch: 100 documents (4 KiB, 3 keys) per
// AddDocuments call, one transaction.
func BenchmarkAddDocumentsBatch(b *testing.B) {
	const batch = 100
	for _, m := range benchModes {
		b.Run(m.storage+"/"+m.sync, func(b *testing.B) {
			env := newBenchEnv(b, m.storage, m.sync, 0)
			gen := newContentGen(2)
			n := 0
			docs := make([]engine.NewDocument, batch)
			for b.Loop() {
				b.StopTimer()
				for i := range docs {
					docs[i] = engine.NewDocument{Name: "doc.bin", Content: bytes.NewReader(gen.next(4 << 10)), Metadata: benchMeta(n + i)}
				}
				b.StartTimer()
				if _, err := env.s.AddDocuments(benchCtx, env.bk.ID, docs); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/doc")
			reportRate(b, n, "docs/s")
		})
	}
}

// BenchmarkAddDocumentsOverBound: 10,240 documents of 8 KiB (80 MiB,
// five times the default bound on staged memory, 16 MiB) per AddDocuments
// call, one transaction (B/op counts what the add allocates, not its
// peak).
func BenchmarkAddDocumentsOverBound(b *testing.B) {
	const (
		batch = 10240
		size  = 8 << 10
	)
	for _, m := range benchModes {
		if m.sync == "full" {
			continue // the flushes dominate: see BenchmarkAddDocumentsBatch
		}
		b.Run(m.storage+"/"+m.sync, func(b *testing.B) {
			env := newBenchEnv(b, m.storage, m.sync, 0)
			gen := newContentGen(3)
			n := 0
			docs := make([]engine.NewDocument, batch)
			for b.Loop() {
				b.StopTimer()
				for i := range docs {
					docs[i] = engine.NewDocument{Name: "doc.bin", Content: bytes.NewReader(gen.next(size))}
				}
				b.StartTimer()
				if _, err := env.s.AddDocuments(benchCtx, env.bk.ID, docs); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/doc")
			reportRate(b, n, "docs/s")
		})
	}
}

// BenchmarkFindByMetadata searches a basket of 100,000 documents. Each
// document has "group" (1000 values: 100 matches each) and "kind" (4
// values, independent of the group: 25,000 matches each, 25 per group).
func BenchmarkFindByMetadata(b *testing.B) {
	const (
		docs   = 100_000
		groups = 1000
		kinds  = 4
		batch  = 5000
	)
	env := newBenchEnv(b, engine.ContentDatabase, "normal", 0)
	group := func(i int) docex.Value { return docex.String(fmt.Sprintf("g%03d", i%groups)) }
	kind := func(i int) docex.Value { return docex.String(fmt.Sprintf("k%d", (i/groups)%kinds)) }
	// Seed through the driver, 5000 documents per transaction: the engine
	// path (with its per-document audit entries) is what the other
	// benchmarks measure, and would take ~10x longer here.
	st, err := env.be.OpenTenant(benchCtx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for start := 0; start < docs; start += batch {
		err := st.Write(benchCtx, func(tx driver.Tx) error {
			for i := start; i < start+batch; i++ {
				data := []byte(fmt.Sprintf("document %d", i))
				h := sha256.Sum256(data)
				sum := hex.EncodeToString(h[:])
				if err := tx.PutContent(benchCtx, sum, data); err != nil {
					return err
				}
				if err := tx.InsertDocument(benchCtx, docex.Document{
					ID: uuid.Must(uuid.NewV7()).String(), BasketID: env.bk.ID, Name: fmt.Sprintf("doc-%06d.txt", i),
					ContentType: "text/plain", Size: int64(len(data)), Checksum: sum, Status: docex.DocumentActive,
					CreatedAt: now, UpdatedAt: now,
					Metadata: map[string]docex.Value{"group": group(i), "kind": kind(i)},
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	st.Close()
	b.Logf("seeded %d documents in %v", docs, b.Elapsed())

	run := func(name string, want int64, filters func(i int) []docex.MetaFilter) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				found, total, err := env.s.FindDocuments(benchCtx, env.bk.ID, filters(i), docex.Page{Limit: 100})
				if err != nil {
					b.Fatal(err)
				}
				if total != want || len(found) != int(min(want, 100)) {
					b.Fatalf("found %d of %d, want %d", len(found), total, want)
				}
				i++
			}
		})
	}
	run("group=100matches", docs/groups, func(i int) []docex.MetaFilter {
		return []docex.MetaFilter{{Key: "group", Value: group(i * 7)}}
	})
	run("group+kind=25matches", docs/groups/kinds, func(i int) []docex.MetaFilter {
		return []docex.MetaFilter{{Key: "group", Value: group(i * 7)}, {Key: "kind", Value: kind(i * 1000)}}
	})
	run("kind=25000matches_page100", docs/kinds, func(i int) []docex.MetaFilter {
		return []docex.MetaFilter{{Key: "kind", Value: kind(i * 1000)}}
	})
	run("nomatch", 0, func(i int) []docex.MetaFilter {
		return []docex.MetaFilter{{Key: "group", Value: docex.String("absent")}}
	})

	// Where the time goes: the same search on the tenant store directly
	// (no session checks, no basket lookup), and the basket lookup alone,
	// which the session does before every search and inside every add.
	b.Run("store-direct/group=100matches", func(b *testing.B) {
		st, err := env.be.OpenTenant(benchCtx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		i := 0
		for b.Loop() {
			_, total, err := st.FindDocuments(benchCtx, env.bk.ID, []docex.MetaFilter{{Key: "group", Value: group(i * 7)}}, docex.Page{Limit: 100})
			if err != nil || total != docs/groups {
				b.Fatal(total, err)
			}
			i++
		}
	})
	b.Run("session-Basket-100k", func(b *testing.B) {
		for b.Loop() {
			bk, err := env.s.Basket(benchCtx, env.bk.ID)
			if err != nil || bk.DocumentCount != docs {
				b.Fatal(bk, err)
			}
		}
	})
	// Adding to a large basket, to compare with BenchmarkAddDocument
	// (database/normal), which adds to a basket that starts empty.
	b.Run("AddDocument-into-100k-basket", func(b *testing.B) {
		gen := newContentGen(9)
		n := 0
		for b.Loop() {
			if _, err := env.s.AddDocument(benchCtx, env.bk.ID, engine.NewDocument{
				Name: "doc.bin", Content: bytes.NewReader(gen.next(4 << 10)), Metadata: benchMeta(n),
			}); err != nil {
				b.Fatal(err)
			}
			n++
		}
		reportRate(b, n, "docs/s")
	})
}

// BenchmarkProvisionTenant: one tenant (a database file) per call.
func BenchmarkProvisionTenant(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run(sync, func(b *testing.B) {
			env := newBenchEnv(b, engine.ContentDatabase, sync, 0)
			n := 0
			for b.Loop() {
				if _, err := env.eng.Provisioner("bench").Create(benchCtx, fmt.Sprintf("t%d", n), ""); err != nil {
					b.Fatal(err)
				}
				n++
			}
			reportRate(b, n, "tenants/s")
		})
	}
}

// BenchmarkOpenTenant lists the baskets of tenants in rotation: "cold"
// keeps 2 databases open for 64 tenants so every call opens a file, "warm"
// keeps them all open.
func BenchmarkOpenTenant(b *testing.B) {
	const tenants = 64
	for _, c := range []struct {
		name    string
		maxOpen int
	}{{"cold", 2}, {"warm", 256}} {
		b.Run(c.name, func(b *testing.B) {
			env := newBenchEnv(b, engine.ContentDatabase, "normal", c.maxOpen)
			sessions := make([]*engine.Session, tenants)
			for i := range sessions {
				id := fmt.Sprintf("t%d", i)
				if _, err := env.eng.Provisioner("bench").Create(benchCtx, id, ""); err != nil {
					b.Fatal(err)
				}
				sessions[i] = env.eng.As(docex.UserContext{UserID: "u", TenantID: id, Roles: []string{"reader", "writer"}})
				if _, err := sessions[i].CreateBasket(benchCtx, "b"); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				bs, err := sessions[i%tenants].Baskets(benchCtx, docex.Page{})
				if err != nil || len(bs) != 1 {
					b.Fatal(bs, err)
				}
				i++
			}
			if c.maxOpen < tenants && env.be.OpenTenants() > c.maxOpen {
				b.Fatalf("%d open", env.be.OpenTenants())
			}
		})
	}
}

// BenchmarkGetDocument: a warm read of one document with its metadata.
func BenchmarkGetDocument(b *testing.B) {
	env := newBenchEnv(b, engine.ContentDatabase, "normal", 0)
	gen := newContentGen(3)
	nd := make([]engine.NewDocument, 1000)
	for i := range nd {
		nd[i] = engine.NewDocument{Name: "doc.bin", Content: bytes.NewReader(gen.next(4 << 10)), Metadata: benchMeta(i)}
	}
	added, err := env.s.AddDocuments(benchCtx, env.bk.ID, nd)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("metadata", func(b *testing.B) {
		i := 0
		for b.Loop() {
			d, err := env.s.Document(benchCtx, added[i%len(added)].Document.ID)
			if err != nil || len(d.Metadata) != 3 {
				b.Fatal(d, err)
			}
			i++
		}
	})
	b.Run("content", func(b *testing.B) {
		i := 0
		for b.Loop() {
			data, err := env.s.ReadContent(benchCtx, added[i%len(added)].Document.ID)
			if err != nil || len(data) != 4<<10 {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkBaselineSQLiteInsert: one INSERT per transaction into a plain
// table with database/sql and modernc SQLite in WAL mode, the floor under
// every docex write.
func BenchmarkBaselineSQLiteInsert(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		for _, size := range []int{64, 4 << 10} {
			b.Run(fmt.Sprintf("%s/%dB", sync, size), func(b *testing.B) {
				u := url.URL{Scheme: "file", Path: filepath.Join(b.TempDir(), "raw.db")}
				q := url.Values{}
				q.Set("mode", "rwc")
				q.Set("_txlock", "immediate")
				q.Add("_pragma", "journal_mode(WAL)")
				q.Add("_pragma", "synchronous("+sync+")")
				u.RawQuery = q.Encode()
				db, err := sql.Open("sqlite", u.String())
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				db.SetMaxOpenConns(1)
				if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
					b.Fatal(err)
				}
				var mode string
				if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
					b.Fatalf("journal_mode %q, %v", mode, err)
				}
				gen := newContentGen(4)
				n := 0
				for b.Loop() {
					tx, err := db.Begin()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tx.Exec(`INSERT INTO t(data) VALUES (?)`, gen.next(size)); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
					n++
				}
				reportRate(b, n, "rows/s")
			})
		}
	}
}

// BenchmarkAddDocumentParallel: single-document adds from 16 goroutines
// into one tenant; concurrent writes share commits (group commit).
func BenchmarkAddDocumentParallel(b *testing.B) {
	for _, m := range benchModes {
		if m.storage != engine.ContentDatabase {
			continue
		}
		b.Run(m.storage+"/"+m.sync, func(b *testing.B) {
			env := newBenchEnv(b, m.storage, m.sync, 0)
			var seq atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				gen := newContentGen(byte(seq.Add(1)))
				for pb.Next() {
					n := int(seq.Add(1))
					if _, err := env.s.AddDocument(benchCtx, env.bk.ID, engine.NewDocument{
						Name: "doc.bin", Content: bytes.NewReader(gen.next(4 << 10)), Metadata: benchMeta(n),
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
			reportRate(b, b.N, "docs/s")
		})
	}
}
