# dtm: a local cluster, its tests and its tools.  `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
NODES ?= 2
RUN_DIR ?= run
FOLLOW ?=
PYTEST_ARGS ?=
LINT_PATHS := src tests bench

.PHONY: help install up down rm status exec lint test bench bench-quick bench-deps

help: ## list the targets
	@echo "make up [NODES=2]        start the local cluster (creates .venv), wait until healthy"
	@echo "make down                stop every component, keep data"
	@echo "make rm                  stop and delete the cluster's data and configuration"
	@echo "make status              state, pid, address and health of every component"
	@echo "make exec                open the interactive todo shell"
	@echo "make logs-<component>    last 200 lines of a log (FOLLOW=1 to follow): logs-store1,"
	@echo "                         logs-store2, logs-loadbalancer (or logs-balancer,"
	@echo "                         logs-loadbrancer), logs-handler, logs-sync"
	@echo "make lint                ruff check, ruff format --check, mypy --strict"
	@echo "make test                install dev tools, lint, run the whole test suite"
	@echo "make bench-deps          install what the benchmarks use (wrk; matplotlib, py-spy)"
	@echo "make bench, bench-quick  run the benchmarks (bench/): dtm beside the Go original"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)

up: $(STAMP)
	$(BIN)/dtm cluster up --nodes $(NODES) --dir $(RUN_DIR)

down: $(STAMP)
	$(BIN)/dtm cluster down --dir $(RUN_DIR)

rm: $(STAMP)
	$(BIN)/dtm cluster rm --dir $(RUN_DIR)

status: $(STAMP)
	$(BIN)/dtm cluster status --dir $(RUN_DIR)

exec: $(STAMP)
	$(BIN)/todo shell

# logs-store1, logs-balancer, logs-loadbalancer, logs-loadbrancer, logs-handler, logs-sync ...
logs-%: $(STAMP)
	$(BIN)/dtm cluster logs $* --dir $(RUN_DIR) -n 200 $(if $(filter 1 yes true,$(FOLLOW)),-f,)

# Every check runs; rc ends non-zero if any failed.
LINT = echo "ruff check $(LINT_PATHS)"; $(BIN)/ruff check $(LINT_PATHS) || rc=1; \
	echo "ruff format --check $(LINT_PATHS)"; $(BIN)/ruff format --check $(LINT_PATHS) || rc=1; \
	echo "mypy --strict src"; $(BIN)/mypy --strict src || rc=1

lint: $(DEV_STAMP)
	@rc=0; $(LINT); exit $$rc

# Lint and tests both run; the target fails if either failed (pytest's "no tests ran" included).
test: $(DEV_STAMP)
	@rc=0; $(LINT); \
	echo "pytest $(PYTEST_ARGS)"; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=1; \
	exit $$rc

# The benchmarks' tools: wrk from Debian, the bench extra (matplotlib, py-spy) into the venv.
bench-deps: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q wrk; }
	$(BIN)/python -m pip install -q -e '.[bench]'

# From the repository root, so that `bench` and the shared test harness (`tests`) import.
bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick
