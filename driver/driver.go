package driver

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docex-dev/docex"
)

// SchemaVersion is the version of the storage schema this binary writes and
// accepts. There are no migrations at run time: a system or tenant schema
// with another version is refused with docex.ErrSchemaVersion.
const SchemaVersion = 2

// BootstrapInfo describes the system being bootstrapped.
type BootstrapInfo struct {
	BootstrapTenantID string // the configured bootstrap tenant id
	MultiTenancy      bool   // whether tenants are enabled
	Now               time.Time
	// SystemID is the system id Bootstrap stores when it creates the
	// system, or adds to an existing system that has none (one
	// initialised before system ids); an existing id is never changed.
	// Empty stores none.
	SystemID string
	// InitPending marks a system Bootstrap creates, in the transaction
	// that creates it, as not finished initialising, until
	// InitTracker.FinishInit: an initialisation that does more after
	// Bootstrap (docex init: the built-in steps, its audit entry) and
	// fails before the end is completed by the next one. It changes
	// nothing on an existing system. A backend that is not an
	// InitTracker ignores it.
	InitPending bool
}

// BootstrapTenantDisplayName is the display name Bootstrap gives the
// bootstrap tenant, on every backend.
const BootstrapTenantDisplayName = "bootstrap tenant (system metadata)"

// The settings of BootstrapInfo a system keeps (SettingError.Setting).
const (
	SettingBootstrapTenantID = "bootstrap_tenant_id"
	SettingMultiTenancy      = "multi_tenancy"
)

// SettingError is the error of Backend.Bootstrap and Backend.Check for a
// system bootstrapped with another value of a setting than BootstrapInfo
// gives now; it matches docex.ErrInvalidConfig. Setting is
// SettingBootstrapTenantID or SettingMultiTenancy; Stored and Given are
// the values as stored ("system", "true").
type SettingError struct {
	Setting, Stored, Given string
}

func (e *SettingError) Error() string {
	name := map[string]string{SettingBootstrapTenantID: "bootstrap tenant", SettingMultiTenancy: "multi_tenancy"}[e.Setting]
	return fmt.Sprintf("the system was initialised with %s %q, the configuration says %q", name, e.Stored, e.Given)
}

// Unwrap returns docex.ErrInvalidConfig.
func (e *SettingError) Unwrap() error { return docex.ErrInvalidConfig }

// CompareSettings returns a *SettingError for the first setting of info
// that differs from those a system stored (stored maps
// SettingBootstrapTenantID and SettingMultiTenancy to their values), or
// nil.
func CompareSettings(stored map[string]string, info BootstrapInfo) error {
	for _, s := range []struct{ setting, given string }{
		{SettingBootstrapTenantID, info.BootstrapTenantID},
		{SettingMultiTenancy, strconv.FormatBool(info.MultiTenancy)},
	} {
		if v := stored[s.setting]; v != s.given {
			return &SettingError{Setting: s.setting, Stored: v, Given: s.given}
		}
	}
	return nil
}

// ContentRecorder is implemented by a Backend that records, in the system
// database, the filesystem content directory that engine.Bootstrap created
// or claimed for the system. A later Bootstrap that finds that directory
// missing refuses to start an empty one in its place: it was deleted, or
// its volume is not mounted, and the content it held is not known to be
// gone. Both built-in backends implement it; without it, Bootstrap goes by
// whether the system has documents alone.
type ContentRecorder interface {
	// ContentDir returns the content directory recorded, "" when none. It
	// returns docex.ErrNotInitialized when the system is not
	// bootstrapped. It writes nothing.
	ContentDir(ctx context.Context) (string, error)

	// RecordContentDir records dir as the system's content directory,
	// replacing the one recorded. It returns docex.ErrNotInitialized when
	// the system is not bootstrapped.
	RecordContentDir(ctx context.Context, dir string) error
}

// InitTracker is implemented by a Backend that records whether the
// initialisation of a system it created with BootstrapInfo.InitPending is
// finished. Both built-in backends implement it.
type InitTracker interface {
	// InitPending reports whether the system was created with
	// BootstrapInfo.InitPending and FinishInit has not been called since.
	// It returns docex.ErrNotInitialized when the system is not
	// bootstrapped. It writes nothing.
	InitPending(ctx context.Context) (bool, error)

	// FinishInit appends e to the system audit log and marks the
	// initialisation finished, in one transaction. On a system that is
	// not pending it appends e alone. It returns docex.ErrNotInitialized
	// when the system is not bootstrapped.
	FinishInit(ctx context.Context, e docex.AuditEntry) error
}

