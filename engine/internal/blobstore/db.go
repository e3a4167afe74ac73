package blobstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/fdlimit"
)

// DB keeps content in the tenant's own database (Tx.PutContent), so it
// commits and rolls back with the references: a crash orphans nothing, and
// a tenant's content goes with its database. Rows left unreferenced
// otherwise are found by the sweep through the tenant store
// (driver.UnreferencedContentLister), not through List.
type DB struct {
	// SpoolDir is the directory of the spool files Spill writes (see
	// dbSpool): an absolute path, or "" for the system's temporary
	// directory (os.TempDir, $TMPDIR).
	SpoolDir string
}

// Tenant returns the namespace of a tenant incarnation: its database.
func (d DB) Tenant(t docex.Tenant) (driver.TenantContent, error) {
	if _, err := contentkey.Tenant(t); err != nil {
		return nil, err
	}
	return dbTenant{spoolDir: d.SpoolDir}, nil
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

type dbTenant struct{ spoolDir string }

type dbStaged struct {
	data  []byte // the content, until Spill or Discard
	spool *dbSpool
	off   int64 // where the content is in spool
	contentkey.Hashed
}

func (st *dbStaged) Checksum() string { return st.Hashed.Checksum }
func (st *dbStaged) Size() int64      { return st.Hashed.Size }
func (st *dbStaged) Head() []byte     { return st.Hashed.Head }
func (st *dbStaged) Discard() {
	st.data = nil
	if st.spool != nil {
		st.spool.release()
		st.spool = nil
	}
}

// content returns the staged bytes: from memory, or read back from the
// spool file.
func (st *dbStaged) content() ([]byte, error) {
	if st.spool == nil {
		if st.data == nil && st.Size() > 0 {
			return nil, docex.Errorf(docex.ErrInvalid, "content store: staged content put after Discard")
		}
		return st.data, nil
	}
	b := make([]byte, st.Size())
	if _, err := st.spool.f.ReadAt(b, st.off); err != nil {
		return nil, fmt.Errorf("content store: read spooled content: %w", err)
	}
	return b, nil
}

// dbSpool is a spool file shared by the contents one Spill moved out of
// memory; it is closed when the last of them is discarded. The file has
// no name (removed once created; on Windows deleted when closed), so that
// nothing is left behind, even by a crash.
type dbSpool struct {
	f    *os.File
	mu   sync.Mutex
	refs int
}

func (sp *dbSpool) release() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.refs--; sp.refs == 0 {
		sp.f.Close()
	}
}

// spoolPrefix names the database store's spool files.
const spoolPrefix = "docex-db-spool-"

// createSpool returns a new anonymous file in dir ("": the system's
// temporary directory). A directory missing or not writable is
// docex.ErrStorageUnavailable, naming it and the key that chooses it
// (spoolError).
func createSpool(dir string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	} else if !filepath.IsAbs(dir) {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "content store: spool directory %q (storage.documents.spool_dir) is not an absolute path", dir)
	}
	for range 100 {
		name := filepath.Join(dir, spoolPrefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|deleteOnClose, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, spoolError(dir, err)
		}
		if deleteOnClose == 0 {
			if err := os.Remove(name); err != nil {
				f.Close()
				return nil, spoolError(dir, err)
			}
		}
		return f, nil
	}
	return nil, spoolError(dir, errors.New("no free file name"))
}

// spoolError is a failure to create or write a spool file in dir (the
// directory missing or not writable, its volume full): it matches
// docex.ErrStorageUnavailable, driver.ErrSpool and err, and names the
// directory and the docex.yaml key that chooses it.
//
// A failure because the process ran out of file descriptors is not the
// directory's: it matches docex.ErrTooManyOpenFiles instead (fdlimit.Wrap).
func spoolError(dir string, err error) error {
	if fdlimit.IsExhaustion(err) {
		return fdlimit.Wrap(fmt.Errorf("content store: create a spool file in %s: %w", dir, err))
	}
	return &spoolErr{dir: dir, err: err}
}

type spoolErr struct {
	dir string
	err error
}

func (e *spoolErr) Error() string {
	return fmt.Sprintf("content store: cannot write a spool file in %s (storage.documents.spool_dir; default the system's temporary directory, $TMPDIR): %v", e.dir, e.err)
}

