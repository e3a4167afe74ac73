package sdkenv

import "os"

// Name is the environment variable the MCP SDK reads its compatibility
// switches from.
const Name = "MCPGODEBUG"

// removed is MCPGODEBUG's value when the process started ("" when it was
// not set). Set once, as the package is initialized; never changed.
var removed = unset()

func unset() string {
	v := os.Getenv(Name)
	os.Unsetenv(Name)
	return v
}

// Removed returns the value MCPGODEBUG had when the process started, which
// no code of the process saw after this package was initialized: "" when
// it was not set or empty.
func Removed() string { return removed }
