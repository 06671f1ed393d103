# dtm: a local cluster, its tests and its tools.  `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
NODES ?=
BASE_PORT ?=
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

.PHONY: help install up down rm status exec lint test bench bench-quick bench-deps chaos \
	image compose-up compose-exec compose-down compose-rm compose-ps deploy-test

help: ## list the targets
	@echo "make up [NODES=n]        start the local cluster (creates .venv), wait until healthy;"
	@echo "                         NODES (first up: 2) is kept in run/cluster.toml until changed;"
	@echo "                         BASE_PORT=7500 puts a new cluster on 7500.. instead of 7400.."
	@echo "make down                stop every component, keep data"
	@echo "make rm                  stop and delete the cluster's data and configuration"
	@echo "make status              state, pid, address and health of every component"
	@echo "make exec                open the interactive todo shell on the cluster's handler"
	@echo "make logs-<component>    last 200 lines of a log (FOLLOW=1 to follow): logs-store1,"
	@echo "                         logs-store2, logs-loadbalancer (or logs-balancer,"
	@echo "                         logs-loadbrancer), logs-handler, logs-sync"
	@echo "make stop-<component>    levers (each says how to undo it): stop-, start-, pause-,"
	@echo "                         resume-store1 (also store2, balancer, handler, sync, view)"
	@echo "make lint                ruff check, ruff format --check, mypy --strict"
	@echo "make test                install dev tools, lint, run the whole test suite (~11 min)"
	@echo "make bench-deps          install what the benchmarks use (wrk, redis, haproxy; matplotlib, py-spy)"
	@echo "make bench, bench-quick  run the benchmarks (bench/): dtm beside the Go original,"
	@echo "                         HAProxy and Redis"
	@echo "make chaos [SEED= RUNS= MINUTES= NODES= MODE=short]  faults on namespace hosts (root);"
	@echo "                         regenerates docs/reliability.md"
	@echo "make image               build the image dtm:local (see docs/deploy.md)"
	@echo "make compose-up          start the cluster under docker compose (handler on"
	@echo "                         127.0.0.1:\$$DTM_HANDLER_PORT, default 7480)"
	@echo "make compose-exec        the todo shell, in the compose cluster"
	@echo "make compose-logs-<c>    last 200 lines of a component's log (FOLLOW=1 to follow)"
	@echo "make compose-down        stop the compose cluster, keep data;  compose-rm: delete it"
	@echo "make deploy-test         image, compose and swarm scenarios, manifest and unit checks (root)"

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
	$(BIN)/dtm cluster up --dir $(RUN_DIR) $(if $(NODES),--nodes $(NODES),) \
		$(if $(BASE_PORT),--base-port $(BASE_PORT),)

down: $(STAMP)
	$(BIN)/dtm cluster down --dir $(RUN_DIR)

rm: $(STAMP)
	$(BIN)/dtm cluster rm --dir $(RUN_DIR)

status: $(STAMP)
	$(BIN)/dtm cluster status --dir $(RUN_DIR)

# The handler's address comes from the cluster file, whatever its ports.
exec: $(STAMP)
	@url=$$($(BIN)/dtm cluster url handler --dir $(RUN_DIR)) || exit $$?; \
		$(BIN)/todo --url "$$url" shell

# logs-store1, logs-balancer, logs-loadbalancer, logs-loadbrancer, logs-handler, logs-sync ...
logs-%: $(STAMP)
	$(BIN)/dtm cluster logs $* --dir $(RUN_DIR) -n 200 $(if $(filter 1 yes true,$(FOLLOW)),-f,)

# Fault levers: stop-store1, start-sync, pause-store2, resume-store2 ... (see docs/experiments.md)
stop-%: $(STAMP)
	$(BIN)/dtm cluster stop $* --dir $(RUN_DIR)
start-%: $(STAMP)
	$(BIN)/dtm cluster start $* --dir $(RUN_DIR)
pause-%: $(STAMP)
	$(BIN)/dtm cluster pause $* --dir $(RUN_DIR)
resume-%: $(STAMP)
	$(BIN)/dtm cluster resume $* --dir $(RUN_DIR)

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

# The benchmarks' tools: wrk and the references (redis-server with redis-benchmark, haproxy)
# from Debian, the bench extra (matplotlib, py-spy) into the venv.
bench-deps: $(STAMP)
	@command -v wrk >/dev/null && command -v redis-server >/dev/null && \
		command -v redis-benchmark >/dev/null && command -v haproxy >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q wrk redis-server redis-tools haproxy; }
	$(BIN)/python -m pip install -q -e '.[bench]'

# From the repository root, so that `bench` and the shared test harness (`tests`) import.
bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

chaos: $(DEV_STAMP)
	$(BIN)/python -m chaos $(if $(SEED),--seed $(SEED)) --runs $(RUNS) --minutes $(MINUTES) \
		--nodes $(CHAOS_NODES) $(if $(filter short,$(MODE)),--short) --doc docs/reliability.md

# ---------------------------------------------------------------- containers (docs/deploy.md)

image: $(STAMP)
	deploy/image.sh

compose-up:
	deploy/compose.sh up

compose-exec:
	deploy/compose.sh exec

compose-ps:
	deploy/compose.sh ps

compose-logs-%:
	FOLLOW=$(filter 1 yes true,$(FOLLOW)) deploy/compose.sh logs $*

compose-down:
	deploy/compose.sh down

compose-rm:
	deploy/compose.sh rm

DEPLOY_STAMP := $(VENV)/.installed-deploy
$(DEPLOY_STAMP): pyproject.toml $(DEV_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,deploy]'
	touch $@

# Runs each Docker engine in a network namespace of its own; skipped (with the reason) without root.
deploy-test: $(DEPLOY_STAMP)
	deploy/test.sh
