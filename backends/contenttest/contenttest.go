package contenttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/google/uuid"
)

// Harness makes stores for the suite.
type Harness struct {
	// New returns a fresh, empty store; it registers its own cleanup.
	New func(t *testing.T) driver.ContentStore

	// Corrupt replaces what is stored under sum in the tenant's namespace
	// with data, bypassing the store (as bit rot or a hostile writer
	// would). tx is a transaction of the tenant's database, for stores
	// whose content lives there.
	Corrupt func(t *testing.T, s driver.ContentStore, tenant docex.Tenant, tx driver.Tx, sum string, data []byte)

	// SyncUploads is set for a store whose Sync makes content readable
	// under its checksum already (S3: uploaded ahead of the transaction,
	// so that no upload holds it open); the suite then does not require
	// synced content to be invisible before Put.
	SyncUploads bool
}

var bg = context.Background()

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	f := &fixture{h: h}
	t.Run("PutGet", f.testPutGet)
	t.Run("StageLimits", f.testStageLimits)
	t.Run("Verify", f.testVerify)
	t.Run("AdoptOnlyVerified", f.testAdoptOnlyVerified)
	t.Run("Delete", f.testDelete)
	t.Run("InvalidChecksums", f.testInvalidChecksums)
	t.Run("ConcurrentPutSameContent", f.testConcurrentPut)
	t.Run("PutDuringDelete", f.testPutDuringDelete)
	t.Run("CrashBetweenPutAndCommit", f.testCrashBetweenPutAndCommit)
	t.Run("TenantIsolation", f.testTenantIsolation)
	t.Run("DeleteTenant", f.testDeleteTenant)
	t.Run("LocalNamespace", f.testLocal)
	t.Run("BatchPut", f.testBatchPut)
	t.Run("Claim", f.testClaim)
}

type fixture struct{ h Harness }

// env is a store and a SQLite backend whose tenants hold the references.
type env struct {
	t     *testing.T
	store driver.ContentStore
	be    driver.Backend
}

