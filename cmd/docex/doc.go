// Command docex is the docex command-line interface: system bootstrap
// (init), tenant provisioning (tenant ...), documents (basket, doc, audit)
// and plugins, over the embedded SQLite backend or PostgreSQL.
//
// Run "docex --help" for the commands. Exit codes are documented in
// exitcodes.go and in the README: 0 ok, 1 internal, 2 usage or invalid
// input, 3 not found, 4 denied, 5 conflict.
package main
