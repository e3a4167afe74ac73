#!/usr/bin/env bash
# The tests, as "make test" and "make test-scale" run them, saying what
# happens at each step.
#
#   scripts/test.sh          every test except the scale tests, with -race
#   scripts/test.sh scale    the scale tests (//go:build scale, TestScale*)
#
# The PostgreSQL tests use DOCEX_TEST_POSTGRES_DSN. When it is unset and
# the PostgreSQL server binaries are installed, a throw-away server is
# started for the run (scripts/pgtemp.sh) and removed afterwards; when they
# are not, those tests skip (outside CI) and the last line says so.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mode=${1:-default}
start=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }
elapsed() { local s=$(($(date +%s) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# shellcheck source=scripts/pgtemp.sh
. scripts/pgtemp.sh
trap pgtemp_stop EXIT
trap 'exit 130' INT TERM
pgnote=""
if [ -n "${DOCEX_TEST_POSTGRES_DSN:-}" ]; then
	step "PostgreSQL tests use DOCEX_TEST_POSTGRES_DSN"
else
	step "starting a throw-away PostgreSQL server for the PostgreSQL tests"
	if pgtemp_start; then
		echo "PostgreSQL at ${DOCEX_TEST_POSTGRES_DSN} (data in $PGTEMP_DIR, removed at the end)"
	else
		pgtemp_stop
		pgnote="PostgreSQL tests SKIPPED: $PGTEMP_WHY; install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql) or set DOCEX_TEST_POSTGRES_DSN"
		echo "not started: $PGTEMP_WHY"
	fi
fi

case "$mode" in
default)
	# -p 4: four packages at once on two cores; the PostgreSQL, SQLite and
	# crash tests spend much of their time waiting on fsync and round trips.
	# Measured on an idle 2-core machine: tests 3m31s against 5m10s with the
	# default (-p 2). -timeout 25m: on a machine at a load average of 15 to
	# 28 (other work beside the run), backends/postgres took over 20 minutes.
	args=(-race -count=1 -p 4 -timeout 25m ./...)
	what="every test with the race detector (the scale tests: make test-scale)"
	;;
scale)
	args=(-race -count=1 -timeout 30m -tags scale -run '^TestScale' ./...)
	what="the scale tests (1,000 tenants and the like) with the race detector"
	;;
*)
	echo "usage: scripts/test.sh [scale]" >&2
	exit 2
	;;
esac

step "compiling the tests (the first run builds every dependency with the race detector: a few minutes; later runs reuse the build cache)"
t=$(date +%s)
if ! out=$($GO test "${args[@]:0:${#args[@]}-1}" -run '^$' ./... 2>&1); then
	echo "$out" | grep -v -e '^ok ' -e 'no test files'
	exit 1
fi
echo "compiled in $(elapsed "$t")"

step "running $what; one line per package as it finishes"
t=$(date +%s)
progress=$(mktemp -d "${TMPDIR:-/tmp}/docex-testprogress.XXXXXX")
$GO build -o "$progress/testprogress" ./internal/testprogress
status=0
$GO test -json "${args[@]}" | "$progress/testprogress" || status=$?
rm -rf "$progress"
echo "tests ran in $(elapsed "$t")"

step "total $(elapsed "$start"), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
if [ "$status" -ne 0 ]; then
	echo "FAIL (exit $status)"
fi
if [ -n "$pgnote" ]; then
	printf '\n!!! %s\n' "$pgnote"
fi
exit "$status"
