#!/usr/bin/env bash
# End-to-end demo of docex on the embedded SQLite default, in a temporary
# directory: init, two tenants, documents, metadata search, and a denied
# cross-tenant read. Usage: scripts/demo.sh [path/to/docex]
set -euo pipefail
DOCEX=${1:-bin/docex}
DOCEX=$(cd "$(dirname "$DOCEX")" && pwd)/$(basename "$DOCEX")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docex-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
unset DOCEX_CONFIG DOCEX_TENANT DOCEX_USER DOCEX_ROLES

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "docex $*"; "$DOCEX" "$@"; }
expect_fail() {
	local want=$1; shift
	step "docex $*    # expected to fail with exit $want"
	set +e; "$DOCEX" "$@"; local rc=$?; set -e
	if [ "$rc" -ne "$want" ]; then echo "demo: expected exit $want, got $rc" >&2; exit 1; fi
	echo "(exit $rc, as expected)"
}

run init
run init                     # idempotent
run tenant create acme --display-name "Acme Corp"
run tenant create globex --display-name "Globex"
run tenant list

printf 'Invoice 1001\nTotal: 120 EUR\n' > invoice-1001.txt
printf 'Invoice 1002\nTotal: 75 EUR\n' > invoice-1002.txt
printf 'Globex secret plans\n' > plans.txt

ACME="--tenant acme --user alice --roles admin"
GLOBEX="--tenant globex --user bob --roles writer"
run basket create invoices $ACME
run doc add invoices invoice-1001.txt --meta customer=initech --meta amount=120 --meta paid=true $ACME
run doc add invoices invoice-1002.txt --meta customer=initech --meta amount=75 --meta paid=false $ACME
run doc find invoices --meta customer=initech --meta paid=true $ACME
ID=$("$DOCEX" doc find invoices --meta amount=75 --json $ACME | sed -n 's/^    "id": "\(.*\)",$/\1/p' | head -1)
run doc cat "$ID" $ACME

run basket create plans $GLOBEX
run doc add plans plans.txt $GLOBEX
expect_fail 3 doc cat "$ID" $GLOBEX              # another tenant's document: not found
expect_fail 4 doc list invoices --tenant system --user eve --roles admin   # bootstrap tenant: denied
expect_fail 4 basket list --tenant acme          # no user: denied
expect_fail 4 basket delete invoices --force --tenant acme --user carol --roles reader  # reader: denied

run tenant suspend globex
expect_fail 4 basket list $GLOBEX                 # suspended: denied
run tenant resume globex
run audit list --limit 5 $ACME
printf '\ndemo: ok (data was in %s)\n' "$WORK"
