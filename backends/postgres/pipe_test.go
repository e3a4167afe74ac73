package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// roundTrips counts the statements and batches the backend sends (each
// one round trip once its statements are prepared), leaving out the
// session reset of a released connection; stmts counts the statements
// (a batch's each), failed the batches that failed.
type roundTrips struct{ n, stmts, failed atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if d.SQL != resetSessionSQL {
		r.n.Add(1)
		r.stmts.Add(1)
	}
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	r.stmts.Add(1)
}
func (r *roundTrips) TraceBatchEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	if d.Err != nil {
		r.failed.Add(1)
	}
}

// countingStore returns a tenant store on one pooled connection whose
// round trips rt counts.
func countingStore(t *testing.T) (driver.TenantStore, *roundTrips) {
	t.Helper()
	_, st, rt := countingBackend(t)
	return st, rt
}

func countingBackend(t *testing.T) (*Backend, driver.TenantStore, *roundTrips) {
	t.Helper()
	b := bootstrapped(t, Config{MaxConns: 1}, true)
	rt := traceRoundTrips(t, b) // before the store opens: its connection is counted from the start
	return b, openStore(t, b, "acme"), rt
}

// traceRoundTrips replaces b's pool with one whose round trips it counts.
func traceRoundTrips(t testing.TB, b *Backend) *roundTrips {
	t.Helper()
	pc := b.pool.Config()
	rt := &roundTrips{}
	pc.ConnConfig.Tracer = rt
	pool, err := pgxpool.NewWithConfig(bg, pc)
	must(t, err)
	b.pool.Close()
	b.pool = pool
	return rt
}

// TestRoundTrips: the statements a pipeline step's commit makes for a
// derived document (the input's metadata, the content lock and checks,
// the document, its content, the audit entries) share round trips: the
// statements nobody waits for are sent with the next one that is waited
// for, or with the commit, and the tenant check with the begin.
func TestRoundTrips(t *testing.T) {
	st, rt := countingStore(t)
	now := time.Now()
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	input := docex.Document{ID: newID(), BasketID: bk.ID, Name: "in.txt", ContentType: "text/plain", Size: 1,
		Checksum: strings.Repeat("a", 64), CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{}}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertDocument(bg, input) }))
	step := func(i int) error {
		return st.Write(bg, func(tx driver.Tx) error {
			if _, err := tx.Basket(bg, bk.ID); err != nil {
				return err
			}
			if err := tx.SetMetadata(bg, input.ID, map[string]docex.Value{"n": docex.Number(float64(i)), "lang": docex.String("en")}, now); err != nil {
				return err
			}
			if err := tx.AppendAudit(bg, testAudit("metadata.set")); err != nil {
				return err
			}
			sum := strings.Repeat(string(rune('b'+i)), 64)
			if err := tx.LockContent(bg, sum); err != nil {
				return err
			}
			if _, err := tx.DocumentByChecksum(bg, bk.ID, sum); !errors.Is(err, docex.ErrNotFound) {
				t.Fatalf("DocumentByChecksum: %v, want ErrNotFound", err)
			}
			if n, err := tx.ContentRefs(bg, sum); err != nil || n != 0 {
				t.Fatalf("ContentRefs = %d, %v", n, err)
			}
			d := docex.Document{ID: newID(), BasketID: bk.ID, Name: "out.txt", ContentType: "text/plain", Size: 3,
				Checksum: sum, CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{"part": docex.Number(1)}}
			if err := tx.InsertDocument(bg, d); err != nil {
				return err
			}
			if err := tx.AppendAudit(bg, testAudit("document.add")); err != nil {
				return err
			}
			if err := tx.DeleteContent(bg, sum); err != nil {
				return err
			}
			return tx.PutContent(bg, sum, []byte("out"))
		})
	}
	must(t, step(0)) // prepares the statements on the connection
	before := rt.n.Load()
	must(t, step(1))
	// begin with the tenant check, Basket, SetMetadata,
	// DocumentByChecksum (with the lock and the audit entry before it, the
	// reference count for ContentRefs after it), InsertDocument, the held
	// statements with the basket counters and the commit.
	if got, want := rt.n.Load()-before, int64(6); got != want {
		t.Errorf("a step's commit took %d round trips, want %d", got, want)
	}
	// A read: begin with the tenant check, the query, commit.
	before = rt.n.Load()
	got, err := st.Basket(bg, bk.ID)
	must(t, err)
	if n := rt.n.Load() - before; n != 3 {
		t.Errorf("a read took %d round trips, want 3", n)
	}
	if got.DocumentCount != 3 || got.Bytes != 7 {
		t.Errorf("basket counters %d documents, %d bytes; want 3, 7", got.DocumentCount, got.Bytes)
	}
	audit, err := st.Audit(bg, docex.Page{})
	must(t, err)
	if len(audit) != 4 {
		t.Errorf("%d audit entries, want 4", len(audit))
	}
}

