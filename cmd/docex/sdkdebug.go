package main

import (
	"os"
	"strings"
	"syscall"

	"github.com/docex-dev/docex"
)

// sdkDebugEnv is the environment variable the MCP SDK reads its
// compatibility switches from (MCPGODEBUG=key=value,...): once, as the
// process starts, before main runs. Its switches bring back former
// protocol behaviour (error codes such as -32002 for a resource not found,
// code 0 for a method not found or bad params, tool annotations without
// their false hints, ...). docex mcp serves the SDK's defaults only, the
// behaviour docs/agents.md describes, whatever the environment says.
const sdkDebugEnv = "MCPGODEBUG"

// execWithoutSDKDebug replaces this process with argv run again (the same
// executable) without MCPGODEBUG in its environment, when args (the
// command line after the program name) name the mcp command and environ
// sets MCPGODEBUG: the SDK read it before main, so only a fresh process is
// free of it. It does not return when it execs; it returns nil when there
// is nothing to do, and the error of finding the executable or of exec
// otherwise (the process goes on with MCPGODEBUG, which docex mcp then
// refuses: checkSDKDebug).
func execWithoutSDKDebug(args, argv, environ []string) error {
	if !setsSDKDebug(environ) {
		return nil
	}
	if words, _ := commandWords(args, commands().isGroup); strings.Join(words, " ") != "mcp" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, argv, withoutSDKDebug(environ))
}

// setsSDKDebug reports whether environ sets MCPGODEBUG to a non-empty
// value (an empty one sets no switch).
func setsSDKDebug(environ []string) bool {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, sdkDebugEnv+"="); ok && v != "" {
			return true
		}
	}
	return false
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

// checkSDKDebug returns a docex.ErrInvalid error when this process's
// environment sets MCPGODEBUG (it was not run again without it:
// execWithoutSDKDebug failed, or docex runs in another program), since the
// MCP SDK then answers differently from what docex mcp promises; nil
// otherwise.
func checkSDKDebug() error {
	v := os.Getenv(sdkDebugEnv)
	if v == "" {
		return nil
	}
	return docex.Errorf(errUsage, "%s=%s is set: it switches the MCP SDK to former protocol behaviour, which docex mcp does not serve, and this process could not run itself again without it; unset %s", sdkDebugEnv, v, sdkDebugEnv)
}