// Backend stores the tenant registry, the system audit log and, through
// TenantStore, every tenant's data. Methods are safe for concurrent use.
type Backend interface {
	// Bootstrap creates the system metadata and registers the bootstrap
	// tenant. It is idempotent: on an initialised system it changes
	// nothing and returns created=false. It never drops, truncates or
	// rewrites existing data. It returns docex.ErrSchemaVersion when the
	// existing system schema has another version, and a *SettingError
	// (docex.ErrInvalidConfig) when the existing system was bootstrapped
	// with another bootstrap tenant id or multi-tenancy setting.
	Bootstrap(ctx context.Context, info BootstrapInfo) (created bool, err error)

	// Check verifies that the system is bootstrapped with the same
	// settings and schema version. It returns docex.ErrNotInitialized when
	// it is not bootstrapped, docex.ErrSchemaVersion on another version
	// and a *SettingError on another setting.
	Check(ctx context.Context, info BootstrapInfo) error

	// SystemID returns the random id Bootstrap stored for the system,
	// which names it in the content store's claim marker (Claimer). It
	// returns "" for a system bootstrapped before system ids, until the
	// next Bootstrap adds one, and docex.ErrNotInitialized when the
	// system is not bootstrapped. It never creates or writes anything.
	SystemID(ctx context.Context) (string, error)

	// CreateTenant provisions t's isolation boundary and registers it,
	// all or nothing: on any error, or a crash, no registry row without a
	// working store remains, and nothing that a later CreateTenant of the
	// same id trips over. audit is appended to the system audit log in the
	// transaction that registers the tenant: both commit or neither. It
	// returns docex.ErrTenantExists when the id is registered (by this or
	// a concurrent call). The caller has validated the id.
	CreateTenant(ctx context.Context, t docex.Tenant, audit docex.AuditEntry) error

	// Tenant returns the registered tenant, or docex.ErrTenantNotFound.
	Tenant(ctx context.Context, id string) (docex.Tenant, error)

	// Tenants lists the registered tenants, ordered by id.
	Tenants(ctx context.Context) ([]docex.Tenant, error)

	// SetTenantStatus changes a tenant's status and appends audit to the
	// system audit log in the same transaction; docex.ErrTenantNotFound
	// when it is not registered.
	SetTenantStatus(ctx context.Context, id string, status docex.TenantStatus, audit docex.AuditEntry) error

	// DeleteTenant unregisters the tenant, appending audit to the system
	// audit log in the same transaction, and removes its store. After it
	// returns, OpenTenant fails and the id can be provisioned again.
	// docex.ErrTenantNotFound when it is not registered. A
	// *DeleteWaitError says that it deleted the tenant, as a nil error
	// does, without the wait for the tenant's writes in flight.
	DeleteTenant(ctx context.Context, id string, audit docex.AuditEntry) error

	// OpenTenant returns the store of a registered tenant. It fails closed:
	// an unregistered id gives docex.ErrTenantNotFound and a missing or
	// foreign store an error; it never creates anything. With
	// multi-tenancy disabled, the id must be "" and the store is the single
	// local store. The caller checks status and roles; the caller must
	// Close the store when done.
	OpenTenant(ctx context.Context, id string) (TenantStore, error)

	// AppendSystemAudit records an operator action or a denial that has no
	// tenant to be recorded in.
	AppendSystemAudit(ctx context.Context, e docex.AuditEntry) error

	// SystemAudit lists the system audit log, newest first.
	SystemAudit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error)

	// SystemAuditPrefix returns the entries of the system audit log that
	// a prune with the cutoff before deletes (AuditPrefix). It writes
	// nothing.
	SystemAuditPrefix(ctx context.Context, before time.Time) (AuditPrefix, error)

	// PruneSystemAudit deletes the entries of the system audit log that p
	// selects (as Tx.PruneAudit does), in one transaction; in the same
	// transaction, it appends the entry that final returns for what was
	// deleted, when final returns true. Nothing is deleted when the
	// append fails.
	PruneSystemAudit(ctx context.Context, p AuditPrune, final func(AuditPruned) (docex.AuditEntry, bool)) (AuditPruned, error)

	// SystemPlugins returns the store of system-wide plugins (installed by
	// the operator, available to every tenant, run as the calling tenant).
	SystemPlugins() PluginStore

	// Jobs returns the queue that delivers the jobs enqueued by tenant
	// transactions (PipelineWriter.InsertJob) to workers.
	Jobs() JobQueue

	// Close releases every resource. Stores still open become unusable.
	Close() error
}