// TestHeldStatementError: a held statement that fails (an audit entry
// PostgreSQL rejects: text with a NUL byte) is reported by the call that
// sends it, untyped (not as that call's own unique violation), by every
// later call, and by Write even when fn ignores it; nothing commits.
func TestHeldStatementError(t *testing.T) {
	st, _ := countingStore(t)
	now := time.Now()
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	bad := testAudit("bad")
	bad.Target = "a\x00b"
	var appendErr, insertErr, laterErr error
	err := st.Write(bg, func(tx driver.Tx) error {
		appendErr = tx.AppendAudit(bg, bad)
		// A taken basket name: its own error would be ErrExists.
		insertErr = tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "in", CreatedAt: now})
		laterErr = tx.AppendAudit(bg, testAudit("good"))
		return nil
	})
	if appendErr != nil {
		t.Fatalf("AppendAudit = %v, want nil (held)", appendErr)
	}
	if insertErr == nil || errors.Is(insertErr, docex.ErrExists) || !strings.Contains(insertErr.Error(), "append audit") {
		t.Fatalf("InsertBasket after a failing held statement = %v, want the audit entry's error", insertErr)
	}
	if !errors.Is(laterErr, insertErr) || !errors.Is(err, insertErr) {
		t.Fatalf("later call = %v, Write = %v, want %v", laterErr, err, insertErr)
	}

	// fn ignores the held error: Write still fails and nothing commits.
	err = st.Write(bg, func(tx driver.Tx) error {
		_ = tx.AppendAudit(bg, testAudit("good"))
		_ = tx.AppendAudit(bg, bad)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "append audit") {
		t.Fatalf("Write = %v, want the audit entry's error", err)
	}
	audit, err := st.Audit(bg, docex.Page{})
	must(t, err)
	if len(audit) != 0 {
		t.Fatalf("%d audit entries committed, want 0", len(audit))
	}
}

// TestContentRefsAfterLookup: ContentRefs answers from the count read
// with DocumentByChecksum only right after it, for the same checksum.
func TestContentRefsAfterLookup(t *testing.T) {
	st, rt := countingStore(t)
	now := time.Now()
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	sum, other := strings.Repeat("a", 64), strings.Repeat("b", 64)
	doc := func(sum string) docex.Document {
		return docex.Document{ID: newID(), BasketID: bk.ID, Name: "d", ContentType: "text/plain", Size: 1,
			Checksum: sum, CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{}}
	}
	refs := func(tx driver.Tx, sum string, want int64) {
		t.Helper()
		if n, err := tx.ContentRefs(bg, sum); err != nil || n != want {
			t.Fatalf("ContentRefs(%.4s) = %d, %v; want %d", sum, n, err, want)
		}
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		if _, err := tx.DocumentByChecksum(bg, bk.ID, sum); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("DocumentByChecksum = %v, want ErrNotFound", err)
		}
		n := rt.n.Load()
		refs(tx, sum, 0)
		if rt.n.Load() != n {
			t.Fatal("ContentRefs right after DocumentByChecksum made a round trip")
		}
		// Another call in between: counted again.
		if _, err := tx.DocumentByChecksum(bg, bk.ID, sum); !errors.Is(err, docex.ErrNotFound) {
			t.Fatalf("DocumentByChecksum = %v, want ErrNotFound", err)
		}
		if err := tx.InsertDocument(bg, doc(sum)); err != nil {
			return err
		}
		refs(tx, sum, 1)
		// Another checksum: counted.
		if _, err := tx.DocumentByChecksum(bg, bk.ID, sum); err != nil {
			return err
		}
		refs(tx, other, 0)
		// Found: the count comes with it too.
		if _, err := tx.DocumentByChecksum(bg, bk.ID, sum); err != nil {
			return err
		}
		refs(tx, sum, 1)
		return nil
	}))
}

