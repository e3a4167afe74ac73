// Package tenancy validates tenant identifiers and user contexts and decides
// what a user may do (the Policy).
//
// The tenant id rule is documented on ValidateTenantID and in
// docs/isolation.md. Every place that turns a tenant id into a path or an SQL
// identifier calls ValidateTenantID first and quotes anyway.
package tenancy
