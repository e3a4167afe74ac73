// Package mcpserver serves one docex user context to an agent over the
// Model Context Protocol, with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk).
//
// The identity is fixed when the server is built: every tool call and
// resource read runs as the same engine.Session, whose audit entries are
// named "mcp.<operation>" and which audits reads as well as writes.
// Nothing a client sends can change the tenant, the user or the roles.
// Failures of a tool call (a denial, an unknown id, an invalid argument, a
// failed plugin, even a panic) are returned as tool results with isError
// set and a message the model can act on; the server keeps serving.
//
// cmd/docex wires it as "docex mcp"; docs/agents.md describes the tools.
package mcpserver
