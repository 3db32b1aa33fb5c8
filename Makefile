# Gatehouse. Two commands matter: `make up` runs the whole system, `make test` runs every test.
.PHONY: up test down lint build clean-state

up:            ## run the whole system in the foreground
	dev/scripts/up.sh

test:          ## install what the tests need, lint, build once, run every test
	dev/scripts/test.sh

down:          ## stop the private Docker engine, the local Kubernetes cluster and the local PostgreSQL `make up` may have started
	GATEHOUSE_STATE_DIR=$(CURDIR)/.state dev/scripts/docker-engine.sh stop gatehouse-dev
	dev/kubernetes/cluster.sh stop $(CURDIR)/.state/kube
	dev/scripts/postgres.sh stop $(CURDIR)/.state/pg

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

build:
	cargo build --workspace --all-targets

.PHONY: fuzz
fuzz:          ## run each cargo-fuzz target FUZZ_SECONDS (default 180) from fuzz/corpus; installs cargo-fuzz
	dev/scripts/fuzz.sh

.PHONY: soak
soak:          ## fault drills + soak (SOAK_SECONDS, default 600) on the release binaries -> target/soak/report.md
	benches/soak.sh

.PHONY: bench
bench:         ## proxy-latency benchmark vs nginx/haproxy + micro-benchmarks -> target/bench/report.md
	benches/run.sh
