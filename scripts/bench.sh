#!/usr/bin/env bash
# Runs domaind's benchmarks and writes BENCHMARKS.md with the machine and date, so
# the numbers in the repository say where they came from. Usage: make bench
#
# After the claim benchmark, cmd/domaind-bench measures the API under load on
# SQLite and PostgreSQL, background checks with one and two replicas, and the
# memory of serve (go run ./cmd/domaind-bench -h). Its PostgreSQL server is the one
# DOMAIND_BENCH_POSTGRES names (a DSN whose role may CREATE DATABASE), or else one
# this script starts on 127.0.0.1 when PostgreSQL is installed, keeping its data in
# bench-out/pg; without either, the PostgreSQL cases are skipped and say so.
#
# Seeding a million domains through the Store takes minutes, so seeded databases
# are kept in bench-out/ (SQLite files, and the PostgreSQL data of the server this
# script starts) and reused by later runs: the first run takes about twenty
# minutes on two cores, later ones about six. Delete bench-out/ to seed afresh.
# Extra arguments go to domaind-bench (e.g. -sizes 10000 -run api). Without -run,
# each of its sections runs in a process of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

claim=$(mktemp)
checker=$(mktemp)
report=$(mktemp)
cleanup() {
	stop_pg
	rm -f "$claim" "$checker" "$report"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The claim query among 10k and 1M domains that are not due (issue: the work queue).
go test -run '^$' -bench 'BenchmarkClaimDue' -benchtime 2000x -count 3 ./internal/store/sqlite/ | tee -a "$claim"

# The DNS checker alone, with a warm infrastructure cache, beside dnsperf
# against the same server (issue: speed).
DNSCHECK_DNSPERF=1 go test -run '^$' -bench 'BenchmarkCheckWarm/^cache$' -benchtime 20000x ./internal/dnscheck/ | tee -a "$checker"

args=()
if [[ -n ${DOMAIND_BENCH_POSTGRES:-} ]]; then
	echo "PostgreSQL cases use DOMAIND_BENCH_POSTGRES from the environment" >&2
elif bindir=$(find_pg_bindir); then
	# Default settings (durable commits included), so the numbers are those of
	# a server as installed.
	start_pg "$bindir" bench-out/pg
	export DOMAIND_BENCH_POSTGRES=$PG_DSN
	args+=(-keep-postgres)
else
	echo "*** PostgreSQL cases SKIPPED: install postgresql (no pg_ctl and initdb on PATH or in /usr/lib/postgresql/*/bin)" >&2
fi

status=0
bench=bench-out/domaind-bench
mkdir -p bench-out
go build -o "$bench" ./cmd/domaind-bench
if [[ " $* " == *" -run"* ]]; then
	"$bench" -header=false -cache bench-out -o "$report" ${args[@]+"${args[@]}"} "$@" || status=$?
else
	# Each section in a process of its own, in domaind-bench's order: after the
	# API section's runs over a million domains, the scale-out section's checks
	# ran 5-10% slower in the same process than in a fresh one, with the same
	# live heap after a collection, which measured the section before rather
	# than domaind.
	part=$(mktemp)
	for section in $("$bench" -sections); do
		"$bench" -run "$section" -header=false -cache bench-out -o "$part" ${args[@]+"${args[@]}"} "$@" || status=$?
		cat "$part" >> "$report"
	done
	rm -f "$part"
fi

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The report itself does not count: it is what this run rewrites.
if [[ -n $(git status --porcelain --untracked-files=no -- . ':!BENCHMARKS.md' 2>/dev/null) ]]; then
	commit="$commit (with uncommitted changes)"
fi
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (scripts/bench.sh); do not edit by hand."
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
	echo "- go: $(go env GOVERSION)"
	echo "- commit: $commit"
	echo
	echo "## Claiming due checks"
	echo
	echo "One claim of 100 due domains (\`ClaimDue\`, SQLite) while 10,000 or 1,000,000 other domains are"
	echo "not due. The claim reads only the due part of a partial index, so its cost should not grow"
	echo "with the domains that are not due."
	echo
	echo '```'
	grep -E '^(Benchmark|goos|goarch|cpu)' "$claim"
	echo '```'
	echo
	echo "## The DNS checker alone"
	echo
	echo "20,000 checks of domains of one zone on an in-process authoritative server, 64 at once, by the DNS checker"
	echo "alone (\`BenchmarkCheckWarm/cache\` in internal/dnscheck), its infrastructure cache warmed by one check; then"
	echo "dnsperf (Debian's, a separate process) for 10 s against the same server with the checks' own questions."
	echo "%-of-dnsperf is the checks' queries/s over dnsperf's. The background-checks section below measures whole"
	echo "checks, which also claim, read and save each domain in the store, against the same kind of anchor."
	echo
	echo '```'
	grep -E '^Benchmark' "$checker"
	echo '```'
	echo
	cat "$report"
} > BENCHMARKS.md
if [[ $status != 0 ]]; then
	echo "wrote BENCHMARKS.md, but domaind-bench FAILED (exit status $status): see the FAILED lines in it" >&2
	exit "$status"
fi
echo "wrote BENCHMARKS.md"
