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

# The fuzz targets `make fuzz` runs, each as package:target (packages below
# internal/).
FUZZ_TARGETS = domain:FuzzNormalizeName domain:FuzzPrintable \
	dnscheck:FuzzParseSPF dnscheck:FuzzParseDKIMKey dnscheck:FuzzParseDMARC \
	dnscheck:FuzzSPFExpand dnscheck:FuzzDMARCReceiverView milter:FuzzFromDomain \
	publicaddr:FuzzReason api:FuzzDuplicateName rotation:FuzzParseTSIG rotation:FuzzParseDuration

# Runs each fuzz target briefly (they also run their seed corpus in `make test`),
# one after another, stopping at the first that fails.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=./internal/$${t%%:*}/ target=$${t#*:}; \
		echo "$(GO) test -run '^$$' -fuzz $$target -fuzztime 20s $$pkg"; \
		$(GO) test -run '^$$' -fuzz $$target -fuzztime 20s $$pkg; \
	done

# Runs the benchmarks and writes BENCHMARKS.md (takes a few minutes).
bench:
	scripts/bench.sh