// DeleteWaitError is Backend.DeleteTenant's error when it deleted the
// tenant (registry row, audit entry and store, as when it returns nil)
// but gave up waiting for the tenant's write in flight first (the SQLite
// backend past its lock timeout, behind a process that holds the tenant
// database's write lock: stalled, or stopped with SIGSTOP). The deletion
// stands; Err says why the wait gave up and names what held the write,
// for the caller to report as a warning.
type DeleteWaitError struct{ Err error }

func (e *DeleteWaitError) Error() string {
	return "tenant deleted without waiting for its write in flight: " + e.Err.Error()
}

// Unwrap returns Err.
func (e *DeleteWaitError) Unwrap() error { return e.Err }

// TenantStore is one tenant's data. It is bound to that tenant when opened;
// nothing reachable from it can read or write another tenant's data.
type TenantStore interface {
	Reader

	// Write runs fn in one transaction: all of fn's writes commit
	// together when fn returns nil, none when it returns an error. fn may
	// be called again if the backend retries a serialisation failure, so
	// it must not have side effects outside tx.
	Write(ctx context.Context, fn func(tx Tx) error) error

	// WriteIsolated is Write for a transaction that acts outside the
	// database on what it reads (the engine removing a content file no
	// document refers to): fn runs in a transaction that no other write
	// shares, so everything it reads is committed state and no other
	// write's rollback can undo what its action relied on. fn's outside
	// actions must be idempotent: it may run again like Write's.
	WriteIsolated(ctx context.Context, fn func(tx Tx) error) error

	// Tenant returns the registry record the store was opened for (the
	// zero Tenant when multi-tenancy is disabled).
	Tenant() docex.Tenant

	// Plugins returns the tenant's plugin store.
	Plugins() PluginStore

	// Close releases the caller's hold on the store.
	Close() error
}

// Reader are the read operations of a tenant store. Each call reads one
// committed state, even when it runs several statements: a document's
// metadata comes from the commit its row comes from, a page of documents
// and its total from one state, a document's sources and derived
// documents from one state (conformance ReadsAreSnapshots).
type Reader interface {
	PipelineReader

	// Basket returns the basket with the id, or docex.ErrNotFound.
	Basket(ctx context.Context, id string) (docex.Basket, error)
	// BasketByName returns the basket with the name, or docex.ErrNotFound.
	BasketByName(ctx context.Context, name string) (docex.Basket, error)
	// Baskets lists baskets ordered by name.
	Baskets(ctx context.Context, page docex.Page) ([]docex.Basket, error)

	// Document returns the document (with its metadata), or
	// docex.ErrNotFound.
	Document(ctx context.Context, id string) (docex.Document, error)
	// DocumentByChecksum returns the document of the basket with that
	// content checksum, or docex.ErrNotFound.
	DocumentByChecksum(ctx context.Context, basketID, checksum string) (docex.Document, error)
	// Documents lists a basket's documents with their metadata.
	Documents(ctx context.Context, basketID string, page docex.Page) ([]docex.Document, error)
	// DocumentsByName lists the basket's documents named name (in id
	// order, with their metadata), through the (basket, name) index: a
	// large basket is not read to find a few.
	DocumentsByName(ctx context.Context, basketID, name string, page docex.Page) ([]docex.Document, error)
	// FindDocuments lists a basket's documents matching all filters (at
	// least one) and the total number of matches.
	FindDocuments(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]docex.Document, int64, error)
	// ContentRefs counts the documents of the tenant whose content has
	// this checksum.
	ContentRefs(ctx context.Context, checksum string) (int64, error)
	// ContentRefsAfter lists the documents' references to content in
	// (checksum, document id) order, after (afterSum, afterID), at most
	// limit: a walk over everything the tenant stores (docex verify).
	ContentRefsAfter(ctx context.Context, afterSum, afterID string, limit int) ([]ContentRef, error)

	// Audit lists the tenant's audit log, newest first.
	Audit(ctx context.Context, page docex.Page) ([]docex.AuditEntry, error)
	// PrunableAudit returns the entries of the tenant's audit log that a
	// prune with the cutoff before deletes (AuditPrefix).
	PrunableAudit(ctx context.Context, before time.Time) (AuditPrefix, error)

	// OpenContent opens content stored in the database (storage type
	// "database"), or docex.ErrNotFound.
	OpenContent(ctx context.Context, checksum string) (io.ReadCloser, error)
}

