package postgres

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

var bg = context.Background()

func wantErr(t *testing.T, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("got %q (code %s), want errors.Is %v", err, docex.Code(err), w)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func TestConfig(t *testing.T) {
	long := strings.Repeat("a", 41)
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{DSN: "x"}, true},
		{"no dsn", Config{}, false},
		{"custom", Config{DSN: "x", BootstrapSchema: "sys_1", TenantSchemaPrefix: "t_"}, true},
		{"upper schema", Config{DSN: "x", BootstrapSchema: "Sys"}, false},
		{"quote in schema", Config{DSN: "x", BootstrapSchema: `a"b`}, false},
		{"dash in schema", Config{DSN: "x", BootstrapSchema: "a-b"}, false},
		{"long schema", Config{DSN: "x", BootstrapSchema: long}, false},
		{"digit first", Config{DSN: "x", BootstrapSchema: "1a"}, false},
		{"long prefix", Config{DSN: "x", TenantSchemaPrefix: strings.Repeat("p", 24)}, false},
		{"schema under prefix", Config{DSN: "x", BootstrapSchema: "docex_t_sys"}, false},
		{"local under prefix", Config{DSN: "x", BootstrapSchema: "sys", TenantSchemaPrefix: "sys_lo"}, false},
		{"negative pool", Config{DSN: "x", MaxConns: -1}, false},
		{"negative idle timeout", Config{DSN: "x", IdleInTransactionTimeout: -time.Second}, false},
		{"sub-millisecond idle timeout", Config{DSN: "x", IdleInTransactionTimeout: time.Microsecond}, false},
		{"idle timeout past int32 ms", Config{DSN: "x", IdleInTransactionTimeout: (1 << 31) * time.Millisecond}, false},
		{"largest timeouts", Config{DSN: "x", IdleInTransactionTimeout: (1<<31 - 1) * time.Millisecond, LockTimeout: (1<<31 - 1) * time.Millisecond}, true},
		{"negative lock timeout", Config{DSN: "x", LockTimeout: -time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.cfg.withDefaults()
			if c.ok {
				must(t, err)
				if got.BootstrapSchema == "" || got.TenantSchemaPrefix == "" || got.MaxConns == 0 || got.MaxConnLifetime == 0 || got.IdleInTransactionTimeout == 0 || got.LockTimeout == 0 {
					t.Fatalf("defaults not applied: %+v", got)
				}
				return
			}
			wantErr(t, err, docex.ErrInvalidConfig)
		})
	}
}

func TestOpenMasksPassword(t *testing.T) {
	const pw = "S3cr3t-pw_77"
	cases := []struct{ name, dsn string }{
		{"url", "postgres://docex:" + pw + "@127.0.0.1:1/db?connect_timeout=2&sslmode=disable"},
		{"url query", "postgres://docex@127.0.0.1:1/db?password=" + pw + "&sslmode=disable&connect_timeout=2"},
		{"keyword", "host=127.0.0.1 port=1 user=docex password=" + pw + " dbname=db sslmode=disable connect_timeout=2"},
		{"keyword quoted", "host=127.0.0.1 port=1 user=docex password='" + pw + "' dbname=db sslmode=disable connect_timeout=2"},
		{"bad url", "postgres://docex:" + pw + "@127.0.0.1:notaport/db"},
		{"bad keyword", "host=127.0.0.1 password=" + pw + " port=notaport"},
		// Issue 8: spaces around '=', and passwords with spaces, '@' and
		// quotes, were masked partly or not at all.
		{"spaces around =", "host=127.0.0.1 port=1 user=docex password = " + pw + " dbname=db sslmode=disable connect_timeout=2"},
		{"quoted with space", "host=127.0.0.1 port=1 user=docex password = '" + pw + " RETQQQ' dbname=db sslmode=disable connect_timeout=2"},
		{"quoted with quote and @", `host=127.0.0.1 port=1 user=docex password='` + pw + `\'RETQQQ@127.0.0.1' sslmode=disable connect_timeout=2`},
		{"url with space and @", "postgres://docex:" + pw + "%20RETQQQ%40x@127.0.0.1:1/db?connect_timeout=2&sslmode=disable"},
		{"unparsable with space", "host=127.0.0.1 password='" + pw + " RETQQQ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Open(bg, Config{DSN: c.dsn})
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded against port 1")
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "RETQQQ") || strings.Contains(err.Error(), "S3cr3t") {
				t.Fatalf("error reveals the password: %v", err)
			}
		})
	}
}

