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
LINT_PATHS := src tests bench chaos

# make chaos: SEED= (default random), RUNS= seeds from SEED on, MINUTES= per run, NODES= (3 unless
# given), MODE=short for the fixed 75-second mix; needs root (network namespaces).
SEED ?=
RUNS ?= 1
MINUTES ?= 4
MODE ?= long
CHAOS_NODES := $(if $(filter command line environment,$(origin NODES)),$(NODES),3)

.PHONY: help install up down rm status exec lint test bench bench-quick chaos

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
	@echo "make bench, bench-quick  run the benchmarks (bench/)"
	@echo "make chaos [SEED= RUNS= MINUTES= NODES= MODE=short]  faults on namespace hosts (root);"
	@echo "                         regenerates docs/reliability.md"

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
	echo "mypy --strict src chaos"; $(BIN)/mypy --strict src chaos || rc=1

lint: $(DEV_STAMP)
	@rc=0; $(LINT); exit $$rc

# Lint and tests both run; the target fails if either failed (pytest's "no tests ran" included).
test: $(DEV_STAMP)
	@rc=0; $(LINT); \
	echo "pytest $(PYTEST_ARGS)"; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=1; \
	exit $$rc

bench: $(STAMP)
	@if [ -f bench/__main__.py ]; then $(BIN)/python -m bench; \
	else echo "bench/__main__.py is not there yet: no benchmarks to run"; fi

bench-quick: $(STAMP)
	@if [ -f bench/__main__.py ]; then $(BIN)/python -m bench --quick; \
	else echo "bench/__main__.py is not there yet: no benchmarks to run"; fi

chaos: $(DEV_STAMP)
	$(BIN)/python -m chaos $(if $(SEED),--seed $(SEED)) --runs $(RUNS) --minutes $(MINUTES) \
		--nodes $(CHAOS_NODES) $(if $(filter short,$(MODE)),--short) --doc docs/reliability.md