// ContentRef is one document's reference to stored content.
type ContentRef struct {
	Checksum   string
	DocumentID string
	Size       int64
}

// Tx is a write transaction on one tenant store.
//
// A write whose caller needs neither a result nor a typed error
// (AppendAudit, PutContent, DeleteContent, LockContent and the batch
// forms of these) may be held back by the backend and sent with the
// transaction's next statement (PostgreSQL does, to save round trips):
// it then returns nil at once, and its error comes back from the
// transaction's next call or from Write, which rolls the transaction
// back. Held statements run in the order given and before any later
// statement: a content lock is held before the next read, so code that
// acts outside the database under the lock must run a statement first.
type Tx interface {
	Reader
	PipelineWriter

	// InsertBasket adds a basket; docex.ErrExists when the name is taken.
	InsertBasket(ctx context.Context, b docex.Basket) error
	// LockBasket locks the basket until the transaction ends and returns
	// it, as Basket does. A shared lock (exclusive false) keeps other
	// transactions from deleting the basket or changing its pipeline
	// binding; an exclusive one also keeps them from adding documents to
	// it. Adding a document holds a shared lock on its basket. A
	// transaction holding a conflicting lock has committed or rolled back
	// by the time it returns, and what it returns, and what this
	// transaction reads after it, includes that transaction's writes.
	// docex.ErrNotFound when absent.
	LockBasket(ctx context.Context, id string, exclusive bool) (docex.Basket, error)
	// DeleteBasket removes a basket and all its documents and metadata;
	// docex.ErrNotFound when absent.
	DeleteBasket(ctx context.Context, id string) error
	// LockDocuments locks the documents of ids until the transaction ends
	// and returns the content checksum of each that exists (an id with no
	// document is not in the map). A deletion or a content update of one
	// of them in flight has committed or rolled back by the time it
	// returns, and the checksums are those it left. A shared lock
	// (exclusive false) keeps other transactions from deleting the
	// documents or replacing their content (which locks them
	// exclusively); an exclusive one keeps them from deleting them or
	// locking them, shared or not.
	LockDocuments(ctx context.Context, ids []string, exclusive bool) (checksums map[string]string, err error)

	// InsertDocument adds a document and its metadata;
	// docex.ErrDuplicateContent when the basket holds the checksum already.
	InsertDocument(ctx context.Context, d docex.Document) error
	// UpdateContent replaces a document's content fields;
	// docex.ErrNotFound when absent, docex.ErrDuplicateContent when
	// another document of the basket has that checksum.
	UpdateContent(ctx context.Context, id string, size int64, checksum, contentType string, updatedAt time.Time) error
	// DeleteDocument removes a document and its metadata; docex.ErrNotFound
	// when absent.
	DeleteDocument(ctx context.Context, id string) error

	// SetMetadata sets (inserts or replaces) metadata keys of a document
	// and bumps its updated_at; docex.ErrNotFound when the document is
	// absent.
	SetMetadata(ctx context.Context, docID string, kv map[string]docex.Value, updatedAt time.Time) error
	// DeleteMetadata removes one key; docex.ErrNotFound when the document
	// or the key is absent.
	DeleteMetadata(ctx context.Context, docID, key string, updatedAt time.Time) error
	// MetadataTotals returns the number of metadata keys of each document
	// of ids and the bytes of its keys and values (a value as its stored
	// text: a number or a bool counts the bytes of its text form), as this
	// transaction sees them, writes included, in one indexed aggregate per
	// chunk of ids; a document that is absent or has no metadata is not in
	// the map. The engine calls it after every metadata write to bound a
	// document's metadata in total.
	MetadataTotals(ctx context.Context, ids []string) (map[string]MetadataTotal, error)

	// LockContent serialises, until the transaction ends, every
	// transaction of this tenant that locks the same checksum, so that a
	// content reference check and the content's removal cannot interleave
	// with the addition of a new reference. Backends whose write
	// transactions are already serialised may implement it as a no-op.
	LockContent(ctx context.Context, checksum string) error

	// AppendAudit records an entry in the tenant's audit log.
	AppendAudit(ctx context.Context, e docex.AuditEntry) error
	// PruneAudit deletes the entries of the tenant's audit log that p
	// selects (AuditPrune), lowest sequence number first, and says what
	// it deleted.
	PruneAudit(ctx context.Context, p AuditPrune) (AuditPruned, error)

	// PutContent stores content in the database (storage type "database").
	// Storing a checksum that exists is a no-op.
	PutContent(ctx context.Context, checksum string, data []byte) error
	// DeleteContent removes database content; absent is not an error.
	DeleteContent(ctx context.Context, checksum string) error
}

