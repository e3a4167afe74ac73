package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rpcErrorOf returns err's JSON-RPC error and its data as the server
// makes it ({"code", "kind", "hint"}), failing when err is none.
func rpcErrorOf(t *testing.T, err error) (*jsonrpc.Error, errorData) {
	t.Helper()
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) {
		t.Fatalf("%v (%T), want a JSON-RPC error", err, err)
	}
	var data errorData
	if len(rpcErr.Data) > 0 {
		if err := json.Unmarshal(rpcErr.Data, &data); err != nil {
			t.Fatalf("data %s: %v", rpcErr.Data, err)
		}
	}
	return rpcErr, data
}

// TestResourceErrorCodes: a failed resources/read or resources/list is a
// JSON-RPC error with the code of its kind (docs/agents.md's table) and
// data {"code", "kind", "hint"}: denied -32010 (a suspended tenant, roles
// that cannot read), invalid -32602 (a bad cursor), anything without a
// kind -32603 (the engine closed); not found stays the SDK's "Resource
// not found" (-32602, data {"uri"}). Before, every error but "not found"
// and the bad cursor had code 0, which JSON-RPC does not have.
func TestResourceErrorCodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, reader := e.connect(t, user("rita", "reader"), Config{})
	_, noRoles := e.connect(t, user("nora"), Config{}) // Check would refuse it; New does not
	ops := e.eng.Provisioner("ops")
	read := func(cs *mcp.ClientSession, uri string) func() error {
		return func() error { _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri}); return err }
	}
	list := func(cs *mcp.ClientSession, cursor string) func() error {
		return func() error { _, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cursor}); return err }
	}
	suspend := func() {
		if err := ops.Suspend(ctx, "alpha"); err != nil {
			t.Fatal(err)
		}
	}
	resume := func() {
		if err := ops.Resume(ctx, "alpha"); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name       string
		before     func() // nil: nothing
		after      func()
		call       func() error
		code       int64
		data       errorData // Hint: a part of it
		msgPrefix  string
		resourceNF string // the uri of "Resource not found"
	}{
		{name: "suspended: baskets", before: suspend, after: resume, call: read(reader, basketsURI), code: CodeDenied,
			data: errorData{Code: "tenant_suspended", Kind: "denied", Hint: "docex tenant resume alpha"}, msgPrefix: `tenant_suspended: tenant "alpha" is suspended. An operator can resume it`},
		{name: "suspended: basket", before: suspend, after: resume, call: read(reader, basketURI(e.basket.ID)), code: CodeDenied,
			data: errorData{Code: "tenant_suspended", Kind: "denied", Hint: "docex tenant resume alpha"}, msgPrefix: "tenant_suspended: "},
		{name: "suspended: document", before: suspend, after: resume, call: read(reader, documentURI(e.doc.ID)), code: CodeDenied,
			data: errorData{Code: "tenant_suspended", Kind: "denied", Hint: "docex tenant resume alpha"}, msgPrefix: "tenant_suspended: "},
		{name: "suspended: list", before: suspend, after: resume, call: list(reader, ""), code: CodeDenied,
			data: errorData{Code: "tenant_suspended", Kind: "denied", Hint: "docex tenant resume alpha"}, msgPrefix: "tenant_suspended: "},
		{name: "no role: read", call: read(noRoles, basketsURI), code: CodeDenied,
			data: errorData{Code: "forbidden", Kind: "denied", Hint: "Retrying will not help"}, msgPrefix: "forbidden: "},
		{name: "no role: list", call: list(noRoles, ""), code: CodeDenied,
			data: errorData{Code: "forbidden", Kind: "denied", Hint: "Retrying will not help"}, msgPrefix: "forbidden: "},
		{name: "bad cursor", call: list(reader, "garbage!"), code: jsonrpc.CodeInvalidParams,
			data: errorData{Code: "invalid", Kind: "invalid"}, msgPrefix: `invalid cursor "garbage!": pass the nextCursor`},
		{name: "another tenant's document", call: read(reader, documentURI(e.betaDoc.ID)), code: jsonrpc.CodeInvalidParams,
			msgPrefix: "Resource not found", resourceNF: documentURI(e.betaDoc.ID)},
		{name: "unknown resource", call: read(reader, "docex://tenants"), code: jsonrpc.CodeInvalidParams,
			msgPrefix: "Resource not found", resourceNF: "docex://tenants"},
		// Last: the engine stays closed.
		{name: "engine closed: read", before: func() { e.eng.Close() }, call: read(reader, basketsURI), code: jsonrpc.CodeInternalError,
			data: errorData{Code: "closed", Kind: "internal"}, msgPrefix: "closed: "},
		{name: "engine closed: list", call: list(reader, ""), code: jsonrpc.CodeInternalError,
			data: errorData{Code: "closed", Kind: "internal"}, msgPrefix: "closed: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			if c.after != nil {
				defer c.after()
			}
			rpcErr, data := rpcErrorOf(t, c.call())
			if rpcErr.Code != c.code || !strings.HasPrefix(rpcErr.Message, c.msgPrefix) {
				t.Fatalf("error %d %q, want %d %q...", rpcErr.Code, rpcErr.Message, c.code, c.msgPrefix)
			}
			if c.resourceNF != "" {
				var nf struct{ URI string }
				if err := json.Unmarshal(rpcErr.Data, &nf); err != nil || nf.URI != c.resourceNF {
					t.Fatalf("data %s, want the uri %s", rpcErr.Data, c.resourceNF)
				}
				return
			}
			if data.Code != c.data.Code || data.Kind != c.data.Kind || !strings.Contains(data.Hint, c.data.Hint) || (c.data.Hint == "") != (data.Hint == "") {
				t.Fatalf("data %s, want %+v", rpcErr.Data, c.data)
			}
			// The message is the text a tool error would have.
			if data.Hint != "" && !strings.HasSuffix(rpcErr.Message, ". "+data.Hint) {
				t.Fatalf("message %q does not end with the hint %q", rpcErr.Message, data.Hint)
			}
		})
	}
}

