// Package sqlite is the embedded docex storage backend: a system database
// file (tenant registry, system metadata, system audit log) plus one
// database file per tenant, all under one directory.
//
// Layout under Config.Dir:
//
//	system.db                              registry, system audit, meta
//	tenants/<tenant id>/<incarnation>.db   one file per tenant incarnation
//
// With multi-tenancy disabled the local store's tables live in the system
// file itself, so with database content storage one file holds everything
// (local single-file mode) and can be copied to another machine.
//
// Isolation is enforced in one place, Backend.OpenTenant: it resolves the
// tenant through the registry and opens only that tenant's file, read-write
// but never create (SQLite's mode=rw), so an unknown or deleted tenant fails
// closed. Tenant files are named by incarnation, so a re-provisioned id
// never meets a stale file, WAL or cached handle of its predecessor.
// See docs/isolation.md.
package sqlite