// BatchTx is implemented by transactions that insert many documents (with
// their metadata) and audit entries in few statements (multi-row INSERTs).
// The effect is that of InsertDocument for each document, in order, then
// AppendAudit for each entry; the engine uses it for batch adds when the
// backend's Tx has it.
type BatchTx interface {
	InsertDocuments(ctx context.Context, docs []docex.Document, audit []docex.AuditEntry) error
	// ReplaceContents stores content rows (as PutContent), replacing any
	// row of the same checksum (as DeleteContent first), in few
	// statements. checksums and data have the same length.
	ReplaceContents(ctx context.Context, checksums []string, data [][]byte) error
}

// DocumentIDsReader is implemented by tenant stores that list documents'
// ids without reading their metadata; the engine's plugin lookups use it
// (a guest gets ids only: the stores' lists read every listed document's
// metadata, up to 16 MiB + 64 KiB each).
type DocumentIDsReader interface {
	// FindDocumentIDs returns the ids of the page of FindDocuments (the
	// same documents in the same order, errors as its), without the
	// total and without reading metadata other than the filters' match.
	FindDocumentIDs(ctx context.Context, basketID string, filters []docex.MetaFilter, page docex.Page) ([]string, error)
	// DocumentIDsByName returns the ids of the page of DocumentsByName
	// (the same documents in the same order, errors as its), without
	// reading their metadata.
	DocumentIDsByName(ctx context.Context, basketID, name string, page docex.Page) ([]string, error)
}

// KeyedIDsReader is implemented by tenant stores that list a basket's
// documents as ids, each with whether it has one metadata key, without
// reading metadata values (a document may hold 16 MiB + 64 KiB of them):
// `pipeline run --basket` pages through every document of a basket for
// its originals.
type KeyedIDsReader interface {
	// DocumentIDsWithKey returns the page of Documents (the same
	// documents in the same order, errors as its) as ids, each with
	// whether the document has metadata key key.
	DocumentIDsWithKey(ctx context.Context, basketID string, page docex.Page, key string) ([]KeyedID, error)
}

// KeyedID is a document's id and whether it has the metadata key asked
// for (KeyedIDsReader).
type KeyedID struct {
	ID     string
	HasKey bool
}

// MetadataTotal is a document's metadata in total (Tx.MetadataTotals):
// its number of keys and the bytes of its keys and values.
type MetadataTotal struct {
	Keys, Bytes int64
}

// MetadataSet is one document's metadata to set (SetMetadata's arguments).
type MetadataSet struct {
	DocumentID string
	Values     map[string]docex.Value
}

// MetadataBatchTx is implemented by transactions that set the metadata of
// many documents in few statements; the engine uses it for the metadata
// a step transaction's runs set on their inputs.
type MetadataBatchTx interface {
	// SetMetadataBatch has the effect of SetMetadata on each set, in
	// order (a key set twice on one document keeps the later value), with
	// updatedAt for all. It returns docex.ErrNotFound when a document is
	// absent; the transaction must then be rolled back.
	SetMetadataBatch(ctx context.Context, sets []MetadataSet, updatedAt time.Time) error
}

