// Package driver defines the interfaces a storage backend implements
// (backends/sqlite, backends/postgres). Applications do not use it directly:
// package engine wraps a driver.Backend and adds validation, authorisation,
// deduplication, content storage and audit once for every backend.
//
// Tenant isolation is the backend's job and happens in exactly one place:
// Backend.OpenTenant returns a TenantStore bound to one tenant, and no method
// of TenantStore takes a tenant id. Contracts are written as error kinds:
// "returns an error matching docex.ErrNotFound" means errors.Is must hold.
//
// Every backend must pass the conformance suite in backends/backendtest.
package driver
