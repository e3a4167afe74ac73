package main

import (
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/postgres"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// hints say what to do next after an error, in the CLI's terms (flags,
// environment variables, commands); the engine's messages say what went
// wrong in the library's terms. The first matching entry wins.
var hints = []struct {
	err  error
	hint func(g globals) string
}{
	{driver.ErrUnclaimed, fixed("if storage.documents in docex.yaml changed after docex init, change it back (docex init would claim the new location for this system); if this system was initialised by an older docex, run docex init")},
	{docex.ErrNotInitialized, fixed("run docex init here (or in the directory that should hold the data), or point --config or DOCEX_CONFIG at an existing docex.yaml")},
	{s3store.ErrNoSuchBucket, func(g globals) string {
		return "create the bucket (docex never creates buckets), or correct storage.documents.s3.bucket (or endpoint, region) in docex.yaml"
	}},
	{docex.ErrStorageDenied, func(g globals) string {
		if g.s3 != nil && g.s3.AccessKeyIDEnv != "" {
			return fmt.Sprintf("check the credentials in %s and %s (storage.documents.s3.access_key_id_env, secret_access_key_env) and what the bucket's policy allows them",
				config.S3EnvName("access_key_id_env", g.s3.AccessKeyIDEnv), config.S3EnvName("secret_access_key_env", g.s3.SecretAccessKeyEnv))
		}
		return "check the AWS SDK's credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared config files, the instance role) and what the bucket's policy allows them, or name variables in storage.documents.s3.access_key_id_env and secret_access_key_env"
	}},
	{driver.ErrSpool, func(g globals) string {
		if g.s3 != nil {
			return "nothing was stored: make the path named a writable directory with room for the content (docex creates it when it is missing) where nothing else removes or changes docex's spool files while it runs, or set storage.documents.s3.spool_dir in docex.yaml to one that is (left out, <data_dir>/s3-spool)"
		}
		return "nothing was stored: create the directory named, make it writable with room for the content, or set storage.documents.spool_dir in docex.yaml to a directory that is (left out, the system's temporary directory, $TMPDIR); raising storage.documents.max_staged_memory spools less"
	}},
	{sqlite.ErrBusy, fixed("another docex process (a worker, an add, docex compact) held the database's write lock for longer than database.sqlite.busy_timeout_ms: run the command again, or raise busy_timeout_ms in docex.yaml")},
	{sqlite.ErrLockTimeout, fixed("the tenant is suspended already: run the command again to wait for the write named, or raise database.sqlite.lock_timeout_ms in docex.yaml to wait longer; a process stopped with SIGSTOP (state T in ps) holds the lock until continued (kill -CONT PID) or killed (kill -9 PID: its write is then lost, nothing of it kept)")},
	{postgres.ErrBusy, fixed("nothing was changed: run the command again once the transactions named have ended, or raise database.postgres.lock_timeout_ms in docex.yaml to wait longer; one idle in transaction whose client is frozen or gone ends once it has been idle for database.postgres.idle_in_transaction_timeout_ms (5 min by default), or at once with SELECT pg_terminate_backend(PID) in psql")},
	{s3store.ErrDamagedInTransit, fixed("the bytes were damaged between docex and the S3 server, which refused them (nothing was stored): run the command again; if it keeps failing, check what sits between them (a proxy or load balancer that changes bodies, faulty network hardware) and storage.documents.s3.endpoint")},
	{postgres.ErrIdleInTransaction, fixed("nothing of the transaction was kept: run the command again; if its content work (large documents, a slow S3 server) keeps a transaction idle that long, raise database.postgres.idle_in_transaction_timeout_ms in docex.yaml (5 min by default)")},
	{docex.ErrStorageUnavailable, func(g globals) string {
		if g.s3 == nil { // the content directory is missing
			return "restore the content directory, or mount the volume that holds it, then run the command again; if storage.documents.path in docex.yaml changed, change it back"
		}
		return "check that the S3 server is running and reachable at storage.documents.s3.endpoint (request_timeout_ms bounds each request), then run the command again"
	}},
	{docex.ErrTooManyOpenFiles, fixed("raise the open-file limit of the process (ulimit -n, and the hard limit ulimit -Hn, which docex uses; LimitNOFILE= in a systemd unit; --ulimit nofile= for a container), or lower database.sqlite.max_open_tenants in docex.yaml (0, the default, sizes it from the limit); then run the command again")},
	{docex.ErrHostCapacity, fixed("the plugin is valid: this host has no room for it at the moment; run the command again once other plugin runs have ended (a worker retries the job); for too many compiled modules, raise sandbox.max_compiled_code_bytes in docex.yaml; when the host could not reserve memory, raise the memory and address space the process may use (ulimit -v, vm.max_map_count) or lower the plugin's memory_pages in its manifest")},
	{docex.ErrInvalidConfig, fixed("fix that key in docex.yaml; docex.yaml.example documents every key")},
	{docex.ErrUserRequired, fixed("pass --user ID or set DOCEX_USER (the user is recorded in the audit log)")},
	{docex.ErrTenantRequired, fixed("pass --tenant ID or set DOCEX_TENANT (an operator lists tenants with docex tenant list)")},
	{docex.ErrTenantNotFound, fixed("check the tenant id: docex tenant list shows the tenants")},
	{docex.ErrTenantUnknown, fixed("check the tenant id: an operator lists tenants with docex tenant list and creates one with docex tenant create ID")},
	{docex.ErrTenantSuspended, func(g globals) string { return "an operator can resume it: docex tenant resume " + g.tenant }},
	{docex.ErrBootstrapTenant, fixed("the bootstrap tenant holds the system's own records only: name a tenant created with docex tenant create (docex tenant list shows them)")},
	{docex.ErrForbidden, func(g globals) string {
		if len(g.roles) == 0 {
			return "pass --roles (reader, writer or admin) or set DOCEX_ROLES"
		}
		return "this needs another role (docex help lists what reader, writer and admin may do)"
	}},
	{docex.ErrMultiTenancyOff, func(g globals) string {
		if g.tenant != "" {
			return "this docex.yaml is local single-file mode, without tenants: drop --tenant and unset DOCEX_TENANT"
		}
		return "this docex.yaml is local single-file mode, which has no tenants; for tenants, docex init another one: docex init --config DIR/docex.yaml"
	}},
	{docex.ErrBasketNotEmpty, fixed("add --force to delete the basket with its documents")},
	{pluginapi.ErrHashMismatch, fixed("the module is not the one plugin.toml names: if you rebuilt it, set sha256 in plugin.toml to its sha256sum")},
	{driver.ErrStoreDamaged, fixed("the tenant's tables in the database are missing or another tenant's (a dropped or renamed PostgreSQL schema, another tenant's SQLite file in its place): restore them from a backup of the database")},
	{docex.ErrCorrupt, fixed("stored content is damaged, or not where docex.yaml's storage.documents now points (a changed type, path, bucket or prefix): an operator runs docex verify to list every damaged object and the documents that refer to it")},
	{docex.ErrSchemaVersion, fixed("use the docex version that created this data (docex --version prints this binary's schema version)")},
}

func fixed(s string) func(globals) string { return func(globals) string { return s } }

// hintedError is an error with a hint of its own (a command's specific
// advice); it unwraps to the error.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

// withHint returns err carrying hint, which hintFor prefers to the table's.
func withHint(err error, hint string) error { return &hintedError{err: err, hint: hint} }

// hintFor returns what to do next after err, or "" when the message says
// it all.
func hintFor(err error, g globals) string {
	if he, ok := errors.AsType[*hintedError](err); ok {
		return he.hint
	}
	for _, h := range hints {
		if errors.Is(err, h.err) {
			return h.hint(g)
		}
	}
	return ""
}
