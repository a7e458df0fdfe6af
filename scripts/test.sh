#!/usr/bin/env bash
# Runs every test, with the race detector: go vet ./... and then
# go test -race -count=1 [ARGS...] ./... , where ARGS (go test flags such as -run or
# -v) are this script's arguments.
#
# The PostgreSQL store's tests need a server. If DOMAIND_TEST_POSTGRES is already
# set, they use that one. Otherwise, when PostgreSQL is installed (pg_ctl and initdb
# on PATH or in /usr/lib/postgresql/*/bin, the highest version), this script starts a
# throwaway server in a temporary directory, on a free port of 127.0.0.1 only, and
# removes it on exit. PostgreSQL refuses to run as root, so as root the server runs
# as the postgres user (or nobody). Without PostgreSQL those tests are skipped, or,
# with DOMAIND_REQUIRE_POSTGRES=1, the script fails before running anything.
set -euo pipefail
cd "$(dirname "$0")/.."

banner() {
	echo "**********************************************************************" >&2
	for line in "$@"; do echo "*** $line" >&2; done
	echo "**********************************************************************" >&2
}

# find_pg_bindir prints the directory that holds pg_ctl, initdb and psql.
find_pg_bindir() {
	local dir
	if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
		# Debian links them from elsewhere; their siblings are where they really are.
		dir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
		if [[ -x $dir/initdb && -x $dir/psql ]]; then
			echo "$dir"
			return
		fi
	fi
	for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x $dir/pg_ctl && -x $dir/initdb && -x $dir/psql ]]; then
			echo "$dir"
			return
		fi
	done
	return 1
}

pgdir=""
# as_pg runs a command as the user that owns the server.
as_pg() {
	if [[ -n ${pguser:-} ]]; then
		if command -v runuser >/dev/null; then
			runuser -u "$pguser" -- "$@"
		else
			su "$pguser" -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

stop_pg() {
	if [[ -n $pgdir ]]; then
		as_pg "$bindir/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$pgdir"
	fi
}

start_pg() {
	pguser=""
	if [[ $(id -u) == 0 ]]; then
		pguser=postgres
		id -u postgres >/dev/null 2>&1 || pguser=nobody
	fi
	# Under /tmp rather than $TMPDIR: the server's user must be able to reach it,
	# and its socket path must stay under the 107 bytes a unix socket name allows.
	pgdir=$(mktemp -d /tmp/domaind-pg.XXXXXXXX)
	trap stop_pg EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[[ -n $pguser ]] && chown "$pguser" "$pgdir"
	chmod 700 "$pgdir"

	# Only this directory's owner can reach the socket, so it needs no password;
	# TCP (127.0.0.1 only) does.
	as_pg "$bindir/initdb" -D "$pgdir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host=scram-sha-256 >"$pgdir/initdb.log" 2>&1 || {
		cat "$pgdir/initdb.log" >&2
		echo "initdb failed" >&2
		exit 1
	}

	local attempt started=""
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 40000))
		# A port someone listens on is taken; another may take it before the
		# server does, which the retry covers.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		# The settings trade durability, which a throwaway server does not need,
		# for speed.
		rm -f "$pgdir/server.log"
		if as_pg "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pgdir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null 2>&1; then
			started=1
			break
		fi
		grep -q 'could not bind\|Address already in use' "$pgdir/server.log" 2>/dev/null || break
	done
	if [[ -z $started ]]; then
		cat "$pgdir/server.log" >&2 2>/dev/null || true
		echo "could not start PostgreSQL" >&2
		exit 1
	fi

	local password
	password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres -d postgres \
		-c "CREATE ROLE domaind LOGIN CREATEDB PASSWORD '$password'" \
		-c "CREATE DATABASE domaind OWNER domaind" >/dev/null
	export DOMAIND_TEST_POSTGRES="postgres://domaind:$password@127.0.0.1:$port/domaind?sslmode=disable"
	echo "PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') for the tests on 127.0.0.1:$port ($pgdir)" >&2
}

if [[ -n ${DOMAIND_TEST_POSTGRES:-} ]]; then
	echo "PostgreSQL tests use DOMAIND_TEST_POSTGRES from the environment" >&2
elif bindir=$(find_pg_bindir); then
	start_pg
else
	banner "PostgreSQL tests SKIPPED: install postgresql" \
		"(no pg_ctl and initdb on PATH or in /usr/lib/postgresql/*/bin)"
	if [[ ${DOMAIND_REQUIRE_POSTGRES:-} == 1 ]]; then
		echo "DOMAIND_REQUIRE_POSTGRES=1: failing instead of skipping" >&2
		exit 1
	fi
fi

go vet ./...
go test -race -count=1 "$@" ./...
