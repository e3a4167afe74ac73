package driver

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/docex-dev/docex"
)

// ContentStore keeps document content addressed by its SHA-256 checksum,
// in one namespace per tenant incarnation: a directory, the tenant's own
// database, or an object-store prefix. The engine decides when content is
// stored and removed; a store only keeps bytes. Methods are safe for
// concurrent use.
//
// The lifecycle, which every implementation supports and
// backends/contenttest checks:
//
//  1. Stage, outside any transaction: the bytes are read, hashed and kept
//     where nothing can see them under their checksum; then Sync, once for
//     the batch, makes what was staged durable. A store outside the
//     database may make it readable under its checksum at Sync already
//     (S3 uploads it then, so that no upload holds the transaction open);
//     no document refers to it before Put's transaction commits, and
//     what no transaction then refers to is for the sweep (5).
//  2. Put, inside the transaction that adds the first reference to the
//     checksum, with the content lock held (Tx.LockContent) and after
//     ContentRefs returned 0: the content becomes readable under its
//     checksum, durably, before the transaction commits (content Sync
//     made readable is confirmed still there: a Delete may have run
//     since; a store that would have to upload it again returns a
//     ResyncError instead, and the caller, WriteContent, uploads it
//     again with Sync and runs the transaction again). Whatever a crash
//     or another party left under that checksum is replaced or verified
//     byte for byte, never adopted unchecked.
//  3. Open verifies what it returns against the checksum and size.
//  4. Delete, inside a transaction holding the content lock, after
//     ContentRefs returned 0: for a store outside the database that
//     transaction runs after the one that removed the last reference
//     committed, and is never shared with other writes
//     (TenantStore.WriteIsolated), so a rollback can never leave a
//     reference to missing content.
//  5. List and Clean let the sweep (docex gc) find what a crash between
//     Sync or Put and commit, or during staging, left behind.
//
// Put and Delete may run again when the backend retries a transaction: both
// are idempotent.
type ContentStore interface {
	// Tenant returns the content namespace of a tenant incarnation (the
	// zero Tenant: the local namespace with multi-tenancy disabled). It
	// returns docex.ErrInvalidID or docex.ErrCorrupt for a tenant whose id
	// or incarnation cannot name a namespace, and does no I/O that other
	// tenants could observe.
	Tenant(t docex.Tenant) (TenantContent, error)

	// Incarnations calls fn for every tenant incarnation that has content
	// in the store (never the local namespace). A store whose content
	// lives in the tenant's database has none.
	Incarnations(ctx context.Context, fn func(StoredIncarnation) error) error

	// DeleteTenant removes all content of one tenant incarnation; absent
	// is not an error. It returns docex.ErrInvalidID or docex.ErrCorrupt
	// for an id or incarnation that cannot name a namespace.
	DeleteTenant(ctx context.Context, tenantID, incarnation string) error

	// InTransaction reports whether content lives in the tenant's database,
	// so that Put and Delete are part of the transaction itself and may run
	// in the same transaction as the reference change.
	InTransaction() bool
}

// StoreCleaner is a ContentStore with leftovers of its own, outside any
// tenant's namespace, for the sweep (docex gc) to remove once.
type StoreCleaner interface {
	// CleanStore removes what the store itself (not a tenant's content)
	// left before cutoff, such as the objects of a connectivity check
	// a killed process did not delete, and returns their names; with
	// dryRun it removes nothing and returns the names it would remove.
	CleanStore(ctx context.Context, cutoff time.Time, dryRun bool) ([]string, error)
}

