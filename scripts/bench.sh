#!/usr/bin/env bash
# Runs domaind's benchmarks and writes BENCHMARKS.md with the machine and date, so
# the numbers in the repository say where they came from. Usage: make bench
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# The claim query among 10k and 1M domains that are not due (issue: the work queue).
go test -run '^$' -bench 'BenchmarkClaimDue' -benchtime 2000x -count 3 ./internal/store/sqlite/ | tee -a "$out"

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (scripts/bench.sh); do not edit by hand."
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
	echo "- go: $(go env GOVERSION)"
	echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo
	echo "## Claiming due checks"
	echo
	echo "One claim of 100 due domains (\`ClaimDue\`, SQLite) while 10,000 or 1,000,000 other domains are"
	echo "not due. The claim reads only the due part of a partial index, so its cost should not grow"
	echo "with the domains that are not due."
	echo
	echo '```'
	grep -E '^(Benchmark|goos|goarch|cpu)' "$out"
	echo '```'
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
