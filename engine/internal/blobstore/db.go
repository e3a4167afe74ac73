package blobstore

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
)

// DB keeps content in the tenant's own database (Tx.PutContent), so it
// commits and rolls back with the references: a crash orphans nothing, and
// a tenant's content goes with its database. Rows left unreferenced
// otherwise are found by the sweep through the tenant store
// (driver.UnreferencedContentLister), not through List.
type DB struct{}

// Tenant returns the namespace of a tenant incarnation: its database.
func (DB) Tenant(t docex.Tenant) (driver.TenantContent, error) {
	if _, err := contentkey.Tenant(t); err != nil {
		return nil, err
	}
	return dbTenant{}, nil
}

// Incarnations lists nothing: content lives in tenant databases.
func (DB) Incarnations(context.Context, func(driver.StoredIncarnation) error) error { return nil }

// DeleteTenant does nothing: the backend drops the tenant's database.
func (DB) DeleteTenant(_ context.Context, tenantID, incarnation string) error {
	_, err := contentkey.Tenant(docex.Tenant{ID: tenantID, Incarnation: incarnation})
	return err
}

// InTransaction is true.
func (DB) InTransaction() bool { return true }

type dbTenant struct{}

type dbStaged struct {
	data []byte
	contentkey.Hashed
}

func (st *dbStaged) Checksum() string { return st.Hashed.Checksum }
func (st *dbStaged) Size() int64      { return st.Hashed.Size }
func (st *dbStaged) Head() []byte     { return st.Hashed.Head }
func (st *dbStaged) Discard()         { st.data = nil }

// Stage reads the content into memory.
func (dbTenant) Stage(ctx context.Context, r io.Reader, max int64) (driver.Staged, error) {
	var buf bytes.Buffer
	h, err := contentkey.Copy(ctx, &buf, r, max)
	if err != nil {
		return nil, err
	}
	return &dbStaged{data: buf.Bytes(), Hashed: h}, nil
}

// Sync does nothing: the transaction makes the content durable.
func (dbTenant) Sync(context.Context, []driver.Staged) error { return nil }

// Put writes each content row in tx, replacing any row of that checksum.
func (dbTenant) Put(ctx context.Context, tx driver.Tx, staged []driver.Staged) error {
	if bt, ok := tx.(driver.BatchTx); ok && len(staged) > 1 {
		sums := make([]string, len(staged))
		data := make([][]byte, len(staged))
		for i, s := range staged {
			st, ok := s.(*dbStaged)
			if !ok {
				return docex.Errorf(docex.ErrInvalid, "content store: staged content of another store")
			}
			sums[i], data[i] = st.Checksum(), st.data
		}
		return bt.ReplaceContents(ctx, sums, data)
	}
	for _, s := range staged {
		st, ok := s.(*dbStaged)
		if !ok || tx == nil {
			return docex.Errorf(docex.ErrInvalid, "content store: staged content of another store, or no transaction")
		}
		if err := tx.DeleteContent(ctx, st.Checksum()); err != nil {
			return err
		}
		if err := tx.PutContent(ctx, st.Checksum(), st.data); err != nil {
			return err
		}
	}
	return nil
}

// Open reads the content row through r, verifying it as it is read.
func (dbTenant) Open(ctx context.Context, r driver.Reader, sum string, size int64) (io.ReadCloser, error) {
	if !contentkey.ValidChecksum(sum) {
		return nil, docex.Errorf(docex.ErrInvalid, "invalid checksum %q", sum)
	}
	rc, err := r.OpenContent(ctx, sum)
	if err != nil {
		return nil, err
	}
	// The row of packed filesystem content is its locator (pack.go):
	// content stored while storage.documents.type was filesystem. Read as
	// the content it is damaged; it is missing from this store.
	br := bufio.NewReaderSize(rc, 256)
	// Only a row that starts as a locator does is parsed and hashed.
	if head, _ := br.Peek(256); len(head) < 256 && bytes.HasPrefix(head, []byte(locatorTag+" ")) {
		if _, ok := parseLocator(head); ok && contentkey.Sum(head) != sum {
			rc.Close()
			return nil, docex.Errorf(docex.ErrNotFound, "content %s is missing from the database: it holds the locator of a filesystem content pack for it (stored while storage.documents.type was filesystem? set it back)", sum)
		}
	}
	return contentkey.Verify(readCloser{br, rc}, sum, size, "content "+sum), nil
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// ReadMany reads the content rows of sums in one read when r can
// (driver.ContentsReader), and returns those whose bytes match their
// checksum, by checksum. A missing or mismatching row is left out (the
// caller opens it with Open, which reports it); nil when r cannot read
// many at once.
func (dbTenant) ReadMany(ctx context.Context, r driver.Reader, sums []string) (map[string][]byte, error) {
	cr, ok := r.(driver.ContentsReader)
	if !ok {
		return nil, nil
	}
	valid := make([]string, 0, len(sums))
	for _, sum := range sums {
		if contentkey.ValidChecksum(sum) {
			valid = append(valid, sum)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	rows, err := cr.ReadContents(ctx, valid)
	if err != nil {
		return nil, err
	}
	for sum, data := range rows {
		if contentkey.Sum(data) != sum {
			delete(rows, sum)
		}
	}
	return rows, nil
}

// Delete removes the content row in tx.
func (dbTenant) Delete(ctx context.Context, tx driver.Tx, sum string) error {
	if !contentkey.ValidChecksum(sum) {
		return docex.Errorf(docex.ErrInvalid, "invalid checksum %q", sum)
	}
	return tx.DeleteContent(ctx, sum)
}

// List lists nothing: rows commit and roll back with their references.
func (dbTenant) List(context.Context, time.Time, func(string) error) error { return nil }

// Clean removes nothing: staging is in memory.
func (dbTenant) Clean(context.Context, time.Time, bool) ([]string, error) { return nil, nil }
