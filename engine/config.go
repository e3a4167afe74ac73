package engine

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// Content storage types.
const (
	ContentFilesystem = "filesystem"
	ContentDatabase   = "database"
	// ContentExternal is Config.ContentStore's type, set by default when
	// that field is set.
	ContentExternal = "external"
)

// Config configures an Engine. Every field has a default except
// ContentDir, which filesystem content (the default ContentStorage) needs:
// the zero value plus a ContentDir is a single-tenant engine.
type Config struct {
	// MultiTenancy requires a tenant in every runtime UserContext. When
	// false, there is one local store and UserContext.TenantID must be "".
	MultiTenancy bool

	// BootstrapTenantID is the id of the tenant that owns the system
	// metadata (default "system"). It is never usable for business
	// operations.
	BootstrapTenantID string

	// ContentStorage is ContentFilesystem (default), ContentDatabase, or
	// ContentExternal (the default when ContentStore is set).
	ContentStorage string

	// ContentStore keeps content outside the engine's built-in stores, for
	// example in an S3 bucket. It must pass the conformance suite in
	// backends/contenttest. The engine does not own it.
	ContentStore driver.ContentStore

	// ContentDir is the root of filesystem content; each tenant gets its
	// own subdirectory. Required for ContentFilesystem.
	ContentDir string

	// NoContentSync skips fsync of filesystem content (default false: every
	// acknowledged document's content is fsynced before its row commits).
	// Content then survives a process crash (kill -9) but not a power
	// loss; pair it with the SQLite backend's Synchronous "normal".
	NoContentSync bool

	// ContentPackMax is the largest filesystem content packed with the
	// rest of its batch into one pack file (docs/architecture.md, content
	// packs): 0 is the default, 64 KiB; negative stores every content as a
	// file of its own.
	ContentPackMax int64

	// MaxDocumentBytes is the largest document accepted (default 256 MiB).
	// Larger documents are refused with docex.ErrTooLarge and nothing is
	// stored.
	MaxDocumentBytes int64

	// MaxStagedMemory bounds the content bytes one add (AddDocuments,
	// docex doc add, a step's outputs) holds in memory before its
	// transaction (0 is the default, DefaultMaxStagedMemory). Filesystem
	// content is staged in memory up to the pack size and written into
	// one pack per batch; the database store reads all of it into memory.
	// Past this bound, what is staged so far is written out (a pack of its
	// own; for the database store a spool file without a name in
	// SpoolDir, read back in the transaction) and the
	// memory released. One document is always held whole by the database
	// store, whatever its size. An external ContentStore bounds its own
	// staging: the CLI gives this value to the S3 store as its store-wide
	// budget (s3store.Config.MemoryBudget).
	MaxStagedMemory int64

	// SpoolDir is the directory of the database store's spool files
	// (ContentDatabase; see MaxStagedMemory): an absolute path, or "" for
	// the system's temporary directory (os.TempDir, $TMPDIR). A relative
	// path is docex.ErrInvalidConfig. The directory is not created: one
	// missing or not writable when an add spills fails that add, before
	// its transaction, with docex.ErrStorageUnavailable naming it.
	// Filesystem content spills into packs in ContentDir; an external
	// ContentStore stages on its own (s3store.Config.SpoolDir).
	SpoolDir string

	// Sandbox runs plugins (optional: without it, plugin operations
	// return docex.ErrNoSandbox). A *sandbox.Sandbox is one; the engine
	// sees it only through PluginRuntime and does not own it.
	Sandbox PluginRuntime

	// Policy authorises runtime operations (default tenancy.RolePolicy).
	Policy tenancy.Policy

	// Now returns the current time (default time.Now); tests set it.
	Now func() time.Time
}

// DefaultMaxDocumentBytes is the default of Config.MaxDocumentBytes.
const DefaultMaxDocumentBytes = 256 << 20

// DefaultMaxStagedMemory is the default of Config.MaxStagedMemory.
const DefaultMaxStagedMemory = 16 << 20

// withDefaults returns cfg with defaults filled in, or docex.ErrInvalidConfig.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.BootstrapTenantID == "" {
		cfg.BootstrapTenantID = "system"
	}
	if err := tenancy.ValidateSyntax(cfg.BootstrapTenantID); err != nil {
		return cfg, fmt.Errorf("%w: bootstrap tenant id: %w", docex.ErrInvalidConfig, err)
	}
	switch cfg.ContentStorage {
	case "":
		cfg.ContentStorage = ContentFilesystem
		if cfg.ContentStore != nil {
			cfg.ContentStorage = ContentExternal
		}
	case ContentFilesystem, ContentDatabase, ContentExternal:
	default:
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "content storage %q: want %q, %q or %q", cfg.ContentStorage, ContentFilesystem, ContentDatabase, ContentExternal)
	}
	if (cfg.ContentStorage == ContentExternal) != (cfg.ContentStore != nil) {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "content storage %q and a content store: give a store exactly with %q", cfg.ContentStorage, ContentExternal)
	}
	if cfg.ContentStorage == ContentFilesystem && cfg.ContentDir == "" {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "filesystem content storage needs a content directory")
	}
	if cfg.MaxDocumentBytes == 0 {
		cfg.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if cfg.MaxDocumentBytes < 0 {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "max document bytes %d is negative", cfg.MaxDocumentBytes)
	}
	if cfg.MaxStagedMemory == 0 {
		cfg.MaxStagedMemory = DefaultMaxStagedMemory
	}
	if cfg.MaxStagedMemory < 0 {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "max staged memory %d is negative", cfg.MaxStagedMemory)
	}
	if cfg.SpoolDir != "" && !filepath.IsAbs(cfg.SpoolDir) {
		return cfg, docex.Errorf(docex.ErrInvalidConfig, "spool directory %q is not an absolute path", cfg.SpoolDir)
	}
	if cfg.Policy == nil {
		cfg.Policy = tenancy.RolePolicy{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}