// MergeMetadataSets merges sets by document, in order (a later value of a
// key wins), and returns the merged values and the documents in the order
// of their first set.
func MergeMetadataSets(sets []MetadataSet) (map[string]map[string]docex.Value, []string) {
	merged := make(map[string]map[string]docex.Value, len(sets))
	var order []string
	for _, set := range sets {
		m, ok := merged[set.DocumentID]
		if !ok {
			m = make(map[string]docex.Value, len(set.Values))
			merged[set.DocumentID] = m
			order = append(order, set.DocumentID)
		}
		for k, v := range set.Values {
			m[k] = v
		}
	}
	return merged, order
}

// ChecksumTx is implemented by transactions that resolve many content
// checksums in few statements or round trips; the engine uses it to add a
// batch's derived documents when the backend's Tx has it.
type ChecksumTx interface {
	// LockContents has the effect of LockContent on each checksum, taken
	// in one order whatever the order of checksums (duplicates allowed),
	// so that two transactions locking overlapping sets cannot deadlock.
	LockContents(ctx context.Context, checksums []string) error
	// DocumentsByChecksums returns the basket's documents (with their
	// metadata) whose checksum is one of checksums, by checksum; a
	// checksum no document of the basket has is absent from the map.
	DocumentsByChecksums(ctx context.Context, basketID string, checksums []string) (map[string]docex.Document, error)
	// ContentRefsOf has the effect of ContentRefs on each checksum: the
	// number of the tenant's documents with it, by checksum; a checksum no
	// document has may be absent from the map.
	ContentRefsOf(ctx context.Context, checksums []string) (map[string]int64, error)
}

// ContentRefsReader is implemented by tenant stores that count the
// references to many checksums in one read: the effect of ContentRefs on
// each, by checksum (a checksum no document has may be absent). The
// engine uses it before it makes staged content durable, to leave out
// content the tenant holds already (it would not be put).
type ContentRefsReader interface {
	ContentRefsOf(ctx context.Context, checksums []string) (map[string]int64, error)
}

// UnreferencedContentLister is implemented by tenant stores that keep
// content in their database (Tx.PutContent). UnreferencedContents returns
// up to limit checksums of stored content rows that no document of the
// tenant refers to, those after the checksum after, in checksum order. A
// sweep removes them, each under its content lock and only when its
// references, counted again there, are still none.
type UnreferencedContentLister interface {
	UnreferencedContents(ctx context.Context, after string, limit int) ([]string, error)
}

// Sweeper is implemented by backends that can leave unregistered storage
// behind after a crash (for example a tenant file renamed into place whose
// registry row never committed). Sweep removes it and returns what it
// removed; with dryRun it removes nothing and returns what it would
// remove. It must never remove anything a registered tenant uses. A file
// whose age the backend goes by (one an operation in flight may be
// building) is removed only when older than grace, and the backend may
// require more (it documents how much).
type Sweeper interface {
	Sweep(ctx context.Context, grace time.Duration, dryRun bool) ([]string, error)
}

// PluginRecord is an installed plugin: its manifest as installed and the
// checksum of its module, whose bytes the store keeps (content-addressed).
type PluginRecord struct {
	Name         string
	Version      string
	Manifest     []byte // the plugin.toml as installed
	ModuleSHA256 string
	InstalledAt  time.Time
	InstalledBy  string
}

// PluginStore keeps installed plugins: a tenant's (TenantStore.Plugins) or
// the system-wide ones (Backend.SystemPlugins). Module bytes are stored by
// the store, so a plugin cannot change after it was installed.
type PluginStore interface {
	// Plugins lists the installed plugins ordered by name.
	Plugins(ctx context.Context) ([]PluginRecord, error)
	// Plugin returns the plugin and its module bytes, or docex.ErrNotFound.
	Plugin(ctx context.Context, name string) (PluginRecord, []byte, error)
	// PluginRecord returns the plugin without reading its module (a run
	// whose compiled plugin is cached needs only this), or
	// docex.ErrNotFound.
	PluginRecord(ctx context.Context, name string) (PluginRecord, error)
	// PutPlugin installs or replaces the plugin of that name, atomically.
	PutPlugin(ctx context.Context, rec PluginRecord, module []byte) error
	// DeletePlugin removes the plugin (and its module when no other plugin
	// uses it); docex.ErrNotFound when absent.
	DeletePlugin(ctx context.Context, name string) error
}