func (e *spoolErr) Unwrap() []error {
	return []error{docex.ErrStorageUnavailable, driver.ErrSpool, e.err}
}

// Stage reads the content into memory: into a buffer of its size when r
// tells it (see contentkey.SizeHint), so that a large document is held once, not in
// a buffer grown by doubling.
func (dbTenant) Stage(ctx context.Context, r io.Reader, max int64) (driver.Staged, error) {
	var buf bytes.Buffer
	if n, ok := contentkey.SizeHint(r); ok && n >= 0 && n <= max {
		buf.Grow(int(min(n, max)) + bytes.MinRead)
	}
	h, err := contentkey.Copy(ctx, &buf, r, max)
	if err != nil {
		return nil, err
	}
	return &dbStaged{data: buf.Bytes(), Hashed: h}, nil
}

// Held returns the bytes s holds in memory.
func (dbTenant) Held(s driver.Staged) int64 {
	if st, ok := s.(*dbStaged); ok {
		return int64(cap(st.data))
	}
	return 0
}

// Spill moves the content of staged held in memory into one spool file
// (see dbSpool) and releases that memory; Put reads it back. The engine
// spills a batch larger than its bound on staged memory.
func (t dbTenant) Spill(ctx context.Context, staged []driver.Staged) error {
	var sts []*dbStaged
	for _, s := range staged {
		st, ok := s.(*dbStaged)
		if !ok {
			return docex.Errorf(docex.ErrInvalid, "content store: staged content of another store")
		}
		if st.data != nil && st.spool == nil {
			sts = append(sts, st)
		}
	}
	if len(sts) == 0 {
		return nil
	}
	f, err := createSpool(t.spoolDir)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	for _, st := range sts {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(st.data); err != nil {
			f.Close()
			return spoolError(filepath.Dir(f.Name()), err)
		}
		off += int64(len(st.data))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return spoolError(filepath.Dir(f.Name()), err)
	}
	sp := &dbSpool{f: f, refs: len(sts)}
	off = 0
	for _, st := range sts {
		st.spool, st.off = sp, off
		off += int64(len(st.data))
		st.data = nil
	}
	return nil
}

// Sync does nothing: the transaction makes the content durable.
func (dbTenant) Sync(context.Context, []driver.Staged) error { return nil }

// putChunk bounds the bytes of spooled content Put reads back for one
// batch statement.
const putChunk = 16 << 20

// Put writes each content row in tx, replacing any row of that checksum.
// Spooled content is read back at most putChunk bytes at a time (and
// content larger than that one at a time).
func (dbTenant) Put(ctx context.Context, tx driver.Tx, staged []driver.Staged) error {
	sts := make([]*dbStaged, len(staged))
	for i, s := range staged {
		st, ok := s.(*dbStaged)
		if !ok || tx == nil {
			return docex.Errorf(docex.ErrInvalid, "content store: staged content of another store, or no transaction")
		}
		sts[i] = st
	}
	if bt, ok := tx.(driver.BatchTx); ok && len(sts) > 1 {
		var (
			sums = make([]string, 0, len(sts))
			data = make([][]byte, 0, len(sts))
			read int64 // bytes read back for this statement
		)
		for i, st := range sts {
			b, err := st.content()
			if err != nil {
				return err
			}
			if st.spool != nil {
				read += int64(len(b))
			}
			sums, data = append(sums, st.Checksum()), append(data, b)
			if read >= putChunk || i == len(sts)-1 {
				if err := bt.ReplaceContents(ctx, sums, data); err != nil {
					return err
				}
				sums, data, read = sums[:0], data[:0], 0
				clear(data[:cap(data)])
			}
		}
		return nil
	}
	for _, st := range sts {
		b, err := st.content()
		if err != nil {
			return err
		}
		if err := tx.DeleteContent(ctx, st.Checksum()); err != nil {
			return err
		}
		if err := tx.PutContent(ctx, st.Checksum(), b); err != nil {
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

// Clean removes nothing: staging is in memory, or in spool files that
// have no name.
func (dbTenant) Clean(context.Context, time.Time, bool) ([]string, error) { return nil, nil }