// TestArrayLookupsUnprepared: the lookups by an array of keys (metadata of
// documents, documents by checksums and their references, steps of jobs,
// cache entries, jobs) are not prepared
// statements, whose cached generic plan, made while a new tenant's table
// was small, would stay a sequential scan as the table grows.
func TestArrayLookupsUnprepared(t *testing.T) {
	b, st, _ := countingBackend(t)
	now := time.Now()
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	d := docex.Document{ID: newID(), BasketID: bk.ID, Name: "d", ContentType: "text/plain", Size: 1,
		Checksum: strings.Repeat("a", 64), CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{"k": docex.String("v")}}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertDocument(bg, d) }))
	pr := st.(driver.PipelineReader)
	for range 10 {
		got, err := st.Document(bg, d.ID)
		must(t, err)
		if got.Metadata["k"].Str() != "v" {
			t.Fatalf("metadata %v", got.Metadata)
		}
		must(t, st.Write(bg, func(tx driver.Tx) error {
			if _, err := tx.DocumentByChecksum(bg, bk.ID, d.Checksum); err != nil {
				return err
			}
			ct := tx.(driver.ChecksumTx)
			if err := ct.LockContents(bg, []string{d.Checksum}); err != nil {
				return err
			}
			docs, err := ct.DocumentsByChecksums(bg, bk.ID, []string{d.Checksum})
			if err != nil || docs[d.Checksum].Metadata["k"].Str() != "v" {
				t.Fatalf("DocumentsByChecksums = %v, %v", docs, err)
			}
			refs, err := ct.ContentRefsOf(bg, []string{d.Checksum})
			if err != nil || refs[d.Checksum] != 1 {
				t.Fatalf("ContentRefsOf = %v, %v", refs, err)
			}
			return nil
		}))
		_, err = pr.JobsByID(bg, []string{"j"})
		must(t, err)
		_, err = pr.StepsOfJobs(bg, []string{"j"})
		must(t, err)
		_, err = pr.CacheEntries(bg, []string{"k"})
		must(t, err)
	}
	var n int64
	var which *string
	// The pool's only connection: the session that ran the lookups.
	must(t, b.pool.QueryRow(bg, `SELECT count(*), string_agg(statement, '; ') FROM pg_prepared_statements WHERE (statement LIKE '%= ANY($%' OR statement LIKE '%c.sum%') AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&n, &which))
	if n != 0 {
		t.Fatalf("%d lookups by an array of keys are prepared statements: %s", n, *which)
	}
}

// TestTenantCheckExecModes: the tenant check runs with the begin in one
// batch under every exec mode a DSN can choose, on a connection where it
// is not prepared yet and on one where it is; a schema dropped behind
// docex's back (the tenant still registered) is still reported as
// docex.ErrCorrupt, one dropped by the tenant's deletion as
// docex.ErrTenantUnknown (it was corrupt too).
func TestTenantCheckExecModes(t *testing.T) {
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			b, err := Open(bg, Config{DSN: newDatabase(t) + "&default_query_exec_mode=" + mode, MaxConns: 1})
			must(t, err)
			t.Cleanup(func() { b.Close() })
			_, err = b.Bootstrap(bg, testInfo(true))
			must(t, err)
			sum := strings.Repeat("a", 64)
			for _, c := range []struct {
				tenant string
				drop   func()
				want   error
			}{
				{"alpha", func() { exec(t, b, `DROP SCHEMA docex_t_alpha CASCADE`) }, docex.ErrCorrupt},
				{"beta", func() { must(t, b.DeleteTenant(bg, "beta", testAudit("tenant.delete"))) }, docex.ErrTenantUnknown},
			} {
				st := openStore(t, b, c.tenant)
				must(t, st.Write(bg, func(tx driver.Tx) error { return tx.PutContent(bg, sum, []byte("x")) }))
				for i := range 3 {
					addBasket(t, st, fmt.Sprintf("b%d", i))
					list, err := st.Baskets(bg, docex.Page{})
					must(t, err)
					if len(list) != i+1 {
						t.Fatalf("%d baskets, want %d", len(list), i+1)
					}
					rc, err := st.OpenContent(bg, sum) // readOne
					must(t, err)
					if got, _ := io.ReadAll(rc); string(got) != "x" {
						t.Fatalf("content %q", got)
					}
				}
				c.drop()
				_, berr := st.Baskets(bg, docex.Page{})
				_, cerr := st.OpenContent(bg, sum)
				for op, err := range map[string]error{"baskets": berr, "content": cerr, "insert": addBasketErr(st, "x")} {
					if code := docex.Code(err); code != docex.Code(c.want) {
						t.Errorf("tenant %s, %s: %v (code %s), want code %s", c.tenant, op, err, code, docex.Code(c.want))
					}
				}
			}
		})
	}
}

// TestFreshConnectionCheck: on a new connection the tenant check is not
// prepared yet, and the transaction begins in two round trips (no batch
// that fails to prepare it, which the server would log as an error); on
// the same connection afterwards, in one.
func TestFreshConnectionCheck(t *testing.T) {
	b, st, _ := countingBackend(t)
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: time.Now()}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	rt := traceRoundTrips(t, b)
	for i, want := range []int64{4, 3} {
		before := rt.n.Load()
		_, err := st.Basket(bg, bk.ID)
		must(t, err)
		if n := rt.n.Load() - before; n != want {
			t.Errorf("read %d on the connection took %d round trips, want %d", i+1, n, want)
		}
	}
	// A write's check (FOR SHARE) is another statement: the first write
	// on the connection prepares it as the first read did, without a
	// batch that fails to prepare it.
	for i, want := range []int64{4, 3} {
		before := rt.n.Load()
		must(t, addBasketErr(st, fmt.Sprintf("w%d", i)))
		if n := rt.n.Load() - before; n != want {
			t.Errorf("write %d on the connection took %d round trips, want %d", i+1, n, want)
		}
	}
	if n := rt.failed.Load(); n != 0 {
		t.Errorf("%d batches failed", n)
	}
}

// rowsRead returns the rows of table the transaction has read so far, by
// sequential and by index scans (pg_stat_xact_user_tables).
func rowsRead(t *testing.T, dtx driver.Tx, table string) int64 {
	t.Helper()
	var n int64
	must(t, dtx.(*tx).p.QueryRow(bg, `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables
		WHERE schemaname = (current_schemas(false))[1] AND relname = $1`, table).Scan(&n))
	return n
}

// TestChecksumLookupsByIndex: DocumentsByChecksums and ContentRefsOf read
// the rows of their checksums, not every document of the basket or of the
// tenant, in a tenant whose tables were never analyzed (without
// statistics, "checksum = ANY($1)" was planned as a scan of the basket's
// documents, and the count as a sequential scan of all documents), and
// the counts come with the documents, in one statement.
func TestChecksumLookupsByIndex(t *testing.T) {
	st, rt := countingStore(t)
	now := time.Now()
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	const n = 2000
	var sums []string
	for k := 0; k < n; k += 500 {
		docs := make([]docex.Document, 500)
		for i := range docs {
			docs[i] = docex.Document{ID: newID(), BasketID: bk.ID, Name: "d", ContentType: "text/plain", Size: 1,
				Checksum: fmt.Sprintf("%064x", k+i), CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{"i": docex.Number(float64(k + i))}}
			sums = append(sums, docs[i].Checksum)
		}
		must(t, st.Write(bg, func(tx driver.Tx) error { return tx.(driver.BatchTx).InsertDocuments(bg, docs, nil) }))
	}
	// 16 checksums the basket holds, 16 it does not, one twice.
	ask := append([]string{sums[100]}, sums[100:116]...)
	for i := range 16 {
		ask = append(ask, fmt.Sprintf("%064x", n+i))
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		ct := tx.(driver.ChecksumTx)
		before := rowsRead(t, tx, "documents")
		trips := rt.n.Load()
		if err := ct.LockContents(bg, ask); err != nil {
			return err
		}
		docs, err := ct.DocumentsByChecksums(bg, bk.ID, ask)
		if err != nil {
			return err
		}
		refs, err := ct.ContentRefsOf(bg, ask)
		if err != nil {
			return err
		}
		// The held locks, then the lookup.
		if got := rt.n.Load() - trips; got != 2 {
			t.Errorf("the lookups took %d round trips, want 2", got)
		}
		if read := rowsRead(t, tx, "documents") - before; read > 2*int64(len(ask)) {
			t.Errorf("the lookups of %d checksums read %d documents (of %d)", len(ask), read, n)
		}
		if len(docs) != 16 || len(refs) != 16 {
			t.Fatalf("found %d documents, %d references; want 16, 16", len(docs), len(refs))
		}
		for _, sum := range sums[100:116] {
			if d := docs[sum]; d.Checksum != sum || d.Metadata["i"].Num() < 100 || refs[sum] != 1 {
				t.Fatalf("checksum %.8s: document %+v, %d references", sum, d, refs[sum])
			}
		}
		// Another call in between: counted again.
		if _, err := tx.Basket(bg, bk.ID); err != nil {
			return err
		}
		trips = rt.n.Load()
		again, err := ct.ContentRefsOf(bg, ask)
		if err != nil || len(again) != 16 || rt.n.Load() == trips {
			t.Errorf("ContentRefsOf after another call = %v, %v (round trips %d)", again, err, rt.n.Load()-trips)
		}
		return nil
	}))
}

// TestMultiRowStatements: a step transaction's rows go in one statement
// per table whatever their number (InsertDocuments: the documents with
// their metadata, the audit entries; InsertStepRows: completion keys,
// lineage edges, cache entries, audit entries; ReplaceContents: the
// contents), in one round trip each, and read back as written, in order.
func TestMultiRowStatements(t *testing.T) {
	st, rt := countingStore(t)
	now := time.Now().Truncate(time.Microsecond)
	bk := docex.Basket{ID: newID(), Name: "in", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	const n = 10
	var (
		docs  []docex.Document
		audit []docex.AuditEntry
		steps []driver.StepRecord
		edges []driver.LineageEdge
		cache []driver.CacheEntry
	)
	for i := range n {
		meta := map[string]docex.Value{"i": docex.Number(float64(i))}
		if i%2 == 0 {
			meta["even"] = docex.Bool(true)
		}
		if i == 3 {
			meta = map[string]docex.Value{} // a document without metadata
		}
		d := docex.Document{ID: newID(), BasketID: bk.ID, Name: fmt.Sprintf("d%d", i), ContentType: "text/plain", Size: int64(i),
			Checksum: fmt.Sprintf("%064x", i), CreatedAt: now, UpdatedAt: now, Metadata: meta}
		docs = append(docs, d)
		e := testAudit(fmt.Sprintf("op%d", i))
		e.Time = now
		if i == 2 {
			e.Roles = nil
		}
		audit = append(audit, e)
		outputs := []string{d.ID}
		if i == 4 {
			outputs = nil
		}
		steps = append(steps, driver.StepRecord{Key: fmt.Sprintf("job/s/%d", i), JobID: "job", Step: "s", InputID: "in", Outcome: "ran",
			Outputs: outputs, Detail: []byte(`{"n":1}`), CreatedAt: now})
		edges = append(edges, driver.LineageEdge{SourceID: "in", DerivedID: d.ID, JobID: "job", Pipeline: "p", Version: 2, Step: "s",
			Plugin: "pl", ModuleSHA256: "sha", Params: `{"a":1}`, CreatedAt: now})
		cache = append(cache, driver.CacheEntry{Key: fmt.Sprintf("c%d", i%4), Result: []byte(fmt.Sprint(i)), CreatedAt: now})
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		before, trips := rt.stmts.Load(), rt.n.Load()
		if err := tx.(driver.BatchTx).InsertDocuments(bg, docs, audit); err != nil {
			return err
		}
		if got := rt.stmts.Load() - before; got != 2 || rt.n.Load()-trips != 1 {
			t.Errorf("InsertDocuments of %d documents and %d audit entries: %d statements in %d round trips, want 2 in 1", n, n, got, rt.n.Load()-trips)
		}
		before, trips = rt.stmts.Load(), rt.n.Load()
		if err := tx.(driver.StepRowsTx).InsertStepRows(bg, steps, edges, cache, audit[:2]); err != nil {
			return err
		}
		if got := rt.stmts.Load() - before; got != 4 || rt.n.Load()-trips != 1 {
			t.Errorf("InsertStepRows of %d rows each: %d statements in %d round trips, want 4 in 1", n, got, rt.n.Load()-trips)
		}
		// The contents: one held statement, sent with the next one; a
		// checksum given twice stores its last data.
		var sums []string
		var data [][]byte
		for _, d := range docs {
			sums, data = append(sums, d.Checksum), append(data, []byte(d.Name))
		}
		sums, data = append(sums, docs[0].Checksum), append(data, []byte("last"))
		before = rt.stmts.Load()
		if err := tx.(driver.BatchTx).ReplaceContents(bg, sums, data); err != nil {
			return err
		}
		if _, err := tx.Basket(bg, bk.ID); err != nil {
			return err
		}
		if got := rt.stmts.Load() - before; got != 2 {
			t.Errorf("ReplaceContents of %d contents and a read: %d statements, want 2", len(sums), got)
		}
		return nil
	}))
	for i, d := range docs {
		want := d.Name
		if i == 0 {
			want = "last"
		}
		rc, err := st.OpenContent(bg, d.Checksum)
		must(t, err)
		if got, _ := io.ReadAll(rc); string(got) != want {
			t.Fatalf("content of document %d = %q, want %q", i, got, want)
		}
	}
	pr := st.(driver.PipelineReader)
	for i, d := range docs {
		got, err := st.Document(bg, d.ID)
		must(t, err)
		if got.Name != d.Name || got.Size != d.Size || len(got.Metadata) != len(d.Metadata) || (i%2 == 0 && i != 3 && !got.Metadata["even"].Truth()) {
			t.Fatalf("document %d read back as %+v, want %+v", i, got, d)
		}
	}
	_, derived, err := pr.Lineage(bg, "in")
	must(t, err)
	if len(derived) != n || derived[0].Version != 2 || derived[0].Params != `{"a":1}` {
		t.Fatalf("lineage %+v", derived)
	}
	js, err := pr.JobSteps(bg, "job")
	must(t, err)
	if len(js) != n {
		t.Fatalf("%d job steps, want %d", len(js), n)
	}
	for i, s := range js {
		if s.Key != steps[i].Key || string(s.Detail) != `{"n": 1}` && string(s.Detail) != `{"n":1}` || len(s.Outputs) != len(steps[i].Outputs) {
			t.Fatalf("job step %d read back as %+v, want %+v", i, s, steps[i])
		}
	}
	for k := range 4 {
		c, err := pr.CacheEntry(bg, fmt.Sprintf("c%d", k))
		must(t, err)
		last := k + 8 // the last i with i%4 == k
		if last >= n {
			last -= 4
		}
		if string(c.Result) != fmt.Sprint(last) {
			t.Fatalf("cache entry c%d = %s, want %d (the last)", k, c.Result, last)
		}
	}
	entries, err := st.Audit(bg, docex.Page{Limit: 100})
	must(t, err)
	if len(entries) != n+2 {
		t.Fatalf("%d audit entries, want %d", len(entries), n+2)
	}
	// Newest first; one time: the order written, reversed.
	for i, e := range entries[2:] {
		w := audit[n-1-i]
		if e.ID != w.ID || e.Operation != w.Operation || len(e.Roles) != len(w.Roles) {
			t.Fatalf("audit entry %d read back as %+v, want %+v", i, e, w)
		}
	}
	// Errors name the document at fault (or its basket), typed as
	// InsertDocument's.
	fresh := func(i int) docex.Document {
		d := docs[0]
		d.ID, d.Name, d.Checksum = newID(), fmt.Sprintf("new%d", i), fmt.Sprintf("%064x", 100+i)
		return d
	}
	dup, taken, orphan := fresh(1), fresh(2), fresh(3)
	dup.Checksum = docs[5].Checksum
	taken.ID = docs[6].ID
	orphan.BasketID = newID()
	for _, c := range []struct {
		bad  docex.Document
		want error
	}{{dup, docex.ErrDuplicateContent}, {taken, docex.ErrExists}, {orphan, docex.ErrNotFound}} {
		err := st.Write(bg, func(tx driver.Tx) error {
			return tx.(driver.BatchTx).InsertDocuments(bg, []docex.Document{fresh(4), c.bad, fresh(5)}, nil)
		})
		if msg := err.Error(); !errors.Is(err, c.want) || !strings.Contains(msg, c.bad.ID) && !strings.Contains(msg, c.bad.Name) && !strings.Contains(msg, c.bad.BasketID) {
			t.Errorf("InsertDocuments with %s = %v, want %v naming it", c.bad.Name, err, c.want)
		}
	}
}

// TestOpenContentOneRoundTrip: reading content is one round trip (BEGIN,
// search_path, check, query, COMMIT in one batch) once the check and the
// query are prepared on the connection, and the check still decides: a
// suspended tenant, a deleted one, a dropped schema read nothing.
func TestOpenContentOneRoundTrip(t *testing.T) {
	b, st, rt := countingBackend(t)
	sum := strings.Repeat("c", 64)
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.PutContent(bg, sum, []byte("hello")) }))
	read := func(want int64) {
		t.Helper()
		before := rt.n.Load()
		rc, err := st.OpenContent(bg, sum)
		must(t, err)
		got, err := io.ReadAll(rc)
		must(t, err)
		if string(got) != "hello" {
			t.Fatalf("content %q", got)
		}
		if n := rt.n.Load() - before; n != want {
			t.Errorf("OpenContent took %d round trips, want %d", n, want)
		}
	}
	read(3) // the query is prepared (the read check was, by OpenTenant)
	read(1)
	read(1)
	before := rt.n.Load()
	if _, err := st.OpenContent(bg, strings.Repeat("d", 64)); !errors.Is(err, docex.ErrNotFound) {
		t.Fatalf("OpenContent of absent content = %v, want ErrNotFound", err)
	}
	if n := rt.n.Load() - before; n != 1 {
		t.Errorf("OpenContent of absent content took %d round trips, want 1", n)
	}
	if rt.failed.Load() != 0 {
		t.Errorf("%d batches failed", rt.failed.Load())
	}

	must(t, b.SetTenantStatus(bg, "acme", docex.TenantSuspended, testAudit("tenant.suspend")))
	_, err := st.OpenContent(bg, sum)
	wantErr(t, err, docex.ErrTenantSuspended)
	must(t, b.SetTenantStatus(bg, "acme", docex.TenantActive, testAudit("tenant.resume")))
	read(1)
	exec(t, b, `ALTER SCHEMA docex_t_acme RENAME TO docex_t_moved`)
	_, err = st.OpenContent(bg, sum)
	wantErr(t, err, docex.ErrCorrupt)
	exec(t, b, `ALTER SCHEMA docex_t_moved RENAME TO docex_t_acme`)
	read(4) // prepared again after the failure
	read(1)
	// Deleted and created again: the stale store reads nothing of the new
	// tenant (whose content table is empty).
	must(t, b.DeleteTenant(bg, "acme", testAudit("tenant.delete")))
	must(t, b.CreateTenant(bg, docex.Tenant{ID: "acme", DisplayName: "acme", CreatedAt: time.Now(), Incarnation: newID()}, testAudit("tenant.create")))
	_, err = st.OpenContent(bg, sum)
	wantErr(t, err, docex.ErrTenantUnknown)
}
