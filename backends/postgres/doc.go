// Package postgres is the PostgreSQL backend of docex: one schema per
// tenant in one database, reached through one pgx connection pool.
//
// # Layout
//
// The system schema (Config.BootstrapSchema, default "docex_system") holds
// the tables meta (schema_version, bootstrap_tenant_id, multi_tenancy),
// tenants (the registry) and system_audit. Every tenant has a schema of its
// own, Config.TenantSchemaPrefix + id (tenant "acme" lives in
// "docex_t_acme"), with the tables meta, baskets, documents, metadata,
// audit, content, plugins and plugin_modules (the system schema has the
// last two as well, for system-wide plugins). Nothing in a tenant schema
// refers to another schema, so Citus schema-based sharding can distribute
// each schema unchanged (see docs/scale-out.md).
//
// With multi-tenancy disabled there is one local store, the schema
// BootstrapSchema + "_local" (default "docex_system_local"), created by
// Bootstrap with the same tables as a tenant schema.
//
// # Isolation
//
// Every tenant query runs in a transaction that first sets the
// transaction-local search_path to the tenant's quoted schema (followed only
// by pg_temp, never public) and checks, in the same round trip as its
// BEGIN, that the schema exists and is first on the path. One function, Backend.inTenant,
// does this; every TenantStore and Tx method goes through it, and the tenant
// SQL itself is unqualified, so pgx's statement cache holds one statement
// per query shape whatever the number of tenants. Connections start with an
// empty search_path, and session state is reset when a connection returns
// to the pool. Registry queries name the system schema explicitly. See
// docs/isolation-postgres.md.
package postgres
