# shellcheck shell=bash
# A throw-away PostgreSQL server for the tests, sourced by scripts/test.sh:
#
#   pgtemp_start   initdb in a new temporary directory, start the server on
#                  a free port of 127.0.0.1 (and a socket in that directory),
#                  export DOCEX_TEST_POSTGRES_DSN; returns 1 (after saying
#                  why in PGTEMP_WHY) when no server binaries are installed
#   pgtemp_stop    stop it and remove the directory
#
# The server is for tests only: trust authentication, fsync off.

PGTEMP_DIR=""
PGTEMP_BIN=""
PGTEMP_AS=()
PGTEMP_WHY=""

# pgtemp_bindir prints the directory holding initdb and pg_ctl: on PATH,
# else Debian's /usr/lib/postgresql/*/bin (newest first), else the
# PostgreSQL source build's default.
pgtemp_bindir() {
	local d
	for d in "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")" \
		$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/pgsql/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# pgtemp_port prints a TCP port nothing listens on.
pgtemp_port() {
	local port i
	for i in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

pgtemp_start() {
	if ! PGTEMP_BIN=$(pgtemp_bindir); then
		PGTEMP_WHY="no PostgreSQL server binaries (initdb, pg_ctl, postgres) found"
		return 1
	fi
	PGTEMP_AS=()
	if [ "$(id -u)" = 0 ]; then
		# initdb refuses to run as root: run the server as the postgres user.
		if id postgres >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1; then
			PGTEMP_AS=(runuser -u postgres --)
		else
			PGTEMP_WHY="running as root, and there is no postgres user to run a server as"
			return 1
		fi
	fi
	PGTEMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/docex-pgtest.XXXXXX")
	if [ ${#PGTEMP_AS[@]} -gt 0 ]; then
		chown postgres "$PGTEMP_DIR"
	fi
	if ! "${PGTEMP_AS[@]}" "$PGTEMP_BIN/initdb" -D "$PGTEMP_DIR/data" -U postgres -A trust -E UTF8 --no-sync \
		>"$PGTEMP_DIR/initdb.log" 2>&1; then
		PGTEMP_WHY="initdb failed (log: $PGTEMP_DIR/initdb.log)"
		return 1
	fi
	local port attempt
	for attempt in 1 2 3; do
		port=$(pgtemp_port) || break
		if "${PGTEMP_AS[@]}" "$PGTEMP_BIN/pg_ctl" -D "$PGTEMP_DIR/data" -l "$PGTEMP_DIR/server.log" -w -t 120 \
			-o "-p $port -k $PGTEMP_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			start >/dev/null 2>&1; then
			export DOCEX_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			return 0
		fi
	done
	PGTEMP_WHY="the server did not start (log: $PGTEMP_DIR/server.log)"
	return 1
}

pgtemp_stop() {
	if [ -n "$PGTEMP_DIR" ] && [ -d "$PGTEMP_DIR/data" ]; then
		"${PGTEMP_AS[@]}" "$PGTEMP_BIN/pg_ctl" -D "$PGTEMP_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "$PGTEMP_DIR" ]; then
		rm -rf "$PGTEMP_DIR"
	fi
	PGTEMP_DIR=""
}