func (f *fixture) env(t *testing.T, multi bool) *env {
	t.Helper()
	store := f.h.New(t)
	be, err := sqlite.Open(bg, sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if _, err := be.Bootstrap(bg, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: multi, Now: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, be: be}
}

// tenant is one tenant's references and content.
type tenant struct {
	e  *env
	t  docex.Tenant
	st driver.TenantStore
	tc driver.TenantContent
}

func (e *env) tenant(id string) *tenant {
	e.t.Helper()
	tn := docex.Tenant{ID: id, DisplayName: id, Status: docex.TenantActive, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Incarnation: uuid.NewString()}
	if id != "" {
		audit := docex.AuditEntry{ID: uuid.NewString(), Time: tn.CreatedAt, UserID: "contenttest", Roles: []string{"operator"}, Operation: "tenant.create", Target: id, Outcome: docex.OutcomeOK}
		if err := e.be.CreateTenant(bg, tn, audit); err != nil {
			e.t.Fatal(err)
		}
	} else {
		tn = docex.Tenant{}
	}
	st, err := e.be.OpenTenant(bg, id)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	tc, err := e.store.Tenant(st.Tenant())
	if err != nil {
		e.t.Fatalf("Tenant(%q): %v", id, err)
	}
	return &tenant{e: e, t: st.Tenant(), st: st, tc: tc}
}

func (tn *tenant) basket() string {
	tn.e.t.Helper()
	b := docex.Basket{ID: uuid.NewString(), Name: "b-" + uuid.NewString(), CreatedAt: time.Now().UTC()}
	if err := tn.st.Write(bg, func(tx driver.Tx) error { return tx.InsertBasket(bg, b) }); err != nil {
		tn.e.t.Fatal(err)
	}
	return b.ID
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func (tn *tenant) stage(data []byte) driver.Staged {
	tn.e.t.Helper()
	s, err := tn.tc.Stage(bg, bytes.NewReader(data), int64(len(data))+1)
	if err != nil {
		tn.e.t.Fatalf("Stage: %v", err)
	}
	return s
}

// add adds a document referring to data the way the engine does, and
// returns its id.
func (tn *tenant) add(ctx context.Context, basketID string, data []byte) (string, error) {
	s, err := tn.tc.Stage(ctx, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	defer s.Discard()
	if err := tn.tc.Sync(ctx, []driver.Staged{s}); err != nil {
		return "", err
	}
	id := uuid.NewString()
	err = driver.WriteContent(ctx, tn.st, func(tx driver.Tx) error {
		if err := tx.LockContent(ctx, s.Checksum()); err != nil {
			return err
		}
		n, err := tx.ContentRefs(ctx, s.Checksum())
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if err := tx.InsertDocument(ctx, docex.Document{ID: id, BasketID: basketID, Name: "d", ContentType: "application/octet-stream",
			Size: s.Size(), Checksum: s.Checksum(), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{}}); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		return tn.tc.Put(ctx, tx, []driver.Staged{s})
	})
	return id, err
}

// release deletes sum when nothing refers to it, under the content lock,
// and reports whether it did.
func (tn *tenant) release(ctx context.Context, tx driver.Tx, sum string) (bool, error) {
	if err := tx.LockContent(ctx, sum); err != nil {
		return false, err
	}
	n, err := tx.ContentRefs(ctx, sum)
	if err != nil || n > 0 {
		return false, err
	}
	return true, tn.tc.Delete(ctx, tx, sum)
}

// remove deletes a document and releases its content the way the engine
// does: in the same transaction for a store inside the database, after
// the commit otherwise.
func (tn *tenant) remove(ctx context.Context, docID string) error {
	var sum string
	err := tn.st.Write(ctx, func(tx driver.Tx) error {
		d, err := tx.Document(ctx, docID)
		if err != nil {
			return err
		}
		sum = d.Checksum
		if err := tx.DeleteDocument(ctx, docID); err != nil {
			return err
		}
		if tn.e.store.InTransaction() {
			_, err = tn.release(ctx, tx, sum)
		}
		return err
	})
	if err != nil || tn.e.store.InTransaction() {
		return err
	}
	return tn.st.Write(ctx, func(tx driver.Tx) error {
		_, err := tn.release(ctx, tx, sum)
		return err
	})
}

// sweep runs the gc's protocol on the tenant with a cutoff in the future:
// Clean runs first as a dry run, which must remove nothing and name
// exactly what the real Clean then removes.
func (tn *tenant) sweep(ctx context.Context) (int, error) {
	cutoff := time.Now().Add(time.Hour)
	dry, err := tn.tc.Clean(ctx, cutoff, true)
	if err != nil {
		return 0, err
	}
	cleaned, err := tn.tc.Clean(ctx, cutoff, false)
	if err != nil {
		return len(cleaned), err
	}
	slices.Sort(dry)
	slices.Sort(cleaned)
	if !slices.Equal(dry, cleaned) {
		tn.e.t.Errorf("Clean: the dry run named %q, the real run removed %q", dry, cleaned)
	}
	released := 0
	err = tn.tc.List(ctx, cutoff, func(sum string) error {
		return tn.st.Write(ctx, func(tx driver.Tx) error {
			removed, err := tn.release(ctx, tx, sum)
			if removed {
				released++
			}
			return err
		})
	})
	return len(cleaned) + released, err
}

// read returns the content of sum and the error of reading it through.
func (tn *tenant) read(sum string, size int64) ([]byte, error) {
	rc, err := tn.tc.Open(bg, tn.st, sum, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (tn *tenant) mustRead(sum string, want []byte) {
	tn.e.t.Helper()
	got, err := tn.read(sum, int64(len(want)))
	if err != nil {
		tn.e.t.Fatalf("read %s: %v", sum[:8], err)
	}
	if !bytes.Equal(got, want) {
		tn.e.t.Fatalf("read %s: got %d bytes, want %d", sum[:8], len(got), len(want))
	}
}

func (tn *tenant) mustBeAbsent(sum string) {
	tn.e.t.Helper()
	if _, err := tn.read(sum, 0); !errors.Is(err, docex.ErrNotFound) {
		tn.e.t.Fatalf("content %s: got %v, want ErrNotFound", sum[:8], err)
	}
}

func payload(n int, seed string) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte([]byte(fmt.Sprintf("%-32s", seed))[:32]))
	r.Read(b)
	return b
}

func (f *fixture) testPutGet(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	b := tn.basket()
	for _, n := range []int{0, 1, 511, 512, 4096, 1 << 20} {
		data := payload(n, fmt.Sprint("putget", n))
		s := tn.stage(data)
		if s.Checksum() != sum(data) || s.Size() != int64(n) || !bytes.Equal(s.Head(), data[:min(n, 512)]) {
			t.Fatalf("%d bytes staged as %s, %d, head %d", n, s.Checksum(), s.Size(), len(s.Head()))
		}
		if err := tn.tc.Sync(bg, []driver.Staged{s}); err != nil {
			t.Fatal(err)
		}
		if !f.h.SyncUploads {
			tn.mustBeAbsent(s.Checksum()) // staged content is not visible
		}
		s.Discard()
		s.Discard() // idempotent
		if _, err := tn.add(bg, b, data); err != nil {
			t.Fatalf("add %d bytes: %v", n, err)
		}
		tn.mustRead(sum(data), data)
	}
	// Put again (a retried transaction) is harmless.
	data := []byte("retried")
	id, err := tn.add(bg, b, data)
	if err != nil {
		t.Fatal(err)
	}
	s := tn.stage(data)
	defer s.Discard()
	for range 2 {
		if err := tn.st.Write(bg, func(tx driver.Tx) error { return tn.tc.Put(bg, tx, []driver.Staged{s}) }); err != nil {
			t.Fatalf("Put again: %v", err)
		}
	}
	tn.mustRead(sum(data), data)
	if err := tn.remove(bg, id); err != nil {
		t.Fatal(err)
	}
	tn.mustBeAbsent(sum(data))
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("boom")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func (f *fixture) testStageLimits(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	for _, max := range []int64{0, 1, 99} {
		if _, err := tn.tc.Stage(bg, bytes.NewReader(make([]byte, 100)), max); !errors.Is(err, docex.ErrTooLarge) {
			t.Fatalf("max %d: %v, want ErrTooLarge", max, err)
		}
	}
	s, err := tn.tc.Stage(bg, bytes.NewReader(make([]byte, 100)), 100)
	if err != nil {
		t.Fatalf("exactly max bytes: %v", err)
	}
	s.Discard()
	if _, err := tn.tc.Stage(bg, &failingReader{n: 5000}, 1<<20); err == nil || errors.Is(err, docex.ErrTooLarge) {
		t.Fatalf("read error: %v", err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := tn.tc.Stage(ctx, bytes.NewReader(make([]byte, 10)), 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled stage: %v", err)
	}
	// Refused and discarded stages leave nothing for the sweep.
	if n, err := tn.sweep(bg); err != nil || n != 0 {
		t.Fatalf("sweep after refused stages = %d, %v; want 0", n, err)
	}
}

func (f *fixture) testVerify(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	b := tn.basket()
	data := payload(10_000, "verify")
	if _, err := tn.add(bg, b, data); err != nil {
		t.Fatal(err)
	}
	sum := sum(data)
	tn.mustRead(sum, data)
	if _, err := tn.read(sum, int64(len(data))-1); !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("read with a wrong recorded size: %v, want ErrCorrupt", err)
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	for name, stored := range map[string][]byte{"flipped bit": bad, "truncated": data[:9999], "extended": append(bytes.Clone(data), 'x'), "empty": {}} {
		err := tn.st.Write(bg, func(tx driver.Tx) error {
			f.h.Corrupt(t, e.store, tn.t, tx, sum, stored)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tn.read(sum, int64(len(data)))
		if !errors.Is(err, docex.ErrCorrupt) {
			t.Fatalf("%s: read %d bytes, err %v; want ErrCorrupt", name, len(got), err)
		}
	}
}

func (f *fixture) testAdoptOnlyVerified(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	b := tn.basket()
	data := payload(3000, "adopt")
	// Something planted under the checksum while nothing refers to it.
	err := tn.st.Write(bg, func(tx driver.Tx) error {
		f.h.Corrupt(t, e.store, tn.t, tx, sum(data), []byte("planted, not the content"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.add(bg, b, data); err != nil {
		t.Fatal(err)
	}
	tn.mustRead(sum(data), data)
}

func (f *fixture) testDelete(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	b1, b2 := tn.basket(), tn.basket()
	data := payload(2000, "delete")
	id1, err := tn.add(bg, b1, data)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := tn.add(bg, b2, data) // a second reference: no second Put
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.remove(bg, id1); err != nil {
		t.Fatal(err)
	}
	tn.mustRead(sum(data), data) // still referenced
	if err := tn.remove(bg, id2); err != nil {
		t.Fatal(err)
	}
	tn.mustBeAbsent(sum(data))
	// Deleting absent content is not an error.
	if err := tn.st.Write(bg, func(tx driver.Tx) error { return tn.tc.Delete(bg, tx, sum(data)) }); err != nil {
		t.Fatalf("Delete(absent): %v", err)
	}
}

func (f *fixture) testInvalidChecksums(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	for _, bad := range []string{"", "../x", "../../etc/passwd", "..", strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("a", 65),
		strings.Repeat("a", 62) + "/.", strings.Repeat("0", 62) + "..", " " + strings.Repeat("a", 63), strings.Repeat("a", 63) + "\x00", "tenants/x"} {
		if rc, err := tn.tc.Open(bg, tn.st, bad, 0); !errors.Is(err, docex.ErrInvalid) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalid", bad, err)
		}
		err := tn.st.Write(bg, func(tx driver.Tx) error { return tn.tc.Delete(bg, tx, bad) })
		if !errors.Is(err, docex.ErrInvalid) {
			t.Errorf("Delete(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// foreign is a Staged value no store made.
type foreign struct{}

func (foreign) Checksum() string { return sum(nil) }
func (foreign) Size() int64      { return 0 }
func (foreign) Head() []byte     { return nil }
func (foreign) Discard()         {}

func (f *fixture) testConcurrentPut(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	data := payload(64<<10, "concurrent")
	const n = 8
	baskets := make([]string, n)
	for i := range baskets {
		baskets[i] = tn.basket()
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = tn.add(bg, baskets[i], data)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	tn.mustRead(sum(data), data)
	for i, id := range ids {
		if err := tn.remove(bg, id); err != nil {
			t.Fatal(err)
		}
		if i < n-1 {
			tn.mustRead(sum(data), data)
		}
	}
	tn.mustBeAbsent(sum(data))
}

// testPutDuringDelete races adds of one content against deletes of
// documents holding it, in random interleavings: whatever a committed
// reference names must be readable at the end of every round.
func (f *fixture) testPutDuringDelete(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	data := payload(8<<10, "race")
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		b1, b2 := tn.basket(), tn.basket()
		first, err := tn.add(bg, b1, data)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var addErr, delErr error
		var second string
		wg.Add(2)
		go func() {
			defer wg.Done()
			if rand.IntN(2) == 0 {
				time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
			}
			second, addErr = tn.add(bg, b2, data)
		}()
		go func() {
			defer wg.Done()
			if rand.IntN(2) == 0 {
				time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
			}
			delErr = tn.remove(bg, first)
		}()
		wg.Wait()
		if addErr != nil || delErr != nil {
			t.Fatalf("round %d: add %v, delete %v", round, addErr, delErr)
		}
		tn.mustRead(sum(data), data)
		if err := tn.remove(bg, second); err != nil {
			t.Fatal(err)
		}
		tn.mustBeAbsent(sum(data))
	}
}

var errCrash = errors.New("crash before commit")

func (f *fixture) testCrashBetweenPutAndCommit(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	b := tn.basket()
	data := payload(5000, "crash")
	s := tn.stage(data)
	if err := tn.tc.Sync(bg, []driver.Staged{s}); err != nil {
		t.Fatal(err)
	}
	err := tn.st.Write(bg, func(tx driver.Tx) error {
		if err := tx.LockContent(bg, s.Checksum()); err != nil {
			return err
		}
		if err := tn.tc.Put(bg, tx, []driver.Staged{s}); err != nil {
			return err
		}
		return errCrash // the reference never commits
	})
	if !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	// A staged leftover too: a crash before the transaction (no Discard).
	leftover := tn.stage(payload(100, "leftover"))
	_ = leftover
	s.Discard()
	// Content a reference holds is never touched by the sweep.
	kept := payload(700, "kept")
	if _, err := tn.add(bg, b, kept); err != nil {
		t.Fatal(err)
	}
	listed := false
	err = tn.tc.List(bg, time.Now().Add(time.Hour), func(got string) error {
		listed = listed || got == sum(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !listed {
		// Not listed: the store must not hold it (a transactional store).
		tn.mustBeAbsent(sum(data))
	}
	// Nothing is older than a cutoff in the past.
	err = tn.tc.List(bg, time.Now().Add(-time.Hour), func(got string) error {
		return fmt.Errorf("listed %s, written after the cutoff", got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.sweep(bg); err != nil {
		t.Fatal(err)
	}
	tn.mustBeAbsent(sum(data))
	tn.mustRead(sum(kept), kept)
	if n, err := tn.sweep(bg); err != nil || n != 0 {
		t.Fatalf("second sweep = %d, %v; want nothing left", n, err)
	}
	// An error from the callback stops List and is returned.
	stop := errors.New("stop")
	if err := tn.tc.List(bg, time.Now().Add(time.Hour), func(string) error { return stop }); !errors.Is(err, stop) && err != nil {
		t.Fatalf("List with a failing callback: %v", err)
	}
}

func (f *fixture) testTenantIsolation(t *testing.T) {
	e := f.env(t, true)
	a, b := e.tenant("acme"), e.tenant("globex")
	data := payload(4000, "isolation")
	if _, err := a.add(bg, a.basket(), data); err != nil {
		t.Fatal(err)
	}
	sum := sum(data)
	// Another tenant: the checksum names nothing there.
	b.mustBeAbsent(sum)
	if err := b.st.Write(bg, func(tx driver.Tx) error { return b.tc.Delete(bg, tx, sum) }); err != nil {
		t.Fatal(err)
	}
	a.mustRead(sum, data)
	if err := b.tc.List(bg, time.Now().Add(time.Hour), func(got string) error {
		return fmt.Errorf("tenant globex lists %s", got)
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.sweep(bg); err != nil || n != 0 {
		t.Fatalf("sweep of globex = %d, %v", n, err)
	}
	a.mustRead(sum, data)
	// Another incarnation of the same id sees nothing of the old one.
	old := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	tc, err := e.store.Tenant(old)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := tc.Open(bg, b.st, sum, int64(len(data))); !errors.Is(err, docex.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		if !e.store.InTransaction() {
			t.Fatalf("another incarnation reads acme's content: %v", err)
		}
	}
	// Staged content of another store is refused.
	err = a.st.Write(bg, func(tx driver.Tx) error { return a.tc.Put(bg, tx, []driver.Staged{foreign{}}) })
	if !errors.Is(err, docex.ErrInvalid) {
		t.Fatalf("Put(foreign staged) = %v, want ErrInvalid", err)
	}
	// Forged tenant identities name no namespace.
	for _, forged := range []docex.Tenant{
		{ID: "../acme", Incarnation: a.t.Incarnation}, {ID: "Acme", Incarnation: a.t.Incarnation}, {ID: "acme/x", Incarnation: a.t.Incarnation},
		{ID: "acme", Incarnation: "../" + a.t.Incarnation}, {ID: "acme", Incarnation: ""}, {ID: "acme", Incarnation: strings.ToUpper(a.t.Incarnation)},
		{ID: "", Incarnation: a.t.Incarnation}, {ID: "acme", Incarnation: a.t.Incarnation + "/.."},
	} {
		if _, err := e.store.Tenant(forged); err == nil {
			t.Errorf("Tenant(%+v) accepted", forged)
		}
		if err := e.store.DeleteTenant(bg, forged.ID, forged.Incarnation); err == nil {
			t.Errorf("DeleteTenant(%q, %q) accepted", forged.ID, forged.Incarnation)
		}
	}
	a.mustRead(sum, data)
}

func (f *fixture) testDeleteTenant(t *testing.T) {
	e := f.env(t, true)
	a, b := e.tenant("acme"), e.tenant("globex")
	da, db := payload(1000, "tenant a"), payload(1000, "tenant b")
	if _, err := a.add(bg, a.basket(), da); err != nil {
		t.Fatal(err)
	}
	if _, err := b.add(bg, b.basket(), db); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	err := e.store.Incarnations(bg, func(si driver.StoredIncarnation) error {
		found[si.TenantID] = si.Incarnation
		if si.Location == "" {
			t.Errorf("incarnation %+v has no location", si)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !e.store.InTransaction() && (found["acme"] != a.t.Incarnation || found["globex"] != b.t.Incarnation) {
		t.Fatalf("Incarnations = %v", found)
	}
	if err := e.store.DeleteTenant(bg, "acme", a.t.Incarnation); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteTenant(bg, "acme", a.t.Incarnation); err != nil {
		t.Fatalf("DeleteTenant again: %v", err)
	}
	b.mustRead(sum(db), db)
	if !e.store.InTransaction() {
		a.mustBeAbsent(sum(da))
		err = e.store.Incarnations(bg, func(si driver.StoredIncarnation) error {
			if si.TenantID == "acme" {
				return fmt.Errorf("deleted incarnation still listed: %+v", si)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) testLocal(t *testing.T) {
	e := f.env(t, false)
	tn := e.tenant("")
	data := payload(1500, "local")
	id, err := tn.add(bg, tn.basket(), data)
	if err != nil {
		t.Fatal(err)
	}
	tn.mustRead(sum(data), data)
	if err := tn.remove(bg, id); err != nil {
		t.Fatal(err)
	}
	tn.mustBeAbsent(sum(data))
	err = e.store.Incarnations(bg, func(si driver.StoredIncarnation) error {
		return fmt.Errorf("the local namespace is listed as a tenant: %+v", si)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testBatchPut puts many contents in one call inside one transaction.
func (f *fixture) testBatchPut(t *testing.T) {
	e := f.env(t, true)
	tn := e.tenant("acme")
	b := tn.basket()
	var staged []driver.Staged
	var datas [][]byte
	for i := range 50 {
		d := payload(100+i*37, fmt.Sprint("batch", i))
		datas = append(datas, d)
		staged = append(staged, tn.stage(d))
	}
	defer func() {
		for _, s := range staged {
			s.Discard()
		}
	}()
	if err := tn.tc.Sync(bg, staged); err != nil {
		t.Fatal(err)
	}
	err := tn.st.Write(bg, func(tx driver.Tx) error {
		now := time.Now().UTC()
		for _, s := range staged {
			if err := tx.LockContent(bg, s.Checksum()); err != nil {
				return err
			}
			if err := tx.InsertDocument(bg, docex.Document{ID: uuid.NewString(), BasketID: b, Name: "d", ContentType: "text/plain",
				Size: s.Size(), Checksum: s.Checksum(), Status: docex.DocumentActive, CreatedAt: now, UpdatedAt: now, Metadata: map[string]docex.Value{}}); err != nil {
				return err
			}
		}
		return tn.tc.Put(bg, tx, staged)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range datas {
		tn.mustRead(sum(d), d)
	}
}

// testClaim checks the claim marker of a store outside the database
// (driver.Claimer): absent, claimed by this system, by another, claimed
// again; a refused claim writes nothing, and the marker is never taken
// for a tenant namespace.
func (f *fixture) testClaim(t *testing.T) {
	store := f.h.New(t)
	c, ok := store.(driver.Claimer)
	if store.InTransaction() {
		if ok {
			t.Fatal("a store in the database implements driver.Claimer: it needs no marker")
		}
		return
	}
	if !ok {
		t.Fatal("a store outside the database must implement driver.Claimer")
	}
	mine, other := uuid.NewString(), uuid.NewString()
	for _, step := range []struct {
		name  string
		claim bool // Claim, else CheckClaim
		id    string
		want  error // nil, docex.ErrNotInitialized or docex.ErrInvalidConfig
	}{
		{"check absent", false, mine, docex.ErrNotInitialized},
		{"check absent for another", false, other, docex.ErrNotInitialized},
		{"claim absent", true, mine, nil},
		{"check same", false, mine, nil},
		{"claim again (idempotent)", true, mine, nil},
		{"check other", false, other, docex.ErrInvalidConfig},
		{"claim other", true, other, docex.ErrInvalidConfig},
		{"check same after refused claim", false, mine, nil},
	} {
		var err error
		if step.claim {
			err = c.Claim(bg, step.id)
		} else {
			err = c.CheckClaim(bg, step.id)
		}
		switch {
		case step.want == nil && err != nil:
			t.Fatalf("%s: %v", step.name, err)
		case step.want != nil && !errors.Is(err, step.want):
			t.Fatalf("%s: err = %v, want %v", step.name, err, step.want)
		case errors.Is(step.want, docex.ErrNotInitialized) && !errors.Is(err, driver.ErrUnclaimed):
			t.Fatalf("%s: err = %v, want driver.ErrUnclaimed too", step.name, err)
		case errors.Is(err, docex.ErrInvalidConfig) && (!strings.Contains(err.Error(), mine) || !strings.Contains(err.Error(), other)):
			t.Fatalf("%s: %v: want both system ids named", step.name, err)
		case errors.Is(step.want, docex.ErrInvalidConfig) && !errors.Is(err, driver.ErrOtherSystem):
			t.Fatalf("%s: err = %v, want driver.ErrOtherSystem too", step.name, err)
		}
	}
	err := store.Incarnations(bg, func(si driver.StoredIncarnation) error {
		return fmt.Errorf("the marker listed as incarnation %+v", si)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Content and tenant deletion leave the marker alone.
	e := &env{t: t, store: store}
	be, err := sqlite.Open(bg, sqlite.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if _, err := be.Bootstrap(bg, driver.BootstrapInfo{BootstrapTenantID: "system", MultiTenancy: true, Now: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	e.be = be
	tn := e.tenant("acme")
	if _, err := tn.add(bg, tn.basket(), []byte("claimed content")); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteTenant(bg, tn.t.ID, tn.t.Incarnation); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckClaim(bg, mine); err != nil {
		t.Fatalf("after DeleteTenant: %v", err)
	}
}
