package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/sdkenv"
)

const sdkDebugEnv = sdkenv.Name

// sdkDebugKeys are the MCPGODEBUG switches the MCP SDK of go.mod (v1.8.0)
// reads (grep MCPGODEBUG in its module): each brings back a former
// behaviour.
var sdkDebugKeys = []string{
	"hintomitempty", "customresnotfounderrcode", "nowrapinvalidparams", "nomethodnotfoundcodeinerror",
	"disablecompleteparamsvalidation", "blockingcancelnotify", "allowsessionsinstateless",
	"noprotocolerrorbody", "plaintextstatefulrejection",
}

// TestMCPSDKDebugIgnored: docex mcp, started as main starts it (a child
// process: the SDK reads MCPGODEBUG once, before main), answers the same
// with any MCPGODEBUG switch set as without: resources/read of another
// tenant's document is -32602 (not -32002), a method it does not have and
// completion/complete are -32601 and -32602 with their messages (not
// -32603 or another message), tools/call with params of the wrong shape is
// -32602 (not -32603), and every tool's annotations give all four hints,
// readOnlyHint false included. Before, each of the first five switches
// changed its answer; the other four change none of these (they are the
// SDK client's, of stateless HTTP, or of HTTP requests of protocol
// 2026-07-28), and are here so that none ever does.
func TestMCPSDKDebugIgnored(t *testing.T) {
	h := mcpHarness(t)
	h.ok("tenant", "create", "beta")
	h.ok("--tenant", "beta", "--user", "b", "--roles", "writer", "basket", "create", "secret")
	file := filepath.Join(h.dir, "s.txt")
	if err := os.WriteFile(file, []byte("beta's secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	docID := strings.TrimSpace(h.ok("--tenant", "beta", "--user", "b", "--roles", "writer", "doc", "add", "secret", file, "-q").stdout)
	script := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"docex://documents/` + docID + `"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"docex://baskets"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":3}`,
		`{"jsonrpc":"2.0","id":5,"method":"completion/complete","params":{}}`,
		`{"jsonrpc":"2.0","id":6,"method":"nosuch/method","params":{}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`,
	}, "\n") + "\n"
	argv, err := json.Marshal([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--tenant", "acme", "--user", "agent", "--roles", "writer"})
	if err != nil {
		t.Fatal(err)
	}
	// serve returns the replies, one per line, sorted (calls are answered
	// concurrently). With MCPGODEBUG set, docex mcp says on stderr that it
	// ignores it.
	serve := func(t *testing.T, debug string) []string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestMCPChild$", "-test.count=1")
		cmd.Env = append(withoutSDKDebug(os.Environ()), "DOCEX_MCP_CHILD_ARGS="+string(argv), noBuiltinEnv+"=1")
		if debug != "" {
			cmd.Env = append(cmd.Env, sdkDebugEnv+"="+debug)
		}
		cmd.Stdin = strings.NewReader(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("MCPGODEBUG=%s: %v\nstdout: %s\nstderr: %s", debug, err, out, stderr.String())
		}
		if note := "docex mcp: MCPGODEBUG=" + debug + " ignored"; debug != "" && !strings.Contains(stderr.String(), note) {
			t.Errorf("MCPGODEBUG=%s: no %q on stderr:\n%s", debug, note, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		slices.Sort(lines)
		return lines
	}
	want := serve(t, "")
	all := strings.Join(want, "\n")
	for _, w := range []string{
		`{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Resource not found","data":{"uri":"docex://documents/` + docID + `"}}}`,
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"method not found: \"resources/subscribe\""}}`,
		`{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"handling 'tools/call': invalid params: unmarshaling`,
		`{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"invalid params: missing required 'ref' field"}}`,
		`{"jsonrpc":"2.0","id":6,"error":{"code":-32601,"message":"method not found: \"nosuch/method\""}}`,
		`"annotations":{"destructiveHint":false,"idempotentHint":true,"openWorldHint":false,"readOnlyHint":false,"title":"Create basket"}`,
	} {
		if !strings.Contains(all, w) {
			t.Errorf("without MCPGODEBUG: no %s in\n%s", w, all)
		}
	}
	if len(want) != 7 {
		t.Fatalf("without MCPGODEBUG: %d replies, want 7:\n%s", len(want), all)
	}
	for _, debug := range append(slices.Clone(sdkDebugKeys), "all", "unparsable") {
		t.Run(debug, func(t *testing.T) {
			value := debug + "=1"
			switch debug {
			case "all":
				value = strings.Join(sdkDebugKeys, "=1,") + "=1"
			case "unparsable":
				value = "x" // the SDK panics on it
			}
			if got := serve(t, value); !slices.Equal(got, want) {
				t.Errorf("MCPGODEBUG=%s changed the replies:\n%s\nwant:\n%s", value, strings.Join(got, "\n"), all)
			}
		})
	}
}

// TestSDKDebugInvalid: an MCPGODEBUG the MCP SDK cannot parse (a switch
// without "=") does not stop docex: package sdkenv takes it out of the
// environment before the SDK's initializer reads it. Before, the SDK
// panicked as the process started ("MCPGODEBUG: invalid format"), before
// main, and every command failed. The test binary initializes the same
// packages as docex, in the same order.
func TestSDKDebugInvalid(t *testing.T) {
	for _, value := range []string{"x", "a=1,b", ",", "=,", "hintomitempty"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMCPChild$", "-test.count=1")
		cmd.Env = append(withoutSDKDebug(os.Environ()), `DOCEX_MCP_CHILD_ARGS=["--version"]`, sdkDebugEnv+"="+value)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), "docex ") {
			t.Errorf("MCPGODEBUG=%s: docex --version: %v\nstdout: %s\nstderr: %s", value, err, out, stderr.String())
		}
	}
}

// withoutSDKDebug returns environ without its MCPGODEBUG entries.
func withoutSDKDebug(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, sdkDebugEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestMCPSDKDebugJSON: with --json, docex mcp does not say that it ignores
// MCPGODEBUG (a note; with --json stderr holds an error object and nothing
// else, docs/json.md). Before, it said so with --json too.
func TestMCPSDKDebugJSON(t *testing.T) {
	h := mcpHarness(t)
	argv, err := json.Marshal([]string{"--config", filepath.Join(h.dir, "docex.yaml"), "mcp", "--tenant", "acme", "--user", "agent", "--roles", "writer", "--json"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMCPChild$", "-test.count=1")
	cmd.Env = append(withoutSDKDebug(os.Environ()), "DOCEX_MCP_CHILD_ARGS="+string(argv), noBuiltinEnv+"=1", sdkDebugEnv+"=hintomitempty=1")
	cmd.Stdin = strings.NewReader("") // closed at once: the server exits 0
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || len(out) != 0 || stderr.Len() != 0 {
		t.Fatalf("docex mcp --json with MCPGODEBUG set: %v\nstdout: %q\nstderr: %q", err, out, stderr.String())
	}
}
