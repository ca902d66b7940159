# meetscale: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/meetscale: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,plot]'
	@touch $@

.PHONY: venv
venv: $(BIN)/meetscale ## create .venv and install meetscale with its dev tools

.PHONY: system-deps
system-deps: ## install Debian packages the tests need (prometheus, openssl); needs root
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v openssl >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus openssl ca-certificates; \
	fi

.PHONY: testbed
testbed: ## build the local control plane's binaries (etcd, kube-*, kubectl, kwok, helm) into ~/.cache/meetscale
	testbed/build.sh

.PHONY: lint
lint: venv ## ruff (lint + format check), mypy, import contracts, CRDs and dashboards in sync, hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/meetscale crds --check crds
	$(BIN)/meetscale crds --check charts/meetscale-crds/files
	$(BIN)/python -m dashboards.generate --check
	$(BIN)/hadolint Dockerfile

.PHONY: fmt
fmt: venv ## format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: crds
crds: venv ## regenerate crds/ (and the meetscale-crds chart's copy) from the pydantic models
	$(BIN)/meetscale crds --write crds
	$(BIN)/meetscale crds --write charts/meetscale-crds/files

.PHONY: dashboards
dashboards: venv ## regenerate the chart's Grafana dashboards (dashboards/generate.py, grafana-foundation-sdk)
	$(BIN)/python -m dashboards.generate

.PHONY: unit
unit: venv ## unit tests only (pure code, no cluster)
	$(BIN)/pytest tests/unit -q

# pytest-xdist workers for `make test`: each starts its own control plane and Prometheus
# (tests/conftest_cluster.py); a test file runs whole on one worker (module fixtures).
TEST_WORKERS ?= 2

# The Go build (10 min cold on 2 cores, a third of it waiting on downloads and links) runs
# beside apt, pip and lint; each one's output is printed whole when it ends.
.PHONY: test
test: ## everything: deps, binaries, lint, unit + integration tests on the real control plane
	@$(MAKE) --no-print-directory --output-sync=target -j3 system-deps testbed lint
	MEETSCALE_BUILD=1 $(BIN)/pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo
demo: system-deps venv testbed ## the main job: control plane + Prometheus + operator + simulated bridges + sample meetings
	$(BIN)/python -m testbed.demo

.PHONY: up
up: venv testbed ## start the local control plane in the background (prints KUBECONFIG)
	$(BIN)/python -m testbed up --prometheus

.PHONY: down
down: venv ## stop the local control plane and remove its data
	$(BIN)/python -m testbed down

.PHONY: bench
bench: venv ## run the benchmarks under benchmarks/ (tables on stdout, JSON in benchmarks/results/)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

.PHONY: clean
clean: ## remove caches (keeps the built binaries in ~/.cache/meetscale)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist operator/*.egg-info
