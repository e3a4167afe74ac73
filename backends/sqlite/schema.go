package sqlite

// auditColumns are the columns of an audit log table (docex.AuditEntry):
// the system's (docex_system_audit) and each tenant's (audit).
const auditColumns = `
	seq       INTEGER PRIMARY KEY, -- rowid: only a prefix is ever deleted (audit prune), never the newest row, so it only grows
	id        TEXT NOT NULL,
	time      INTEGER NOT NULL,
	tenant_id TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	roles     TEXT NOT NULL,
	operation TEXT NOT NULL,
	target    TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	error     TEXT NOT NULL,
	detail    TEXT NOT NULL
`

// systemSchema creates the system tables. Every statement is idempotent.
const systemSchema = `
CREATE TABLE IF NOT EXISTS docex_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docex_tenants (
	id           TEXT PRIMARY KEY,
	display_name TEXT NOT NULL,
	status       TEXT NOT NULL,
	is_system    INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	incarnation  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docex_system_audit (` + auditColumns + `);
`

// tenantSchema creates a tenant's tables. In single-file mode it is applied
// to the system file, so every statement is idempotent and no name clashes
// with the system tables.
const tenantSchema = `
CREATE TABLE IF NOT EXISTS tenant_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baskets (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	doc_count  INTEGER NOT NULL DEFAULT 0, -- maintained by the driver
	bytes      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS documents (
	id           TEXT PRIMARY KEY,
	basket_id    TEXT NOT NULL REFERENCES baskets(id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	content_type TEXT NOT NULL,
	size         INTEGER NOT NULL,
	checksum     TEXT NOT NULL,
	status       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	UNIQUE (basket_id, checksum)
);
CREATE INDEX IF NOT EXISTS documents_by_basket ON documents (basket_id, id);
CREATE INDEX IF NOT EXISTS documents_by_name ON documents (basket_id, name, id);
CREATE INDEX IF NOT EXISTS documents_by_checksum ON documents (checksum);
CREATE TABLE IF NOT EXISTS metadata (
	document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
	basket_id   TEXT NOT NULL,
	key         TEXT NOT NULL,
	vtype       INTEGER NOT NULL,
	value       TEXT NOT NULL,
	PRIMARY KEY (document_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metadata_find ON metadata (basket_id, key, vtype, value, document_id);
CREATE TABLE IF NOT EXISTS audit (` + auditColumns + `);
CREATE TABLE IF NOT EXISTS content (
	checksum TEXT PRIMARY KEY,
	data     BLOB NOT NULL
);
`

// pluginSchema is created in the system file (system-wide plugins) and in
// every tenant file.
const pluginSchema = `
CREATE TABLE IF NOT EXISTS plugins (
	name          TEXT PRIMARY KEY,
	version       TEXT NOT NULL,
	manifest      BLOB NOT NULL,
	module_sha256 TEXT NOT NULL,
	installed_at  INTEGER NOT NULL,
	installed_by  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plugin_modules (
	sha256 TEXT PRIMARY KEY,
	data   BLOB NOT NULL
);
`
