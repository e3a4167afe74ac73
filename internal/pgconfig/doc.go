// Package pgconfig holds the rules for PostgreSQL settings that both the
// configuration file (package config) and the PostgreSQL backend check, so
// that each rule lives in one place: which schema names are acceptable, and
// which parts of a connection string are secrets.
//
// Connection strings are read with pgx's own parser (pgconn), never by
// splitting strings: whatever pgx would send as a password is what is
// detected and masked.
package pgconfig
