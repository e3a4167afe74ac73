package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// JSON-RPC error codes of the server's own, for a request other than
// tools/call (resources/read, resources/list) that fails with an engine
// error of these kinds. JSON-RPC reserves -32000 to -32099 for them; the
// SDK uses -32001, -32003 to -32005, -32020 to -32022 and -32042, and MCP
// once used -32002. The other kinds have JSON-RPC's own codes: invalid
// and not_found jsonrpc.CodeInvalidParams (-32602), every other one
// jsonrpc.CodeInternalError (-32603). docs/agents.md has the table.
const (
	// CodeDenied: the server's identity may not do this: its tenant is
	// suspended, its roles lack one the call needs, ... (kind denied).
	CodeDenied int64 = -32010
	// CodeConflict: the current state does not allow it (kind conflict).
	CodeConflict int64 = -32011
)

// errorData is the data of a JSON-RPC error the server makes of an engine
// error: the code and kind a CLI --json error gives (docs/json.md), and
// the hint a tool error gives.
type errorData struct {
	Code string `json:"code"`           // the most specific docex code, "internal" when there is none: tenant_suspended, forbidden, ...
	Kind string `json:"kind"`           // invalid, not_found, denied, conflict, plugin_failed, interrupted or internal
	Hint string `json:"hint,omitempty"` // what to do about it, when something can be said
}

// kindOf returns the kind of err as the CLI's JSON errors name it:
// invalid, not_found, denied, conflict, plugin_failed, interrupted, or
// internal for an error of none of these kinds.
func kindOf(err error) string {
	if k := docex.KindOf(err); k != nil {
		return k.Code()
	}
	switch {
	case errors.Is(err, docex.ErrPluginFailed):
		return "plugin_failed"
	case errors.Is(err, docex.ErrInterrupted):
		return "interrupted"
	}
	return "internal"
}

// asInterrupted returns err matching docex.ErrInterrupted (code and kind
// interrupted) when it is its context's cancellation (a client's
// notifications/cancelled, the session closed) that docex did not name
// so already; err matching docex.ErrTooManyOpenFiles first (code
// too_many_open_files, kind internal) when the process ran out of file
// descriptors, whatever error that made (fdlimit.Wrap); and err
// otherwise. Every error the server returns passes through it.
func asInterrupted(err error) error {
	err = fdlimit.Wrap(err)
	if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && docex.Code(err) == "internal" {
		return fmt.Errorf("%w: %w", docex.ErrInterrupted, err)
	}
	return err
}

// codeOfKind is the JSON-RPC error code of an error of the given kind.
func codeOfKind(kind string) int64 {
	switch kind {
	case "invalid", "not_found":
		return jsonrpc.CodeInvalidParams
	case "denied":
		return CodeDenied
	case "conflict":
		return CodeConflict
	}
	return jsonrpc.CodeInternalError
}

// rpcError returns err, an error of a request other than tools/call, as
// a JSON-RPC error: its code by its kind (codeOfKind), the text a tool
// error would have as its message, and errorData as its data. An error
// that is a JSON-RPC error already (the SDK's, or "resource not found")
// is returned as it is.
func (s *Server) rpcError(err error) error {
	if err == nil || errors.As(err, new(*jsonrpc.Error)) {
		return err
	}
	err = asInterrupted(err)
	code, msg, hint := s.explain(err)
	kind := kindOf(err)
	return wireError(codeOfKind(kind), errorText(code, msg, hint), errorData{Code: code, Kind: kind, Hint: hint})
}

// wireError is a JSON-RPC error with data.
func wireError(code int64, message string, data errorData) *jsonrpc.Error {
	raw, _ := json.Marshal(data) // strings only: cannot fail
	return &jsonrpc.Error{Code: code, Message: message, Data: raw}
}

// resourceErr maps an engine error of resources/read to the protocol's:
// unknown, invisible and malformed ids are "resource not found" (the
// SDK's: -32602 with data {"uri": ...}); anything else is rpcError's.
func (s *Server) resourceErr(uri string, err error) error {
	if errors.Is(err, docex.ErrNotFound) || errors.Is(err, docex.ErrInvalidID) {
		return mcp.ResourceNotFoundError(uri)
	}
	return s.rpcError(err)
}
