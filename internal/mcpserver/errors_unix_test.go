//go:build unix

package mcpserver

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// TestRPCErrorOutOfFiles: an error the process running out of file
// descriptors made, even under a kind (a file not opened: invalid), is
// too_many_open_files of kind internal, as the CLI's --json errors say.
func TestRPCErrorOutOfFiles(t *testing.T) {
	s := &Server{uc: user("rita", "reader")}
	err := fmt.Errorf("%w: %w", docex.ErrInvalid, &os.PathError{Op: "open", Path: "f", Err: syscall.EMFILE})
	rpcErr, data := rpcErrorOf(t, s.rpcError(err))
	if rpcErr.Code != jsonrpc.CodeInternalError || data.Kind != "internal" || data.Code != "too_many_open_files" || !strings.Contains(data.Hint, "ulimit -n") {
		t.Errorf("%v: %d %s, want %d, kind internal, code too_many_open_files", err, rpcErr.Code, rpcErr.Data, jsonrpc.CodeInternalError)
	}
}