// Claimer is a ContentStore outside the database (InTransaction false)
// that records which system owns it, in a marker at its root holding the
// system id (Backend.SystemID). Two systems configured with one store
// would otherwise take each other's tenant namespaces for those of deleted
// tenants, and a store changed in the configuration after bootstrap would
// read as if every document were missing. A store whose content lives in
// the tenant's database needs no marker.
type Claimer interface {
	// Claim writes the marker naming systemID, durably, when the store
	// has none; with a marker naming systemID it changes nothing. It
	// returns an error wrapping docex.ErrInvalidConfig and
	// ErrOtherSystem, and writes nothing, when the marker names another
	// system.
	Claim(ctx context.Context, systemID string) error

	// CheckClaim reads the marker and writes nothing. It returns an error
	// wrapping docex.ErrNotInitialized and ErrUnclaimed when the store has
	// no marker, one wrapping docex.ErrInvalidConfig and ErrOtherSystem,
	// naming both ids and the store's location, when the marker names
	// another system, and one wrapping docex.ErrStorageUnavailable when
	// the store cannot be read (a content directory that is missing).
	CheckClaim(ctx context.Context, systemID string) error
}

// ErrStoreDamaged marks the error of a tenant store whose tables in the
// database are missing or another tenant's (a dropped or renamed
// PostgreSQL schema, a SQLite file of another tenant in its place); it
// comes with docex.ErrCorrupt. The content store is not involved.
var ErrStoreDamaged = errors.New("the tenant's store in the database is missing or another tenant's")

// StoreDamaged returns err, which matches docex.ErrCorrupt, marked with
// ErrStoreDamaged; its message is err's.
func StoreDamaged(err error) error { return &storeDamaged{err} }

type storeDamaged struct{ err error }

func (e *storeDamaged) Error() string   { return e.err.Error() }
func (e *storeDamaged) Unwrap() []error { return []error{e.err, ErrStoreDamaged} }

// ErrUnclaimed marks the error of a content store without a claim marker
// (Claimer.CheckClaim); it comes with docex.ErrNotInitialized.
var ErrUnclaimed = errors.New("the content store has no docex system marker")

// ErrSpool marks the error of a content store that could not create or
// write a spool file, where it stages content past the engine's bound on
// staged memory (engine.Config.SpoolDir: the directory missing, not
// writable, or full; the S3 store's s3store.Config.SpoolDir, where it
// stages content over 1 MiB or past its memory budget), or, for the S3
// store, read one back for its upload (removed, truncated or unreadable
// since it was staged); it comes with docex.ErrStorageUnavailable, and
// nothing was stored.
var ErrSpool = errors.New("the content store could not write its spool file")

// ErrOtherSystem marks the error of a content store whose claim marker
// names another system (Claimer.CheckClaim, Claim); it comes with
// docex.ErrInvalidConfig.
var ErrOtherSystem = errors.New("the content store is another docex system's")

// StoredIncarnation is a tenant incarnation found in a content store.
type StoredIncarnation struct {
	TenantID    string
	Incarnation string
	// Location names the namespace for reports (a directory, a URL).
	Location string
	// ModTime is when the namespace last changed, or the zero time when
	// the store cannot tell cheaply.
	ModTime time.Time
}