func TestBootstrap(t *testing.T) {
	b := openBackend(t, Config{})
	wantErr(t, b.Check(bg, testInfo(true)), docex.ErrNotInitialized)
	_, err := b.OpenTenant(bg, "acme")
	wantErr(t, err, docex.ErrNotInitialized)

	// Concurrent inits: exactly one creates.
	var wg sync.WaitGroup
	created := make(chan bool, 4)
	for range 4 {
		wg.Go(func() {
			c, err := b.Bootstrap(bg, testInfo(true))
			if err != nil {
				t.Error(err)
			}
			created <- c
		})
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent bootstraps reported created, want 1", n)
	}
	must(t, b.Check(bg, testInfo(true)))

	cases := []struct {
		name string
		info driver.BootstrapInfo
		want error
	}{
		{"same", testInfo(true), nil},
		{"other bootstrap id", driver.BootstrapInfo{BootstrapTenantID: "root2", MultiTenancy: true}, docex.ErrInvalidConfig},
		{"other multi-tenancy", testInfo(false), docex.ErrInvalidConfig},
		{"bad bootstrap id", driver.BootstrapInfo{BootstrapTenantID: "A B", MultiTenancy: true}, docex.ErrInvalidConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			created, err := b.Bootstrap(bg, c.info)
			if created {
				t.Fatal("second Bootstrap reported created")
			}
			if c.want == nil {
				must(t, err)
				return
			}
			wantErr(t, err, c.want)
		})
	}

	sys, err := b.Tenant(bg, "system")
	must(t, err)
	if !sys.IsSystem || sys.Status != docex.TenantActive {
		t.Fatalf("bootstrap tenant %+v", sys)
	}
	_, err = b.OpenTenant(bg, "system")
	wantErr(t, err, docex.ErrBootstrapTenant)
	wantErr(t, b.CreateTenant(bg, docex.Tenant{ID: "system", DisplayName: "x"}, testAudit("tenant.create")), docex.ErrTenantExists)
	wantErr(t, b.DeleteTenant(bg, "system", testAudit("tenant.delete")), docex.ErrBootstrapTenant)
	wantErr(t, b.SetTenantStatus(bg, "system", docex.TenantSuspended, testAudit("tenant.status")), docex.ErrBootstrapTenant)

	exec(t, b, `UPDATE docex_system.meta SET value = '99' WHERE key = 'schema_version'`)
	wantErr(t, b.Check(bg, testInfo(true)), docex.ErrSchemaVersion)
	_, err = b.Bootstrap(bg, testInfo(true))
	wantErr(t, err, docex.ErrSchemaVersion)
}

