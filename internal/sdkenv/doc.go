// Package sdkenv takes MCPGODEBUG out of the process's environment as the
// process starts, before the MCP SDK reads it.
//
// The SDK reads its compatibility switches from MCPGODEBUG once, in a
// package initializer, and panics on a value it cannot parse (a switch
// without "=", as in MCPGODEBUG=x), so that every docex command failed
// before main ran. docex mcp serves the SDK's default behaviour only
// (docs/agents.md, "The SDK's compatibility switches"), so the variable
// is of no use to docex either way.
//
// Importing this package is enough. Go initializes a program's packages
// in the order of their import paths among those whose imports are
// initialized (the language specification, "Package initialization",
// since Go 1.21): this package imports only os, so it is ready whenever
// the SDK's mcpgodebug package is, and its path
// (github.com/docex-dev/...) sorts before the SDK's
// (github.com/modelcontextprotocol/...), so it runs first.
// TestSDKDebugInvalid and TestMCPSDKDebugIgnored (cmd/docex) check it on
// the test binary, which initializes the same packages as docex.
package sdkenv
