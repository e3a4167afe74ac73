#!/usr/bin/env bash
# End-to-end demo of docex: init, two tenants, documents, metadata search, a
# plugin, and denied cross-tenant reads. Usage:
#   scripts/demo.sh [path/to/docex] [sqlite|postgres]
# Its data stays in .demo/<backend> (recreated by each run) so that you can
# explore it afterwards; "make clean" removes it. With "postgres" it uses
# the database docex_demo (recreated by each run) on the local server
# (DOCEX_DEMO_PGHOST, default 127.0.0.1, user postgres).
set -euo pipefail
DOCEX=${1:-bin/docex}
DOCEX=$(cd "$(dirname "$DOCEX")" && pwd)/$(basename "$DOCEX")
REPO=$(cd "$(dirname "$0")/.." && pwd)
BACKEND=${2:-sqlite}
WORK="$REPO/.demo/$BACKEND"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
unset DOCEX_CONFIG DOCEX_TENANT DOCEX_USER DOCEX_ROLES
if [ "$BACKEND" = postgres ]; then
	PGHOST_DEMO=${DOCEX_DEMO_PGHOST:-127.0.0.1}
	DB=docex_demo
	psql -h "$PGHOST_DEMO" -U postgres -d test -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
	export DOCEX_POSTGRES_DSN="postgres://postgres@$PGHOST_DEMO:5432/$DB?sslmode=disable"
fi

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "docex $*"; "$DOCEX" "$@"; }
expect_fail() {
	local want=$1; shift
	step "docex $*    # expected to fail with exit $want"
	set +e; "$DOCEX" "$@"; local rc=$?; set -e
	if [ "$rc" -ne "$want" ]; then echo "demo: expected exit $want, got $rc" >&2; exit 1; fi
	echo "(exit $rc, as expected)"
}

run init --backend "$BACKEND"
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

# A sandboxed WebAssembly plugin (a Go guest), installed for acme only.
run plugin install "$REPO/testplugins/wordcount" $ACME
run run wordcount "$ID" $ACME
expect_fail 3 run wordcount "$ID" $GLOBEX        # not installed for globex, and not its document
expect_fail 4 run wordcount "$ID" --tenant acme --user rita --roles reader   # readers cannot run plugins

# A pipeline bound to a basket: every document added is processed by a
# 3-step pipeline (split each document in halves, upper-case each half, tag
# it), in jobs enqueued with the add itself; then the lineage chain.
for p in split upper tag; do run plugin install "$REPO/testplugins/$p" $ACME; done
cat > three.toml <<'TOML'
name = "three"
description = "split, upper-case, tag"
[[steps]]
name = "split"
plugin = "split"
[[steps]]
name = "upper"
plugin = "upper"
input = "split"
[[steps]]
name = "tag"
plugin = "tag"
input = "upper"
TOML
run pipeline create three.toml $ACME
run basket create inbox --pipeline three $ACME
run doc add inbox invoice-1001.txt invoice-1002.txt $ACME
run job list $ACME
run pipeline run three --basket inbox --wait $ACME    # a progress bar on a terminal, then a summary
SRC=$("$DOCEX" doc list inbox --json $ACME | sed -n 's/^    "id": "\(.*\)",$/\1/p' | head -1)
run doc lineage "$SRC" $ACME
expect_fail 5 doc delete "$SRC" $ACME              # it has derived documents: --cascade or --keep-derived

run tenant suspend globex
expect_fail 4 basket list $GLOBEX                 # suspended: denied
run tenant resume globex
run audit list --limit 5 $ACME
printf '\ndemo: ok. Its data is in %s; explore it with\n  cd %s && %s tenant list\n' "$WORK" "$WORK" "$DOCEX"
if [ "$BACKEND" = postgres ]; then
	printf 'with DOCEX_POSTGRES_DSN=%s (database %s, dropped by the next run)\n' "$DOCEX_POSTGRES_DSN" "$DB"
fi
printf '"make clean" removes it.\n'
