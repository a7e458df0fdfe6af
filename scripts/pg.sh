# Functions that run a PostgreSQL server on 127.0.0.1 for a script, which sources
# this file (scripts/test.sh and scripts/bench.sh do):
#
#   trap stop_pg EXIT
#   bindir=$(find_pg_bindir) || echo "PostgreSQL is not installed"
#   start_pg "$bindir" [DATA_DIR] [-c setting=value ...]   # sets PG_DSN and PG_VERSION
#
# Without DATA_DIR (or with "") the server is throwaway: its data lives in a
# temporary directory that stop_pg removes. With DATA_DIR its data is kept there
# between runs (created on first use, and created afresh if an older PostgreSQL
# made it), so a script can reuse databases it filled before; stop_pg then shuts
# the server down cleanly. Either way the server listens on a free port of
# 127.0.0.1 only, and its socket is in a temporary directory under /tmp.
# PostgreSQL refuses to run as root, so as root it runs as the postgres user (or
# nobody). PG_DSN names the role domaind, which may CREATE DATABASE, with a new
# random password, and its database domaind.

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

pg_bin=""
pg_user=""
pg_sock=""  # the temporary directory: socket, logs, and a throwaway server's data
pg_data=""
pg_keep=""  # set when pg_data outlives the run

# as_pg runs a command as the user that owns the server.
as_pg() {
	if [[ -n $pg_user ]]; then
		if command -v runuser >/dev/null; then
			runuser -u "$pg_user" -- "$@"
		else
			su "$pg_user" -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

stop_pg() {
	if [[ -n $pg_data && -f $pg_data/postmaster.pid ]]; then
		if [[ -n $pg_keep ]]; then
			as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
		else
			as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	fi
	if [[ -n $pg_sock ]]; then
		rm -rf "$pg_sock"
		pg_sock=""
	fi
	pg_data=""
}

# start_pg BINDIR [DATA_DIR] [SERVER OPTIONS...] starts the server; the options go
# to postgres (such as -c fsync=off).
start_pg() {
	pg_bin=$1
	local keep=${2:-}
	shift
	if (($#)); then shift; fi
	pg_user=""
	if [[ $(id -u) == 0 ]]; then
		pg_user=postgres
		id -u postgres >/dev/null 2>&1 || pg_user=nobody
	fi
	# Under /tmp rather than $TMPDIR: the server's user must be able to reach it,
	# and the socket path must stay under the 107 bytes a unix socket name allows.
	pg_sock=$(mktemp -d /tmp/domaind-pg.XXXXXXXX)
	if [[ -n $pg_user ]]; then chown "$pg_user" "$pg_sock"; fi
	chmod 700 "$pg_sock"

	local version
	version=$("$pg_bin/pg_ctl" --version | awk '{print $3}')
	if [[ -n $keep ]]; then
		mkdir -p "$keep"
		keep=$(cd "$keep" && pwd)
		if [[ -n $pg_user ]]; then chown "$pg_user" "$keep"; fi
		chmod 700 "$keep"
		pg_data=$keep/data
		pg_keep=1
		if [[ -f $pg_data/PG_VERSION && $(cat "$pg_data/PG_VERSION") != "${version%%.*}" ]]; then
			echo "$pg_data was made by PostgreSQL $(cat "$pg_data/PG_VERSION"); starting afresh with $version" >&2
			rm -rf "$pg_data"
		fi
	else
		pg_data=$pg_sock/data
		pg_keep=""
	fi

	if [[ ! -f $pg_data/PG_VERSION ]]; then
		rm -rf "$pg_data"
		# Only the directory's owner can reach the socket, so it needs no password;
		# TCP (127.0.0.1 only) does.
		as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=scram-sha-256 >"$pg_sock/initdb.log" 2>&1 || {
			cat "$pg_sock/initdb.log" >&2
			echo "initdb failed" >&2
			return 1
		}
	fi

	local attempt port started=""
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 40000))
		# A port someone listens on is taken; another may take it before the
		# server does, which the retry covers.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		rm -f "$pg_sock/server.log"
		if as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_sock/server.log" -w -t 120 \
			-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pg_sock -c max_connections=200 $*" \
			start >/dev/null 2>&1; then
			started=1
			break
		fi
		grep -q 'could not bind\|Address already in use' "$pg_sock/server.log" 2>/dev/null || break
	done
	if [[ -z $started ]]; then
		cat "$pg_sock/server.log" >&2 2>/dev/null || true
		echo "could not start PostgreSQL" >&2
		return 1
	fi

	local password
	password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	as_pg "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_sock" -p "$port" -U postgres -d postgres >/dev/null <<-SQL
		DO \$\$ BEGIN
			IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'domaind') THEN
				CREATE ROLE domaind LOGIN CREATEDB;
			END IF;
		END \$\$;
		ALTER ROLE domaind PASSWORD '$password';
		SELECT 'CREATE DATABASE domaind OWNER domaind'
			WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'domaind') \gexec
	SQL
	PG_DSN="postgres://domaind:$password@127.0.0.1:$port/domaind?sslmode=disable"
	PG_VERSION=$version
	echo "PostgreSQL $version on 127.0.0.1:$port (data: $pg_data)" >&2
}
