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

# find_pg_bindir, start_pg and stop_pg.
source scripts/pg.sh

if [[ -n ${DOMAIND_TEST_POSTGRES:-} ]]; then
	echo "PostgreSQL tests use DOMAIND_TEST_POSTGRES from the environment" >&2
elif bindir=$(find_pg_bindir); then
	trap stop_pg EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# Durability is traded for speed: the server is thrown away afterwards.
	# Autovacuum is off because its workers connect to the tests' fresh
	# databases, and DROP DATABASE ... WITH (FORCE) may not end them.
	start_pg "$bindir" "" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c autovacuum=off
	export DOMAIND_TEST_POSTGRES=$PG_DSN
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
