#!/usr/bin/env bash
# End-to-end demo of docex: init, two tenants, documents, metadata search, a
# plugin, denied cross-tenant reads, and the showcase pipeline of built-in
# steps (extract-text -> chunk -> redact-pii) on real PDFs and DOCX. Usage:
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
note() { printf '\n'; printf '# %s\n' "$@"; }
# shq prints its arguments as a shell would need them typed: each one that
# holds a space, a quote or another special character in single quotes, so
# that a command the demo prints can be pasted as it is.
shq() {
	local a out=
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
			out+="$a "
		else
			out+="'${a//\'/\'\\\'\'}' "
		fi
	done
	printf '%s' "${out% }"
}
run() { step "docex $(shq "$@")"; "$DOCEX" "$@"; }
expect_fail() {
	local want=$1; shift
	step "docex $(shq "$@")    # expected to fail with exit $want"
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

# The showcase (README "Showcase"); the documents and the pipeline are in
# examples/showcase.
SHOW="$REPO/examples/showcase"
note "The showcase: the built-in steps extract-text -> chunk -> redact-pii as a" \
	"pipeline over real PDFs (groff, Ghostscript) and DOCX (pandoc) holding" \
	"(fictitious) personal data. \"docex init\" compiled the built-in steps' one" \
	"module into the compilation cache once: no step below compiles anything."
cp "$SHOW"/ticket.pdf "$SHOW"/invoice.pdf "$SHOW"/onboarding.docx "$SHOW"/claim.docx .
step "cat showcase.toml"; cp "$SHOW/showcase.toml" .; grep -v '^#' showcase.toml
run pipeline create showcase.toml $ACME
run basket create papers $ACME
run doc add papers ticket.pdf invoice.pdf onboarding.docx $ACME
# --worker=yes: jobs run in this process (on SQLite that is the default; on
# PostgreSQL "pipeline run" otherwise waits for a running "docex worker").
run pipeline run showcase --basket papers --wait --worker=yes $ACME   # a progress bar on a terminal, then a summary

note "Bound to the basket, the pipeline processes every document added: the" \
	"job is queued in the same transaction as the add, and a worker takes it."
run basket bind papers showcase $ACME
run doc add papers claim.docx $ACME
run job list --state queued $ACME
step "docex worker --tenants acme &    # until the queue is empty, then SIGTERM"
"$DOCEX" worker --tenants acme 2> worker.log &
WORKER=$!
for _ in $(seq 600); do
	kill -0 "$WORKER" 2>/dev/null || break
	"$DOCEX" job list --json $ACME | grep -q '"state": "\(queued\|running\)"' || break
	sleep 0.2
done
kill -TERM "$WORKER"
wait "$WORKER"
echo "(worker exited $?; its JSON log lines are in $WORK/worker.log)"
run job list --limit 1 $ACME

note "A redacted chunk: counts per kind as metadata (never the values found)," \
	"placeholders in the text, and lineage back to the PDF it came from."
RED=$("$DOCEX" doc find papers --meta derived_by=redact-pii --meta pii_card=1 --meta pii_ipv4=1 -q $ACME 2>/dev/null | head -1)
run doc meta get "$RED" $ACME
run doc cat "$RED" $ACME; echo
run doc lineage "$RED" $ACME
SRC=$("$DOCEX" doc lineage "$RED" --json $ACME | awk -F'"' '/"source_id"/ { id = $4 } /"depth": 3,/ { print id; exit }')
run pipeline run showcase --basket papers --wait --worker=yes $ACME   # again: unchanged input, every step from the cache
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
