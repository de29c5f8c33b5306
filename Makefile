# Stowage: `make dev` runs the whole system locally, `make test` runs every check.
# Both install what is missing first (scripts/install.sh; idempotent, registries only).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export PORT ?= 8787

.PHONY: help install build agent dev test bench loadtest fmt layout lint unit e2e deploy-check clean

help:
	@echo "make dev     install what is missing, build, migrate local D1, serve on http://127.0.0.1:$(PORT)"
	@echo "make test    fmt, clippy (host + wasm32), unit, end-to-end tests, deploy dry run"
	@echo "make bench   the agent's backup and restore against tar|zstd, memory, 3 targets vs 1 (SIZES=\"256M 1G\"),"
	@echo "             its database dumps against pg_dump/mariadb-dump | zstd (DB_SIZE=256M),"
	@echo "             and its repositories against restic (first, no-change, 1 % changed, restore)"
	@echo "make loadtest  N simulated agents (AGENTS=\"2000\") speaking the real protocol against make dev"

install:
	@scripts/install.sh

build: install
	@scripts/build-worker.sh
	@scripts/build-console.sh

agent:
	cargo build --locked -p stowage-agent

dev: build agent
	@scripts/dev.sh

test: install fmt layout lint build deploy-check unit e2e
	@echo "==> all checks passed"

# The agent against `tar | zstd -3 -T0` and `zstd -d | tar -x` on a generated dataset, and its
# database dump pass against the dump programs into `zstd -3 -T0`, side by side.
SIZES ?= 256M 1G
bench:
	@command -v zstd >/dev/null || { echo "==> installing the zstd CLI (the baseline) from Debian's packages"; \
	  apt-get update -qq && apt-get install -y -qq zstd; }
	@command -v restic >/dev/null || { echo "==> installing restic (the repository baseline) from Debian's packages"; \
	  apt-get update -qq && apt-get install -y -qq restic; }
	cargo build --locked --release -p stowage-agent --example bench
	./target/release/examples/bench $(SIZES)

# The control plane under a simulated fleet: for each N of AGENTS, a fresh `make dev`, N enrolled
# agents on the real protocol, an idle and a loaded phase (IDLE_SECS, LOAD_SECS). Not part of
# `make test`: it takes minutes and measures, it does not check.
AGENTS ?= 2000
loadtest: build agent
	cargo build --locked --release -p stowage-agent --example loadtest
	./target/release/examples/loadtest $(AGENTS)

fmt:
	cargo fmt --all -- --check

# The rooms of ARCHITECTURE.md: no import circles, no forbidden reaches, SQL only in the store,
# no state compared as text.
layout:
	python3 scripts/check-layout.py

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy -p stowage-shared -p stowage-worker -p stowage-console --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

unit:
	cargo test --locked -p stowage-shared -p stowage-worker -p stowage-agent -p stowage-console

# End-to-end: real wrangler dev servers and agent processes (needs `make build`, which
# `make test` runs first).
e2e: agent
	cargo test --locked -p stowage-tests

# The bundle `wrangler deploy` would upload builds and validates, without an account.
deploy-check:
	@scripts/deploy-check.sh

clean:
	rm -rf worker/build console/dist target/wrangler-logs
