# The README's two commands are `make run` and `make test`; CI runs `make test`.
GO ?= go

.PHONY: run test build vet fuzz bench

# Runs the service on the embedded SQLite database with a development master key.
run:
	$(GO) run ./cmd/domaind serve --dev

# Runs every test, with the race detector, starting a throwaway PostgreSQL for the
# PostgreSQL store's tests when it is installed (see scripts/test.sh).
test:
	scripts/test.sh

build:
	$(GO) build -o domaind ./cmd/domaind

# Runs each fuzz target briefly (they also run their seed corpus in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzNormalizeName -fuzztime 20s ./internal/domain/
	$(GO) test -run '^$$' -fuzz FuzzParseSPF -fuzztime 20s ./internal/dnscheck/
	$(GO) test -run '^$$' -fuzz FuzzParseDKIMKey -fuzztime 20s ./internal/dnscheck/
	$(GO) test -run '^$$' -fuzz FuzzParseDMARC -fuzztime 20s ./internal/dnscheck/
	$(GO) test -run '^$$' -fuzz FuzzSPFExpand -fuzztime 20s ./internal/dnscheck/
	$(GO) test -run '^$$' -fuzz FuzzDMARCReceiverView -fuzztime 20s ./internal/dnscheck/
	$(GO) test -run '^$$' -fuzz FuzzFromDomain -fuzztime 20s ./internal/milter/
	$(GO) test -run '^$$' -fuzz FuzzPrintable -fuzztime 20s ./internal/domain/
	$(GO) test -run '^$$' -fuzz FuzzReason -fuzztime 20s ./internal/publicaddr/
	$(GO) test -run '^$$' -fuzz FuzzDuplicateName -fuzztime 20s ./internal/api/
	$(GO) test -run '^$$' -fuzz FuzzParseTSIG -fuzztime 20s ./internal/rotation/
	$(GO) test -run '^$$' -fuzz FuzzParseDuration -fuzztime 20s ./internal/rotation/

# Runs the benchmarks and writes BENCHMARKS.md (takes a few minutes).
bench:
	scripts/bench.sh
