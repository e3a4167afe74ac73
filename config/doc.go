// Package config reads docex.yaml, the one versioned configuration file of
// docex, strictly: an unknown key, a value of the wrong type or an
// unsupported config_version is an error that names the key and its line.
//
// Only the CLI (and applications that choose to) read files; the library
// packages take plain config structs. Relative paths in a file resolve
// against the file's directory, so a whole directory can be moved. Secrets
// are never written in the file: a PostgreSQL password or DSN is named by
// an environment variable (dsn_env), and is never printed.
package config