// TenantContent is the content of one tenant incarnation. Nothing reachable
// from it reads or writes another tenant's content: every checksum is
// resolved inside the namespace it was opened for.
type TenantContent interface {
	// Stage reads r to the end, at most max bytes, hashing it. It returns
	// docex.ErrTooLarge, leaving nothing behind, when r holds more. The
	// caller must call Discard on the result.
	Stage(ctx context.Context, r io.Reader, max int64) (Staged, error)

	// Sync makes staged content durable (or uploads it ahead of Put), all
	// of the batch at once; it runs before the transaction.
	Sync(ctx context.Context, staged []Staged) error

	// Put makes staged content readable under its checksum, for a whole
	// batch at once (see the lifecycle above). tx is the transaction that
	// adds the references; stores outside the database ignore it. It
	// returns docex.ErrInvalid for Staged values of another store.
	Put(ctx context.Context, tx Tx, staged []Staged) error

	// Open returns the content with checksum sum, which the caller's
	// records say has size bytes. Reading the returned stream to the end
	// fails with an error matching docex.ErrCorrupt when the stored bytes do
	// not match. r reads the tenant's database (stores outside the database
	// ignore it). It returns docex.ErrNotFound for absent content and
	// docex.ErrInvalid for an invalid checksum.
	Open(ctx context.Context, r Reader, sum string, size int64) (io.ReadCloser, error)

	// Delete removes the content with checksum sum; absent is not an
	// error. It returns docex.ErrInvalid for an invalid checksum.
	Delete(ctx context.Context, tx Tx, sum string) error

	// List calls fn with the checksum of every stored content last written
	// before cutoff. fn may call Delete. A store whose content lives in the
	// tenant's database lists nothing: its Put and Delete commit or roll
	// back with the references.
	List(ctx context.Context, cutoff time.Time, fn func(sum string) error) error

	// Clean removes what interrupted staging or uploads left before cutoff
	// and returns the names of the items it removed (paths, upload
	// names); with dryRun it removes nothing and returns those it would
	// remove. An item that namespaces share (a spool directory) has the
	// same name in each, so that the sweep counts it once.
	Clean(ctx context.Context, cutoff time.Time, dryRun bool) ([]string, error)
}

// ResyncError is what Put of a store outside the database returns when
// content Sync uploaded before the transaction is gone when Put confirms
// it inside the transaction (a concurrent Delete of the same content, or
// the sweep, removed it since), instead of uploading it again there,
// which would hold the transaction (on SQLite the tenant's write lock)
// open for the upload. The caller lets the transaction fail, nothing of
// it committed, calls Content.Sync(ctx, Staged), which uploads the
// content again outside any transaction, and runs the transaction again
// (the engine: at most 3 transactions in all). It matches
// docex.ErrStorageUnavailable and Err (what Put found, naming the
// object), for a caller that does not run it again.
type ResyncError struct {
	Content TenantContent
	Staged  []Staged
	Err     error
}

func (e *ResyncError) Error() string { return e.Err.Error() }

func (e *ResyncError) Unwrap() []error { return []error{docex.ErrStorageUnavailable, e.Err} }

// MaxContentWrites bounds the transactions of one WriteContent.
const MaxContentWrites = 3

// WriteContent is st.Write for a transaction that may Put content: when
// Put returns a ResyncError, the transaction has failed, nothing of it
// committed; the content is uploaded again (Sync) outside any
// transaction, so that no upload holds the transaction (on SQLite the
// tenant's write lock) open, and the transaction runs again, at most
// MaxContentWrites in all: the last one's error is returned. fn must be
// safe to run again, as for a backend that retries a transaction.
func WriteContent(ctx context.Context, st TenantStore, fn func(tx Tx) error) error {
	for n := 1; ; n++ {
		err := st.Write(ctx, fn)
		var rs *ResyncError
		if n == MaxContentWrites || !errors.As(err, &rs) || ctx.Err() != nil {
			return err
		}
		if err := rs.Content.Sync(ctx, rs.Staged); err != nil {
			return err
		}
	}
}

// ContentProber is implemented by content stores outside the database
// that can fail on their own (S3): Probe returns the error a removal would
// meet now (the store unreachable, the credentials refused, the bucket
// gone), or nil. The engine probes before a delete changes anything, so
// that such a delete is refused whole instead of leaving the content
// behind for docex gc.
type ContentProber interface {
	Probe(ctx context.Context) error
}

// Staged is content read and hashed by TenantContent.Stage.
type Staged interface {
	// Checksum is the lowercase hex SHA-256 of the content.
	Checksum() string
	// Size is its length in bytes.
	Size() int64
	// Head is its first bytes (up to 512), for content-type sniffing.
	Head() []byte
	// Discard releases what staging holds (temporary files, memory). Call
	// it when done, after Put too; it is idempotent.
	Discard()
}
