#!/usr/bin/env bash
# End-to-end test of `docex mcp` with the official TypeScript MCP SDK
# (@modelcontextprotocol/sdk, version pinned in package.json and
# package-lock.json): builds docex, installs the SDK with npm in a scratch
# directory and runs mcp.test.mjs with node's test runner.
#
#   e2e/mcp/run.sh        needs go, node >= 20 and npm; fails without them
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

for tool in go node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "e2e/mcp: $tool is not installed; this test needs it (Debian: apt-get install nodejs npm)" >&2
		exit 1
	fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "e2e/mcp: node $(node --version) is too old; the MCP SDK needs node >= 20" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/docex-mcp-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$repo" && CGO_ENABLED=0 go build -o "$work/docex" ./cmd/docex)
cp "$here/package.json" "$here/package-lock.json" "$here/mcp.test.mjs" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
mkdir "$work/data"
cd "$work"
DOCEX_BIN="$work/docex" DOCEX_E2E_DIR="$work/data" node --test --test-reporter=spec mcp.test.mjs