// TestRPCErrorKinds: every kind of engine error has its code, and an
// error that is a JSON-RPC error already keeps it.
func TestRPCErrorKinds(t *testing.T) {
	s := &Server{uc: user("rita", "reader")}
	for _, c := range []struct {
		err  error
		code int64
		kind string
	}{
		{docex.Errorf(docex.ErrInvalid, "bad"), jsonrpc.CodeInvalidParams, "invalid"},
		{docex.Errorf(docex.ErrTooLarge, "big"), jsonrpc.CodeInvalidParams, "invalid"},
		{docex.Errorf(docex.ErrNotFound, "gone"), jsonrpc.CodeInvalidParams, "not_found"},
		{docex.Errorf(docex.ErrForbidden, "no"), CodeDenied, "denied"},
		{docex.Errorf(docex.ErrTenantSuspended, "asleep"), CodeDenied, "denied"},
		{docex.Errorf(docex.ErrExists, "twice"), CodeConflict, "conflict"},
		{docex.Errorf(docex.ErrPluginFailed, "trap"), jsonrpc.CodeInternalError, "plugin_failed"},
		{docex.Errorf(docex.ErrInterrupted, "stop"), jsonrpc.CodeInternalError, "interrupted"},
		{context.Canceled, jsonrpc.CodeInternalError, "interrupted"}, // a cancelled call: was internal
		{errors.New("disk on fire"), jsonrpc.CodeInternalError, "internal"},
	} {
		rpcErr, data := rpcErrorOf(t, s.rpcError(c.err))
		if rpcErr.Code != c.code || data.Kind != c.kind || data.Code != docex.Code(asInterrupted(c.err)) {
			t.Errorf("%v: %d %s, want %d and kind %s", c.err, rpcErr.Code, rpcErr.Data, c.code, c.kind)
		}
	}
	nf := mcp.ResourceNotFoundError("docex://x")
	if got := s.rpcError(nf); got != nf {
		t.Errorf("a JSON-RPC error became %v", got)
	}
}
