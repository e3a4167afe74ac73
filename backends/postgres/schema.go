package postgres

import (
	"fmt"
	"strings"
)

// systemDDL creates the system tables; %[1]s is the quoted system schema.
// Every statement is idempotent (IF NOT EXISTS) and runs inside Bootstrap's
// transaction.
const systemDDL = `
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.meta (
	key   text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);
CREATE TABLE IF NOT EXISTS %[1]s.tenants (
	id           text COLLATE "C" PRIMARY KEY,
	display_name text NOT NULL,
	status       text NOT NULL,
	is_system    boolean NOT NULL DEFAULT false,
	created_at   timestamptz NOT NULL,
	incarnation  text NOT NULL
);
CREATE TABLE IF NOT EXISTS %[1]s.system_audit (` + auditColumns + `);
CREATE INDEX IF NOT EXISTS system_audit_time_idx ON %[1]s.system_audit (time DESC, seq DESC);
`

// auditColumns are the columns of an audit table (docex.AuditEntry).
const auditColumns = `
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id        text NOT NULL,
	time      timestamptz NOT NULL,
	tenant_id text NOT NULL,
	user_id   text NOT NULL,
	roles     text[] NOT NULL,
	operation text NOT NULL,
	target    text NOT NULL,
	outcome   text NOT NULL,
	error     text NOT NULL,
	detail    text NOT NULL
`

// tenantDDL creates a tenant store; %[1]s is the quoted tenant schema and
// %[2]d the schema version. It is not idempotent on purpose: CREATE SCHEMA
// fails when the schema exists. Every name is qualified by the tenant
// schema and every foreign key stays inside it, so Citus schema-based
// sharding can distribute the schema as it is.
//
// Text keys use the "C" collation: byte order, as in the SQLite backend,
// and UUIDv7 ids sort by time. The metadata index holds md5(value) rather
// than value so that values up to the engine's 64 KiB limit stay below the
// B-tree row limit; queries recheck value itself.
const tenantDDL = `
CREATE SCHEMA %[1]s;
CREATE TABLE %[1]s.meta (
	key   text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);
CREATE TABLE %[1]s.baskets (
	id         text COLLATE "C" PRIMARY KEY,
	name       text COLLATE "C" NOT NULL,
	created_at timestamptz NOT NULL,
	doc_count  bigint NOT NULL DEFAULT 0,
	bytes      bigint NOT NULL DEFAULT 0,
	CONSTRAINT baskets_name_key UNIQUE (name)
);
CREATE TABLE %[1]s.documents (
	id           text COLLATE "C" PRIMARY KEY,
	basket_id    text COLLATE "C" NOT NULL REFERENCES %[1]s.baskets (id) ON DELETE CASCADE,
	name         text COLLATE "C" NOT NULL,
	content_type text NOT NULL,
	size         bigint NOT NULL,
	checksum     text COLLATE "C" NOT NULL,
	status       text NOT NULL,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	CONSTRAINT documents_basket_checksum_key UNIQUE (basket_id, checksum)
);
CREATE INDEX documents_basket_id_idx ON %[1]s.documents (basket_id, id);
CREATE INDEX documents_basket_name_idx ON %[1]s.documents (basket_id, name, id);
CREATE INDEX documents_checksum_idx ON %[1]s.documents (checksum);
CREATE TABLE %[1]s.metadata (
	document_id text COLLATE "C" NOT NULL REFERENCES %[1]s.documents (id) ON DELETE CASCADE,
	basket_id   text COLLATE "C" NOT NULL,
	key         text COLLATE "C" NOT NULL,
	vtype       smallint NOT NULL,
	value       text COLLATE "C" NOT NULL,
	PRIMARY KEY (document_id, key)
);
CREATE INDEX metadata_find_idx ON %[1]s.metadata (basket_id, key, vtype, md5(value), document_id);
CREATE TABLE %[1]s.audit (` + auditColumns + `);
CREATE INDEX audit_time_idx ON %[1]s.audit (time DESC, seq DESC);
CREATE TABLE %[1]s.content (
	checksum text COLLATE "C" PRIMARY KEY,
	data     bytea NOT NULL
);
INSERT INTO %[1]s.meta (key, value) VALUES ('schema_version', '%[2]d');
`

// systemSQL are the registry statements, qualified by the system schema.
// They are built once per Backend, so their text is constant.
type systemSQL struct {
	metaAll, metaInsert, metaUpsert, metaDelete string
	tenantCols                                  string
	tenantGet, tenantList, tenantInsert         string
	tenantStatus, tenantDelete, tenantForOpen   string
	auditInsert, auditList                      string
}

func newSystemSQL(sys string) systemSQL {
	r := strings.NewReplacer("{sys}", sys)
	cols := `id, display_name, status, is_system, created_at, incarnation`
	return systemSQL{
		metaAll:      r.Replace(`SELECT key, value FROM {sys}.meta`),
		metaInsert:   r.Replace(`INSERT INTO {sys}.meta (key, value) VALUES ($1, $2)`),
		metaUpsert:   r.Replace(`INSERT INTO {sys}.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`),
		metaDelete:   r.Replace(`DELETE FROM {sys}.meta WHERE key = $1`),
		tenantCols:   cols,
		tenantGet:    r.Replace(`SELECT ` + cols + ` FROM {sys}.tenants WHERE id = $1`),
		tenantList:   r.Replace(`SELECT ` + cols + ` FROM {sys}.tenants ORDER BY id`),
		tenantInsert: r.Replace(`INSERT INTO {sys}.tenants (` + cols + `) VALUES ($1, $2, $3, $4, $5, $6)`),
		tenantStatus: r.Replace(`UPDATE {sys}.tenants SET status = $2 WHERE id = $1 RETURNING is_system`),
		tenantDelete: r.Replace(`DELETE FROM {sys}.tenants WHERE id = $1 AND NOT is_system`),
		// One round trip for OpenTenant: the multi-tenancy setting (which
		// proves the system is initialised) and the registry row, if any.
		tenantForOpen: r.Replace(`SELECT m.value, t.id, t.display_name, t.status, t.is_system, t.created_at, t.incarnation
			FROM {sys}.meta m LEFT JOIN {sys}.tenants t ON t.id = $1 WHERE m.key = 'multi_tenancy'`),
		auditInsert: r.Replace(`INSERT INTO {sys}.system_audit (` + auditInsertCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`),
		auditList:   r.Replace(`SELECT ` + auditInsertCols + ` FROM {sys}.system_audit ORDER BY time DESC, seq DESC LIMIT $1 OFFSET $2`),
	}
}

const auditInsertCols = `id, time, tenant_id, user_id, roles, operation, target, outcome, error, detail`

// systemDDLFor returns the system DDL for the quoted schema sys.
func systemDDLFor(sys string) string { return fmt.Sprintf(systemDDL+pluginDDL, sys) }

// tenantDDLFor returns the DDL of a tenant store in the quoted schema.
func tenantDDLFor(schema string, version int) string {
	return fmt.Sprintf(tenantDDL+pluginDDL+jobDDL, schema, version)
}
