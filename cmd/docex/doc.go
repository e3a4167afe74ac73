// Command docex is the docex command-line interface: system bootstrap
// (init), tenant provisioning (tenant ...), documents (basket, doc, audit)
// and plugins, over the embedded SQLite backend or PostgreSQL.
//
// Run "docex help" for the commands. Exit codes are mapped from error
// kinds in one table (exitcodes.go) and listed in the README: 0 ok,
// 1 internal, 2 usage or invalid input, 3 not found, 4 denied,
// 5 conflict, 6 plugin failed, 130 interrupted (Ctrl-C, SIGTERM).
//
// Layout: main.go parses the command line; commands.go is the registry and
// the help screens; cli.go opens the configured system (lazily, once per
// invocation, closed when the command returns); output.go prints results
// (emit) and errors; hints.go says what to do next after an error. Each
// group of commands lives in a file of its own (tenants.go, documents.go,
// ...) as a function returning []*command, listed in commands().
//
// A command reads its own flags from variables its flags function binds,
// gets the user's session with c.session(ctx) or the operator's
// provisioner with c.provisioner(ctx), and prints its result with c.emit,
// whose JSON form follows docs/json.md (TestJSONConvention checks every
// command).
package main
