#!/usr/bin/env bash
# Runs the README's Quick start, Plugins and Showcase sections verbatim, in
# order, in a temporary directory (bin/, testplugins/ and examples/ linked
# from the repository), as a new user would. Fails on the first command
# that fails.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docex-readme.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The shell blocks of one "## " section of the README.
section() {
	awk -v want="## $1" '
		/^## / { in_section = ($0 == want) }
		in_section && /^```sh$/ { in_block = 1; next }
		in_block && /^```$/ { in_block = 0; next }
		in_section && in_block { print }
	' "$REPO/README.md"
}
{
	echo 'set -euo pipefail'
	echo 'set -x'
	section "Quick start"
	section "Plugins"
	section "Showcase"
} | sed "s|^make build|make -C \"$REPO\" build|" >"$WORK/readme.sh"
if [ "$(grep -c 'bin/docex' "$WORK/readme.sh")" -lt 5 ]; then
	echo "readme-test: found no commands in the README's sections" >&2
	exit 1
fi
ln -s "$REPO/bin" "$WORK/bin"
ln -s "$REPO/testplugins" "$WORK/testplugins"
ln -s "$REPO/examples" "$WORK/examples"
cd "$WORK"
env -u DOCEX_CONFIG -u DOCEX_TENANT -u DOCEX_USER -u DOCEX_ROLES bash "$WORK/readme.sh"
echo "readme-test: the Quick start, Plugins and Showcase sections ran as written"