func TestBootstrapRefusesForeignSchema(t *testing.T) {
	b := openBackend(t, Config{})
	exec(t, b, `CREATE SCHEMA docex_system; CREATE TABLE docex_system.other (x int)`)
	_, err := b.Bootstrap(bg, testInfo(true))
	wantErr(t, err, docex.ErrInvalidConfig)
	if n := queryInt(t, b, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'docex_system'`); n != 1 {
		t.Fatalf("Bootstrap changed a foreign schema: %d relations", n)
	}
}

func TestTenantLifecycle(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	now := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	acme := docex.Tenant{ID: "acme", DisplayName: "Acme", Status: docex.TenantActive, CreatedAt: now, Incarnation: uuid.NewString()}
	must(t, b.CreateTenant(bg, acme, testAudit("tenant.create")))
	must(t, b.CreateTenant(bg, docex.Tenant{ID: "beta", DisplayName: "Beta", CreatedAt: now, Incarnation: uuid.NewString()}, testAudit("tenant.create")))
	wantErr(t, b.CreateTenant(bg, acme, testAudit("tenant.create")), docex.ErrTenantExists, docex.ErrConflict)
	wantErr(t, b.CreateTenant(bg, docex.Tenant{ID: "Bad Id"}, testAudit("tenant.create")), docex.ErrInvalidID)

	got, err := b.Tenant(bg, "acme")
	must(t, err)
	if !got.CreatedAt.Equal(now.Truncate(time.Microsecond)) || got.CreatedAt.Location() != time.UTC || got.DisplayName != "Acme" || got.Incarnation != acme.Incarnation || got.IsSystem {
		t.Fatalf("Tenant = %+v", got)
	}
	list, err := b.Tenants(bg)
	must(t, err)
	var ids []string
	for _, tn := range list {
		ids = append(ids, tn.ID)
	}
	if strings.Join(ids, ",") != "acme,beta,system" {
		t.Fatalf("Tenants = %v", ids)
	}

	must(t, b.SetTenantStatus(bg, "acme", docex.TenantSuspended, testAudit("tenant.status")))
	st, err := b.OpenTenant(bg, "acme")
	must(t, err)
	if st.Tenant().Status != docex.TenantSuspended || st.Tenant().ID != "acme" {
		t.Fatalf("store tenant %+v", st.Tenant())
	}
	must(t, st.Close())
	_, err = st.Basket(bg, "x")
	wantErr(t, err, docex.ErrClosed)

	notFound := []struct {
		name string
		err  error
	}{
		{"status unknown", b.SetTenantStatus(bg, "nope", docex.TenantActive, testAudit("tenant.status"))},
		{"delete unknown", b.DeleteTenant(bg, "nope", testAudit("tenant.delete"))},
		{"open unknown", second(b.OpenTenant(bg, "nope"))},
		{"open invalid", second(b.OpenTenant(bg, "../../x"))},
		{"open empty", second(b.OpenTenant(bg, ""))},
		{"get unknown", second(b.Tenant(bg, "nope"))},
	}
	for _, c := range notFound {
		t.Run(c.name, func(t *testing.T) { wantErr(t, c.err, docex.ErrTenantNotFound) })
	}
	wantErr(t, b.SetTenantStatus(bg, "acme", "weird", testAudit("tenant.status")), docex.ErrInvalid)

	// Delete, then provision again: a clean, empty store.
	st, err = b.OpenTenant(bg, "acme")
	must(t, err)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "old", CreatedAt: now})
	}))
	st.Close()
	must(t, b.DeleteTenant(bg, "acme", testAudit("tenant.delete")))
	_, err = b.OpenTenant(bg, "acme")
	wantErr(t, err, docex.ErrTenantNotFound)
	if n := queryInt(t, b, `SELECT count(*) FROM pg_namespace WHERE nspname = 'docex_t_acme'`); n != 0 {
		t.Fatal("schema survived DeleteTenant")
	}
	must(t, b.CreateTenant(bg, docex.Tenant{ID: "acme", DisplayName: "Acme 2", CreatedAt: now, Incarnation: uuid.NewString()}, testAudit("tenant.create")))
	st, err = b.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	bs, err := st.Baskets(bg, docex.Page{})
	must(t, err)
	if len(bs) != 0 {
		t.Fatalf("re-provisioned tenant has baskets %v", bs)
	}
}

func second[T any](_ T, err error) error { return err }

func TestConcurrentCreateSameID(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 8}, true)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = b.CreateTenant(bg, docex.Tenant{ID: "race", DisplayName: "r", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create"))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, docex.ErrTenantExists) {
			t.Errorf("loser got %v, want ErrTenantExists", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded, want 1", ok)
	}
}

func TestSingleTenant(t *testing.T) {
	b := bootstrapped(t, Config{}, false)
	st, err := b.OpenTenant(bg, "")
	must(t, err)
	defer st.Close()
	if st.Tenant() != (docex.Tenant{}) {
		t.Fatalf("local store tenant %+v", st.Tenant())
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "local", CreatedAt: time.Now()})
	}))
	if n := queryInt(t, b, `SELECT count(*) FROM docex_system_local.baskets`); n != 1 {
		t.Fatalf("local schema holds %d baskets", n)
	}
	_, err = b.OpenTenant(bg, "acme")
	wantErr(t, err, docex.ErrMultiTenancyOff)
	wantErr(t, b.CreateTenant(bg, docex.Tenant{ID: "acme"}, testAudit("tenant.create")), docex.ErrMultiTenancyOff)
	created, err := b.Bootstrap(bg, testInfo(false))
	must(t, err)
	if created {
		t.Fatal("second Bootstrap created")
	}
}

func TestTenantSchemaVersion(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	must(t, b.CreateTenant(bg, docex.Tenant{ID: "acme", DisplayName: "A", CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")))
	exec(t, b, `UPDATE docex_t_acme.meta SET value = '99' WHERE key = 'schema_version'`)
	_, err := b.OpenTenant(bg, "acme")
	wantErr(t, err, docex.ErrSchemaVersion)
}

// openStore creates tenant id on b and opens its store.
func openStore(t testing.TB, b *Backend, id string) driver.TenantStore {
	t.Helper()
	must(t, b.CreateTenant(bg, docex.Tenant{ID: id, DisplayName: id, CreatedAt: time.Now(), Incarnation: uuid.NewString()}, testAudit("tenant.create")))
	st, err := b.OpenTenant(bg, id)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStore(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	st := openStore(t, b, "acme")
	now := time.Date(2025, 5, 6, 7, 8, 9, 987654321, time.UTC)
	bk := docex.Basket{ID: newID(), Name: "inbox", CreatedAt: now}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, bk) }))
	wantErr(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "inbox", CreatedAt: now})
	}), docex.ErrExists)

	names := []string{"c", "a", "b"}
	var docs []docex.Document
	for i, name := range names {
		d := docex.Document{
			ID: newID(), BasketID: bk.ID, Name: name, ContentType: "text/plain", Size: int64(10 * (i + 1)),
			Checksum: strings.Repeat(string(rune('0'+i)), 64), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now,
			Metadata: map[string]docex.Value{"n": docex.Number(float64(i)), "even": docex.Bool(i%2 == 0), "tag": docex.String("x")},
		}
		docs = append(docs, d)
		must(t, st.Write(bg, func(tx driver.Tx) error {
			if err := tx.LockContent(bg, d.Checksum); err != nil {
				return err
			}
			if err := tx.PutContent(bg, d.Checksum, []byte(name)); err != nil {
				return err
			}
			return tx.InsertDocument(bg, d)
		}))
	}
	wantErr(t, st.Write(bg, func(tx driver.Tx) error {
		d := docs[0]
		d.ID = newID()
		return tx.InsertDocument(bg, d)
	}), docex.ErrDuplicateContent)
	wantErr(t, st.Write(bg, func(tx driver.Tx) error {
		d := docs[0]
		d.ID, d.BasketID, d.Checksum = newID(), "nope", "z"
		return tx.InsertDocument(bg, d)
	}), docex.ErrNotFound)

	got, err := st.Basket(bg, bk.ID)
	must(t, err)
	if got.DocumentCount != 3 || got.Bytes != 60 || !got.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("Basket = %+v", got)
	}
	if g, err := st.BasketByName(bg, "inbox"); err != nil || g.ID != bk.ID {
		t.Fatalf("BasketByName = %+v, %v", g, err)
	}
	_, err = st.Basket(bg, "nope")
	wantErr(t, err, docex.ErrNotFound)

	d0, err := st.Document(bg, docs[0].ID)
	must(t, err)
	if !d0.CreatedAt.Equal(now.Truncate(time.Microsecond)) || d0.Metadata["n"].Num() != 0 || !d0.Metadata["even"].Truth() || d0.Metadata["tag"].Str() != "x" {
		t.Fatalf("Document = %+v", d0)
	}
	if d, err := st.DocumentByChecksum(bg, bk.ID, docs[1].Checksum); err != nil || d.ID != docs[1].ID {
		t.Fatalf("DocumentByChecksum = %+v, %v", d, err)
	}

	orders := []struct {
		order docex.Order
		want  string
	}{
		{docex.OrderCreated, "c,a,b"},
		{docex.OrderCreatedDesc, "b,a,c"},
		{docex.OrderName, "a,b,c"},
	}
	for _, o := range orders {
		list, err := st.Documents(bg, bk.ID, docex.Page{Order: o.order})
		must(t, err)
		if got := docNames(list); got != o.want {
			t.Errorf("order %d: %s, want %s", o.order, got, o.want)
		}
		if list[0].Metadata["tag"].Str() != "x" {
			t.Errorf("listing lacks metadata")
		}
	}
	page, err := st.Documents(bg, bk.ID, docex.Page{Limit: 1, Offset: 1, Order: docex.OrderName})
	must(t, err)
	if docNames(page) != "b" {
		t.Fatalf("page = %s", docNames(page))
	}

	finds := []struct {
		name    string
		filters []docex.MetaFilter
		page    docex.Page
		want    string
		total   int64
	}{
		{"one key", []docex.MetaFilter{{Key: "tag", Value: docex.String("x")}}, docex.Page{Order: docex.OrderName}, "a,b,c", 3},
		{"and", []docex.MetaFilter{{Key: "tag", Value: docex.String("x")}, {Key: "even", Value: docex.Bool(true)}}, docex.Page{Order: docex.OrderName}, "b,c", 2},
		{"number canon", []docex.MetaFilter{{Key: "n", Value: docex.Number(1.0)}}, docex.Page{}, "a", 1},
		{"type matters", []docex.MetaFilter{{Key: "n", Value: docex.String("1")}}, docex.Page{}, "", 0},
		{"same key twice", []docex.MetaFilter{{Key: "n", Value: docex.Number(1)}, {Key: "n", Value: docex.Number(1)}}, docex.Page{}, "a", 1},
		{"conflicting key", []docex.MetaFilter{{Key: "n", Value: docex.Number(1)}, {Key: "n", Value: docex.Number(2)}}, docex.Page{}, "", 0},
		{"paged", []docex.MetaFilter{{Key: "tag", Value: docex.String("x")}}, docex.Page{Limit: 1, Order: docex.OrderCreatedDesc}, "b", 3},
		{"past end", []docex.MetaFilter{{Key: "tag", Value: docex.String("x")}}, docex.Page{Offset: 5}, "", 3},
	}
	for _, f := range finds {
		t.Run("find "+f.name, func(t *testing.T) {
			list, total, err := st.FindDocuments(bg, bk.ID, f.filters, f.page)
			must(t, err)
			if docNames(list) != f.want || total != f.total {
				t.Fatalf("got %s (%d), want %s (%d)", docNames(list), total, f.want, f.total)
			}
		})
	}
	_, _, err = st.FindDocuments(bg, bk.ID, nil, docex.Page{})
	wantErr(t, err, docex.ErrInvalid)

	// Metadata.
	later := now.Add(time.Hour)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.SetMetadata(bg, docs[0].ID, map[string]docex.Value{"tag": docex.String("y"), "new": docex.Number(-0.5)}, later)
	}))
	d0, err = st.Document(bg, docs[0].ID)
	must(t, err)
	if d0.Metadata["tag"].Str() != "y" || d0.Metadata["new"].Num() != -0.5 || !d0.UpdatedAt.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("after SetMetadata: %+v", d0)
	}
	metaErrs := []struct {
		name string
		fn   func(tx driver.Tx) error
	}{
		{"set on missing doc", func(tx driver.Tx) error {
			return tx.SetMetadata(bg, "nope", map[string]docex.Value{"k": docex.Bool(true)}, later)
		}},
		{"delete missing key", func(tx driver.Tx) error { return tx.DeleteMetadata(bg, docs[0].ID, "nope", later) }},
		{"delete on missing doc", func(tx driver.Tx) error { return tx.DeleteMetadata(bg, "nope", "tag", later) }},
		{"delete missing doc", func(tx driver.Tx) error { return tx.DeleteDocument(bg, "nope") }},
		{"delete missing basket", func(tx driver.Tx) error { return tx.DeleteBasket(bg, "nope") }},
		{"update missing doc", func(tx driver.Tx) error { return tx.UpdateContent(bg, "nope", 1, "x", "t", later) }},
	}
	for _, c := range metaErrs {
		t.Run(c.name, func(t *testing.T) { wantErr(t, st.Write(bg, c.fn), docex.ErrNotFound) })
	}
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.DeleteMetadata(bg, docs[0].ID, "new", later) }))

	// Content.
	rc, err := st.OpenContent(bg, docs[1].Checksum)
	must(t, err)
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "a" {
		t.Fatalf("content %q", data)
	}
	_, err = st.OpenContent(bg, "nope")
	wantErr(t, err, docex.ErrNotFound)
	if n, err := st.ContentRefs(bg, docs[1].Checksum); err != nil || n != 1 {
		t.Fatalf("ContentRefs = %d, %v", n, err)
	}

	// UpdateContent and DeleteDocument keep the basket counters right.
	wantErr(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.UpdateContent(bg, docs[0].ID, 5, docs[1].Checksum, "text/plain", later)
	}), docex.ErrDuplicateContent)
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.UpdateContent(bg, docs[0].ID, 5, strings.Repeat("f", 64), "text/x", later)
	}))
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.DeleteDocument(bg, docs[2].ID) }))
	got, err = st.Basket(bg, bk.ID)
	must(t, err)
	if got.DocumentCount != 2 || got.Bytes != 5+20 {
		t.Fatalf("counters after update/delete: %+v", got)
	}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		if err := tx.DeleteContent(bg, docs[2].Checksum); err != nil {
			return err
		}
		return tx.DeleteContent(bg, "absent")
	}))

	// Audit: newest first, roles round trip.
	for i := range 3 {
		e := docex.AuditEntry{ID: newID(), Time: now.Add(time.Duration(i) * time.Second), TenantID: "acme", UserID: "u", Roles: []string{"r1", "r2"}, Operation: "op", Target: "t", Outcome: docex.OutcomeOK}
		if i == 1 {
			e.Roles = nil
		}
		must(t, st.Write(bg, func(tx driver.Tx) error { return tx.AppendAudit(bg, e) }))
		must(t, b.AppendSystemAudit(bg, e))
	}
	var sysOps []docex.AuditEntry // the system log also holds tenant.create
	for _, e := range must1(b.SystemAudit(bg, docex.Page{Limit: 10})) {
		if e.Operation == "op" {
			sysOps = append(sysOps, e)
		}
	}
	for _, list := range [][]docex.AuditEntry{must1(st.Audit(bg, docex.Page{Limit: 2})), sysOps[:2]} {
		if len(list) != 2 || !list[0].Time.After(list[1].Time) || list[1].Roles == nil || len(list[0].Roles) != 2 {
			t.Fatalf("audit = %+v", list)
		}
	}

	// A rolled-back Write leaves nothing; a Tx is unusable after fn.
	var kept driver.Tx
	wantErr(t, st.Write(bg, func(tx driver.Tx) error {
		kept = tx
		if err := tx.InsertBasket(bg, docex.Basket{ID: newID(), Name: "gone", CreatedAt: now}); err != nil {
			return err
		}
		return docex.ErrForbidden
	}), docex.ErrForbidden)
	_, err = st.BasketByName(bg, "gone")
	wantErr(t, err, docex.ErrNotFound)
	_, err = kept.Basket(bg, bk.ID)
	wantErr(t, err, docex.ErrClosed)

	// DeleteBasket cascades.
	must(t, st.Write(bg, func(tx driver.Tx) error { return tx.DeleteBasket(bg, bk.ID) }))
	if n := queryInt(t, b, `SELECT count(*) FROM docex_t_acme.metadata`); n != 0 {
		t.Fatalf("%d metadata rows survived DeleteBasket", n)
	}
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func docNames(docs []docex.Document) string {
	var s []string
	for _, d := range docs {
		s = append(s, d.Name)
	}
	return strings.Join(s, ",")
}

func TestWriteRetries(t *testing.T) {
	b := bootstrapped(t, Config{}, true)
	st := openStore(t, b, "acme")
	cases := []struct {
		name  string
		code  string
		calls int
	}{
		{"serialization failure", codeSerializationFailure, 2},
		{"deadlock", codeDeadlockDetected, 2},
		{"other", "23514", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := st.Write(bg, func(tx driver.Tx) error {
				calls++
				if calls == 1 {
					return &pgconn.PgError{Code: c.code}
				}
				return nil
			})
			if calls != c.calls {
				t.Fatalf("fn ran %d times, want %d (err %v)", calls, c.calls, err)
			}
		})
	}
}

func TestRealDeadlockIsRetried(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 4}, true)
	st := openStore(t, b, "acme")
	x, y := docex.Basket{ID: newID(), Name: "x"}, docex.Basket{ID: newID(), Name: "y"}
	must(t, st.Write(bg, func(tx driver.Tx) error {
		if err := tx.InsertBasket(bg, x); err != nil {
			return err
		}
		return tx.InsertBasket(bg, y)
	}))
	// Two writers lock the baskets' rows in opposite orders (through
	// InsertDocument's counter update) with a barrier in between.
	var wg sync.WaitGroup
	barrier := make(chan struct{})
	errs := make([]error, 2)
	for i, order := range [][2]docex.Basket{{x, y}, {y, x}} {
		wg.Go(func() {
			first := true
			errs[i] = st.Write(bg, func(tx driver.Tx) error {
				for j, bk := range order {
					d := docex.Document{ID: newID(), BasketID: bk.ID, Name: "d", Checksum: newID(), Size: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
					if err := tx.InsertDocument(bg, d); err != nil {
						return err
					}
					if j == 0 && first {
						first = false
						select {
						case barrier <- struct{}{}:
						case <-barrier:
						case <-time.After(2 * time.Second):
						}
					}
				}
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	for _, bk := range []docex.Basket{x, y} {
		got, err := st.Basket(bg, bk.ID)
		must(t, err)
		if got.DocumentCount != 2 {
			t.Fatalf("basket %s: %d documents, want 2", bk.Name, got.DocumentCount)
		}
	}
}
