// Package quote shortens untrusted strings for error messages, so that a
// message never echoes a long input: the engine's malformed ids and the
// MCP server's oversized arguments are quoted the same way
// (docs/agents.md).
package quote
